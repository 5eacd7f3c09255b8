"""One engine replica's state: its queues, its paged KV cache and its clock.

Per-request state lives in plain Python lists indexed by request id (the hot loop touches a
few entries per iteration; NumPy scalars would cost more than the arithmetic). KV memory is
paged (Kwon et al. 2023, vLLM §4.1): a request holds whole blocks for the tokens it has
cached; when a decode needs a block and none is free, the most recently admitted request is
preempted and later recomputed (vLLM's default preemption, §4.5).

Requests past their prefill advance in lock step (``lockstep.LockStep``): a decode step costs
O(1) whatever the batch.
"""

from __future__ import annotations

import operator
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np

from flopcast.workloads.serving.cost import StepCost
from flopcast.workloads.serving.lockstep import LockStep


@dataclass
class RequestTable:
    """Per-request state, one list entry per request id."""

    arrival: list[float]
    prompt: list[int]
    output: list[int]
    prefix_id: list[int]
    prefix_len: list[int]
    cached: list[int] = field(default_factory=list)      # tokens in the KV cache
    generated: list[int] = field(default_factory=list)   # output tokens produced
    first_token: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)      # KV blocks held
    shared: list[int] = field(default_factory=list)      # of which a cached prefix's
    preemptions: list[int] = field(default_factory=list)
    replica: list[int] = field(default_factory=list)
    next_block: list[int] = field(default_factory=list)  # cached tokens needing one more block

    def __post_init__(self):
        n = len(self.arrival)
        nan = float("nan")
        for name, value in (("cached", 0), ("generated", 0), ("first_token", nan),
                            ("finish", nan), ("blocks", 0), ("shared", 0), ("preemptions", 0),
                            ("replica", -1), ("next_block", 0)):
            setattr(self, name, [value] * n)

    def to_prefill(self, i: int) -> int:
        """Tokens still to prefill: the prompt, plus the tokens a preemption threw away (all
        generated ones but the last, which the next decode feeds); 0 once decoding."""
        g = self.generated[i]
        return self.prompt[i] + (g - 1 if g else 0) - self.cached[i]


