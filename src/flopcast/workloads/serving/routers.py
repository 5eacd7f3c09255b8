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


ROUTERS = {"round-robin": RoundRobin, "least-outstanding-tokens": LeastOutstandingTokens,
           "prefix-affinity": PrefixAffinity}


def make_router(name: str, replicas: list[Replica]):
    if name not in ROUTERS:
        raise FlopcastError(f"router: {name!r} is not one of {', '.join(ROUTERS)}")
    return ROUTERS[name](replicas)
