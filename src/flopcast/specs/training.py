"""TrainingJob: model + system + parallelism + sequence length + precision, validated together."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flopcast.specs.model import Model
from flopcast.specs.parallelism import Parallelism
from flopcast.specs.precision import Precision, coerce_precision, precision
from flopcast.specs.system import System


class TrainingJob(BaseModel):
    """One training run to estimate.

    Rules (each message names the option and what is allowed):
    tp divides the attention heads and the KV groups; tp·pp·cp·dp equals the GPU count;
    pp·vp ≤ layers (uneven splits give the most loaded rank vp·⌈layers/(pp·vp)⌉ layers, as
    Megatron's first/last-stage layer options and DeepSpeed's partitioning allow, and the step
    follows that rank); the global batch is a
    multiple of micro_batch·dp; cp divides the sequence length; ep divides the experts and dp·cp.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Model
    system: System
    parallelism: Parallelism = Parallelism()
    seq_len: int = Field(2048, ge=1)
    precision: Precision = Field(default_factory=lambda: precision("bf16"))
    tokens: float | None = Field(None, gt=0, description="Training budget in tokens.")
    attention_backend: str | None = Field(
        None, description="Attention kernel (cudnn, flash-attention-2, flash-attention-3, "
        "flash-attention-triton, …: a backend of the GPU's kernel profile); None = the "
        "calibrated training backend of the GPU family.")

    @model_validator(mode="before")
    @classmethod
    def _precision_by_name(cls, data):
        return coerce_precision(data)

    @model_validator(mode="after")
    def _check(self) -> TrainingJob:
        m, p, n = self.model, self.parallelism, self.system.num_gpus
        gpu = self.system.gpu
        for dtype in (self.precision.gemm_dtype, self.precision.compute_dtype):
            if dtype not in gpu.peak_flops:
                have = ", ".join(sorted(gpu.peak_flops))
                raise ValueError(
                    f"precision {self.precision.name}: gpu {gpu.id} has no {dtype} tensor cores "
                    f"(it has: {have})"
                )
        if m.num_attention_heads % p.tp:
            raise ValueError(
                f"tp ({p.tp}) must divide num_attention_heads ({m.num_attention_heads})"
            )
        if not m.is_mla and m.kv_heads % p.tp:
            raise ValueError(f"tp ({p.tp}) must divide num_kv_heads ({m.kv_heads})")
        model_parallel = p.tp * p.pp * p.cp
        if n % model_parallel:
            raise ValueError(f"tp·pp·cp ({model_parallel}) must divide the GPU count ({n})")
        dp = n // model_parallel
        if p.dp is not None and p.dp != dp:
            raise ValueError(
                f"dp ({p.dp}) must equal gpus/(tp·pp·cp) = {n}/{model_parallel} = {dp}"
            )
        if p.pp * p.vp > m.num_layers:
            raise ValueError(
                f"pp·vp ({p.pp * p.vp}) must be at most num_layers ({m.num_layers})"
            )
        if p.vp > 1 and p.pp == 1:
            raise ValueError("vp > 1 needs pp > 1")
        global_batch = p.global_batch or p.micro_batch * dp
        if global_batch % (p.micro_batch * dp):
            raise ValueError(
                f"global_batch ({global_batch}) must be a multiple of micro_batch·dp "
                f"({p.micro_batch}·{dp} = {p.micro_batch * dp})"
            )
        if self.seq_len % p.cp:
            raise ValueError(f"cp ({p.cp}) must divide seq_len ({self.seq_len})")
        if p.ep > 1:
            if not m.is_moe:
                raise ValueError(f"ep ({p.ep}) > 1 needs a mixture-of-experts model")
            if m.num_experts % p.ep:
                raise ValueError(f"ep ({p.ep}) must divide num_experts ({m.num_experts})")
            if (dp * p.cp) % p.ep:
                raise ValueError(f"ep ({p.ep}) must divide dp·cp ({dp * p.cp})")
        if self.attention_backend and self.attention_backend not in gpu.kernels.attention:
            have = ", ".join(sorted(gpu.kernels.attention))
            raise ValueError(f"attention_backend {self.attention_backend!r}: gpu {gpu.id} has "
                             f"no profile for it (it has: {have})")
        if p.dp is None or p.global_batch is None:
            filled = p.model_copy(update={"dp": dp, "global_batch": global_batch})
            object.__setattr__(self, "parallelism", filled)
        return self

    @property
    def dp(self) -> int:
        return self.parallelism.dp

    @property
    def num_micro_batches(self) -> int:
        """Micro-batches per pipeline per step (gradient-accumulation steps)."""
        p = self.parallelism
        return p.global_batch // (p.micro_batch * p.dp)

    @property
    def tokens_per_step(self) -> int:
        return self.parallelism.global_batch * self.seq_len
