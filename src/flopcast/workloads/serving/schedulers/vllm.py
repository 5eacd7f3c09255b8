"""vLLM continuous batching (Kwon et al. 2023; vLLM V1 scheduler): each iteration decodes
every running request, continues part-done prompts, then admits waiting ones first-come
first-served, all within max_num_batched_tokens and max_num_seqs, with prompts chunked to fit
(chunked prefill, on by default in V1). Paged KV; recompute preemption when blocks run out."""

from __future__ import annotations

from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.schedulers.base import Iteration, Scheduler


class ContinuousBatching(Scheduler):
    """Decode-first mixed batches under one token budget."""

    #: hold KV blocks for prompt + all output at admission (no preemption ever)
    reserve_full = False

    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        it = Iteration()
        before = rep.preempted_total
        self.admit_shipped(rep, req)
        budget = self.limits.max_tokens - self.decode_running(rep, req, it)
        budget = self.continue_prefills(rep, req, it, budget)
        if rep.preempted_total == before:  # vLLM V1 admits nothing in a step that preempted
            self.admit_waiting(rep, req, it, budget, self.reserve_full)
        if not it and rep.running:  # only shipped-in KV was admitted: it decodes now
            self.decode_running(rep, req, it)
        return it
