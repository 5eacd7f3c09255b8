"""TrainingJob: model + system + parallelism + sequence length + precision, validated together."""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flopcast.specs.framework import EAGER_ATTENTION, Framework
from flopcast.specs.model import Model
from flopcast.specs.parallelism import Parallelism
from flopcast.specs.precision import Precision, coerce_precision, precision
from flopcast.specs.system import System


def framework_for_backend(framework: Framework, backend: str | None) -> Framework:
    """``framework`` with its attention memory following the kernel asked for: eager
    attention keeps the s×s scores, a fused kernel does not, whatever the framework's own
    attention (Framework.attention); unchanged without a backend."""
    if not backend:
        return framework
    wanted = "eager" if backend == EAGER_ATTENTION else "flash"
    if framework.attention == wanted:
        return framework
    return framework.model_copy(update={"attention": wanted})


def check_attention_backend(backend: str | None, gpu) -> None:
    """A backend must be eager or have a profile in the GPU's kernel profile."""
    if backend and backend != EAGER_ATTENTION and backend not in gpu.kernels.attention:
        have = ", ".join(sorted(gpu.kernels.attention))
        raise ValueError(f"attention_backend {backend!r}: gpu {gpu.id} has no profile for it "
                         f"(it has: {have}; or eager)")


def fused_attention_allows_cp(framework: Framework) -> bool:
    """Whether ``framework`` may run context parallelism with its attention as priced:
    always with a fused kernel, with eager attention only where Framework says so."""
    return framework.attention != "eager" or framework.eager_context_parallel


def check_context_parallel_attention(framework: Framework, cp: int) -> None:
    """cp > 1 needs attention the framework runs context parallelism with
    (fused_attention_allows_cp)."""
    if cp > 1 and not fused_attention_allows_cp(framework):
        raise ValueError(f"cp {cp}: {framework.id} runs context parallelism only with a fused "
                         "attention kernel, not eager")


def _default_framework() -> Framework:
    from flopcast.catalog.loader import load_framework

    return load_framework()


def _extra_slots(model: Model, embedding_loss_stages: bool) -> int:
    """Pipeline slots beyond the transformer layers: the embedding, the loss and the MTP
    modules when they count as layers (the E, L and m of Megatron-Core's
    --pipeline-model-parallel-layout), else none."""
    return 2 + model.mtp_num_layers if embedding_loss_stages else 0


def check_lora_targets(model: Model, targets) -> None:
    """LoRA targets must name (non-expert) weight GEMMs that every layer of the model has:
    adapters are counted per layer (flops.lora_params_per_layer)."""
    from flopcast.physics.flops import dense_layer_gemms, moe_layer_gemms

    kinds = ([dense_layer_gemms(model)] if model.num_dense_layers else []) + (
        [moe_layer_gemms(model)] if model.is_moe else [])
    names = [g.name for g in kinds[0]
             if not g.experts and all(g.name in [h.name for h in k] for k in kinds)]
    unknown = [t for t in targets if t not in names]
    if unknown:
        raise ValueError(f"lora_targets {', '.join(unknown)}: not a weight GEMM of "
                         f"{model.name} (allowed: {', '.join(names)})")


