"""SGLang's scheduler (Zheng et al. 2024; python/sglang/srt/managers/scheduler.py and
schedule_policy.py PrefillAdder): prefill batches run whenever waiting prompts can be admitted,
decode batches otherwise (prefill-first), and admission keeps room for the tokens running
requests will still generate: a request is admitted only if its prompt plus
``new_token_ratio`` × its remaining output fits beside ``new_token_ratio`` × the remaining
output of every running request. The ratio starts at 0.7, decays linearly to 0.1 over 600
decode steps, and returns to 0.7 when decoding runs out of memory and requests are retracted
(SGLANG_INIT_NEW_TOKEN_RATIO, base_min_new_token_ratio, SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS;
remaining outputs clipped at CLIP_MAX_NEW_TOKENS = 4096)."""

from __future__ import annotations

from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.schedulers.base import Iteration
from flopcast.workloads.serving.schedulers.prefill_first import PrefillFirst

INIT_NEW_TOKEN_RATIO = 0.7
MIN_NEW_TOKEN_RATIO = 0.1
NEW_TOKEN_RATIO_DECAY_STEPS = 600
CLIP_MAX_NEW_TOKENS = 4096


class SGLangScheduler(PrefillFirst):
    """Prefill-first with SGLang's reservation for future decode tokens."""

    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        before = sum(req.preemptions[i] for i in rep.running)
        it = super().schedule(rep, req, now)
        if it.decode and sum(req.preemptions[i] for i in rep.waiting) > before:
            rep.ratio_reset_step = rep.decode_steps  # retracted: back to the initial ratio
        return it

    @staticmethod
    def ratio(rep: Replica) -> float:
        """new_token_ratio after the decode steps since the last retract (linear decay)."""
        steps = rep.decode_steps - getattr(rep, "ratio_reset_step", 0)
        return max(MIN_NEW_TOKEN_RATIO, INIT_NEW_TOKEN_RATIO - steps * (
            INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / NEW_TOKEN_RATIO_DECAY_STEPS)

    def _room(self, rep: Replica, req: RequestTable) -> float:
        """Tokens free for new prompts after reserving the running requests' outputs."""
        ratio = self.ratio(rep)
        reserved = sum(min(req.output[i] - req.generated[i], CLIP_MAX_NEW_TOKENS)
                       for i in rep.running)
        return rep.free_blocks * rep.block_tokens - ratio * reserved

    def admit_waiting(self, rep: Replica, req: RequestTable, it: Iteration, budget: int,
                      reserve_full: bool = False) -> int:
        room = self._room(rep, req)
        ratio = self.ratio(rep)
        while rep.waiting:
            i = rep.waiting[0]
            need = req.to_prefill(i) + ratio * min(req.output[i] - req.generated[i],
                                                   CLIP_MAX_NEW_TOKENS)
            if need > room or len(rep.running) >= self.limits.max_seqs or budget <= 0:
                break
            before = len(it.prefill)
            budget = super().admit_waiting_one(rep, req, it, budget)
            if len(it.prefill) == before:
                break
            room -= need
        return budget

    def may_admit(self, rep: Replica, req: RequestTable) -> bool:
        if not super().may_admit(rep, req):
            return False
        i = rep.waiting[0]
        ratio = self.ratio(rep)
        need = req.to_prefill(i) + ratio * min(req.output[i] - req.generated[i],
                                               CLIP_MAX_NEW_TOKENS)
        return need <= self._room(rep, req)
