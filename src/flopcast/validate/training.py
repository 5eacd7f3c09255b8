"""Rows of the training measurement schema (../shared/measurements/README.md) as jobs.

Nothing here knows a row's id, source or value: every row is read the same way, and a row
flopcast cannot model is skipped with the reason.

Defaults for unstated fields: dp = gpus/(tp·pp·cp); pp, cp, ep, vp = 1; etp (optional column,
Megatron's --expert-tensor-parallel-size) = tp; sp = on when tp > 1
(Megatron/NeMo's recommended setting); framework (optional column) = megatron;
zero_stage = the framework's default (1 for Megatron's distributed optimizer);
micro_batch = 1 (Megatron's default); global_batch = micro_batch·dp; recompute = none
(Megatron's default); gpus_per_node = the GPU entry's NVLink domain; framework =
megatron, or fsdp when the row shards gradients or parameters (:func:`framework_of_row`).
A shape the catalog has (layers, hidden, heads, KV heads, FFN) is that model: an empty vocab
takes its vocabulary, and its MLP replaces the schema's gated-MLP rule; otherwise an empty
vocab is GPT-2's 50,257-token BPE, which Megatron's and NeMo's GPT recipes use.
A row whose model names a LoRA fine-tune (NeMo's performance tables write "LLAMA2-7B (LoRA
finetune)") trains NeMo's default adapters: rank 32 on the fused QKV projection
(megatron_gpt_finetuning_config.yaml, peft.lora_tuning: adapter_dim 32, target_modules
[attention_qkv]) on frozen weights (:func:`lora_of_row`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from flopcast.catalog import load_framework, load_gpu, load_model, model_ids, resolve_model
from flopcast.catalog.loader import DEFAULT_FRAMEWORK
from flopcast.errors import FlopcastError, validation_message
from flopcast.specs import Model, Parallelism, System, TrainingJob
from flopcast.specs.efficiency import Efficiency
from flopcast.validate.inputs import (
    measured_value,
    number,
    read_rows,  # noqa: F401  (its former home)
)
from flopcast.workloads.training import training_step
from flopcast.workloads.training.layout import Layout

TRAINING_METRICS = ("tokens_per_s_per_gpu", "step_time_s", "tflops_per_gpu", "mfu_pct",
                    "peak_memory_gib")
GIB = 2**30
DEFAULT_VOCAB = 50257  # GPT-2 BPE (Radford et al. 2019), Megatron's GPT default tokenizer


@dataclass(frozen=True)
class TrainingCase:
    """One CSV row: its job (None when skipped), metric, measured value and convention."""

    id: str
    source: str
    metric: str
    measured: float
    convention: str
    job: TrainingJob | None
    skipped: str | None


def _int(row: dict, key: str, default: int | None = None) -> int | None:
    """The whole number in ``key`` (checked against its physical range), or ``default``."""
    value = number(row, key)
    return default if value is None else int(value)


def _same_shape_model(layers, hidden, heads, kv_heads, ffn) -> Model | None:
    """The catalog model with the row's shape (layers, hidden, heads, KV heads, FFN), if any."""
    for mid in model_ids():
        m = load_model(mid)
        if (m.num_layers, m.hidden_size, m.num_attention_heads, m.kv_heads, m.ffn_hidden) == (
            layers, hidden, heads, kv_heads or heads, ffn or 4 * hidden
        ):
            return m
    return None


def model_from_row(row: dict) -> Model:
    """The row's model: from its shape columns, or its catalog id when they are empty. A
    shape that a catalog model has is that model: its vocabulary (when the row gives none)
    and its MLP come from the entry, which cites the model's paper (Nemotron-4 340B has KV
    heads and an ungated squared-ReLU MLP); the schema's rule (a given FFN with KV heads set
    is gated) stands for shapes the catalog lacks."""
    layers, hidden, heads = _int(row, "layers"), _int(row, "hidden"), _int(row, "heads")
    if layers is None or hidden is None or heads is None:
        return resolve_model(row["model"].strip())
    kv_heads, ffn = _int(row, "kv_heads"), _int(row, "ffn_hidden")
    known = _same_shape_model(layers, hidden, heads, kv_heads, ffn)
    experts = _int(row, "moe_experts", 0)
    gated = ffn is not None and kv_heads is not None  # the schema's rule for SwiGLU
    fields = dict(
        name=row["model"].strip() or "model", num_layers=layers, hidden_size=hidden,
        num_attention_heads=heads, num_kv_heads=kv_heads, ffn_hidden_size=ffn,
        vocab_size=_int(row, "vocab") or (known.vocab_size if known else DEFAULT_VOCAB),
        max_position_embeddings=_int(row, "seq_len", 2048),
        mlp="swiglu" if gated else "gelu",
        position_embedding="rotary" if gated else "learned",
        norm="rmsnorm" if gated else "layernorm",
    )
    if known is not None and not experts:
        fields["mlp"] = known.mlp  # what sets the GEMMs; norms and positions stay the rule's
    if experts:
        fields.update(num_experts=experts, moe_top_k=_int(row, "moe_topk", 1),
                      moe_ffn_hidden_size=ffn or 4 * hidden)
    return Model.model_validate(fields)


def framework_of_row(row: dict) -> str:
    """The row's ``framework``; when empty, Megatron-LM (the schema's default) unless the row
    shards gradients or parameters (zero_stage 2 or 3): Megatron-LM's own data parallelism
    shards at most the optimizer states (its distributed optimizer, ZeRO-1: Megatron-Core
    docs, "Distributed Optimizer"), and the schema names stage 3 "FSDP FULL_SHARD", so such a
    run used PyTorch FSDP (or DeepSpeed), whose eager kernels are not Megatron's fused ones:
    the ``fsdp`` profile."""
    named = (row.get("framework") or "").strip()
    if named:
        return named
    return "fsdp" if (_int(row, "zero_stage", 1) or 0) >= 2 else DEFAULT_FRAMEWORK


