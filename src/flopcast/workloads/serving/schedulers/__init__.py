"""Scheduler registry: a policy is a file plus a line here."""

from __future__ import annotations

from flopcast.errors import FlopcastError
from flopcast.workloads.serving.schedulers.base import Iteration, Limits, Scheduler
from flopcast.workloads.serving.schedulers.prefill_first import PrefillFirst
from flopcast.workloads.serving.schedulers.sarathi import SarathiServe
from flopcast.workloads.serving.schedulers.sglang import SGLangScheduler
from flopcast.workloads.serving.schedulers.static import StaticBatching
from flopcast.workloads.serving.schedulers.trtllm import GuaranteedNoEvict, InflightBatching
from flopcast.workloads.serving.schedulers.vllm import ContinuousBatching

SCHEDULERS: dict[str, type[Scheduler]] = {
    "vllm": ContinuousBatching,
    "sarathi": SarathiServe,
    "trtllm-inflight": InflightBatching,
    "trtllm-no-evict": GuaranteedNoEvict,
    "prefill-first": PrefillFirst,
    "sglang": SGLangScheduler,
    "static": StaticBatching,
}


def make_scheduler(name: str, limits: Limits) -> Scheduler:
    """The registered scheduler ``name`` with ``limits``."""
    if name not in SCHEDULERS:
        raise FlopcastError(f"scheduler: {name!r} is not one of {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name](limits)


__all__ = ["Iteration", "Limits", "SCHEDULERS", "Scheduler", "make_scheduler"]
