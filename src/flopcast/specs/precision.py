"""Number formats: which peak each GEMM runs at and how many bytes things take."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

PrecisionName = Literal["fp32", "bf16", "fp16", "fp8", "mxfp8", "nvfp4"]


class Precision(BaseModel):
    """A mixed-precision recipe.

    Linear-layer GEMMs run at ``gemm_dtype``'s peak; attention, norms, the LM head and
    everything else stay in ``compute_dtype`` (Transformer Engine's fp8/fp4 recipes keep the
    attention core and output layer in bf16: Micikevicius et al. 2022 "FP8 formats", §4).
    Weights are kept in ``weight_bytes`` plus a low-precision copy for the GEMMs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PrecisionName
    gemm_dtype: str
    compute_dtype: str
    weight_bytes: float
    low_precision_weight_bytes: float
    activation_bytes: float

    @property
    def block_scaled(self) -> bool:
        """Whether the recipe needs tensor cores that apply block scales
        (KernelProfile.block_scaled_formats)."""
        return self.name in BLOCK_SCALED

    @property
    def is_low_precision(self) -> bool:
        return self.gemm_dtype in ("fp8", "fp4")


_TABLE: dict[str, tuple[str, str, float, float, float]] = {
    # name: gemm dtype, other compute dtype, weight bytes, low-precision copy, activation bytes
    "fp32": ("tf32", "tf32", 4, 0, 4),
    "bf16": ("bf16", "bf16", 2, 0, 2),
    "fp16": ("fp16", "fp16", 2, 0, 2),
    # fp8: per-tensor-scaled e4m3/e5m2 copy of each weight (1 byte), activations bf16
    "fp8": ("fp8", "bf16", 2, 1, 2),
    "mxfp8": ("fp8", "bf16", 2, 1 + 1 / 32, 2),  # one e8m0 scale per 32 values (OCP MX spec)
    "nvfp4": ("fp4", "bf16", 2, 0.5 + 1 / 16, 2),  # 4 bits + one e4m3 scale per 16 (NVFP4)
}


#: Recipes whose scales are per block of 32 (MX) or 16 (NVFP4) values, applied by the tensor
#: cores (OCP Microscaling Formats spec v1.0; NVIDIA Blackwell architecture brief).
BLOCK_SCALED = ("mxfp8", "nvfp4")


def precision(name: str) -> Precision:
    """The recipe called ``name`` (one of fp32, bf16, fp16, fp8, mxfp8, nvfp4)."""
    from flopcast.errors import FlopcastError

    if name not in _TABLE:
        raise FlopcastError(f"precision: must be one of {', '.join(_TABLE)}; got {name!r}")
    gemm, other, w, lp, act = _TABLE[name]
    return Precision(
        name=name, gemm_dtype=gemm, compute_dtype=other, weight_bytes=w,
        low_precision_weight_bytes=lp, activation_bytes=act,
    )


def coerce_precision(data):
    """Pydantic before-validator body: accept a precision given by name."""
    if isinstance(data, dict) and isinstance(data.get("precision"), str):
        data = {**data, "precision": precision(data["precision"])}
    return data