#: NeMo's default LoRA (megatron_gpt_finetuning_config.yaml peft.lora_tuning).
NEMO_LORA_RANK = 32
NEMO_LORA_TARGETS = ("qkv",)


def lora_of_row(row: dict) -> dict:
    """TrainingJob LoRA fields of a row: NeMo's defaults when its model names a LoRA
    fine-tune (the word "LoRA" in the model field), else none."""
    if "lora" in (row.get("model") or "").lower().replace("(", " ").split():
        return dict(lora_rank=NEMO_LORA_RANK, lora_targets=NEMO_LORA_TARGETS)
    return {}


def job_from_row(row: dict, calibration: str | None = None) -> TrainingJob:
    """The training job a row describes (module docstring lists the defaults)."""
    model = model_from_row(row)
    framework = load_framework(framework_of_row(row))
    gpu = load_gpu(row["gpu"].strip(), calibration, framework.id)
    system = System(gpu=gpu, num_gpus=_int(row, "num_gpus"),
                    gpus_per_node=_int(row, "gpus_per_node"))
    sp = _int(row, "sp")
    parallel = dict(
        tp=_int(row, "tp", 1), pp=_int(row, "pp", 1), cp=_int(row, "cp", 1),
        ep=_int(row, "ep", 1), etp=_int(row, "etp"), vp=_int(row, "vp", 1), dp=_int(row, "dp"),
        sp=None if sp is None else bool(sp),
        zero_stage=_int(row, "zero_stage", framework.default_zero_stage),
        micro_batch=_int(row, "micro_batch", 1), global_batch=_int(row, "global_batch"),
        recompute=(row.get("recompute") or "none").strip(),
    )
    return TrainingJob(
        model=model, system=system, parallelism=Parallelism(**parallel),
        seq_len=_int(row, "seq_len", 2048), precision=(row.get("precision") or "bf16").strip(),
        framework=framework, **lora_of_row(row),
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing column {exc.args[0]!r}"
    if isinstance(exc, ValidationError):
        return validation_message(exc)
    return str(exc)


def prepare_training_rows(rows: list[dict], calibration: str | None = None) -> list[TrainingCase]:
    """Build each row's job once (validation is the slow part); skip what cannot be modelled."""
    cases = []
    for i, row in enumerate(rows):
        rid = row.get("id") or f"row{i + 1}"
        metric = (row.get("metric") or "").strip()
        convention = (row.get("flops_convention") or "model").strip() or "model"
        try:
            measured = measured_value(row)
        except FlopcastError as e:
            cases.append(TrainingCase(rid, row.get("source", ""), metric, float("nan"),
                                      convention, None, str(e)))
            continue
        job, skipped = None, None
        if metric not in TRAINING_METRICS:
            skipped = f"metric {metric!r} is not a training metric ({', '.join(TRAINING_METRICS)})"
        elif convention not in ("model", "hardware"):
            skipped = f"flops_convention {convention!r} is not 'model' or 'hardware'"
        else:
            try:
                job = job_from_row(row, calibration)
            except (FlopcastError, ValidationError, ValueError, TypeError, KeyError) as e:
                skipped = _reason(e)
        cases.append(TrainingCase(rid, row.get("source", ""), metric, measured, convention, job,
                                  skipped))
    return cases


def predict_case(case: TrainingCase, efficiency: Efficiency | None = None) -> float | None:
    """Predict the case's metric in its convention (``efficiency`` overrides the GPU's)."""
    if case.job is None:
        return None
    system = case.job.system
    if efficiency is not None:
        system = system.model_copy(update={"gpu": system.gpu.model_copy(
            update={"efficiency": efficiency})})
    return case_metric(case, system, _step(case.job, system))


def _step(job: TrainingJob, system: System) -> dict:
    return training_step(job.model, system, job.precision, job.seq_len, Layout.from_job(job),
                         job.attention_backend, job.framework, lora_rank=job.lora_rank,
                         lora_targets=job.lora_targets)


def case_metric(case: TrainingCase, system: System, r: dict) -> float:
    """The case's metric from its training step ``r`` on ``system``: ``peak_memory_gib`` is
    the framework's peak allocated memory per GPU (what torch.cuda.max_memory_allocated
    reports: no CUDA context, no allocator slack)."""
    job = case.job
    if case.metric == "peak_memory_gib":
        return float(r["memory_allocated_bytes"][0]) / GIB
    step = float(r["step_time_s"][0])
    n = system.num_gpus
    flops = r["model_flops_per_step" if case.convention == "model" else "hardware_flops_per_step"]
    flops_per_gpu = float(flops[0]) / step / n
    if case.metric == "tokens_per_s_per_gpu":
        return float(r["tokens_per_step"][0]) / step / n
    if case.metric == "step_time_s":
        return step
    if case.metric == "tflops_per_gpu":
        return flops_per_gpu / 1e12
    return 100 * flops_per_gpu / system.gpu.peak(job.precision.gemm_dtype)  # mfu_pct


class TrainingPredictor:
    """Predicts cases as :func:`predict_case` does, computing each distinct job's training
    step once (rows that differ only in the metric or convention share it)."""

    def __init__(self) -> None:
        self.steps: dict[str, dict] = {}

    def predict(self, case: TrainingCase) -> float | None:
        if case.job is None:
            return None
        key = case.job.model_dump_json()
        if key not in self.steps:
            self.steps[key] = _step(case.job, case.job.system)
        return case_metric(case, case.job.system, self.steps[key])
