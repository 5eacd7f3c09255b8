"""The highest Poisson request rate whose p99 TTFT and TPOT meet an SLO (MLPerf server
scenario's metric: the largest QPS at which the latency bounds hold, loadgen
`server_target_qps` search), by bisection on the rate with the workload's lengths fixed."""

from __future__ import annotations

import dataclasses

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.serving.run import serve
from flopcast.workloads.serving.simulator import Deployment

#: Bisection stops when the bracket is this tight (relative).
RATE_TOLERANCE = 0.02
#: Seed of the unit-rate Poisson gaps every rate is scaled from: the same arrival pattern at
#: every rate, so latency is compared on equal footing (common random numbers).
ARRIVAL_SEED = 12345


def _meets(summary: dict, slo_ttft_ms: float | None, slo_tpot_ms: float | None,
           slo_itl_ms: float | None = None) -> bool:
    """p99 TTFT, p99 TPOT (per request) and p99 ITL (per token gap, Sarathi-Serve's TBT)
    within their bounds (None = no bound)."""
    ok = slo_ttft_ms is None or summary["ttft_ms"]["p99"] <= slo_ttft_ms
    ok = ok and (slo_itl_ms is None or summary["itl_ms"]["p99"] <= slo_itl_ms)
    return ok and (slo_tpot_ms is None or not summary["tpot_ms"]["p99"] > slo_tpot_ms)


def _at_rate(dep: Deployment, requests, rate: float, slo_ttft_ms: float | None = None,
             slo_tpot_ms: float | None = None) -> dict:
    """Summary of ``requests`` re-timed to Poisson arrivals at ``rate`` (unit-rate gaps
    scaled); goodput counts requests within the given TTFT/TPOT bounds."""
    unit = np.cumsum(np.random.default_rng(ARRIVAL_SEED).exponential(1.0, len(requests.arrival_s)))
    timed = dataclasses.replace(requests, arrival_s=unit / rate)
    return serve(dep, timed, slo_ttft_ms=slo_ttft_ms, slo_tpot_ms=slo_tpot_ms)[0]


def max_rate_under_slo(dep: Deployment, requests, slo_ttft_ms: float | None,
                       slo_tpot_ms: float | None,
                       slo_itl_ms: float | None = None) -> tuple[float, dict]:
    """(highest rate meeting the SLO, the summary at that rate). Raises when even a nearly
    idle system misses the SLO: no rate meets it."""
    if slo_ttft_ms is None and slo_tpot_ms is None and slo_itl_ms is None:
        raise FlopcastError("slo: give --slo-ttft-p99, --slo-tpot-p99 and/or --slo-itl-p99")
    offline = serve(dep, dataclasses.replace(requests, arrival_s=0.0 * requests.arrival_s))[0]
    high = 1.5 * offline["requests_per_s"]
    low = high / 1000
    best = _at_rate(dep, requests, low)
    if not _meets(best, slo_ttft_ms, slo_tpot_ms, slo_itl_ms):
        raise FlopcastError(
            f"slo: not met at any rate: at {low:.3g} req/s p99 TTFT is "
            f"{best['ttft_ms']['p99']:.0f} ms and p99 TPOT {best['tpot_ms']['p99']:.1f} ms "
            f"(SLO: TTFT {slo_ttft_ms} ms, TPOT {slo_tpot_ms} ms, ITL {slo_itl_ms} ms)")
    while high / low > 1 + RATE_TOLERANCE:
        mid = (low * high) ** 0.5
        s = _at_rate(dep, requests, mid)
        if _meets(s, slo_ttft_ms, slo_tpot_ms, slo_itl_ms):
            low, best = mid, s
        else:
            high = mid
    return low, best
