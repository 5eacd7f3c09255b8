"""Kernel profile of a GPU: the measurable numbers physics/kernels.py turns into kernel times.

Every field is something a kernel benchmark shows directly (``flopcast profile`` measures them;
``flopcast calibrate kernels.csv`` fits them to published kernel timings): the fixed cost of a
kernel, the fraction of the dense datasheet peak a full wave of GEMM tiles reaches per dtype,
the bandwidth a streaming kernel reaches, attention efficiency per backend and direction, and
board power by what bounds the work. Where no measurement exists for a family, the value is a
documented prior and ``source`` says so.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Fallback order for GEMM fractions of dtypes a profile has not measured: a format runs on the
#: same tensor-core path as the one it falls back to (fp16 = bf16 rate per clock; int8 runs on
#: the fp8 path on Hopper; fp4/fp6 kernels are the newest: fp8's fraction stands in until a
#: measurement exists, which makes FP4 predictions optimistic if FP4 kernels are less mature).
DTYPE_FALLBACK = {"fp16": "bf16", "tf32": "bf16", "fp32": "bf16", "fp64": "bf16",
                  "int8": "fp8", "fp6": "fp8", "fp4": "fp8", "fp8": "bf16"}
#: The subset of DTYPE_FALLBACK that is exact: dtypes whose GEMMs run the same tensor-core
#: instructions at the same rate per clock (fp16 and bf16 HMMA: one datasheet peak for both on
#: Ampere, Hopper and Blackwell), so a fit lets their rows inform that dtype's fraction unless
#: a profile declares them apart (calibration/kernels.py).
SAME_RATE_DTYPES = {"fp16": "bf16"}
#: A share of HBM bandwidth (0, 1].
StreamFraction = Annotated[float, Field(gt=0, le=1)]


class AttentionBackend(BaseModel):
    """Fused prefill/training attention (FlashAttention-style) efficiency.

    Achieved fraction of the bf16 peak = ``*_fraction`` · c/(c + ``*_context_half``), c the
    mean keys per query row (≈ s/2 causal): a query block pays fixed work (loading Q, the final
    rescale, writing O, the half-masked diagonal block) that long contexts amortise (Dao 2023,
    FlashAttention-2 §3.1-3.3; Shah et al. 2024, FlashAttention-3 §4: efficiency rises with
    sequence length). The head dimension enters as d/(d + head_dim_half) relative to d = 128.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fwd_fraction: float = Field(gt=0, le=1)
    fwd_context_half: float = Field(ge=0)
    bwd_fraction: float = Field(gt=0, le=1)
    bwd_context_half: float = Field(ge=0)
    relative_to: str | None = Field(
        None, description="A backend known only by how it compares with another (a paper's "
        "speed ratio): its fractions are that backend's times fwd_ratio / bwd_ratio and its "
        "context halves are that backend's, recomputed whenever the other is measured or "
        "fitted (KernelProfile resolves it). None: the fractions are the backend's own (a "
        "GPU entry giving such a backend its own fractions sets relative_to: null, or the "
        "ratio overrides them).")
    fwd_ratio: float | None = Field(
        None, gt=0, le=2, description="Forward speed relative to the relative_to backend.")
    bwd_ratio: float | None = Field(
        None, gt=0, le=2, description="Backward speed relative to the relative_to backend.")


