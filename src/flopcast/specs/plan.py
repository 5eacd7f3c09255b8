"""PlanRequest: which model, which clusters, and what to optimise."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from flopcast.specs.base import Spec
from flopcast.specs.framework import Framework
from flopcast.specs.limits import (
    MAX_BATCH,
    MAX_DAYS,
    MAX_GPUS,
    MAX_SEQ_LEN,
    MAX_TRAINING_TOKENS,
)
from flopcast.specs.model import Model
from flopcast.specs.precision import Precision, coerce_precision, precision

Objective = Literal["time", "cost", "energy"]

#: Default batch: about 4M tokens per optimizer step (Llama 3 pre-training used 4M-16M,
#: Dubey et al. 2024 §3.4.1), as whole sequences.
DEFAULT_TOKENS_PER_BATCH = 2**22


#: Allowed values of pinned search axes that are codes or sizes other than GPU counts
#: (offload: an index of workloads/training/search.OFFLOAD_PRESETS, 0 = none, 1 = optimizer
#: on the host).
_AXIS_RANGES = {"zero": (0, 3), "recompute": (0, 2), "schedule": (0, 2), "sp": (0, 1),
                "offload": (0, 6), "micro_batch": (1, MAX_BATCH)}


class PlanRequest(Spec):
    """A planning question: the best way to train ``model`` on each candidate cluster.

    ``gpus`` and ``gpu_counts`` may list several options; every (gpu, count) pair is a cluster.
    ``options`` pins search axes (e.g. ``{"tp": [8]}``); omitted axes are searched in full.
    """


    model: Model
    gpus: list[str] = Field(min_length=1, max_length=64)
    gpu_counts: list[int] = Field(min_length=1, max_length=4096)
    seq_len: int = Field(4096, ge=1, le=MAX_SEQ_LEN)
    global_batch: int | None = Field(
        None, ge=1, le=MAX_BATCH, description="None = ~4M tokens per step.")
    precision: Precision = Field(default_factory=lambda: precision("bf16"))
    tokens: float | None = Field(None, gt=0, le=MAX_TRAINING_TOKENS)
    objective: Objective = "time"
    top: int = Field(5, ge=1, le=1000)
    deadline_days: float | None = Field(None, gt=0, le=MAX_DAYS)
    options: dict[str, list[int]] = Field(default_factory=dict)
    framework: Framework | None = Field(
        None, description="Training framework profile (by id or alias); None = megatron.")
    lora_rank: int | None = Field(
        None, ge=1, le=65536, description="LoRA fine-tuning (TrainingJob.lora_rank); None = "
        "every weight is trained.")
    lora_targets: tuple[str, ...] = Field(
        ("qkv",), min_length=1, description="Weight GEMMs with LoRA adapters "
        "(TrainingJob.lora_targets).")
    attention_backend: str | None = Field(
        None, min_length=1, max_length=64, description="Attention kernel of every candidate "
        "GPU's kernel profile, or eager (TrainingJob.attention_backend); None = the "
        "framework's.")

    @property
    def priced_framework(self) -> Framework | None:
        """The framework as the search prices it: its attention memory follows
        ``attention_backend`` (specs/training.framework_for_backend); None = megatron."""
        if not self.attention_backend:
            return self.framework
        from flopcast.catalog.loader import load_framework
        from flopcast.specs.training import framework_for_backend

        return framework_for_backend(self.framework or load_framework(), self.attention_backend)

    @property
    def step_keywords(self) -> dict:
        """training_step's / TrainingJob's keywords for LoRA and the attention kernel."""
        lora = (dict(lora_rank=self.lora_rank, lora_targets=self.lora_targets)
                if self.lora_rank else {})
        backend = {"attention_backend": self.attention_backend} if self.attention_backend else {}
        return lora | backend

    @model_validator(mode="before")
    @classmethod
    def _precision_by_name(cls, data):
        data = coerce_precision(data)
        if isinstance(data, dict) and isinstance(data.get("framework"), str):
            from flopcast.catalog.loader import load_framework

            data = {**data, "framework": load_framework(data["framework"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> PlanRequest:
        if self.lora_rank is not None:
            from flopcast.specs.training import check_lora_targets

            check_lora_targets(self.model, self.lora_targets)
        for n in self.gpu_counts:
            if not 1 <= n <= MAX_GPUS:
                raise ValueError(f"gpus: every GPU count must be in 1..{MAX_GPUS:,}; got {n}")
        allowed = {"tp", "pp", "vp", "cp", "ep", "micro_batch", "zero", "recompute",
                   "schedule", "sp", "offload"}
        unknown = set(self.options) - allowed
        if unknown:
            raise ValueError(f"options: unknown axes {sorted(unknown)}; allowed: {sorted(allowed)}")
        for axis, values in self.options.items():
            low, high = _AXIS_RANGES.get(axis, (1, MAX_GPUS))
            bad = [v for v in values if not low <= v <= high]
            if bad:
                raise ValueError(f"{axis}: every value must be in {low}..{high}; got {bad[0]}")
        return self

    @property
    def batch(self) -> int:
        return self.global_batch or max(1, DEFAULT_TOKENS_PER_BATCH // self.seq_len)
