"""`catalog`: the built-in GPUs, models, serving engines, training frameworks and request-length
datasets, one typed row per entry (what ``flopcast catalog KIND --json`` prints)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, RootModel

from flopcast.api.common import Request, Warn, ignore

GIB = 2**30


class CatalogKind(str, Enum):
    gpus = "gpus"
    models = "models"
    engines = "engines"
    frameworks = "frameworks"
    datasets = "datasets"


class CatalogRequest(Request):
    """The options of ``flopcast catalog``: which catalog."""

    kind: CatalogKind = CatalogKind.gpus


class GpuRow(BaseModel):
    """Peak dense tensor throughput (TFLOP/s, 0 = no such tensor cores), HBM (GiB, TB/s) and
    the indicative price ($ per GPU-hour)."""

    id: str
    name: str
    bf16_tflops: float
    fp8_tflops: float
    hbm_gib: float
    hbm_tb_s: float
    usd_per_hour: float


class ModelRow(BaseModel):
    """Parameters (billions; active = per token, MoE), layers, hidden size, experts, and the
    other names of the same network (a published name also resolves without them:
    catalog/names.py)."""

    id: str
    params_b: float
    active_params_b: float
    layers: int
    hidden: int
    experts: int
    aliases: str = ""


class EngineRow(BaseModel):
    """Batch limits, KV block size, memory share, release-dependent defaults, and the engine
    whose calibration it uses."""

    id: str
    name: str
    max_batch_size: int
    max_num_tokens: int
    kv_block_tokens: int
    memory_fraction: float
    memory_of: str
    by_gpu: str
    releases: str
    calibration: str


class FrameworkRow(BaseModel):
    """Bytes kept per parameter for weights, gradients and optimizer states (None = the
    precision recipe's), autocast, residual dtype and whether element-wise ops are fused."""

    id: str
    name: str
    aliases: str
    weights_b: float | None
    grads_b: float | None
    optimizer_b: float | None
    autocast: bool
    residual: str | None
    fused: bool


class DatasetRow(BaseModel):
    """A request-length dataset: requests in it, mean input and output tokens (None: not
    stated by its sources) and the shape of each distribution."""

    id: str
    name: str
    samples: int | None
    input_kind: str
    input_mean: float | None
    output_kind: str
    output_mean: float | None


#: What ``flopcast catalog --json`` prints: a list of rows of the kind asked for.
CatalogResult = RootModel[list[GpuRow] | list[ModelRow] | list[EngineRow] | list[FrameworkRow]
                          | list[DatasetRow]]


def run_catalog(request: CatalogRequest, warn: Warn = ignore) -> CatalogResult:
    """The rows of one catalog."""
    rows = {"gpus": _gpus, "models": _models, "engines": _engines, "frameworks": _frameworks,
            "datasets": _datasets}[request.kind.value]()
    return CatalogResult(rows)


def _gpus() -> list[GpuRow]:
    from flopcast.catalog import gpu_ids, load_gpu

    return [GpuRow(id=g.id, name=g.name, bf16_tflops=g.peak_flops.get("bf16", 0) / 1e12,
                   fp8_tflops=g.peak_flops.get("fp8", 0) / 1e12, hbm_gib=g.hbm_bytes / GIB,
                   hbm_tb_s=g.hbm_bandwidth / 1e12, usd_per_hour=g.price_per_gpu_hour_usd)
            for g in (load_gpu(i) for i in gpu_ids())]


def _models() -> list[ModelRow]:
    from flopcast.catalog import load_model, model_ids

    return [ModelRow(id=m.name, params_b=m.num_parameters() / 1e9,
                     active_params_b=m.num_active_parameters() / 1e9, layers=m.num_layers,
                     hidden=m.hidden_size, experts=m.num_experts, aliases=", ".join(m.aliases))
            for m in (load_model(i) for i in model_ids())]


def _gpu_rules(engine) -> str:
    """The engine's GPU-dependent defaults in one line ("" when it has none)."""
    rules = []
    for r in engine.limits_by_gpu:
        where = f">= {r.min_hbm_gib:g} GiB" if r.min_hbm_gib else ""
        where += f"{' ' if where else ''}< {r.max_hbm_gib:g} GiB" if r.max_hbm_gib else ""
        where += f" but {', '.join(r.except_gpus)}" if r.except_gpus else ""
        sets = ", ".join(f"{name} {getattr(r, f)}" for f, name in (
            ("max_batch_size", "batch"), ("max_num_tokens", "tokens"),
            ("prefill_chunk_tokens", "chunk")) if getattr(r, f) is not None)
        rules.append(f"{where}: {sets}")
    derived = engine.max_batch_from_kv
    if derived:
        rules.append(f"batch from KV: min(KV tokens · {derived.kv_token_share:g}, "
                     f"min(max(KV tokens / context · {derived.requests_per_context:g}, "
                     f"{derived.floor}), {derived.ceiling}) {derived.pool_slack:+d})")
    share = engine.memory_fraction_by_tp or {}
    if share:
        rules.append("share by GPUs " + ", ".join(f"{k}: {v:g}" for k, v in share.items()))
    return "; ".join(rules)


def _release_rules(engine) -> str:
    """The release the entry describes and what differs in others, in one line ("" when
    nothing depends on the release): what --engine-version changes."""
    parts = [f"is {engine.describes_release}"] if engine.describes_release else []
    for c in engine.release_changes:
        values = ", ".join(f"{k} {v}" for k, v in c.values.items())
        parts.append(f"{'< ' + c.before if c.before else '>= ' + c.since}: {values}")
    return "; ".join(parts)


def _engines() -> list[EngineRow]:
    from flopcast.catalog.loader import engine_ids, load_engine

    return [EngineRow(id=e.id, name=e.name, max_batch_size=e.max_batch_size,
                      max_num_tokens=e.max_num_tokens, kv_block_tokens=e.kv_block_tokens,
                      memory_fraction=e.memory_fraction, memory_of=e.memory_fraction_of,
                      by_gpu=_gpu_rules(e), releases=_release_rules(e),
                      calibration=e.calibration_engine or e.id)
            for e in (load_engine(i) for i in engine_ids())]


def _frameworks() -> list[FrameworkRow]:
    from flopcast.catalog import framework_ids, load_framework

    return [FrameworkRow(id=f.id, name=f.name, aliases=", ".join(f.aliases),
                         weights_b=f.parameter_bytes, grads_b=f.gradient_bytes,
                         optimizer_b=f.optimizer_bytes, autocast=f.weight_casts == "autocast",
                         residual=f.residual_dtype, fused=f.elementwise is None)
            for f in (load_framework(i) for i in framework_ids())]


def _datasets() -> list[DatasetRow]:
    from flopcast.workloads.serving.workload import dataset_ids, load_dataset

    return [DatasetRow(id=d.id, name=d.name, samples=d.samples, input_kind=d.input.kind,
                       input_mean=d.input.mean, output_kind=d.output.kind,
                       output_mean=d.output.mean)
            for d in (load_dataset(i) for i in dataset_ids())]
