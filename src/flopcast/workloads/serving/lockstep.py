"""Decoding requests advance in lock step, so a decode step costs O(1) whatever the batch.

Every scheduler here (``schedulers/base.decode_running``) decodes, in an iteration that
decodes at all, every running request past its prefill: vLLM and TensorRT-LLM take all
generation requests first, prefill-first engines (vLLM V0, SGLang) run either a prefill batch
or a decode batch of all of them. So while request i is in ``decoding`` its ``cached`` and
``generated`` entries in the ``RequestTable`` hold the true counts minus ``decode_steps``
(read them with ``cached_now``/``generated_now``), and

- the batch's cached context is one running sum (``decode_context``);
- finishes wait in a heap keyed by the decode step at which they happen;
- KV blocks (Kwon et al. 2023, vLLM §4.1: a sequence holds ⌈tokens / block⌉ blocks, one more
  taken when a decode needs it) are counted per *lane*: when a block holds b tokens and a
  sequence grows one token per step, the requests whose stored count is ≡ r (mod b) all
  cross a block boundary at the same steps, so a step takes as many blocks as one lane holds.
  Requests whose blocks do not follow ⌈tokens / block⌉ (sliding-window layers, KV reserved
  for the whole output, a block granted ahead) wait instead in a heap keyed by the step at
  which they need their next block.

The numbers are those of the plain per-request loop this replaced (the order of grants and
preemptions included: the JSON of 25 configurations was byte-identical); ``tests/
test_serving.py`` compares lanes against granting blocks request by request (``LANES`` off).
"""

from __future__ import annotations

import bisect
import heapq
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flopcast.workloads.serving.replica import RequestTable

#: ``RequestTable.next_block`` of a request counted in a lane (never due in the heap).
LANE = 1 << 62
#: Count linear-block requests in lanes (tests compare runs with every request heaped).
LANES = True


