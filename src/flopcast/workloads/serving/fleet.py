"""The cheapest fleet that serves a request rate within p99 latency bounds.

For each GPU type and tensor-parallel size that holds the model, the highest Poisson rate one
replica sustains within the SLO is found by simulation (capacity.max_rate_under_slo). A fleet
of n replicas behind a load balancer then takes about n times that rate (a Poisson stream
split at random stays Poisson). The cheapest mix of replica types whose capacities add up to
the rate is chosen — across GPU types when allowed, as Mélange does (Griggs et al. 2024 §4:
cost-minimal heterogeneous allocation by an integer program; here by enumeration over two
types) — and then the whole fleet is simulated at the rate to check the SLO, adding the
most cost-effective replica until it holds.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from flopcast.errors import FlopcastError
from flopcast.workloads.serving.capacity import _at_rate, max_rate_under_slo, meets_slo
from flopcast.workloads.serving.simulator import Deployment

#: Extra replicas tried when the simulated fleet misses the SLO the capacities promised.
MAX_TOP_UPS = 4


@dataclass(frozen=True)
class ReplicaOption:
    """One replica type: its deployment, $/hour and the rate it sustains within the SLO."""

    name: str
    dep: Deployment
    usd_per_hour: float
    capacity_rps: float


def replica_options(deps: list[Deployment], requests, slo_ttft_ms, slo_tpot_ms,
                    progress=None) -> tuple[list[ReplicaOption], list[str]]:
    """Capacity of each single-replica deployment; (options, reasons for those left out)."""
    options, left_out = [], []
    for dep in deps:
        job = dep.job
        name = f"{job.system.gpu.id} tp={job.tp}"
        if progress:
            progress(name)
        try:
            cap = max_rate_under_slo(dep, requests, slo_ttft_ms, slo_tpot_ms)[0]
        except FlopcastError as e:
            left_out.append(f"{name}: {e}")
            continue
        price = job.system.gpu.price_per_gpu_hour_usd * job.system.num_gpus
        options.append(ReplicaOption(name, dep, price, cap))
    return options, left_out


def _cheapest_mix(options: list[ReplicaOption], rate: float, mixed: bool):
    """Counts per option (≤ 2 types when ``mixed``) whose capacities cover ``rate`` at the
    lowest price."""
    best = None
    for a, oa in enumerate(options):
        need_a = math.ceil(rate / oa.capacity_rps)
        pairs = [(need_a, None, 0)]
        if mixed:
            for b, ob in enumerate(options):
                if b == a:
                    continue
                for na in range(1, need_a):
                    pairs.append((na, b, math.ceil((rate - na * oa.capacity_rps)
                                                  / ob.capacity_rps)))
        for na, b, nb in pairs:
            cost = na * oa.usd_per_hour + (nb * options[b].usd_per_hour if b is not None else 0)
            if best is None or cost < best[0]:
                best = (cost, {a: na, **({b: nb} if b is not None and nb else {})})
    return best[1]


def _fleet(options, counts) -> list[Deployment]:
    pools = []
    for k, n in counts.items():
        dep = options[k].dep
        system = dep.job.system.model_copy(update={"num_gpus": n * dep.job.system.num_gpus})
        pools.append(dataclasses.replace(
            dep, job=dep.job.model_copy(update={"system": system}),
            router="least-outstanding-tokens"))
    return pools


def plan_fleet(options: list[ReplicaOption], requests, rate: float, slo_ttft_ms,
               slo_tpot_ms, mixed: bool = True) -> dict:
    """The cheapest fleet for ``rate`` requests/s (see the module docstring), checked by
    simulating it; raises when no option meets the SLO even alone."""
    if not options:
        raise FlopcastError("fleet: no GPU type and tp meets the SLO at any rate")
    counts = _cheapest_mix(options, rate, mixed)
    per_cost = min(range(len(options)),
                   key=lambda k: options[k].usd_per_hour / options[k].capacity_rps)
    for _ in range(MAX_TOP_UPS + 1):
        fleet = _fleet(options, counts)
        summary = _at_rate(fleet, requests, rate)
        if meets_slo(summary, slo_ttft_ms, slo_tpot_ms):
            break
        counts[per_cost] = counts.get(per_cost, 0) + 1
    else:
        raise FlopcastError(f"fleet: the simulated fleet still misses the SLO after "
                            f"{MAX_TOP_UPS} extra replicas")
    return {
        "fleet": [{"replica": options[k].name, "count": n,
                   "usd_per_hour": n * options[k].usd_per_hour} for k, n in counts.items()],
        "usd_per_hour": sum(n * options[k].usd_per_hour for k, n in counts.items()),
        "summary": summary,
    }


def front(options: list[ReplicaOption], requests, rate: float, slo_ttft_ms,
          slo_tpot_ms) -> list[dict]:
    """Each replica type alone at ``rate``: its cost and simulated p99 latencies (the
    cost/latency trade-off the fleet choice sits on), cheapest first."""
    rows = []
    for o in options:
        try:
            plan = plan_fleet([o], requests, rate, slo_ttft_ms, slo_tpot_ms, mixed=False)
        except FlopcastError:
            continue
        s = plan["summary"]
        rows.append({"replica": o.name, "capacity_rps": o.capacity_rps,
                     "count": plan["fleet"][0]["count"], "usd_per_hour": plan["usd_per_hour"],
                     "ttft_p99_ms": s["ttft_ms"]["p99"], "tpot_p99_ms": s["tpot_ms"]["p99"]})
    return sorted(rows, key=lambda r: r["usd_per_hour"])
