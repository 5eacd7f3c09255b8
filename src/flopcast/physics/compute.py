"""Time of computation on one GPU: a roofline per operation with a shape-aware efficiency.

time = max(FLOPs / (peak · η_gemm(M, N, K)), bytes / (HBM bandwidth · η_hbm)): the roofline
model (Williams et al. 2009). η_gemm = gemm_peak_fraction · Π_d d/(d + half_d) over the
three GEMM dimensions: small dimensions under-fill the tensor-core tiles and the waves of SMs
(NVIDIA "Matrix Multiplication Background" user guide, tile and wave quantization), which a
saturating factor captures without per-kernel tables; the row (token) dimension has its own,
smaller scale because small-row kernels split K instead of wasting tiles.
"""

from __future__ import annotations

import numpy as np

from flopcast.specs.efficiency import Efficiency

#: Memory-bound element-wise traffic, in elements per token per layer (read + write),
#: following the operator count of Ivanov et al. 2021 ("Data Movement Is All You Need")
#: §3: a norm reads and writes h; a residual add reads 2h and writes h; rotary embedding
#: reads and writes q and k. Backward moves about twice the forward's bytes (gradient in,
#: saved input, gradient out).
NORM_ELEMENTS = 2
RESIDUAL_ELEMENTS = 3
ELEMENTWISE_BACKWARD_PER_FORWARD = 2


def dimension_saturation(d, half_dim: float):
    """d / (d + half_dim): 1/2 at ``half_dim``, → 1 for large d."""
    d = np.asarray(d, dtype=float)
    return d / (d + half_dim)


def gemm_efficiency(m, n, k, eff: Efficiency):
    """Achieved fraction of peak for an (m×k)·(k×n) GEMM: rows (tokens) saturate on
    ``gemm_half_rows``, the weight dimensions on ``gemm_half_dim``."""
    h = eff.gemm_half_dim
    return (
        eff.gemm_peak_fraction
        * dimension_saturation(m, eff.gemm_half_rows)
        * dimension_saturation(n, h)
        * dimension_saturation(k, h)
    )


def gemm_time(m, n, k, peak_flops, hbm_bandwidth, eff: Efficiency, element_bytes=2.0,
              dtype_fraction=1.0, weight_bytes=None):
    """Seconds for one GEMM: compute-bound at shape efficiency, or bound by its operand bytes.

    ``weight_bytes`` (default ``element_bytes``) sizes the k×n operand separately, for
    quantised weights beside 16-bit activations.
    """
    m = np.asarray(m, dtype=float)
    flops = 2.0 * m * n * k
    compute = flops / (peak_flops * gemm_efficiency(m, n, k, eff) * dtype_fraction)
    wb = element_bytes if weight_bytes is None else weight_bytes
    traffic = element_bytes * (m * k + m * n) + wb * k * n
    return np.maximum(compute, memory_time(traffic, hbm_bandwidth, eff))


def memory_time(num_bytes, hbm_bandwidth, eff: Efficiency):
    """Seconds to stream ``num_bytes`` through HBM at the achieved bandwidth."""
    return np.asarray(num_bytes, dtype=float) / (hbm_bandwidth * eff.hbm_fraction)


def attention_time(flops, peak_flops, eff: Efficiency):
    """Seconds for fused attention (FlashAttention) doing ``flops`` executed FLOPs."""
    return np.asarray(flops, dtype=float) / (peak_flops * eff.attention_peak_fraction)
