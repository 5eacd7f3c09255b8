"""Serving metrics as benchmark tools report them (vLLM benchmark_serving, sglang.bench_serving,
MLPerf loadgen, trtllm-bench): per-request TTFT, TPOT and end-to-end latency, inter-token
latency over all tokens, throughput over the run, goodput under an SLO (DistServe, Zhong et
al. 2024 §2: requests per second that meet every latency target)."""

from __future__ import annotations

import numpy as np

from flopcast.workloads.serving.simulator import SimResult

PERCENTILES = (50, 90, 99)
#: The quantiles at which the summary's ``cdf`` gives each latency (shares of the requests,
#: or for ITL of the output tokens): the minimum, 1 %, every 5 % from 5 % to 95 %, 99 % and
#: the maximum — 23 points, enough to draw the CDF without sending every request.
CDF_QUANTILES = (0.0, 0.01, *(k / 20 for k in range(1, 20)), 0.99, 1.0)


def quantiles_ms(seconds: np.ndarray, qs) -> np.ndarray:
    """The ``qs`` quantiles (0..1) in ms of the finite values, numpy's linear interpolation
    (as vLLM's benchmark_serving reports percentiles); empty when there are none."""
    v = 1e3 * seconds[np.isfinite(seconds)]
    return np.quantile(v, qs) if v.size else np.array([])


def weighted_quantiles_ms(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    """The ``qs`` quantiles in ms of values seen ``weights`` times each: the smallest value
    whose cumulative weight reaches q of the total (the inverse of the step CDF); empty when
    no value has weight."""
    keep = weights > 0
    if not keep.any():
        return np.array([])
    order = np.argsort(values[keep])
    v, cum = 1e3 * values[keep][order], np.cumsum(weights[keep][order])
    return v[np.minimum(np.searchsorted(cum, np.asarray(qs) * cum[-1]), v.size - 1)]


def stats_ms(seconds: np.ndarray) -> dict[str, float]:
    """Mean and percentiles in ms of the finite values (NaN when there are none)."""
    v = 1e3 * seconds[np.isfinite(seconds)]
    if v.size == 0:
        return {"mean": float("nan"), **{f"p{p}": float("nan") for p in PERCENTILES}}
    ps = quantiles_ms(seconds, [p / 100 for p in PERCENTILES])
    return {"mean": float(v.mean()), **{f"p{p}": float(x) for p, x in zip(PERCENTILES, ps,
                                                                          strict=True)}}


def weighted_stats_ms(values: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Mean and percentiles in ms of values seen ``weights`` times each (inter-token gaps:
    one iteration's gap is seen by every sequence that decoded in it)."""
    if values.size == 0 or weights.sum() == 0:
        return stats_ms(np.array([]))
    order = np.argsort(values)
    ps = weighted_quantiles_ms(values, weights, [p / 100 for p in PERCENTILES])
    return {"mean": float(np.average(1e3 * values[order], weights=weights[order])),
            **{f"p{p}": float(x) for p, x in zip(PERCENTILES, ps, strict=True)}}


def cdf(values_ms: np.ndarray) -> dict[str, list[float]]:
    """One latency's distribution as the summary's ``cdf`` gives it: the CDF_QUANTILES and
    the latency (ms) at each; ``values`` is empty when no request has that latency."""
    return {"quantiles": list(CDF_QUANTILES), "values": [float(x) for x in values_ms]}


def summarize(res: SimResult, num_gpus: int, slo_ttft_ms: float | None = None,
              slo_tpot_ms: float | None = None) -> dict:
    """The JSON-ready summary of one simulation."""
    r = res.requests
    arrival, first, finish = (np.asarray(x, dtype=float) for x in
                              (r.arrival, r.first_token, r.finish))
    prompt, output = np.asarray(r.prompt), np.asarray(r.output)
    ttft, e2e = first - arrival, finish - arrival
    tpot = np.where(output > 1, (finish - first) / np.maximum(output - 1, 1), np.nan)
    # the run lasts from its first arrival to its last finish (traces may start late)
    duration = (float(np.nanmax(finish) - np.min(arrival)) if np.isfinite(finish).any()
                else float("nan"))
    done = np.isfinite(finish)
    out_tokens, in_tokens = float(output[done].sum()), float(prompt[done].sum())
    itl, itl_weight = np.asarray(res.itl_s), np.asarray(res.itl_weight)
    good = done.copy()
    if slo_ttft_ms is not None:
        good &= 1e3 * ttft <= slo_ttft_ms
    if slo_tpot_ms is not None:
        good &= ~(1e3 * tpot > slo_tpot_ms)
    return {
        "num_requests": int(done.sum()),
        "duration_s": duration,
        "ttft_ms": stats_ms(ttft),
        "tpot_ms": stats_ms(tpot),
        "itl_ms": weighted_stats_ms(itl, itl_weight),
        "e2e_latency_ms": stats_ms(e2e),
        "cdf": {"ttft_ms": cdf(quantiles_ms(ttft, CDF_QUANTILES)),
                "tpot_ms": cdf(quantiles_ms(tpot, CDF_QUANTILES)),
                "itl_ms": cdf(weighted_quantiles_ms(itl, itl_weight, CDF_QUANTILES)),
                "e2e_latency_ms": cdf(quantiles_ms(e2e, CDF_QUANTILES))},
        "requests_per_s": done.sum() / duration,
        "output_tokens_per_s": out_tokens / duration,
        "total_tokens_per_s": (out_tokens + in_tokens) / duration,
        "output_tokens_per_s_per_gpu": out_tokens / duration / num_gpus,
        # what one user sees while its answer streams: output tokens over decode time
        "output_tokens_per_s_per_user": float(np.nanmean(1.0 / tpot)) if np.isfinite(
            tpot).any() else float("nan"),
        "goodput_requests_per_s": good.sum() / duration,
        "mean_input_len": float(prompt.mean()),
        "mean_output_len": float(output.mean()),
        "preemptions": int(sum(r.preemptions)),
        **occupancy(res, duration),
    }


def occupancy(res: SimResult, duration: float) -> dict:
    """Time-averaged and peak KV-cache use (share of each replica's capacity) and queue
    length (requests waiting for admission), averaged over replicas."""
    occ, caps = res.occupancy, res.kv_capacity_blocks
    if not occ or not duration:
        return {}
    kv = [o["kv_block_s"] / (c * duration) for o, c in zip(occ, caps, strict=True) if c]
    return {
        "kv_utilization_mean": float(np.mean(kv)),
        "kv_utilization_peak": float(max(o["peak_kv_blocks"] / c
                                         for o, c in zip(occ, caps, strict=True) if c)),
        "queue_length_mean": float(np.mean([o["queued_s"] / duration for o in occ])),
        "queue_length_peak": int(max(o["peak_queued"] for o in occ)),
        "busy_share": float(np.mean([o["busy_s"] / duration for o in occ])),
    }