class TrainingJob(BaseModel):
    """One training run to estimate, under a training ``framework`` profile (by id or alias;
    default megatron: catalog/frameworks) that says what it allocates and which kernels it runs.

    Rules (each message names the option and what is allowed):
    tp divides the attention heads and the KV groups; tp·pp·cp·dp equals the GPU count;
    pp·vp ≤ layers (uneven splits give the most loaded rank vp·⌈layers/(pp·vp)⌉ layers, as
    Megatron's first/last-stage layer options and DeepSpeed's partitioning allow, and the step
    follows that rank), or ≤ layers + 2 (+ MTP modules) when the embedding and loss count as
    pipeline layers (``embedding_loss_stages``); the global batch is a
    multiple of micro_batch·dp; cp divides the sequence length; ep divides the experts; etp·ep
    divides tp·cp·dp and etp the expert FFN width (MoE parallel folding, etp defaults to tp).
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
        "flash-attention-triton, …: a backend of the GPU's kernel profile, or eager: "
        "unfused attention whose scores go through memory and are kept for the backward); "
        "None = the calibrated training backend of the job's framework.")
    framework: Framework = Field(
        default_factory=_default_framework, description="Training framework profile "
        "(catalog/frameworks): what it allocates and which kernels it runs; by id or alias.")
    lora_rank: int | None = Field(
        None, ge=1, le=65536, description="LoRA fine-tuning (Hu et al. 2021): the pretrained "
        "weights are frozen and rank-r adapters on ``lora_targets`` are trained; None = every "
        "weight is trained.")
    lora_targets: tuple[str, ...] = Field(
        ("qkv",), min_length=1, description="Weight GEMMs that get LoRA adapters (qkv, out, "
        "mlp_up, mlp_down; default: the fused QKV projection, NeMo's lora_tuning default).")

    @model_validator(mode="before")
    @classmethod
    def _precision_by_name(cls, data):
        data = coerce_precision(data)
        if isinstance(data, dict) and isinstance(data.get("framework"), str):
            from flopcast.catalog.loader import load_framework

            data = {**data, "framework": load_framework(data["framework"])}
        return data

    @field_validator("tokens")
    @classmethod
    def _finite_tokens(cls, tokens: float | None) -> float | None:
        # Field(gt=0) lets inf through, and an infinite budget gives infinite days and cost.
        if tokens is not None and not math.isfinite(tokens):
            raise ValueError(f"must be a finite number of tokens; got {tokens}")
        return tokens

    @model_validator(mode="after")
    def _check(self) -> TrainingJob:
        m, p, n = self.model, self.parallelism, self.system.num_gpus
        gpu = self.system.gpu
        self._check_node_and_schedule()
        if (self.precision.block_scaled
                and self.precision.name not in gpu.kernels.block_scaled_formats):
            raise ValueError(f"precision {self.precision.name}: gpu {gpu.id} has no tensor cores "
                             "that apply block scales (Blackwell and later)")
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
        embedding_loss = self._check_pipeline_slots()
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
        if p.ep > 1 and not m.is_moe:
            raise ValueError(f"ep ({p.ep}) > 1 needs a mixture-of-experts model")
        if m.is_moe:
            self._check_expert_folding(dp)
        self._check_lora()
        check_attention_backend(self.attention_backend, gpu)
        self._align_attention()
        check_context_parallel_attention(self.framework, p.cp)
        if None in (p.dp, p.global_batch, p.etp, p.embedding_loss_stages):
            filled = p.model_copy(update={"dp": dp, "global_batch": global_batch,
                                          "etp": p.expert_tp,
                                          "embedding_loss_stages": embedding_loss})
            object.__setattr__(self, "parallelism", filled)
        return self

    def _align_attention(self) -> None:
        """Memory follows the kernel asked for (framework_for_backend)."""
        aligned = framework_for_backend(self.framework, self.attention_backend)
        if aligned is not self.framework:
            object.__setattr__(self, "framework", aligned)

    def model_copy(self, *, update=None, deep: bool = False) -> TrainingJob:
        """A copy; a new attention kernel realigns the framework's attention (pydantic does
        not validate copies)."""
        copy = super().model_copy(update=update, deep=deep)
        if update and ("attention_backend" in update or "framework" in update):
            copy._align_attention()
        return copy

    def _check_lora(self) -> None:
        if self.lora_rank is not None:
            check_lora_targets(self.model, self.lora_targets)

    def _check_node_and_schedule(self) -> None:
        """An interleaved schedule only with model chunks to interleave (it was silently
        estimated as plain 1F1B). A GPU count that leaves the last node partial (12 GPUs on
        nodes of 8, 128 on NVL72 racks as 72 + 56) is allowed: the step follows the full
        domains; api.train.doubtful_options says so."""
        p = self.parallelism
        if p.schedule == "interleaved" and (p.pp == 1 or p.vp == 1):
            raise ValueError(f"schedule 'interleaved' needs pp > 1 and vp > 1 (model chunks "
                             f"per pipeline rank); got pp={p.pp}, vp={p.vp}")
        if p.vp > 1 and p.schedule not in (None, "interleaved"):
            raise ValueError(f"schedule {p.schedule!r}: vp ({p.vp}) > 1 runs the interleaved "
                             "schedule")

    def _check_pipeline_slots(self) -> bool:
        """pp·vp chunks need a layer slot each: num_layers of them, or num_layers + 2 (+ MTP
        modules) when the embedding and the loss count as layers (Megatron-Core
        --account-for-embedding-in-pipeline-split / --account-for-loss-in-pipeline-split, the
        E, L and m of --pipeline-model-parallel-layout). Returns whether they count."""
        m, p = self.model, self.parallelism
        chunks, layers = p.pp * p.vp, m.num_layers
        on = chunks > layers if p.embedding_loss_stages is None else p.embedding_loss_stages
        mtp = f" + {m.mtp_num_layers} (MTP)" if m.mtp_num_layers else ""
        most = layers + _extra_slots(m, True)
        if not on and chunks > layers:
            raise ValueError(
                f"pp·vp ({chunks}) must be at most num_layers ({layers}); with "
                f"embedding_loss_stages on, at most num_layers + embedding + loss{mtp} ({most})"
            )
        if on and chunks > most:
            raise ValueError(
                f"pp·vp ({chunks}) must be at most num_layers + embedding + loss{mtp} "
                f"({layers} + 1 + 1{mtp} = {most}) with the embedding and loss as pipeline "
                "stages (Megatron --account-for-embedding/loss-in-pipeline-split)"
            )
        return on

    @property
    def pipeline_extra_slots(self) -> int:
        """Pipeline slots beyond the transformer layers under this job's setting."""
        return _extra_slots(self.model, bool(self.parallelism.embedding_loss_stages))

    def _check_expert_folding(self, dp: int) -> None:
        """MoE parallel folding (Liu et al. 2025; Megatron-Core docs "MoE parallel folding"):
        expert layers re-fold the tp·cp·dp ranks of a pipeline stage as etp·ep·edp, so etp·ep
        divides tp·cp·dp; ep divides the routed experts; etp splits each expert's FFN width
        (Megatron shards expert fc1/fc2 over --expert-tensor-parallel-size)."""
        m, p = self.model, self.parallelism
        etp = p.expert_tp
        if m.num_experts % p.ep:
            raise ValueError(f"ep ({p.ep}) must divide num_experts ({m.num_experts})")
        if m.moe_ffn_hidden_size % etp:
            raise ValueError(f"etp ({etp}) must divide the expert FFN width "
                             f"moe_ffn_hidden_size ({m.moe_ffn_hidden_size})")
        folded = p.tp * p.cp * dp
        if folded % (etp * p.ep):
            raise ValueError(
                f"etp·ep ({etp}·{p.ep} = {etp * p.ep}) must divide tp·cp·dp "
                f"({p.tp}·{p.cp}·{dp} = {folded}): the expert layers re-fold those ranks as "
                "etp·ep·edp (etp defaults to tp)"
            )

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
