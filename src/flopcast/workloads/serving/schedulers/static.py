"""Static batching (FasterTransformer / TensorRT-LLM gptSessionBenchmark; the baseline of
Orca, Yu et al. 2022): gather a batch, prefill it, decode until every request in it is done,
then take the next batch. Nothing joins a running batch."""

from __future__ import annotations

from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.schedulers.base import Iteration, Scheduler


class StaticBatching(Scheduler):
    """Batches of ``limits.batch_size`` (or max_seqs) requests, run to completion."""

    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        it = Iteration()
        if not rep.running:
            size = self.limits.batch_size or self.limits.max_seqs
            while rep.waiting and len(rep.running) < size:
                i = rep.waiting.popleft()
                if not rep.grow(req, i, req.prompt[i] + req.output[i]):
                    rep.waiting.appendleft(i)
                    break
                rep.admit(req, i)
        budget = self.continue_prefills(rep, req, it, self.limits.max_tokens)
        if it.prefill or budget < self.limits.max_tokens:
            return it
        self.decode_running(rep, req, it)
        return it

    def may_admit(self, rep: Replica, req: RequestTable) -> bool:
        return not rep.running and bool(rep.waiting)

    def chunk(self, left: int, budget: int) -> int:
        return min(left, budget)
