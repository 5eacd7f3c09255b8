"""The cheapest fleet that serves a request rate within p99 latency bounds.

For each GPU type and tensor-parallel size that holds the model, the highest Poisson rate one
replica sustains within the SLO is found by simulation (capacity.max_rate_under_slo). A fleet
of n replicas behind a load balancer then takes about n times that rate (a Poisson stream
split at random stays Poisson). The cheapest mix of replica types whose capacities add up to
the rate is chosen — across GPU types when allowed, as Mélange does (Griggs et al. 2024 §4:
cost-minimal heterogeneous allocation by an integer program; here by enumeration over two
types) — and then the whole fleet is simulated at the rate to check the SLO, adding the
most cost-effective replica until it holds.

Mélange's saving comes from sending each request to the GPU type that serves its size most
cheaply (§4.2-4.3: small requests to low-end GPUs, large ones to high-end). So each replica
type is also measured on each size bucket alone (requests split at geometrically spaced
prompt + output sizes: ``size_buckets``), and a mixed fleet may route by size (``routers.BySize``):
for two types with given counts, the load-minimal assignment of buckets is the fractional
one that gives type a the buckets where its capacity relative to b's is highest, splitting
at most one bucket (the two-machine case of Mélange's integer program, whose LP relaxation
this greedy order solves exactly); the counts are enumerated. The cheaper of the size-routed
and the size-blind fleet, each checked by simulation, is the answer.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.serving.capacity import _at_rate, max_rate_under_slo, meets_slo
from flopcast.workloads.serving.simulator import Deployment
from flopcast.workloads.serving.workload import Requests

#: Extra replicas tried when the simulated fleet misses the SLO the capacities promised.
MAX_TOP_UPS = 4
#: Request-size buckets (geometric ranges of prompt + output tokens) each replica type is measured
#: on for size-based routing (Mélange's buckets are finer; each costs one capacity search).
SIZE_BUCKETS = 4
#: Fewest requests a bucket's capacity search runs on.
MIN_BUCKET_REQUESTS = 20
#: Load (req/s) of a bucket below which its leftover is a rounding residue, not traffic
#: a pool must serve (the two-type assignment's and the top-up's threshold).
LOAD_SLIVER_RPS = 1e-12


@dataclass(frozen=True)
class ReplicaOption:
    """One replica type: its deployment, $/hour and the rate it sustains within the SLO."""

    name: str
    dep: Deployment
    usd_per_hour: float
    capacity_rps: float
    #: capacity on each of ``size_buckets`` alone (0: the SLO is not met on it)
    bucket_capacity_rps: tuple[float, ...] = ()


def size_buckets(requests, buckets: int = SIZE_BUCKETS) -> list[tuple[int, int, float]]:
    """(lo, hi, share of the requests) of up to ``buckets`` request-size ranges (prompt +
    output tokens, lo <= size < hi) with geometrically spaced edges from the smallest size to
    the largest, as Mélange's size buckets grow (§5.1); empty ranges are dropped and ranges
    too thin to measure (fewer than MIN_BUCKET_REQUESTS requests) join a neighbour."""
    size = np.asarray(requests.input_len) + np.asarray(requests.output_len)
    low, high = int(size.min()), int(size.max()) + 1
    edges = np.unique(np.round(np.geomspace(low, high, buckets + 1)).astype(int))
    ranges: list[list[int]] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        count = int(((size >= lo) & (size < hi)).sum())
        if not count:
            if ranges:
                ranges[-1][1] = int(hi)
            continue
        if ranges and (count < MIN_BUCKET_REQUESTS or ranges[-1][2] < MIN_BUCKET_REQUESTS):
            ranges[-1][1:] = [int(hi), ranges[-1][2] + count]
        else:
            ranges.append([int(lo), int(hi), count])
    ranges[0][0] = low
    return [(lo, hi, count / size.size) for lo, hi, count in ranges]


def _bucket_requests(requests, lo: int, hi: int) -> Requests:
    size = np.asarray(requests.input_len) + np.asarray(requests.output_len)
    keep = (size >= lo) & (size < hi)
    fields = (requests.arrival_s, requests.input_len, requests.output_len,
              requests.prefix_id, requests.prefix_len)
    return Requests(*(None if a is None else np.asarray(a)[keep] for a in fields))


def _bucket_capacities(dep, requests, buckets, slo_ttft_ms, slo_tpot_ms) -> tuple[float, ...]:
    caps = []
    for lo, hi, _ in buckets:
        try:
            caps.append(max_rate_under_slo(dep, _bucket_requests(requests, lo, hi),
                                           slo_ttft_ms, slo_tpot_ms)[0])
        except FlopcastError:
            caps.append(0.0)  # this type cannot serve requests of this size within the SLO
    return tuple(caps)


def replica_options(deps: list[Deployment], requests, slo_ttft_ms, slo_tpot_ms,
                    progress=None, by_size: bool = False
                    ) -> tuple[list[ReplicaOption], list[str]]:
    """Capacity of each single-replica deployment, and with ``by_size`` on each size bucket
    too; (options, reasons for those left out). With ``by_size`` a type that misses the SLO
    on the whole mix stays an option (capacity 0) if it meets it on some bucket."""
    buckets = size_buckets(requests) if by_size else []
    options, left_out = [], []
    for dep in deps:
        job = dep.job
        name = f"{job.system.gpu.id} tp={job.tp}"
        if progress:
            progress(name)
        try:
            cap = max_rate_under_slo(dep, requests, slo_ttft_ms, slo_tpot_ms)[0]
        except FlopcastError as e:
            cap, reason = 0.0, f"{name}: {e}"
        caps = (_bucket_capacities(dep, requests, buckets, slo_ttft_ms, slo_tpot_ms)
                if len(buckets) > 1 else ())
        if not cap and not any(caps):
            left_out.append(reason)
            continue
        if not cap:  # said, so the type does not vanish from the answer unexplained
            left_out.append(f"{reason} (on the whole mix; an option for size-routed fleets)")
        price = job.system.gpu.price_per_gpu_hour_usd * job.system.num_gpus
        options.append(ReplicaOption(name, dep, price, cap, caps))
    return options, left_out


def _cheapest_mix(options: list[ReplicaOption], rate: float, mixed: bool):
    """Counts per option (≤ 2 types when ``mixed``) whose capacities cover ``rate`` at the
    lowest price; None when no option takes the whole mix."""
    best = None
    for a, oa in enumerate(options):
        if not oa.capacity_rps:
            continue
        need_a = math.ceil(rate / oa.capacity_rps)
        pairs = [(need_a, None, 0)]
        if mixed:
            for b, ob in enumerate(options):
                if b == a or not ob.capacity_rps:
                    continue
                for na in range(1, need_a):
                    pairs.append((na, b, math.ceil((rate - na * oa.capacity_rps)
                                                  / ob.capacity_rps)))
        for na, b, nb in pairs:
            cost = na * oa.usd_per_hour + (nb * options[b].usd_per_hour if b is not None else 0)
            if best is None or cost < best[0]:
                best = (cost, {a: na, **({b: nb} if b is not None and nb else {})})
    return None if best is None else best[1]


def _assign_by_size(caps_a, caps_b, loads, n_a: int) -> tuple[list[float], int | None]:
    """Shares of each bucket's load (requests/s) that n_a replicas of type a take, filling
    the buckets where a's capacity relative to b's is highest first (at most one bucket is
    split), and the replicas of type b the rest needs (None: load neither type can take)."""
    def advantage(j):
        return math.inf if caps_b[j] == 0 else caps_a[j] / caps_b[j]

    budget, shares = float(n_a), [0.0] * len(loads)
    for j in sorted(range(len(loads)), key=advantage, reverse=True):
        if caps_a[j] > 0 and budget > 1e-9:  # not a rounding residue's sliver of a bucket
            need = loads[j] / caps_a[j]
            shares[j] = min(1.0, budget / need) if need > 0 else 1.0
            if shares[j] > 1.0 - 1e-9:
                shares[j] = 1.0
            budget -= shares[j] * need
    rest = 0.0
    for j, load in enumerate(loads):
        left = (1.0 - shares[j]) * load
        if left > LOAD_SLIVER_RPS:
            if caps_b[j] == 0:
                return shares, None
            rest += left / caps_b[j]
    return shares, math.ceil(rest - 1e-9)


def _cheapest_by_size(options: list[ReplicaOption], buckets, rate: float):
    """(counts, size ranges per option) of the cheapest two-type fleet routing by size, or
    None (no pair can take every bucket)."""
    loads = [rate * share for *_, share in buckets]
    best = None
    for a, oa in enumerate(options):
        caps_a = oa.bucket_capacity_rps
        most = math.ceil(sum(load / c for load, c in zip(loads, caps_a, strict=True) if c))
        for b, ob in enumerate(options):
            if b == a:
                continue
            for n_a in range(1, most + 1):
                shares, n_b = _assign_by_size(caps_a, ob.bucket_capacity_rps, loads, n_a)
                if not n_b:  # infeasible, or type a alone (the size-blind plan covers it)
                    continue
                cost = n_a * oa.usd_per_hour + n_b * ob.usd_per_hour
                if best is None or cost < best[0]:
                    ranges = {a: tuple((lo, hi, f) for (lo, hi, _), f in
                                       zip(buckets, shares, strict=True) if f > 0),
                              b: tuple((lo, hi, 1.0 - f) for (lo, hi, _), f in
                                       zip(buckets, shares, strict=True) if f < 1)}
                    best = (cost, {a: n_a, b: n_b}, ranges)
    return None if best is None else best[1:]


def _fleet(options, counts, ranges=None) -> list[Deployment]:
    pools = []
    for k, n in counts.items():
        dep = options[k].dep
        system = dep.job.system.model_copy(update={"num_gpus": n * dep.job.system.num_gpus})
        pools.append(dataclasses.replace(
            dep, job=dep.job.model_copy(update={"system": system}),
            router="by-size" if ranges else "least-outstanding-tokens",
            size_ranges=ranges[k] if ranges else ()))
    return pools


def _busiest_pool(options, counts, ranges, buckets, rate: float) -> int:
    """The pool of a size-routed fleet loaded closest to its capacity on the sizes it takes:
    sum over its buckets of rate · bucket share · its share of the bucket / its capacity on
    the bucket, per replica. The pool that misses the SLO is the one a replica more helps."""
    share_of = {(lo, hi): share for lo, hi, share in buckets}
    index_of = {(lo, hi): j for j, (lo, hi, _) in enumerate(buckets)}

    def load_per_replica(k):
        caps = options[k].bucket_capacity_rps
        need = 0.0
        for lo, hi, f in ranges[k]:
            load, cap = rate * share_of[(lo, hi)] * f, caps[index_of[(lo, hi)]]
            # a rounding sliver of a bucket the pool cannot serve is no load on it
            need += load / cap if cap else (math.inf if load > LOAD_SLIVER_RPS else 0.0)
        return need / counts[k]
    return max(counts, key=load_per_replica)


def _verified(options, counts, ranges, requests, rate, slo_ttft_ms, slo_tpot_ms,
              buckets=None):
    """(counts, summary) once the simulated fleet meets the SLO, topping up the most
    cost-effective type (size-blind), or the busiest pool (routed by size over
    ``buckets``); None when MAX_TOP_UPS replicas more do not get there."""
    counts = dict(counts)
    per_cost = None if ranges else min(
        (k for k in range(len(options)) if options[k].capacity_rps),
        key=lambda k: options[k].usd_per_hour / options[k].capacity_rps,
        default=next(iter(counts)))
    for _ in range(MAX_TOP_UPS + 1):
        summary = _at_rate(_fleet(options, counts, ranges), requests, rate)
        if meets_slo(summary, slo_ttft_ms, slo_tpot_ms):
            return counts, summary
        grow = _busiest_pool(options, counts, ranges, buckets, rate) if ranges else per_cost
        counts[grow] = counts.get(grow, 0) + 1
    return None


def plan_fleet(options: list[ReplicaOption], requests, rate: float, slo_ttft_ms,
               slo_tpot_ms, mixed: bool = True) -> dict:
    """The cheapest fleet for ``rate`` requests/s (see the module docstring), checked by
    simulating it; raises when no option meets the SLO even alone. Options measured on size
    buckets (``replica_options(by_size=True)``) may also be mixed by request size."""
    if not options:
        raise FlopcastError("fleet: no GPU type and tp meets the SLO at any rate")
    plans, split = [], None
    counts = _cheapest_mix(options, rate, mixed)
    blind = counts and _verified(options, counts, None, requests, rate, slo_ttft_ms,
                                 slo_tpot_ms)
    if blind:
        plans.append((*blind, None))
    if mixed and len(options) > 1 and all(o.bucket_capacity_rps for o in options):
        buckets = size_buckets(requests)
        split = _cheapest_by_size(options, buckets, rate)
        routed = split and _verified(options, split[0], split[1], requests, rate,
                                     slo_ttft_ms, slo_tpot_ms, buckets)
        if routed:
            plans.append((*routed, split[1]))
    if not plans:
        if not any(o.capacity_rps for o in options) and not split:
            raise FlopcastError("fleet: no GPU type and tp meets the SLO on the whole request "
                                "mix, and no two of them routed by size serve every size")
        raise FlopcastError(f"fleet: the simulated fleet still misses the SLO after "
                            f"{MAX_TOP_UPS} extra replicas")

    def usd(counts):
        return sum(n * options[k].usd_per_hour for k, n in counts.items())

    counts, summary, ranges = min(plans, key=lambda p: usd(p[0]))
    return {
        "fleet": [{"replica": options[k].name, "count": n,
                   "usd_per_hour": n * options[k].usd_per_hour,
                   **({"sizes": [list(r) for r in ranges[k]]} if ranges else {})}
                  for k, n in counts.items()],
        "usd_per_hour": usd(counts),
        "routing": "by-size" if ranges else "least-outstanding-tokens",
        "summary": summary,
    }


def front(options: list[ReplicaOption], requests, rate: float, slo_ttft_ms,
          slo_tpot_ms) -> list[dict]:
    """Each replica type alone at ``rate``: its cost and simulated p99 latencies (the
    cost/latency trade-off the fleet choice sits on), cheapest first."""
    rows = []
    for o in options:
        if not o.capacity_rps:  # serves only some request sizes within the SLO
            continue
        try:
            plan = plan_fleet([o], requests, rate, slo_ttft_ms, slo_tpot_ms, mixed=False)
        except FlopcastError:
            continue
        s = plan["summary"]
        rows.append({"replica": o.name, "capacity_rps": o.capacity_rps,
                     "count": plan["fleet"][0]["count"], "usd_per_hour": plan["usd_per_hour"],
                     "ttft_p99_ms": s["ttft_ms"]["p99"], "tpot_p99_ms": s["tpot_ms"]["p99"]})
    return sorted(rows, key=lambda r: r["usd_per_hour"])