class DecodeAttentionBackend(BaseModel):
    """Decode attention: one query row per sequence streams its cached K and V.

    Bandwidth-bound: time = launches · launch_s + bytes / (HBM · stream_fraction · fill), with
    fill = min(1, parallel blocks / SMs). Flash-Decoding splits the KV sequence so that blocks
    fill the GPU (Dao et al. 2023, "Flash-Decoding"; two launches: split attention + combine);
    kernels without split-KV run one block per (sequence, head) and leave SMs idle at small
    batch (Little's law: one SM's outstanding loads cap its bandwidth).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_fraction: float = Field(gt=0, le=1)
    split_kv: bool = True
    launches: int = Field(1, ge=1)
    shares_kv_heads: bool = Field(
        True, description="Under grouped-query attention the query heads of a group read "
        "their shared KV head once (XQA, FlashInfer, Flash-Decoding). False: one block per "
        "query head, each streaming its group's KV head (TensorRT-LLM's masked multi-head "
        "attention kernel before XQA), so KV bytes scale with the group size.")
    cuda_core_fraction: float | None = Field(
        None, gt=0, le=1, description="The kernel multiplies on CUDA cores, not tensor cores "
        "(FlashInfer's BatchDecode kernel without use_tensor_cores): its QKᵀ and PV products, "
        "2·q_heads·(d_qk + d_v) FLOPs per sequence per cached token, run at this fraction of "
        "the fp32 (non-tensor) peak, a floor under the bandwidth time that grows with the GQA "
        "group. None: tensor-core or bandwidth-bound kernel.")


class EngineAllReduce(BaseModel):
    """An inference engine's NVLink all-reduce inside one domain, as a kernel benchmark
    measures it (CUDA-graph replay, bf16): the engine runs the fastest of three algorithms
    for each message of S bytes over n ranks (physics/layer.engine_all_reduce_time):

    - one-shot: every rank reads the n-1 peers' whole buffers, (n-1)·S bytes;
    - two-shot: reduce-scatter then all-gather of the buffer, 2(n-1)/n·S bytes
      (both custom kernels over NVLink loads/stores: custom_bus_fraction of the link);
    - large: the collective library's ring/NVLS all-reduce for big buffers, 2(n-1)/n·S at
      large_bus_fraction, with a larger fixed time.

    Each has a fixed time (the kernels' launch, barrier and flag exchange). TensorRT-LLM's
    AllReduce (strategy AUTO), vLLM's and SGLang's custom all-reduce follow this shape
    (TensorRT-LLM customAllReduceKernels.cu ONESHOT/TWOSHOT, NCCL beyond)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    one_shot_s: float = Field(gt=0, lt=1e-3, description="Fixed time of the one-shot kernel.")
    two_shot_s: float = Field(gt=0, lt=1e-3, description="Fixed time of the two-shot kernel.")
    custom_bus_fraction: float = Field(
        gt=0, le=1.5, description="NVLink bandwidth (per direction) the custom kernels reach.")
    large_s: float = Field(gt=0, lt=1e-2, description="Fixed time of the large-message "
                           "algorithm (ring/NVLS).")
    large_bus_fraction: float = Field(
        gt=0, le=1.5, description="Bus bandwidth of the large-message algorithm over the "
        "NVLink bandwidth per direction (NVLS can exceed a ring's).")
    source: str


class KernelProfile(BaseModel):
    """Measured (or prior) kernel-level speed of one GPU; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    block_scaled_formats: list[Literal["mxfp8", "nvfp4"]] = Field(
        default_factory=list, description="Microscaling recipes the tensor cores scale in "
        "hardware (OCP MX block scales, NVFP4): Blackwell's fifth-generation tensor cores; "
        "Transformer Engine runs MXFP8 only there.")
    launch_s: float = Field(
        6e-6, ge=0, description="Fixed time of one kernel: launch, ramp-up and tail (s). "
        "H100 GEMV/GEMM timings show ~6-9 µs beyond their bytes or FLOPs.")
    gemm_fraction: dict[str, float] = Field(
        default_factory=lambda: {"bf16": 0.78, "fp8": 0.70},
        description="Fraction of the dense datasheet peak a full wave of GEMM tiles reaches, "
        "per dtype (cuBLAS on H100: ~0.75-0.8 bf16 at 4096³+).")
    gemm_k_overhead: float = Field(
        100.0, ge=0, description="Per-tile fixed work in units of k (prologue filling the "
        "k-loop pipeline, epilogue writing the tile): a tile costs k + this.")
    gemm_tiles: list[tuple[int, int]] = Field(
        default_factory=lambda: [(128, 256), (256, 128), (128, 128), (64, 128), (64, 256)],
        description="CTA tile shapes (rows × columns) the GEMM library chooses among "
        "(CUTLASS/cuBLAS Hopper kernels); the fastest after wave quantization is taken.")
    gemm_max_split_k: int = Field(
        16, ge=1, description="Largest split-K factor for GEMMs with fewer tiles than SMs.")
    gemm_stream_fraction: float = Field(
        0.80, gt=0, le=1, description="Fraction of HBM bandwidth GEMMs reach when bound by "
        "their operands (small-m decode GEMMs streaming weights).")
    gemm_stream_fraction_by_dtype: dict[str, StreamFraction | None] = Field(
        default_factory=dict, description="gemm_stream_fraction for GEMMs of these compute "
        "dtypes, where their operand-bound kernels differ (Blackwell's block-scaled NVFP4 "
        "GEMMs at small m stream their weights far below bf16 or FP8 ones: published B200 "
        "timings); other dtypes, and a dtype set to null (a GPU entry undoing its family's "
        "value), take gemm_stream_fraction. Grouped MoE GEMMs take it too (TensorRT-LLM 1.0's "
        "NVFP4 MoE: CUTLASS grouped GEMMs of the same generation).")
    grouped_gemm_fraction: float = Field(
        0.86, gt=0, le=1, description="Compute efficiency of grouped (MoE expert) GEMMs "
        "relative to a dense GEMM of the same per-group shape (per-group scheduling).")
    weight_only_fraction: float = Field(
        0.85, gt=0, le=1, description="Compute efficiency of weight-only quantised GEMMs "
        "(W4A16/W8A16, dequantised in the kernel) relative to 16-bit ones once compute-bound "
        "(MARLIN, Frantar et al. 2024 Fig. 1: below 1x at large batch).")
    weight_only_row_quantum: int = Field(
        16, ge=1, description="Rows weight-only quantised GEMM kernels pad the batch to: "
        "MARLIN sizes its row tile to the batch in 16-row MMA blocks (1-4 of them; Frantar et "
        "al. 2024 §3), so a decode step of one sequence does 16 rows of math, not a 64-row "
        "tile's; AWQ/GPTQ GEMV kernels do less. Keeps W4A16 decode weight-streaming-bound. Dense "
        "GEMMs only: grouped MoE weight-only kernels keep gemm_tiles.")
    engine_all_reduce: EngineAllReduce | None = Field(
        None, description="Inference engines' NVLink all-reduce (custom one-shot/two-shot "
        "kernels, the library's beyond), measured; None = not measured for this family, and "
        "engines are priced with the training model's ring all-reduce (nvlink_fraction, "
        "allreduce_latency_s).")
    copy_fraction: float = Field(
        0.90, gt=0, le=1, description="Fraction of HBM bandwidth large streaming kernels "
        "(copies, element-wise ops, optimizer updates) reach.")
    head_dim_half: float = Field(
        16.0, ge=0, description="Attention efficiency scales as d/(d + this) relative to "
        "d = 128 (FlashAttention-2 Fig. 4-5: head dim 64 ~10% slower than 128). Prior.")
    attention: dict[str, AttentionBackend] = Field(default_factory=dict)
    decode_attention: dict[str, DecodeAttentionBackend] = Field(default_factory=dict)
    default_attention: str = "flash-attention-2"
    default_decode_attention: str = "flash-attention-2"
    training_attention_backends: list[str] = Field(
        default_factory=list, description="Attention kernels training frameworks run on this "
        "family (Transformer Engine's cuDNN, flash-attn 2, llm-foundry's Triton kernel): the "
        "training calibration keeps the one the family's whole-run rows are consistent with.")
    idle_power_fraction: float = Field(
        0.18, gt=0, le=1, description="Board power at idle as a fraction of TDP.")
    memory_power_fraction: float = Field(
        0.55, gt=0, le=1.2, description="Board power under HBM-bound kernels / TDP.")
    compute_power_fraction: float = Field(
        1.0, gt=0, le=1.2, description="Board power under tensor-core-bound kernels / TDP.")
    source: str = "priors (specs/kernels.py)"

    @model_validator(mode="before")
    @classmethod
    def _resolve_relative_attention(cls, data):
        """Price each ``relative_to`` attention backend from the backend it names (always
        recomputed, so that a fit or a GPU entry changing that backend carries over)."""
        if not isinstance(data, dict) or not isinstance(data.get("attention"), dict):
            return data
        # anything not a mapping is left for pydantic to refuse with the field's name
        backends = {k: (v.model_dump() if isinstance(v, BaseModel) else
                        dict(v) if isinstance(v, dict) else v)
                    for k, v in data["attention"].items()}
        fields = ("fwd_fraction", "fwd_context_half", "bwd_fraction", "bwd_context_half")
        for name, entry in backends.items():
            ref = entry.get("relative_to") if isinstance(entry, dict) else None
            if not ref:
                continue
            base = backends.get(ref)
            if not isinstance(base, dict) or base.get("relative_to") or \
                    any(base.get(f) is None for f in fields):
                raise ValueError(f"attention backend {name!r}: relative_to {ref!r} must name a "
                                 f"backend with its own fractions (have: {sorted(backends)})")
            for direction in ("fwd", "bwd"):
                ratio = entry.get(f"{direction}_ratio")
                if ratio is None:
                    raise ValueError(f"attention backend {name!r}: relative_to needs "
                                     f"{direction}_ratio")
                entry[f"{direction}_fraction"] = min(1.0, base[f"{direction}_fraction"] * ratio)
                entry[f"{direction}_context_half"] = base[f"{direction}_context_half"]
        return {**data, "attention": backends}

    @field_validator("gemm_fraction")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("gemm_fraction needs at least one dtype (e.g. {bf16: 0.78})")
        bad = {k: x for k, x in v.items() if not 0 < x <= 1.5}
        if bad:
            raise ValueError(f"gemm_fraction values must be in (0, 1.5]; got {bad}")
        return v

    @field_validator("gemm_tiles")
    @classmethod
    def _tiles(cls, v: list[tuple[int, int]]) -> list[tuple[int, int]]:
        if not v or any(a < 1 or b < 1 for a, b in v):
            raise ValueError(f"gemm_tiles must be a non-empty list of [rows, cols] >= 1; got {v}")
        return v

    def gemm_fraction_for(self, dtype: str) -> float:
        """Full-wave GEMM fraction of ``dtype``, falling back along DTYPE_FALLBACK."""
        d = dtype
        while d not in self.gemm_fraction:
            if d not in DTYPE_FALLBACK:
                return min(self.gemm_fraction.values())
            d = DTYPE_FALLBACK[d]
        return self.gemm_fraction[d]

    def attention_backend(self, name: str | None = None) -> AttentionBackend:
        name = name or self.default_attention
        if name not in self.attention:
            from flopcast.errors import UnsupportedError

            have = ", ".join(sorted(self.attention)) or "none"
            raise UnsupportedError(f"attention backend {name!r}: no profile (have: {have})")
        return self.attention[name]

    def decode_backend(self, name: str | None = None) -> DecodeAttentionBackend:
        name = name or self.default_decode_attention
        if name not in self.decode_attention:
            from flopcast.errors import UnsupportedError

            have = ", ".join(sorted(self.decode_attention)) or "none"
            raise UnsupportedError(f"decode attention backend {name!r}: no profile "
                                   f"(have: {have})")
        return self.decode_attention[name]