class Replica(LockStep):
    """One data-parallel copy of the model with its scheduler's queues and KV cache."""

    def __init__(self, index: int, cost: StepCost, kv_capacity_blocks: int,
                 blocks_per_len: list[int], block_tokens: int):
        self.index = index
        self.sched = self.dep = None  # set by the simulator: the pool's scheduler, deployment
        self.role = "mixed"
        self.cost = cost
        self.capacity = kv_capacity_blocks
        self.free_blocks = kv_capacity_blocks
        self.blocks_per_len = blocks_per_len
        self.block_tokens = block_tokens
        self.waiting: deque[int] = deque()
        #: (time, request) queued while an overlapping scheduler had already formed the
        #: next iteration (Engine.overlap_scheduling): not yet visible to the scheduler
        self.pending: deque[tuple[float, int]] = deque()
        self.overlap = False                 # set by the simulator from the engine
        self.last_start = 0.0                # when the latest iteration began
        self.running: list[int] = []        # admitted, in admission order
        #: Σ over running requests of output − req.generated as stored (decoding requests'
        #: stored counts lag by decode_steps: ``outputs_to_generate`` corrects for it)
        self.outputs_left = 0
        self.init_lockstep()
        self.clock = 0.0                     # when the next iteration may start
        self.stall_s = 0.0                   # time decoding requests sat out (prefill-only steps)
        self.all_decoding = False            # every running request is past its prefill
        self.decode_steps = 0                # iterations that decoded (SGLang's ratio decay)
        self.occupancy = {"kv_block_s": 0.0, "queued_s": 0.0, "busy_s": 0.0,
                          "peak_kv_blocks": 0, "peak_queued": 0}
        self.outstanding_tokens = 0          # routed, unfinished prompt + output tokens
        self.prefixes: OrderedDict[int, int] = OrderedDict()  # prefix id → blocks, LRU order
        self.prefix_users: dict[int, int] = {}  # running requests sharing each prefix
        self.evictable = 0                   # blocks of cached prefixes nobody uses now
        self.preempted_total = 0
        self.trace: list[tuple] = []  # (start, end, running, tokens, KV blocks used)

    def admit(self, req: RequestTable, i: int) -> None:
        """Request i joins the running set (the scheduler admitted it)."""
        self.running.append(i)
        self.outputs_left += req.output[i] - req.generated[i]

    def dismiss(self, req: RequestTable, i: int) -> None:
        """Request i leaves the running set (finished, preempted, handed off; not decoding
        any more, so its counts are true)."""
        self.running.remove(i)
        self.outputs_left -= req.output[i] - req.generated[i]

    def outputs_to_generate(self) -> int:
        """Output tokens the running requests will still generate, O(1) (SGLang reserves
        KV for them)."""
        return self.outputs_left - self.decode_steps * len(self.decoding)

    @property
    def busy(self) -> bool:
        return bool(self.running or self.waiting or self.pending)

    def reveal_pending(self) -> None:
        """Overlapped scheduling (SGLang's event_loop_overlap): the iteration starting now
        was formed when the previous one began, so it sees the requests queued by then
        (arrivals, or KV handed over from a prefill pool); later ones wait one more
        iteration. An idle loop sees them at once."""
        pending = self.pending
        if not self.running:
            self.waiting.extend(i for _, i in pending)
            pending.clear()
            return
        while pending and pending[0][0] <= self.last_start:
            self.waiting.append(pending.popleft()[1])

    def account(self, end: float) -> None:
        """Advance the clock to ``end``, integrating KV use and queue length over the
        iteration(s) just run (values as they stood when the iteration started)."""
        dt, occ = end - self.clock, self.occupancy
        used = self.capacity - self.free_blocks
        occ["kv_block_s"] += used * dt
        queued = len(self.waiting) + len(self.pending)
        occ["queued_s"] += queued * dt
        occ["busy_s"] += dt
        if used > occ["peak_kv_blocks"]:
            occ["peak_kv_blocks"] = used
        if queued > occ["peak_queued"]:
            occ["peak_queued"] = queued
        self.clock = end

    def account_growth(self, used_before: int, gaps, pregrown: int, traced: int) -> None:
        """A decode stretch grew every sequence by a token a step, but its blocks are taken
        in one grant at its end (``LockStep.advance_decoding``) while ``account`` integrated
        the use at its start: add the growth as linear in the steps (step j holds the share
        (j + 1 - pregrown) / (k - pregrown) of it, weighted by its duration ``gaps[j]``:
        later steps are longer), count the end as a peak, and give the stretch's trace
        entries from ``traced`` on the same values. Only the reported occupancy changes:
        admission and preemption already saw the growth (the stretch stops at the KV
        headroom)."""
        grown = self.capacity - self.free_blocks - used_before
        occ = self.occupancy
        k = len(gaps)
        if grown and k > pregrown:
            if isinstance(gaps, np.ndarray):
                total, by_step = float(gaps.sum()), float(np.dot(gaps, np.arange(k)))
            else:
                total, by_step = sum(gaps), sum(map(operator.mul, gaps, range(k)))
            occ["kv_block_s"] += grown * (by_step + (1 - pregrown) * total) / (k - pregrown)
        if used_before + grown > occ["peak_kv_blocks"]:
            occ["peak_kv_blocks"] = used_before + grown
        for j in range(len(self.trace) - traced):
            start, end, running, tokens, _ = self.trace[traced + j]
            at = used_before + round(grown * max(0, j + 1 - pregrown) / max(1, k - pregrown))
            self.trace[traced + j] = (start, end, running, tokens, at)

    def blocks_for(self, tokens: int) -> int:
        """Blocks a sequence of ``tokens`` cached tokens holds (windows cap local layers)."""
        n = -(-tokens // self.block_tokens)
        table = self.blocks_per_len
        return table[n] if n < len(table) else table[-1] + (n - len(table) + 1)

    @property
    def available_blocks(self) -> int:
        """Free blocks plus those of cached prefixes no running request shares."""
        return self.free_blocks + self.evictable

    def grow(self, req: RequestTable, i: int, tokens: int) -> bool:
        """Hold blocks for ``tokens`` cached tokens of request i, evicting unused cached
        prefixes (least recently used first) if needed; False if memory is short."""
        need = self.blocks_for(tokens) - req.blocks[i]
        if need <= 0:
            return True  # held already (a whole prompt, or prompt + output, at admission)
        if need > self.free_blocks:
            if need > self.available_blocks:
                return False
            self._evict(need)
        self.free_blocks -= need
        req.blocks[i] += need
        return True

    def _evict(self, need: int) -> None:
        for p in list(self.prefixes):
            if need <= self.free_blocks:
                return
            if not self.prefix_users.get(p):
                blocks = self.prefixes.pop(p)
                self.free_blocks += blocks
                self.evictable -= blocks

    def _use_prefix(self, p: int, delta: int) -> None:
        users = self.prefix_users.get(p, 0)
        if users == 0 and delta > 0:
            self.evictable -= self.prefixes[p]
        self.prefix_users[p] = users + delta
        if users + delta == 0:
            self.evictable += self.prefixes[p]

    def release(self, req: RequestTable, i: int) -> None:
        self.free_blocks += req.blocks[i] - req.shared[i]
        if req.shared[i]:
            self._use_prefix(req.prefix_id[i], -1)
        req.blocks[i] = req.shared[i] = 0

    def reuse_prefix(self, req: RequestTable, i: int) -> None:
        """Automatic prefix caching (vLLM APC; SGLang RadixAttention, Zheng et al. 2024): a
        request whose shared prefix is cached here starts with those tokens in place and
        shares their blocks instead of computing them (whole blocks only)."""
        p = req.prefix_id[i]
        if req.cached[i] or p < 0 or p not in self.prefixes:
            return
        self.prefixes.move_to_end(p)
        blocks = min(self.prefixes[p], min(req.prefix_len[i], req.prompt[i] - 1)
                     // self.block_tokens)
        if blocks:
            self._use_prefix(p, +1)
            req.blocks[i] = req.shared[i] = blocks
            req.cached[i] = blocks * self.block_tokens

    def cache_prefix(self, req: RequestTable, i: int) -> None:
        """After request i's prompt is prefilled, its shared prefix (whole blocks) stays
        cached: the request hands those blocks to the cache and shares them from then on."""
        p = req.prefix_id[i]
        if p in self.prefixes:
            self.prefixes.move_to_end(p)
            return
        blocks = min(req.prefix_len[i], req.prompt[i]) // self.block_tokens
        blocks = min(blocks, req.blocks[i] - req.shared[i])
        if blocks <= 0 or req.shared[i]:
            return
        self.prefixes[p] = blocks
        self.prefix_users[p] = 1  # request i shares it (not evictable while it runs)
        req.shared[i] = blocks

    def preempt(self, req: RequestTable, i: int) -> None:
        """Recompute preemption: drop request i's cache, queue it first to be prefilled again
        (prompt + the tokens it had generated)."""
        if i in self.decoding:
            self.leave_decoding(req, i)
        self.release(req, i)
        self.dismiss(req, i)
        req.preemptions[i] += 1
        self.preempted_total += 1
        req.cached[i] = 0
        self.waiting.appendleft(i)
