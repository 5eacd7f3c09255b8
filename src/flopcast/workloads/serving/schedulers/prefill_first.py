"""Prefill-prioritised batching (vLLM V0 default; SGLang's scheduler): when waiting prompts
can be admitted, an iteration prefills only them (chunked to chunk_tokens, SGLang
--chunked-prefill-size), and running requests sit that iteration out; otherwise every running
request decodes. Decodes stall behind prompts, which is what Sarathi-Serve removes."""

from __future__ import annotations

from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.schedulers.base import Iteration, Scheduler


class PrefillFirst(Scheduler):
    """Prefill-only iterations whenever prompts are waiting; decode-only otherwise."""

    stalls_decodes = True

    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        it = Iteration()
        budget = self.continue_prefills(rep, req, it, self.limits.max_tokens)
        self.admit_waiting(rep, req, it, budget)
        if it:
            return it
        self.decode_running(rep, req, it)
        return it
