"""The shapes `flopcast profile` measures, shared by every backend.

They are the kernels an LLM step is made of (physics/kernels.py models each): the projection
GEMMs of a 7-8B and a 70B-class layer at the token counts of decode (1-64 tokens) through
prefill/training (1K-16K tokens), MoE expert GEMMs, causal attention at a fixed token count
over sequence lengths (the FlashAttention papers' benchmark layout), decode attention over cached
context, and large copies (the bandwidth every memory-bound op sees). The published H100 rows
(shared/measurements/kernels.csv) use the same layouts, so the two can be compared row by row.
"""

from __future__ import annotations

#: Token counts m of y = x·Wᵀ: decode batches (1-64) to prefill chunks and training micro-batches.
GEMM_TOKENS = (1, 16, 64, 256, 1024, 4096)
GEMM_TOKENS_FULL = (*GEMM_TOKENS, 16384)

#: (n, k) of LLM layers: Llama-3-8B attention output / MLP up / MLP down, and a 70B-class square.
GEMM_SHAPES = ((4096, 4096), (14336, 4096), (4096, 14336), (8192, 8192))

#: MoE expert GEMMs (experts, n, k): Mixtral-8x7B up projection, Qwen3-30B-A3B up projection.
GROUPED_SHAPES = ((8, 14336, 4096), (128, 1536, 2048))
GROUPED_TOKENS = (16, 256, 1024)

#: Causal attention: sequence lengths at a fixed number of tokens per call (batch·seq), 32 heads
#: of 128 (Llama-3-8B); quick mode measures three lengths.
ATTENTION_TOKENS = 65536
ATTENTION_SEQS = (512, 2048, 8192)
ATTENTION_SEQS_FULL = (512, 1024, 2048, 4096, 8192, 16384, 32768)
ATTENTION_HEADS = 32
HEAD_DIM = 128

#: Decode attention: (sequences, cached tokens) with 8 KV heads of 128 (one GQA group's worth).
DECODE_CASES = ((1, 1024), (8, 2048), (32, 8192))
DECODE_CASES_FULL = ((1, 1024), (1, 8192), (1, 32768), (8, 2048), (8, 8192), (32, 2048),
                     (32, 8192))
DECODE_HEADS = 8

#: Device copies: bytes read + written (the buffer is half of it).
COPY_BYTES = (2**30, 2**32)
COPY_BYTES_FULL = (2**30, 2**32, 2**34)


def gemm_tokens(quick: bool) -> tuple[int, ...]:
    return GEMM_TOKENS if quick else GEMM_TOKENS_FULL


def attention_seqs(quick: bool) -> tuple[int, ...]:
    return ATTENTION_SEQS if quick else ATTENTION_SEQS_FULL


def decode_cases(quick: bool) -> tuple[tuple[int, int], ...]:
    return DECODE_CASES if quick else DECODE_CASES_FULL


def copy_bytes(quick: bool) -> tuple[int, ...]:
    return COPY_BYTES if quick else COPY_BYTES_FULL
