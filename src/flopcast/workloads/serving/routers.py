"""Routers for data-parallel replicas: a policy is a class plus a registry line."""

from __future__ import annotations

from operator import attrgetter

from flopcast.errors import FlopcastError
from flopcast.workloads.serving.replica import Replica, RequestTable


class RoundRobin:
    """Requests go to replicas in turn."""

    def __init__(self, replicas: list[Replica]):
        self.replicas, self.next = replicas, 0

    def route(self, req: RequestTable, i: int) -> Replica:
        rep = self.replicas[self.next]
        self.next = (self.next + 1) % len(self.replicas)
        return rep


_OUTSTANDING = attrgetter("outstanding_tokens")


class LeastOutstandingTokens(RoundRobin):
    """The replica with the fewest routed, unfinished prompt + output tokens (a load-aware
    balancer; Llumnix and SGLang's router weigh load the same way)."""

    def route(self, req: RequestTable, i: int) -> Replica:
        replicas = self.replicas
        if len(replicas) == 1:
            return replicas[0]
        return min(replicas, key=_OUTSTANDING)  # the first of the least loaded


class PrefixAffinity(LeastOutstandingTokens):
    """Requests sharing a prefix go to the replica that already serves it (SGLang router's
    cache-aware policy); others to the least loaded replica."""

    def __init__(self, replicas: list[Replica]):
        super().__init__(replicas)
        self.home: dict[int, Replica] = {}

    def route(self, req: RequestTable, i: int) -> Replica:
        p = req.prefix_id[i]
        if p < 0:
            return super().route(req, i)
        if p not in self.home:
            self.home[p] = super().route(req, i)
        return self.home[p]


class BySize(LeastOutstandingTokens):
    """Mélange's size-based allocation (Griggs et al. 2024, §4.3): a request goes to a pool
    (GPU type) that takes its size, prompt + output tokens (``Deployment.size_ranges``), in
    the shares the allocation gives a size range split between pools (smooth weighted
    round-robin, so the shares hold exactly over any run), then to that pool's least loaded
    replica. A size no pool names goes to the least loaded replica of all."""

    def __init__(self, replicas: list[Replica]):
        super().__init__(replicas)
        pools: dict[int, list[Replica]] = {}
        for r in replicas:
            pools.setdefault(id(r.dep), []).append(r)
        self.pools = list(pools.values())
        self.ranges = [[(lo, hi, share) for lo, hi, share in members[0].dep.size_ranges]
                       for members in self.pools]
        self.credit: dict[tuple, list[float]] = {}

    def route(self, req: RequestTable, i: int) -> Replica:
        size = req.prompt[i] + req.output[i]
        taking = [(k, lo, hi, share) for k, ranges in enumerate(self.ranges)
                  for lo, hi, share in ranges if lo <= size < hi and share > 0]
        if not taking:
            return super().route(req, i)
        # one credit account per set of (pool, range) taking the size: ranges of different
        # pools need not share bounds, so the first range alone can mix two such sets
        key = tuple((k, lo, hi) for k, lo, hi, _ in taking)
        credit = self.credit.setdefault(key, [0.0] * len(self.pools))
        total = sum(share for *_, share in taking)
        for k, *_, share in taking:
            credit[k] += share
        chosen = max((k for k, *_ in taking), key=credit.__getitem__)
        credit[chosen] -= total
        return min(self.pools[chosen], key=_OUTSTANDING)


ROUTERS = {"round-robin": RoundRobin, "least-outstanding-tokens": LeastOutstandingTokens,
           "prefix-affinity": PrefixAffinity, "by-size": BySize}


def make_router(name: str, replicas: list[Replica]):
    if name not in ROUTERS:
        raise FlopcastError(f"router: {name!r} is not one of {', '.join(ROUTERS)}")
    return ROUTERS[name](replicas)
