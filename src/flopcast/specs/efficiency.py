"""Whole-run parameters: what only shows when kernels run together in a framework or engine.

Kernel speed is not here: it is the GPU's kernel profile (specs/kernels.py), measured on
kernels. What remains are link efficiencies, overlap of communication with compute, fixed
overheads per layer and step, the execution mode's share of kernel fixed costs, and memory
reserves. Defaults are priors; `flopcast calibrate` fits a few per GPU family (training) or
per GPU family and engine (inference) and writes them to ``flopcast/calibration/``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Efficiency(BaseModel):
    """Achieved fractions of datasheet peaks and fixed overheads for one GPU family."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kernel_fraction_scale: float = Field(
        1.0, gt=0, le=1.5,
        description="Multiplies the kernel profile's GEMM and attention fractions of peak. "
        "Stays 1 for families whose kernels were measured (the kernel calibration says how "
        "fast they run); fitted on whole runs only for families with no kernel measurement "
        "(ampere), where it stands for the missing profile until `flopcast profile` runs there.",
    )
    elementwise_traffic_factor: float = Field(
        1.0, gt=0, le=4,
        description="Element-wise HBM traffic of a training framework relative to the fused "
        "count of physics/layer.py (norms, residuals, activation, rotary): eager PyTorch "
        "frameworks run norms, activations and casts as separate kernels with fp32 "
        "intermediates and move more bytes (Ivanov et al. 2021 §4: unfused operators move "
        "several times the minimum); fused Megatron/TE kernels stay near 1. Training only: "
        "inference engines fuse these ops. Not fitted: fitting it on training.csv improved the "
        "in-sample error (5.9 -> 5.4 %) but worsened four of five held-out sources (docs/"
        "accuracy.md). A framework profile that counts its own element-wise traffic "
        "(catalog/frameworks: elementwise) replaces the fused count and this factor.",
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
        "training; CUDA-graph engines replay kernels without host launches and pay less; "
        "engines that leave host gaps between kernels (TensorRT-LLM v0.6's session benchmark "
        "fits 1.25-1.6) pay more. Fitted per engine on whole-run rows.",
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

    host_link_fraction: float = Field(
        0.8, gt=0, le=1,
        description="Fraction of the host link's per-direction bandwidth (PCIe, NVLink-C2C) "
        "pinned-memory copies of offloaded states achieve (PCIe Gen3/Gen4 x16: ~12-13 of 16 "
        "and ~25 of 32 GB/s in cudaMemcpy bandwidth tests; ZeRO-Offload, Ren et al. 2021 §5, "
        "transfers over it in large pinned buffers). Prior, not fitted.",
    )

    def updated(self, **values: float) -> Efficiency:
        """A copy with some fields replaced (validated)."""
        return Efficiency.model_validate({**self.model_dump(), **values})
