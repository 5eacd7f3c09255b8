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

import numpy as np

from flopcast.workloads.serving.replica import Replica, RequestTable
from flopcast.workloads.serving.schedulers.base import NO_CAP, Iteration, Scheduler
from flopcast.workloads.serving.schedulers.prefill_first import PrefillFirst

INIT_NEW_TOKEN_RATIO = 0.7
MIN_NEW_TOKEN_RATIO = 0.1
NEW_TOKEN_RATIO_DECAY_STEPS = 600
CLIP_MAX_NEW_TOKENS = 4096
#: Decode steps ``stretch_cap`` tries one by one before the rest of the decay at once.
FIRST_STEPS_ONE_BY_ONE = 8
_LATER_STEPS = np.arange(FIRST_STEPS_ONE_BY_ONE + 1, NEW_TOKEN_RATIO_DECAY_STEPS + 2)
#: Sum the reservation request by request and check it against the O(1) count (tests).
CHECK_RESERVED = False


class SGLangScheduler(PrefillFirst):
    """Prefill-first with SGLang's reservation for future decode tokens. The prefill chunk
    size is a per-batch budget (``rem_chunk_tokens``): at most one request is truncated."""

    # SGLang reserves by new_token_ratio, not by vLLM V0's watermark
    admit_waiting_one = Scheduler.admit_waiting_one

    def prefill_budget(self) -> int:
        return min(self.limits.max_tokens, self.limits.chunk_tokens or self.limits.max_tokens)

    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        before = rep.preempted_total
        it = super().schedule(rep, req, now)
        if rep.preempted_total > before:
            rep.ratio_reset_step = rep.decode_steps  # retracted: back to the initial ratio
        return it

    @staticmethod
    def ratio(rep: Replica, ahead: int = 0) -> float:
        """new_token_ratio after the decode steps since the last retract (linear decay),
        ``ahead`` steps from now."""
        steps = rep.decode_steps + ahead - getattr(rep, "ratio_reset_step", 0)
        return max(MIN_NEW_TOKEN_RATIO, INIT_NEW_TOKEN_RATIO - steps * (
            INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / NEW_TOKEN_RATIO_DECAY_STEPS)

    @staticmethod
    def _need(req: RequestTable, i: int) -> int:
        """What a new request must find free: its prompt and its whole (clipped) output."""
        return req.to_prefill(i) + min(req.output[i] - req.generated[i], CLIP_MAX_NEW_TOKENS)

    @staticmethod
    def _reserved(rep: Replica, req: RequestTable) -> int:
        """Σ over running requests of their remaining outputs, each clipped at
        CLIP_MAX_NEW_TOKENS: O(1) from the replica's running count when no request's output
        reaches the clip, else summed."""
        unclipped = getattr(rep, "outputs_unclipped", None)
        if unclipped is None:
            unclipped = rep.outputs_unclipped = max(req.output) <= CLIP_MAX_NEW_TOKENS
        if unclipped and not CHECK_RESERVED:
            return rep.outputs_to_generate()
        out, gen, dec, s = req.output, req.generated, rep.decoding, rep.decode_steps
        total = sum(min(out[i] - gen[i] - (s if i in dec else 0), CLIP_MAX_NEW_TOKENS)
                    for i in rep.running)
        assert not (unclipped and CHECK_RESERVED) or total == rep.outputs_to_generate()
        return total

    def _room(self, rep: Replica, req: RequestTable) -> float:
        """Tokens free for new prompts after reserving the running requests' outputs."""
        return (rep.available_blocks * rep.block_tokens
                - self.ratio(rep) * self._reserved(rep, req))

    def admit_waiting(self, rep: Replica, req: RequestTable, it: Iteration, budget: int,
                      reserve_full: bool = False) -> int:
        room = self._room(rep, req)
        while rep.waiting and budget > 0 and len(rep.running) < self.limits.max_seqs:
            need = self._need(req, rep.waiting[0])
            if need > room:
                break
            before = len(rep.waiting)
            budget = self.admit_waiting_one(rep, req, it, budget)
            if len(rep.waiting) == before:
                break
            room -= need
        return budget

    def may_admit(self, rep: Replica, req: RequestTable) -> bool:
        if not super().may_admit(rep, req):
            return False
        return self._need(req, rep.waiting[0]) <= self._room(rep, req)

    def stretch_cap(self, rep: Replica, req: RequestTable, decoding: int) -> int:
        """Decode steps until the waiting head fits as the ratio decays (each step also
        caches one token per decoding request and spends one of its reserved outputs)."""
        if not rep.waiting or len(rep.running) >= self.limits.max_seqs:
            return NO_CAP
        need = self._need(req, rep.waiting[0])
        free = rep.available_blocks * rep.block_tokens
        reserved = self._reserved(rep, req)
        for k in range(1, FIRST_STEPS_ONE_BY_ONE + 1):  # the head often fits within a few
            room = free - decoding * k - self.ratio(rep, k) * max(reserved - decoding * k, 0)
            if need <= room:
                return k
        # the rest of the decay at once (the same arithmetic, element by element)
        k = _LATER_STEPS
        steps = rep.decode_steps + k - getattr(rep, "ratio_reset_step", 0)
        ratio = np.maximum(MIN_NEW_TOKEN_RATIO, INIT_NEW_TOKEN_RATIO - steps * (
            INIT_NEW_TOKEN_RATIO - MIN_NEW_TOKEN_RATIO) / NEW_TOKEN_RATIO_DECAY_STEPS)
        room = free - decoding * k - ratio * np.maximum(reserved - decoding * k, 0)
        fits = np.flatnonzero(need <= room)
        return int(k[fits[0]]) if fits.size else NO_CAP
