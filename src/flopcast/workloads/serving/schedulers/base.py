"""What every scheduler shares: the iteration it returns, its limits, decode with preemption."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from flopcast.workloads.serving.replica import Replica, RequestTable

#: ``stretch_cap`` when nothing limits a decode stretch.
NO_CAP = 1 << 60


class Iteration:
    """One engine iteration: prompt chunks (request, tokens) and the requests that decode
    (``decode_running`` sets it to the replica's decode set itself: a request preempted while
    the iteration is formed leaves both at once)."""

    __slots__ = ("decode", "prefill")

    def __init__(self) -> None:
        self.prefill: list[tuple[int, int]] = []
        self.decode: dict[int, None] = _NONE_DECODE

    def __bool__(self) -> bool:
        return bool(self.prefill or self.decode)


#: ``Iteration.decode`` until ``decode_running`` runs (never written to).
_NONE_DECODE: dict[int, None] = {}


@dataclass(frozen=True)
class Limits:
    """Engine limits a scheduler obeys: sequences in flight (vLLM max_num_seqs, TensorRT-LLM
    max_batch_size), tokens per iteration (max_num_batched_tokens / max_num_tokens), the
    prefill chunk (None = whole prompts), and the static batch size (static batching only)."""

    max_seqs: int
    max_tokens: int
    chunk_tokens: int | None = None
    batch_size: int | None = None


def _drop(it: Iteration, i: int) -> None:
    """Take a preempted request out of the iteration's prompt chunks (``Replica.preempt``
    already took it out of the decode set)."""
    it.prefill[:] = [(j, c) for j, c in it.prefill if j != i]


class Scheduler(ABC):
    """Decides each iteration of one replica. Subclasses: one file each, registered by name
    in ``schedulers/__init__.py``."""

    #: True when decoding requests sit out iterations that prefill (no mixed batches).
    stalls_decodes = False
    #: reuse cached shared prefixes at admission (set by the simulator from the engine)
    prefix_caching = False

    def __init__(self, limits: Limits):
        self.limits = limits

    @abstractmethod
    def schedule(self, rep: Replica, req: RequestTable, now: float) -> Iteration:
        """The next iteration of ``rep`` (empty when nothing can run)."""

    def stretch_cap(self, rep: Replica, req: RequestTable, decoding: int) -> int:
        """Most decode-only iterations that may run before this scheduler must decide again
        (a scheduler whose admission rule changes with time caps it). Unbounded when nothing
        waits: the simulator does not ask then."""
        return NO_CAP

    def may_admit(self, rep: Replica, req: RequestTable) -> bool:
        """Whether the head of the queue could be admitted now (False lets the simulator run
        decode-only iterations in one stretch). False when nothing waits: the simulator does
        not ask then."""
        if not rep.waiting or len(rep.running) >= self.limits.max_seqs:
            return False
        i = rep.waiting[0]
        first = self.chunk(req.to_prefill(i), self.limits.max_tokens) or req.to_prefill(i)
        return rep.blocks_for(req.cached[i] + first) - req.blocks[i] <= rep.available_blocks

    def admit_shipped(self, rep: Replica, req: RequestTable) -> None:
        """Requests whose KV cache was shipped in (a decode pool) join the running batch
        first, so they decode in this very iteration."""
        while rep.waiting and len(rep.running) < self.limits.max_seqs:
            i = rep.waiting[0]
            if not (req.generated[i] and req.to_prefill(i) == 0):
                return
            if not rep.grow(req, i, req.cached[i] + 1):
                return
            rep.admit(req, rep.waiting.popleft())
            rep.join_decoding(req, i)

    def decode_running(self, rep: Replica, req: RequestTable, it: Iteration) -> int:
        """Every running request past its prefill (``rep.decoding``) decodes one token; a
        request that cannot get the block it needs preempts the latest-admitted ones (vLLM
        recompute preemption), taken in admission order. Returns the tokens used."""
        short = None if rep.pregrown else rep.grant_next_blocks(req)
        for i in short or ():
            if i not in rep.decoding:
                continue  # preempted for an earlier request's block
            while not rep.grow_decoding(req, i, rep.cached_now(req, i) + 1):
                victim = rep.running[-1]
                rep.preempt(req, victim)
                _drop(it, victim)
                if victim == i:
                    break
        it.decode = rep.decoding
        return len(it.decode)

    def continue_prefills(self, rep: Replica, req: RequestTable, it: Iteration,
                          budget: int) -> int:
        """Running requests part-way through their prompt take their next chunk; one that
        cannot get its blocks preempts the latest-admitted requests (as a decode would)."""
        if len(rep.running) == len(rep.decoding):
            return budget  # every running request decodes: no prompt left anywhere
        gen, cached, prompt, dec = req.generated, req.cached, req.prompt, rep.decoding
        k = 0
        while k < len(rep.running) and budget > 0:
            i = rep.running[k]
            k += 1
            if i in dec:
                continue
            g = gen[i]
            left = prompt[i] + (g - 1 if g else 0) - cached[i]
            chunk = self.chunk(left, budget) if left > 0 else 0
            if not chunk:
                continue
            while not rep.grow(req, i, cached[i] + chunk):
                victim = rep.running[-1]
                rep.preempt(req, victim)
                _drop(it, victim)
                if victim == i:
                    break
            else:
                it.prefill.append((i, chunk))
                budget -= chunk
        return budget

    def admit_waiting(self, rep: Replica, req: RequestTable, it: Iteration, budget: int,
                      reserve_full: bool = False) -> int:
        """First-come first-served admission while tokens, sequence slots and KV blocks
        last; ``reserve_full`` holds blocks for prompt + all output at admission
        (TensorRT-LLM GUARANTEED_NO_EVICT)."""
        while rep.waiting and budget > 0 and len(rep.running) < self.limits.max_seqs:
            before = len(rep.waiting)
            budget = self.admit_waiting_one(rep, req, it, budget, reserve_full)
            if len(rep.waiting) == before:
                break
        return budget

    def admit_waiting_one(self, rep: Replica, req: RequestTable, it: Iteration, budget: int,
                          reserve_full: bool = False, hold_tokens: int | None = None) -> int:
        """Admit the head of the queue if it fits; returns the budget left. Blocks held: for
        the first chunk, or ``hold_tokens``, or prompt + output with ``reserve_full``."""
        i = rep.waiting[0]
        if self.prefix_caching:
            rep.reuse_prefix(req, i)
        chunk = self.chunk(req.to_prefill(i), budget)
        if not chunk:
            return budget
        held = (req.prompt[i] + req.output[i] if reserve_full else
                hold_tokens if hold_tokens is not None else req.cached[i] + chunk)
        if not rep.grow(req, i, held):
            return budget
        rep.waiting.popleft()
        rep.admit(req, i)
        it.prefill.append((i, chunk))
        return budget - chunk

    def chunk(self, left: int, budget: int) -> int:
        """Tokens of a prompt with ``left`` to go that fit ``budget``: a chunk when chunking,
        else the whole rest or nothing."""
        size = self.limits.chunk_tokens
        if size is None:
            return left if left <= budget else 0
        if budget < left:
            left = budget
        return size if size < left else left  # min(left, budget, size)
