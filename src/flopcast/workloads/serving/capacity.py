"""The highest Poisson request rate whose p99 TTFT and TPOT meet an SLO (MLPerf server
scenario's metric: the largest QPS at which the latency bounds hold, loadgen
`server_target_qps` search), by bisection on the rate with the workload's lengths fixed.

The search never goes above the deployment's saturated throughput: a Poisson stream faster
than the replica completes requests when it is always full (utilisation ρ ≥ 1) builds an
unbounded queue (Kleinrock 1975, Queueing Systems I, §1.6 and §3.2), whatever a finite run's
percentiles say. A TPOT-only SLO cannot see that queue (decode time per token stops growing
once the batch is full; the wait shows in TTFT), so without the cap the answer grew with the
number of simulated requests. The saturated throughput is measured in a closed loop that
keeps every batch slot busy (the engine's max_num_seqs requests in flight, the workload
repeated until the loop holds SATURATION_LOOPS times that many), over its steady middle
(completions STEADY_SHARE), leaving out the batch filling and the last requests draining.
Just below saturation a finite run still understates the queue a long one would build (its
TTFT grows with the run's length): more requests (--num-requests) show more of it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.serving.run import serve
from flopcast.workloads.serving.simulator import Deployment
from flopcast.workloads.serving.workload import INT_FIELDS, Requests

#: Bisection stops when the bracket is this tight (relative).
RATE_TOLERANCE = 0.02
#: The closed loop's requests, as a multiple of its concurrency (max_num_seqs): enough that
#: the full-batch phase dominates the run.
SATURATION_LOOPS = 4
#: Completions (as shares of all, in time order) between which the saturated throughput is
#: counted: the batch filling before and the drain after are not steady state.
STEADY_SHARE = (0.25, 0.75)
#: Seed of the unit-rate Poisson gaps every rate is scaled from: the same arrival pattern at
#: every rate, so latency is compared on equal footing (common random numbers).
ARRIVAL_SEED = 12345


def meets_slo(summary: dict, slo_ttft_ms: float | None, slo_tpot_ms: float | None,
              slo_itl_ms: float | None = None) -> bool:
    """p99 TTFT, p99 TPOT (per request) and p99 ITL (per token gap, Sarathi-Serve's TBT)
    within their bounds (None = no bound)."""
    ok = slo_ttft_ms is None or summary["ttft_ms"]["p99"] <= slo_ttft_ms
    # no token gap or no TPOT (one-token outputs: NaN) cannot break its bound
    ok = ok and (slo_itl_ms is None or not summary["itl_ms"]["p99"] > slo_itl_ms)
    return ok and (slo_tpot_ms is None or not summary["tpot_ms"]["p99"] > slo_tpot_ms)


def _at_rate(dep: Deployment, requests, rate: float, slo_ttft_ms: float | None = None,
             slo_tpot_ms: float | None = None) -> dict:
    """Summary of ``requests`` re-timed to Poisson arrivals at ``rate`` (unit-rate gaps
    scaled); goodput counts requests within the given TTFT/TPOT bounds."""
    unit = np.cumsum(np.random.default_rng(ARRIVAL_SEED).exponential(1.0, len(requests.arrival_s)))
    timed = dataclasses.replace(requests, arrival_s=unit / rate)
    return serve(dep, timed, slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms)[0]


def saturated_rate(dep: Deployment, requests) -> float:
    """Requests per second ``dep`` completes with every batch slot kept busy (module doc)."""
    # every replica runs pp schedulers (one per micro-batch in flight), each up to max_seqs
    seqs = int(dep.limits.max_seqs) * dep.job.replicas * dep.job.pp
    n = len(requests.arrival_s)
    copies = max(1, math.ceil(SATURATION_LOOPS * seqs / n))
    loop = Requests(np.zeros(n * copies), *(np.tile(getattr(requests, f), copies)
                                            for f in INT_FIELDS))
    finish = np.sort(np.asarray(serve(dep, loop, concurrency=seqs)[1].requests.finish, float))
    finish = finish[np.isfinite(finish)]
    if finish.size < 4:
        raise FlopcastError("slo: the deployment completes too few requests to measure its "
                            f"throughput ({finish.size} of {loop.arrival_s.size})")
    i, j = (int(share * (finish.size - 1)) for share in STEADY_SHARE)
    return (j - i) / max(finish[j] - finish[i], 1e-12)


def max_rate_under_slo(dep: Deployment, requests, slo_ttft_ms: float | None,
                       slo_tpot_ms: float | None,
                       slo_itl_ms: float | None = None) -> tuple[float, dict]:
    """(highest rate meeting the SLO, the summary at that rate), at most the saturated
    throughput (:func:`saturated_rate`; returned as is when the SLO still holds there).
    Raises when even a nearly idle system misses the SLO: no rate meets it."""
    if slo_ttft_ms is None and slo_tpot_ms is None and slo_itl_ms is None:
        raise FlopcastError("slo: give --slo-ttft-p99, --slo-tpot-p99 and/or --slo-itl-p99")
    high = saturated_rate(dep, requests)
    low = high / 1000
    best = _at_rate(dep, requests, low)
    if not meets_slo(best, slo_ttft_ms, slo_tpot_ms, slo_itl_ms):
        raise FlopcastError(
            f"slo: not met at any rate: at {low:.3g} req/s p99 TTFT is "
            f"{best['ttft_ms']['p99']:.0f} ms and p99 TPOT {best['tpot_ms']['p99']:.1f} ms "
            f"(SLO: TTFT {slo_ttft_ms} ms, TPOT {slo_tpot_ms} ms, ITL {slo_itl_ms} ms)")
    top = _at_rate(dep, requests, high)
    if meets_slo(top, slo_ttft_ms, slo_tpot_ms, slo_itl_ms):
        return high, {**top, "at_saturation": True}  # the SLO holds up to saturation
    while high / low > 1 + RATE_TOLERANCE:
        mid = (low * high) ** 0.5
        s = _at_rate(dep, requests, mid)
        if meets_slo(s, slo_ttft_ms, slo_tpot_ms, slo_itl_ms):
            low, best = mid, s
        else:
            high = mid
    return low, best
