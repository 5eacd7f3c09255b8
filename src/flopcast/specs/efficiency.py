"""Achieved-fraction-of-peak parameters: where judgement enters the cost model.

Counting (FLOPs, bytes) is exact; how fast the hardware runs them is not. Every such factor
is a named field here, with its default and why. Defaults are priors; `flopcast calibrate`
fits a handful of them per GPU family to published measurements and writes them to
``flopcast/calibration/default.yaml``, which the catalog applies on load.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Efficiency(BaseModel):
    """Achieved fractions of datasheet peaks and fixed overheads for one GPU family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gemm_peak_fraction: float = Field(
        0.8, gt=0, le=1,
        description="Fraction of dense tensor-core peak a large, well-shaped GEMM achieves "
        "(cuBLAS on A100/H100 reaches ~0.75-0.85 on 8k-sized bf16 GEMMs).",
    )
    gemm_half_dim: float = Field(
        192.0, ge=0,
        description="GEMM dimension (elements) at which that dimension's saturation factor "
        "d/(d+half) is 1/2: small dimensions under-fill tiles and waves (cuBLAS reaches "
        "~45% of peak on 1024³ and ~80% on 4096³+ bf16 GEMMs: half ≈ 150-250).",
    )
    gemm_half_rows: float = Field(
        32.0, ge=0,
        description="Rows (tokens) at which the row dimension's saturation factor is 1/2. "
        "Small-row GEMMs (decode) run as GEMV / split-K kernels on 16-row MMA tiles that "
        "stream weights at memory speed (FlashDecoding++ §3, MARLIN §3), so this scale is far "
        "smaller than the weight dimensions' gemm_half_dim. MARLIN's near-4x int4 speedup at "
        "batch 1-16 needs it below ~30 (A100) to ~60 (H100); not fitted: the published rows "
        "do not constrain it, and fitting it to first-token latencies only absorbs fixed costs.",
    )
    low_precision_gemm_fraction: float = Field(
        0.7, gt=0, le=1,
        description="Efficiency of fp8/fp4 GEMMs relative to bf16 ones at the same shape "
        "(scaling, casts and less mature kernels: fp8 training is ~1.3-1.5x, not 2x, bf16).",
    )
    attention_peak_fraction: float = Field(
        0.4, gt=0, le=1,
        description="Fraction of bf16 peak that fused attention achieves on causal work, "
        "forward and backward alike (FlashAttention-2: ~50% on A100, ~35% on H100; "
        "FlashAttention-3 ~60-75% forward on H100; Shah et al. 2024 Fig. 5-7).",
    )
    kernel_fraction_scale: float = Field(
        1.0, gt=0, le=1.5,
        description="Multiplies the kernel profile's GEMM and attention fractions of peak. "
        "Stays 1 for families whose kernels were measured (the kernel calibration says how "
        "fast they run); fitted on whole runs only for families with no kernel measurement "
        "(ampere), where it stands for the missing profile until `flopcast profile` runs there.",
    )
    training_attention_backend: str | None = Field(
        None, description="Attention kernel (a kernel-profile backend) training runs on this "
        "family use unless the job names one; None = the profile's default. The training "
        "calibration records the one of the profile's training_attention_backends that the "
        "family's whole-run rows are consistent with.",
    )
    tp_overlap_exposed_fraction: float = Field(
        0.3, ge=0, le=1,
        description="Share of tensor-parallel communication still exposed when it is "
        "overlapped with GEMMs (Transformer Engine userbuffers / PyTorch async TP split each "
        "GEMM into chunks: the first chunk's transfer waits, and communication kernels take "
        "SMs from the GEMMs).",
    )
    dp_overlap_exposed_fraction: float = Field(
        0.15, ge=0, le=1,
        description="Share of overlapped data-parallel communication (DDP/ZeRO gradient "
        "reduce-scatter, parameter all-gather) that still costs time: NCCL kernels running "
        "beside the GEMMs take SMs and HBM bandwidth from them, and the last bucket waits.",
    )
    cp_overlap_exposed_fraction: float = Field(
        0.3, ge=0, le=1,
        description="Share of context-parallel KV ring traffic still costing time when it is "
        "overlapped with attention (P2P kernels beside attention take SMs; ring steps split "
        "attention into smaller, less efficient blocks). Not fitted: two published rows use CP.",
    )
    hbm_fraction: float = Field(
        0.85, gt=0, le=1,
        description="Fraction of datasheet HBM bandwidth achieved by memory-bound kernels "
        "(STREAM-like copies reach ~0.85-0.9 on A100/H100).",
    )
    nvlink_fraction: float = Field(
        0.8, gt=0, le=1,
        description="Fraction of NVLink/xGMI per-direction bandwidth NCCL collectives achieve.",
    )
    network_fraction: float = Field(
        0.8, gt=0, le=1,
        description="Fraction of inter-node per-GPU bandwidth NCCL collectives achieve.",
    )
    layer_overhead_s: float = Field(
        3.0e-5, ge=0,
        description="Fixed time per transformer layer per forward-pass equivalent (kernel "
        "launches, host scheduling, small un-modelled kernels); backward counts twice.",
    )
    step_overhead_s: float = Field(
        0.0, ge=0,
        description="Fixed time per optimizer step outside the layers (data loading, "
        "logging, gradient clipping, host sync).",
    )
    kernel_fixed_cost_scale: float = Field(
        1.0, ge=0, le=2,
        description="Share of a kernel's measured fixed cost (launch, ramp, tail; the kernel "
        "profile's launch_s) paid inside the workload's execution mode: 1 for eager PyTorch "
        "training; CUDA-graph engines replay kernels without host launches and pay less. "
        "Fitted per engine on whole-run rows.",
    )
    inference_step_overhead_s: float = Field(
        1.0e-4, ge=0,
        description="Fixed time per inference forward step outside the kernels' work: "
        "scheduling, batch assembly, sampling and launch gaps (CUDA graphs keep it at tens to "
        "hundreds of microseconds).",
    )
    allreduce_latency_s: float = Field(
        8.0e-6, ge=0,
        description="Latency of one small tensor-parallel all-reduce inside an NVLink domain "
        "(TensorRT-LLM / vLLM one-shot custom all-reduce kernels).",
    )
    weight_only_gemm_fraction: float = Field(
        0.85, gt=0, le=1,
        description="Efficiency of weight-only quantised GEMMs (W4A16/W8A16, dequantised in "
        "the kernel) relative to 16-bit GEMMs once compute-bound (MARLIN, Frantar et al. "
        "2024: speedup falls from ~4x at batch 1-16 to below 1x at large batch).",
    )
    runtime_reserved_bytes: float = Field(
        2.5 * 2**30, ge=0,
        description="GPU memory not available to tensors: CUDA context, NCCL buffers, "
        "cuBLAS workspaces and allocator fragmentation (typically 1.5-4 GiB).",
    )
    cpu_adam_params_per_s: float = Field(
        1.0e9, gt=0,
        description="Parameters per second a host CPU updates per GPU when the optimizer is "
        "offloaded (ZeRO-Offload's CPU-Adam, Ren et al. 2021 §4.1).",
    )
    power_fraction_of_tdp: float = Field(
        0.8, gt=0, le=1.2,
        description="Average board power during training as a fraction of TDP, for energy.",
    )

    def updated(self, **values: float) -> Efficiency:
        """A copy with some fields replaced (validated)."""
        return Efficiency.model_validate({**self.model_dump(), **values})