class LockStep:
    """The decode set of one replica (mixed into ``replica.Replica``, whose KV fields it
    uses: ``blocks_per_len``, ``block_tokens``, ``free_blocks``, ``running``, ``grow``)."""

    def init_lockstep(self) -> None:
        self.decoding: dict[int, None] = {}  # running requests past their prefill
        self.decode_steps = 0                # iterations that decoded (SGLang's ratio decay)
        self.context_base = 0                # Σ stored ``cached`` over ``decoding``
        self.finish_heap: list[tuple[int, int]] = []  # (decode step it finishes at, id)
        self.block_heap: list[tuple[int, int]] = []   # (step it needs a block at, id)
        table = self.blocks_per_len
        #: blocks = ⌈tokens / block⌉ (no sliding-window layer holds fewer)
        self.linear_blocks = LANES and table == list(range(len(table)))
        #: lanes[r]: lane members whose stored ``cached`` ≡ r (mod block_tokens)
        self.lanes: list[dict[int, None]] = [{} for _ in range(self.block_tokens)]
        #: 1 between a scheduler's grant of next-token blocks and the step that uses them
        self.pregrown = 0

    def cached_now(self, req: RequestTable, i: int) -> int:
        """Request i's cached tokens (true count, whether or not it is decoding)."""
        return req.cached[i] + (self.decode_steps if i in self.decoding else 0)

    def generated_now(self, req: RequestTable, i: int) -> int:
        """Request i's generated tokens (true count, whether or not it is decoding)."""
        return req.generated[i] + (self.decode_steps if i in self.decoding else 0)

    def decode_context(self) -> int:
        """Cached tokens of all decoding requests together."""
        return self.context_base + len(self.decoding) * self.decode_steps

    def join_decoding(self, req: RequestTable, i: int) -> None:
        """Running request i is past its prefill (true counts in ``req``): from now on it
        decodes in every decoding iteration."""
        s, room = self.decode_steps, self.block_tokens
        c = req.cached[i]
        stored = req.cached[i] = c - s
        req.generated[i] -= s
        self.outputs_left += s  # Replica.outputs_left counts stored generated counts
        self.decoding[i] = None
        self.context_base += stored
        heapq.heappush(self.finish_heap, (req.output[i] - req.generated[i], i))
        if self.linear_blocks and req.blocks[i] == -(-(c + self.pregrown) // room):
            self.lanes[stored % room][i] = None
            req.next_block[i] = LANE  # its heap entries from earlier stays are void
        else:
            self._watch_blocks(req, i)

    def leave_decoding(self, req: RequestTable, i: int) -> None:
        """Request i stops decoding here (finished, preempted): its counts become true."""
        s, room = self.decode_steps, self.block_tokens
        del self.decoding[i]
        stored = req.cached[i]
        self.context_base -= stored
        lane = self.lanes[stored % room]
        if i in lane:
            del lane[i]
            req.blocks[i] = -(-(stored + s + self.pregrown) // room)
        req.cached[i] = stored + s
        req.generated[i] += s
        self.outputs_left -= s

    def next_block_at(self, blocks: int) -> int:
        """Fewest cached tokens for which ``blocks_for`` exceeds ``blocks`` (its inverse)."""
        table = self.blocks_per_len
        if table[-1] > blocks:
            n = bisect.bisect_right(table, blocks)
        else:
            n = blocks - table[-1] + len(table)
        return (n - 1) * self.block_tokens + 1

    def _watch_blocks(self, req: RequestTable, i: int) -> None:
        """Heap request i at the step its cached tokens reach its next block (none when
        they never will: KV held for the whole output)."""
        nb = req.next_block[i] = self.next_block_at(req.blocks[i])
        if nb <= req.prompt[i] + req.output[i]:
            heapq.heappush(self.block_heap, (nb - req.cached[i], i))

    def steps_to_finish(self, req: RequestTable) -> int:
        """Decode steps until the first decoding request has generated all its tokens."""
        heap, dec, out, gen = self.finish_heap, self.decoding, req.output, req.generated
        while heap:
            key, i = heap[0]
            if i in dec and out[i] - gen[i] == key:
                return key - self.decode_steps
            heapq.heappop(heap)
        return 1 << 60

    def finished(self, req: RequestTable) -> list[int]:
        """Decoding requests that have generated all their tokens (taken off the heap)."""
        heap, dec, out, gen = self.finish_heap, self.decoding, req.output, req.generated
        s, done = self.decode_steps, []
        while heap and heap[0][0] <= s:
            key, i = heapq.heappop(heap)
            if i in dec and out[i] - gen[i] == key:
                done.append(i)
        return done

    def _heap_due(self, req: RequestTable, ahead: int) -> list[int]:
        """Heaped decoding requests whose cached tokens ``ahead`` steps from now need more
        blocks than they hold (taken off the heap)."""
        heap, limit = self.block_heap, self.decode_steps + ahead
        due: dict[int, None] = {}
        while heap and heap[0][0] <= limit:
            due[heapq.heappop(heap)[1]] = None
        dec, nb, cached = self.decoding, req.next_block, req.cached
        return [i for i in due if i in dec and nb[i] - cached[i] <= limit]

    def grow_decoding(self, req: RequestTable, i: int, tokens: int) -> bool:
        """``grow`` a heaped decoding request to ``tokens`` (true count) and re-heap it."""
        if not self.grow(req, i, tokens):
            return False
        self._watch_blocks(req, i)
        return True

    def grant_next_blocks(self, req: RequestTable) -> list[int] | None:
        """Blocks for every decoding request's next token. When free blocks cover them all,
        grant them (no eviction, no preemption: order does not matter) and return None;
        otherwise return the requests that need one, in admission order, for the scheduler
        to grant one by one (``grow_decoding``), preempting as it goes."""
        due = self._heap_due(req, 1) if self.block_heap else []
        lane = self.lanes[-self.decode_steps % self.block_tokens]
        need = len(lane)
        for i in due:
            need += self.blocks_for(self.cached_now(req, i) + 1) - req.blocks[i]
        self.pregrown = 1 if self.decoding else 0
        if need <= self.free_blocks:
            self.free_blocks -= len(lane)
            for i in due:
                self.grow_decoding(req, i, self.cached_now(req, i) + 1)
            return None
        for i in list(lane):  # from now on heaped, holding exactly ⌈cached / block⌉
            del lane[i]
            req.blocks[i] = self.cached_now(req, i) // self.block_tokens
            req.next_block[i] = self.cached_now(req, i) + 1
            due.append(i)
        return sorted(due, key=self.running.index)

    def advance_decoding(self, req: RequestTable, k: int) -> None:
        """Every decoding request decoded ``k`` more tokens: count them and take the blocks
        they grew into (as one grant at the end of a decode stretch)."""
        s0, g, room = self.decode_steps, self.pregrown, self.block_tokens
        self.decode_steps = s0 + k
        self.pregrown = 0
        if k == 1 and g:
            return  # the one token had its block granted before the step
        # only lanes whose count crosses a block boundary within k tokens
        crossing = range(room - k + 1, room + 1 - g) if k < room else range(room)
        taken = 0
        lanes = self.lanes
        for rho in crossing:
            lane = lanes[(rho - s0) % room]
            if lane:
                rho %= room
                taken += len(lane) * (-(-(rho + k) // room) + (rho + g) // -room)
        self.free_blocks -= taken
        if self.block_heap:
            for i in self._heap_due(req, 0):
                self.grow_decoding(req, i, self.cached_now(req, i))
