"""The price of one serving iteration, from the one layer-cost model, made fast.

A scheduler asks, thousands of times per simulated second, "what does this iteration cost:
these prefill chunks at these offsets plus these decoding sequences at these contexts?". The
answer is ``workloads/inference/step.batch_step`` (physics/layer.py underneath); calling it per
iteration costs ~1 ms, so it is evaluated once per deployment on grids, as Vidur does with its
profiled operator tables (Agrawal et al. 2024 §4.2), and looked up in pure Python:

- every term that depends only on the rows in the step (weight GEMMs, element-wise kernels,
  TP and EP collectives, pipeline hops, the engine's step overhead): a table over rows;
- the engine's host time per scheduled sequence, exposed beyond the GPU's time as
  ``inference.step.slotted_host_s`` prices it (``StepCost.host_s``, the same rule);
- the LM head: a table over the rows that sample a token;
- decode attention: a table over (decoding sequences, mean cached context) on a context grid
  of Flash-Decoding split blocks, linear in between (bandwidth-bound time is linear in the
  context within a split block);
- prefill attention: exact in the query rows, on a geometric grid of mean keys per row
  (``CONTEXT_STEP`` apart), linear in between; tabulated lazily, per number of chunks, in
  blocks of ``ROW_BLOCK`` row counts × ``KEY_BLOCK`` grid points (a run meets few of them:
  a prompt's mean keys per row are about half its length).

``tests/test_serving.py`` checks the lookup against ``batch_step`` on random batches.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from flopcast.physics import layer
from flopcast.physics.kernels import DECODE_SPLIT_BLOCK
from flopcast.physics.kv_cache import sequence_kv_bytes
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import (
    attention_step_s,
    batch_step,
    chunk_context,
    graph_efficiency,
    kv_heads_per_gpu_share,
    memory_plan,
    slotted_host_s,
)

#: Geometric step of the prefill table's grid of mean keys per query row (1 %).
CONTEXT_STEP = 1.01
#: Query-row counts tabulated together when a prefill size is first seen.
ROW_BLOCK = 64
#: Grid points of mean keys per row tabulated together (a block holds one more, the upper
#: end of its last interval).
KEY_BLOCK = 64
#: Context grid: every split block up to this many tokens, geometric (64 points) beyond.
LINEAR_GRID_TOKENS = 32768
LOG_STEP = math.log(CONTEXT_STEP)


def _context_grid(max_context: int) -> np.ndarray:
    linear = np.arange(0, min(max_context, LINEAR_GRID_TOKENS) + DECODE_SPLIT_BLOCK,
                       DECODE_SPLIT_BLOCK, dtype=float)
    if max_context <= LINEAR_GRID_TOKENS:
        return linear
    far = np.geomspace(LINEAR_GRID_TOKENS, max_context, 64)[1:]
    return np.concatenate([linear, far])


class StepCost:
    """Iteration prices for one replica (``job``: model, GPUs, tp/pp/ep, formats, engine).

    ``max_rows``: most query rows one iteration may hold; ``max_seqs``: most decoding
    sequences; ``max_context``: longest sequence.
    """

    def __init__(self, job: InferenceJob, eff: Efficiency, max_rows: int, max_seqs: int,
                 max_context: int, graph_seqs: int = 0):
        self.job, self.eff = job, eff
        self.host_priced = job.engine.host_s_per_sequence > 0
        rows = np.arange(max_rows + 1, dtype=float)
        dense = batch_step(job, eff, layer.Batch(prefill_tokens=rows), logit_rows=0)
        rows_only = (dense["step_s"] - dense["attention_s"] - dense["lm_head_s"]
                     - dense["host_s"])
        rows_only[0] = 0.0  # an empty step costs nothing (no kernels run)
        self.rows_s = rows_only.tolist()
        head = batch_step(job, eff, layer.Batch(), logit_rows=np.arange(max_seqs + 1.0))
        self.head_s = head["lm_head_s"].tolist()
        self.grid = _context_grid(max_context).tolist()
        self.grid_last = len(self.grid) - 1
        seqs = np.arange(max_seqs + 1, dtype=float)[:, None]
        ctx = np.asarray(self.grid)[None, :]
        dec = attention_step_s(job, eff, layer.Batch(decode_seqs=seqs, decode_context=ctx))
        self.decode_s = [row.tolist() for row in dec]
        self.grid_array = np.asarray(self.grid)
        self._decode_only(job, eff, min(graph_seqs, max_seqs), dec)
        steps = int(np.ceil(np.log(max_context) / np.log(CONTEXT_STEP))) + 1
        self.key_grid = (CONTEXT_STEP ** np.arange(steps)).tolist()
        self.key_last = len(self.key_grid) - 2  # last interval's lower end
        self._prefill: dict[tuple[int, int, int], list[list[float]]] = {}

    def _decode_only(self, job, eff, graph_seqs: int, dec: np.ndarray) -> None:
        """Tables of decode-only steps: those of up to ``graph_seqs`` sequences replay a CUDA
        graph (inference.step.graph_efficiency), larger ones run eagerly as mixed steps do
        (``dec``: the eager decode-attention table, whose rows are shared where eager)."""
        fixed = [r + h for r, h in zip(self.rows_s, self.head_s, strict=False)]
        table, rows = dec, self.decode_s
        if graph_seqs:
            geff = graph_efficiency(eff)
            n = np.arange(graph_seqs + 1, dtype=float)
            g = batch_step(job, geff, layer.Batch(prefill_tokens=n), logit_rows=n)
            fixed[1:graph_seqs + 1] = (g["step_s"] - g["attention_s"]
                                       - g["host_s"]).tolist()[1:]
            table = dec.copy()
            table[:graph_seqs + 1] = attention_step_s(job, geff, layer.Batch(
                decode_seqs=n[:, None], decode_context=self.grid_array[None, :]))
            rows = [row.tolist() for row in table[:graph_seqs + 1]] + rows[graph_seqs + 1:]
        #: seconds of a decode-only step of n sequences outside attention (rows + LM head)
        self.decode_fixed_s = fixed
        self.decode_only_s = rows
        self.decode_only_table = table

    def decode_attention_s(self, seqs: int, context_sum: float,
                           decode_only: bool = False) -> float:
        """Decode attention of ``seqs`` sequences holding ``context_sum`` cached tokens
        (``decode_only``: in a step without prefill, which may replay a CUDA graph)."""
        if seqs <= 0:
            return 0.0
        c = context_sum / seqs
        g = self.grid
        i = bisect.bisect_right(g, c)
        if i > self.grid_last:
            i = self.grid_last
        lo = g[i - 1]
        w = (c - lo) / (g[i] - lo)
        row = (self.decode_only_s if decode_only else self.decode_s)[seqs]
        a = row[i - 1]
        return a + (w if w < 1.0 else 1.0) * (row[i] - a)

    def decode_attention_run_s(self, seqs: int, context_sums: np.ndarray) -> np.ndarray:
        """``decode_attention_s`` of decode-only steps for many context totals at once (long
        decode stretches)."""
        return np.interp(context_sums / seqs, self.grid_array, self.decode_only_table[seqs])

    def prefill_attention_s(self, tokens: int, key_sum: float, sequences: int) -> float:
        """Prefill attention over ``tokens`` query rows attending over ``key_sum`` keys in all
        (Σ rows·keys: exact FLOPs), belonging to ``sequences`` chunks."""
        if tokens <= 0:
            return 0.0
        mean = key_sum / tokens
        if mean < 1.0:
            mean = 1.0
        j = int(math.log(mean) / LOG_STEP)
        if j > self.key_last:
            j = self.key_last
        key = (sequences, tokens // ROW_BLOCK, j // KEY_BLOCK)
        block = self._prefill.get(key)
        if block is None:
            block = self._prefill_block(*key)
        row = block[tokens % ROW_BLOCK]
        lo = self.key_grid[j]
        w = (mean - lo) / (self.key_grid[j + 1] - lo)
        a, b = row[j % KEY_BLOCK], row[j % KEY_BLOCK + 1]
        return a + w * (b - a)

    def _prefill_block(self, sequences: int, b: int, q: int) -> list[list[float]]:
        """Prefill attention for row counts [b, b + 1)·ROW_BLOCK at grid points
        [q·KEY_BLOCK, (q + 1)·KEY_BLOCK] (elementwise: any block gives the full table's
        numbers)."""
        rows = np.arange(b * ROW_BLOCK, (b + 1) * ROW_BLOCK, dtype=float)[:, None]
        keys = np.asarray(self.key_grid[q * KEY_BLOCK:(q + 1) * KEY_BLOCK + 1])
        batch = layer.Batch(prefill_tokens=rows, prefill_context=keys,
                            prefill_sequences=float(sequences))
        table = attention_step_s(self.job, self.eff, batch).tolist()
        self._prefill[(sequences, b, q)] = table
        return table

    def step_s(self, prefill_tokens: int, prefill_key_sum: float, prefill_seqs: int,
               decode_seqs: int, decode_context_sum: float, logit_rows: int) -> float:
        """Seconds of one iteration (see the module docstring for how each part is found)."""
        if prefill_tokens == 0:
            gpu = (self.decode_fixed_s[decode_seqs]
                   + self.decode_attention_s(decode_seqs, decode_context_sum, True))
            return gpu + self.host_s(gpu, decode_seqs)
        gpu = (self.rows_s[prefill_tokens + decode_seqs] + self.head_s[logit_rows]
               + self.prefill_attention_s(prefill_tokens, prefill_key_sum, prefill_seqs)
               + self.decode_attention_s(decode_seqs, decode_context_sum))
        return gpu + self.host_s(gpu, decode_seqs + prefill_seqs)

    def host_s(self, gpu_s, sequences: int):
        """The host time an iteration of ``gpu_s`` GPU seconds (a number, or an array of
        iterations) over ``sequences`` scheduled sequences exposes (``host_exposed_s``;
        skipped for engines that price none). A pipelined iteration crosses pp stages, each
        rank scheduling the micro-batch beside its share of the GPU time: pp slots
        (``inference.step.slotted_host_s``, as ``with_host_time`` prices ``infer``)."""
        if not self.host_priced:
            return 0.0
        exposed = slotted_host_s(self.job, gpu_s, sequences, self.job.pp)
        return float(exposed) if np.ndim(exposed) == 0 else exposed


def chunk_key_sum(model, offset, chunk) -> float:
    """Σ keys over the query rows of a causal chunk of ``chunk`` tokens after ``offset``
    cached ones (sliding windows capped, as inference.step.chunk_context)."""
    return float(chunk * chunk_context(model, offset, chunk))


def kv_blocks(job: InferenceJob, eff: Efficiency) -> tuple[int, list[int]]:
    """Paged-KV capacity of one replica in blocks, and blocks a sequence of n·block tokens
    holds (index n), from the same memory plan as ``flopcast infer`` (weights, workspace,
    runtime reserve, the engine's memory fraction; sliding windows hold at most the window)."""
    block = job.engine.kv_block_tokens
    plan = memory_plan(job, eff, block)
    block_bytes = float(np.asarray(plan["kv_bytes_per_sequence"]))
    capacity = int(np.asarray(plan["kv_budget_bytes"]) // block_bytes)
    n = np.arange(0, job.model.max_position_embeddings // block + 2)
    per_seq = (sequence_kv_bytes(job.model, n * block, job.kv_element_bytes, block)
               * kv_heads_per_gpu_share(job) / job.pp)
    return capacity, np.ceil(per_seq / block_bytes - 1e-9).astype(int).tolist()
