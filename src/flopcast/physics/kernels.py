"""Time of one kernel on one GPU, from terms a kernel benchmark measures.

time = launch + max(FLOPs / (peak · efficiency(shape, dtype)), bytes / (HBM · efficiency))
(the roofline, Williams et al. 2009, plus a fixed cost per kernel). Efficiency is not a fitted
curve of the whole run but the GPU's kernel profile (specs/kernels.py):

- GEMM: C (m×n) is cut into CTA tiles; an SM computes one tile at a time, so the kernel runs
  ⌈tiles/SMs⌉ waves of tiles each costing 2·tile_m·tile_n·(k + k_overhead) FLOPs at the SM's
  share of the peak. Tile and wave quantization follow NVIDIA's "Matrix Multiplication
  Background" user guide (§ Tile quantization, § Wave quantization); the library picks the
  tile shape (and a split-K factor when tiles are fewer than SMs) that runs fastest.
- Fused attention: FLOPs at the backend's efficiency, which rises with the keys per query row
  (FlashAttention-2 §3, FlashAttention-3 §4) and with the head dimension.
- Decode attention and every other memory-bound op: bytes at the bandwidth a streaming
  kernel reaches, scaled by how many SMs it can keep busy.

All shape arguments broadcast as NumPy arrays; the GPU and its profile are scalars.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from flopcast.specs.gpu import GPU

#: Query rows per attention CTA (FlashAttention-2/3 block size on Hopper/Ampere): sets how many
#: blocks a short prefill offers the SMs.
ATTENTION_QUERY_BLOCK = 128
#: KV tokens per Flash-Decoding split block (FlashAttention-2 split-KV kernel, block_n = 256
#: keys for the largest split granularity); at most 128 splits (flash_api.cpp heuristic).
DECODE_SPLIT_BLOCK = 256
DECODE_MAX_SPLITS = 128
#: Head dimension the attention fractions of a kernel profile refer to.
REFERENCE_HEAD_DIM = 128.0
#: Backward attention FLOPs over forward: 5 matmuls vs 2 (FlashAttention-2 §3.1-3.2).
ATTENTION_BACKWARD_PER_FORWARD = 2.5
#: fp32 partial sums written and read once per split in a split-K GEMM.
SPLIT_K_PARTIAL_BYTES = 8


def _f(x):
    return np.asarray(x, dtype=float)


def gemm_compute_time(m, n, k, gpu: GPU, dtype: str, groups=1, efficiency=1.0,
                      row_quantum=None):
    """Seconds of tensor-core work for ``groups`` GEMMs of (m×k)·(k×n), tile/wave quantized.

    Returns (compute seconds, split-K factor) for the fastest tile and split: the split factor
    adds partial-sum traffic to the memory side (see gemm_time). Every candidate (tile shape ×
    split factor) is one slot of a trailing axis, so arrays of shapes cost one pass.
    ``row_quantum``: kernels that size their row tile to the batch in steps of this many rows
    (MARLIN's 16-row thread_m_blocks, Frantar et al. 2024 §3) pad m to it, not to the
    library's smallest tile; None pads to the tile (cuBLAS/CUTLASS tile shapes).
    """
    prof = gpu.kernels
    sms = gpu.sm_count
    m, n, k, groups = (_f(x)[..., None] for x in (m, n, k, groups))
    per_sm = (gpu.peak(dtype) * prof.gemm_fraction_for(dtype) * gpu.efficiency.kernel_fraction_scale
              * _f(efficiency) / sms)
    tm, tn, split = _candidates(tuple(prof.gemm_tiles), prof.gemm_max_split_k)
    if row_quantum is not None:
        tm = np.minimum(tm, np.maximum(np.ceil(m / row_quantum), 1.0) * row_quantum)
    tiles = np.ceil(m / tm) * np.ceil(n / tn) * groups
    allowed = (split == 1) | (tiles * split <= sms)
    waves = np.ceil(tiles * split / sms)
    t = np.where(allowed, waves * 2.0 * tm * tn * (k / split + prof.gemm_k_overhead) / per_sm,
                 np.inf)
    best = np.argmin(t, axis=-1)[..., None]
    return (np.take_along_axis(t, best, -1)[..., 0],
            np.take_along_axis(np.broadcast_to(split, t.shape), best, -1)[..., 0])


@lru_cache(maxsize=64)
def _candidates(tiles: tuple, max_split: int):
    """(tile rows, tile columns, split-K factor) of every candidate, as flat arrays."""
    splits = [2**i for i in range(int(np.log2(max_split)) + 1)]
    grid = [(tm, tn, sp) for tm, tn in tiles for sp in splits]
    return tuple(np.array(c, dtype=float) for c in zip(*grid, strict=True))


def gemm_time(m, n, k, gpu: GPU, dtype: str = "bf16", act_bytes=2.0, weight_bytes=None,
              out_bytes=2.0, groups=1, grouped: bool = False, weight_only: bool = False):
    """Seconds for ``groups`` GEMMs y = x·Wᵀ, x (m×k) in ``act_bytes``, W (n×k).

    ``weight_bytes`` (default ``act_bytes``) sizes W separately for quantised weights;
    ``weight_only`` runs the math at ``dtype`` (16-bit) with the in-kernel dequantisation
    efficiency; ``grouped`` is a MoE grouped GEMM (each group its own weight). The memory side
    reads x and W and writes y once; the compute side is gemm_compute_time.

    >>> from flopcast.catalog import load_gpu
    >>> h100 = load_gpu("h100-sxm")
    >>> t_small = float(gemm_time(1, 4096, 4096, h100))  # a decode GEMV streams 32 MiB
    >>> t_small > 4096 * 4096 * 2 / h100.hbm_bandwidth
    True
    """
    prof = gpu.kernels
    eff = (prof.grouped_gemm_fraction if grouped else 1.0) * (
        prof.weight_only_fraction if weight_only else 1.0)
    # Dense weight-only GEMMs run MARLIN-style kernels sizing their row tile to the batch;
    # grouped (MoE) ones keep the library's tiles (gpt-oss MXFP4 on Hopper runs Triton's
    # matmul_ogs, whose row tile is not that quantum).
    quantum = prof.weight_only_row_quantum if weight_only and not grouped else None
    compute, split = gemm_compute_time(m, n, k, gpu, dtype, groups, eff, quantum)
    wb = act_bytes if weight_bytes is None else weight_bytes
    m, n, k = _f(m), _f(n), _f(k)
    traffic = _f(groups) * (act_bytes * m * k + wb * k * n + out_bytes * m * n
                            + np.where(split > 1, SPLIT_K_PARTIAL_BYTES * m * n * split, 0.0))
    # Grouped MoE GEMMs take the per-dtype value too: TensorRT-LLM 1.0's NVFP4 MoE runs CUTLASS
    # grouped GEMMs of the same generation as the dense CUTLASS kernels behind Blackwell's
    # value (tried without: the 1.0 perf-overview page's Llama-4-Scout cells on one B200
    # went from -12 % to +39 %; later TensorRT-LLM MoE kernels stream faster, not modelled).
    stream = prof.gemm_stream_fraction_by_dtype.get(dtype) or prof.gemm_stream_fraction
    memory = traffic / (gpu.hbm_bandwidth * stream)
    return prof.launch_s + np.maximum(compute, memory)


def stream_time(num_bytes, gpu: GPU, launches=1):
    """Seconds of memory-bound kernels moving ``num_bytes`` (read + written) through HBM."""
    prof = gpu.kernels
    return _f(launches) * prof.launch_s + _f(num_bytes) / (gpu.hbm_bandwidth * prof.copy_fraction)


def attention_efficiency(context, head_dim, gpu: GPU, backend: str | None = None,
                         direction: str = "fwd"):
    """Achieved fraction of the 16-bit peak of fused attention (see specs/kernels.py).

    ``context``: mean keys per query row ((s+1)/2 for causal prefill of s tokens).
    """
    b = gpu.kernels.attention_backend(backend)
    frac, half = ((b.fwd_fraction, b.fwd_context_half) if direction == "fwd"
                  else (b.bwd_fraction, b.bwd_context_half))
    c = np.maximum(_f(context), 1.0)
    d = _f(head_dim)
    hd = gpu.kernels.head_dim_half
    head = (d / (d + hd)) / (REFERENCE_HEAD_DIM / (REFERENCE_HEAD_DIM + hd))
    frac = frac * gpu.efficiency.kernel_fraction_scale
    return frac * c / (c + half) * np.minimum(head, 1.0 / frac)


def attention_time(tokens, context, heads, head_dim_qk, head_dim_v, gpu: GPU,
                   dtype: str = "bf16", backend: str | None = None, direction: str = "fwd",
                   sequences=1):
    """Seconds of fused attention over ``tokens`` query rows with ``context`` keys each (mean).

    FLOPs = 2·heads·(d_qk + d_v)·tokens·context (QKᵀ and PV); backward does 2.5× that. A
    prefill with fewer query blocks than SMs leaves SMs idle (fill = blocks / SMs).
    ``sequences`` is how many sequences the ``tokens`` belong to (for the block count).
    """
    tokens, heads = _f(tokens), _f(heads)
    flops = 2.0 * heads * (_f(head_dim_qk) + _f(head_dim_v)) * tokens * _f(context)
    blocks = heads * np.maximum(_f(sequences), 1.0) * np.ceil(
        tokens / np.maximum(_f(sequences), 1.0) / ATTENTION_QUERY_BLOCK)
    fill = np.clip(blocks / gpu.sm_count, 1.0 / gpu.sm_count, 1.0)
    if direction != "fwd":
        flops = ATTENTION_BACKWARD_PER_FORWARD * flops
    eff = attention_efficiency(context, head_dim_qk, gpu, backend, direction)
    t = flops / (gpu.peak(dtype) * eff * fill)
    return np.where(tokens > 0, gpu.kernels.launch_s + t, 0.0)


def eager_attention_time(tokens, keys, heads, head_dim_qk, head_dim_v, gpu: GPU,
                         dtype: str = "bf16", direction: str = "fwd", sequences=1,
                         score_bytes=0.0, score_kernels=0):
    """Seconds of unfused ("eager") attention: the score matrix goes through HBM.

    Standard attention as FlashAttention's paper writes it (Dao et al. 2022, §2.2 Algorithm 0;
    backward, App. B.1): S = QKᵀ and O = PV are batched GEMMs, one per (sequence, head), over
    every key (a causal mask hides half the scores; it does not skip them), and between them
    the element-wise kernels (scale, mask, softmax, casts) read and write ``score_bytes`` per
    score in ``score_kernels`` launches. Backward: dP = dO·Vᵀ, dV = Pᵀ·dO, dQ = dS·K,
    dK = dSᵀ·Q plus the softmax backward's traffic. ``tokens`` query rows in ``sequences``
    sequences, each attending over ``keys`` keys.
    """
    seqs = np.maximum(_f(sequences), 1.0)
    q, k, g = _f(tokens) / seqs, _f(keys), seqs * _f(heads)
    dq, dv = _f(head_dim_qk), _f(head_dim_v)
    # (m, n, contracted) of each GEMM: S = QKᵀ, O = PV; backward dP, dV, dQ, dK
    shapes = ([(q, k, dq), (q, dv, k)] if direction == "fwd"
              else [(q, k, dv), (k, dv, q), (q, dq, k), (k, dq, q)])
    gemms = sum(gemm_time(m, n, c, gpu, dtype, groups=g) for m, n, c in shapes)
    scores = stream_time(g * q * k * _f(score_bytes), gpu, score_kernels)
    return np.where(_f(tokens) > 0, gemms + scores, 0.0)


def decode_attention_time(sequences, kv_len, kv_elements_per_token, q_heads, kv_element_bytes,
                          gpu: GPU, backend: str | None = None, flops_per_key=None,
                          dtype: str = "bf16", kv_heads=None):
    """Seconds for ``sequences`` single-token queries each reading ``kv_len`` cached tokens.

    Bandwidth-bound (Flash-Decoding, Dao et al. 2023): bytes = sequences·kv_len·(K and V
    elements per cached token, e.g. kv_heads·(d_k + d_v))·element bytes at the backend's
    streaming fraction, times the SM fill. ``flops_per_key`` (FLOPs per sequence per cached
    token, e.g. 2·q_heads·(d_qk + d_v)) adds a compute floor at the profile's default fused
    attention forward fraction: MLA's absorbed decode with many query heads per latent is
    compute-bound (DeepSeek-V3 §3.4; FlashMLA). A backend that does not share KV heads
    (``shares_kv_heads`` False) reads each of the ``kv_heads`` once per query head of its
    group (q_heads / kv_heads times). A CUDA-core backend (``cuda_core_fraction``) takes the
    same FLOPs at that fraction of the fp32 peak instead: FlashInfer's BatchDecode kernel
    without tensor cores is bound there under large GQA groups (FlashInfer blog, 2024-02,
    Fig. 9: H100 SXM, 32 query / 4 KV heads, batch 64, 41-49 % of HBM bandwidth at 1-4 K
    context where its tensor-core path reaches 60-82 %; the kernel entries cite the numbers).
    """
    b = gpu.kernels.decode_backend(backend)
    seqs, kv = _f(sequences), _f(kv_len)
    num_bytes = seqs * kv * _f(kv_elements_per_token) * kv_element_bytes
    if not b.shares_kv_heads and kv_heads is not None:
        num_bytes = num_bytes * np.maximum(_f(q_heads) / _f(kv_heads), 1.0)
    blocks = seqs * _f(q_heads)
    if b.split_kv:
        blocks = blocks * np.clip(np.ceil(kv / DECODE_SPLIT_BLOCK), 1, DECODE_MAX_SPLITS)
    fill = np.clip(blocks / gpu.sm_count, 1.0 / gpu.sm_count, 1.0)
    t = num_bytes / (gpu.hbm_bandwidth * b.stream_fraction * fill)
    if flops_per_key is not None and b.cuda_core_fraction is not None:
        # CUDA-core kernel: the products run on the fp32 units, not the tensor cores (a GPU
        # entry without an fp32 peak, e.g. one `flopcast profile` wrote, prices bandwidth only)
        if "fp32" in gpu.peak_flops:
            frac = b.cuda_core_fraction * gpu.efficiency.kernel_fraction_scale
            t = np.maximum(t, seqs * kv * _f(flops_per_key) / (gpu.peak("fp32") * frac * fill))
    elif flops_per_key is not None:
        frac = gpu.kernels.attention_backend().fwd_fraction * gpu.efficiency.kernel_fraction_scale
        t = np.maximum(t, seqs * kv * _f(flops_per_key) / (gpu.peak(dtype) * frac * fill))
    return np.where(seqs > 0, b.launches * gpu.kernels.launch_s + t, 0.0)


def board_power_w(gpu: GPU, compute_share, memory_share):
    """Average board power (W) when ``compute_share`` of the time runs tensor-core-bound
    kernels and ``memory_share`` HBM-bound ones (the rest idles or waits on links).

    Linear in the shares between the profile's measured idle, HBM-bound and compute-bound
    powers (an H100 drew ~126 W idle, ~390 W under copies, ~700 W under GEMMs: kernels.csv).
    """
    p = gpu.kernels
    tdp = gpu.tdp_watts
    idle, mem, comp = (p.idle_power_fraction * tdp, p.memory_power_fraction * tdp,
                       p.compute_power_fraction * tdp)
    c, m = _f(compute_share), _f(memory_share)
    return idle + (comp - idle) * c + (mem - idle) * m
