"""Prefill-prioritised batching (vLLM V0 default; SGLang's scheduler): when waiting prompts
can be admitted, an iteration prefills only them (chunked to chunk_tokens, SGLang
--chunked-prefill-size), and running requests sit that iteration out; otherwise every running
request decodes. Decodes stall behind prompts, which is what Sarathi-Serve removes."""

from __future__ import annotations

from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.schedulers.base import Iteration, Scheduler

#: vLLM V0 block manager: a prompt is admitted only if this share of all blocks stays free
#: after it (BlockSpaceManager watermark=0.01), so decodes keep room to grow.
WATERMARK = 0.01


class PrefillFirst(Scheduler):
    """Prefill-only iterations whenever prompts are waiting; decode-only otherwise."""

    stalls_decodes = True

    def admit_waiting_one(self, rep: Replica, req: RequestTable, it: Iteration, budget: int,
                          reserve_full: bool = False) -> int:
        """Admit the head with blocks for its whole prompt: vLLM V0's block manager allocates
        every block of a prompt when it first schedules it (BlockSpaceManager.can_allocate /
        allocate, watermark kept free), chunked or not, so its later chunks never wait for
        memory. Holding only the first chunk let a long prompt preempt itself for its next
        chunk and be readmitted for its first, forever, while the decodes that would free
        memory never ran."""
        i = rep.waiting[0]
        whole = req.cached[i] + req.to_prefill(i)
        need = rep.blocks_for(whole) - req.blocks[i]
        if need > rep.available_blocks - WATERMARK * rep.capacity:
            return budget
        return super().admit_waiting_one(rep, req, it, budget, reserve_full, hold_tokens=whole)

    def prefill_budget(self) -> int:
        """Tokens one prefill iteration may hold."""
        return self.limits.max_tokens

    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        it = Iteration()
        self.admit_shipped(rep, req)
        budget = self.continue_prefills(rep, req, it, self.prefill_budget())
        self.admit_waiting(rep, req, it, budget)
        if it.prefill:
            return it
        self.decode_running(rep, req, it)
        return it
