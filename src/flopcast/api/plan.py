"""`plan train`: search configurations, clusters and sweeps — the request, the typed answer
(the planner's dict, typed) and run_plan_train (``flopcast plan train`` and
``POST /api/plan/train``).

Imports the training workload: the CLI imports this module inside the command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, create_model

from flopcast.api.common import (
    MAX_INT,
    Finite,
    Int,
    ModelFlags,
    ObjectiveChoice,
    PrecisionChoice,
    Warn,
    beyond_context,
    ensure_finite,
    fields_of,
    ignore,
    lora_targets_of,
    not_a_bool,
    parse_count,
    partial_node,
    short,
)
from flopcast.errors import FlopcastError
from flopcast.workloads.training.estimate import TrainingEstimate

#: A list option: '4,8' (as on the command line) or one number.
IntList = Annotated[str | Int, BeforeValidator(not_a_bool)]


class PlanTrainRequest(ModelFlags):
    """The options of ``flopcast plan train`` (same names, snake_case; defaults as the
    CLI's). ``model`` may list several models and ``gpu`` several GPU types (comma-separated);
    ``gpus`` is a count (512), a range (64..2048: 64 doubled up to 2048) or a list (64,128); ``tp``,
    ``pp``, ``cp``, ``ep``, ``micro_batch``, ``zero`` pin those search axes ('4,8')."""

    gpu: str = "h100-sxm"
    gpus: IntList = "8"
    seq_len: Int = 4096
    seq_lens: str | None = None
    global_batch: Int | None = None
    precision: PrecisionChoice = PrecisionChoice.bf16
    tokens: str | None = None
    objective: ObjectiveChoice = ObjectiveChoice.time
    top: Int = 5
    deadline_days: Finite | None = None
    tp: IntList | None = None
    pp: IntList | None = None
    cp: IntList | None = None
    ep: IntList | None = None
    micro_batch: IntList | None = None
    zero: IntList | None = None
    framework: str = "megatron"
    attention_backend: str | None = None
    lora_rank: Int | None = None
    lora_targets: str | None = None
    calibration: str | None = None


#: One ranked configuration: the object ``flopcast train --json`` prints for it (without the
#: price and expected error, which the plan gives once).
PlanEntry = create_model("PlanEntry", __doc__="One ranked configuration: a training "
                         "estimate (times in s, memory in bytes, energy in MWh).",
                         **fields_of(TrainingEstimate))


class ClusterRow(BaseModel):
    """One cluster (GPU type × count): configurations evaluated and fitting, and its best
    configuration's speed, cost per million tokens, time, cost and energy (None: nothing
    fits, or no --tokens); ``meets_deadline`` only with --deadline-days."""

    gpu: str
    num_gpus: int
    evaluated: int
    feasible: int
    fits: bool
    offload_searched: bool
    tokens_per_s: float | None
    usd_per_million_tokens: float | None
    time_to_train_days: float | None
    cost_usd: float | None
    energy_mwh: float | None
    mfu: float | None = None
    config: dict[str, Any] | None
    meets_deadline: bool | None = None


class ConfigFrontPoint(BaseModel):
    """One cluster's front: tokens/s against memory headroom (GiB) per configuration."""

    tokens_per_s: float
    memory_headroom_gib: float
    config: dict[str, Any]


class ClusterFrontPoint(BaseModel):
    """Several clusters' front: speed against cost per token, per cluster."""

    gpu: str
    num_gpus: int
    tokens_per_s: float
    usd_per_million_tokens: float
    time_to_train_days: float | None
    cost_usd: float | None


class PlanCounts(BaseModel):
    """enumerated = rejected by a rule + evaluated; evaluated = fit + do not fit."""

    enumerated: int
    rejected_by_rule: dict[str, int]
    evaluated: int
    fit: int
    do_not_fit: int


class PlanResult(BaseModel):
    """What ``flopcast plan train --json`` prints for one model and sequence length."""

    evaluated: int
    rejected: dict[str, int]
    top: list[PlanEntry]
    clusters: list[ClusterRow]
    pareto: list[ConfigFrontPoint] | list[ClusterFrontPoint]
    cheapest_within_deadline: ClusterRow | None = None
    counts: PlanCounts
    expected_error: dict[str, Any]
    price_per_gpu_hour_usd: dict[str, float]


class _SweepKey(BaseModel):
    model: str
    seq_len: int


class PlanSweepItem(PlanResult, _SweepKey):
    """One model × sequence length of a sweep (model and seq_len first)."""


class PlanSweepResult(BaseModel):
    """What ``flopcast plan train --json`` prints for several models or sequence lengths."""

    sweep: list[PlanSweepItem]


def parse_gpu_counts(text: str) -> list[int]:
    """'512' → [512]; '64..2048' → 64 doubled up to 2048, with 2048 itself (_powers_of_two);
    '64,96,128' → that list.
    Every count is 1 to MAX_INT (a 20-digit count would search for hours)."""
    text = text.strip()
    try:
        if ".." in text:
            lo, hi = (int(x) for x in text.split(".."))
            if lo > hi:
                raise ValueError
            counts = _powers_of_two(lo, min(hi, MAX_INT + 1))
        else:
            counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise FlopcastError(f"--gpus: expected a count (512), a range (64..2048) or a list "
                            f"(64,128); got {short(text)!r}") from None
    if not all(1 <= n <= MAX_INT for n in counts):
        raise FlopcastError(f"--gpus: every GPU count must be at least 1 and at most "
                            f"{MAX_INT:,}; got {short(text)!r}")
    return list(dict.fromkeys(counts))  # '8,8' is one cluster, not two equal rows


def _powers_of_two(lo: int, hi: int) -> list[int]:
    """lo, 2·lo, 4·lo, … up to hi, and hi itself (lo < 1 gives [lo]: refused by the caller)."""
    if lo < 1:
        return [lo]
    counts, n = [], lo
    while n <= hi:
        counts.append(n)
        n *= 2
    if counts[-1] != hi:
        counts.append(hi)
    return counts


def gpu_refs(text: str) -> list[str]:
    """'h100-sxm,my.yaml' → ['h100-sxm', '/abs/my.yaml']: GPU entry files as absolute paths,
    so that Ray workers in another directory find them too."""
    from flopcast.catalog.loader import is_gpu_file

    refs = [g.strip() for g in text.split(",") if g.strip()]
    return [str(Path(g).expanduser().resolve()) if is_gpu_file(g) else g for g in refs]


def int_list(value: str | int | None, name: str, low: int = 1,
             high: int = MAX_INT) -> list[int] | None:
    """'4,8' → [4, 8]; each value within [low, high], else one line naming --name."""
    if value is None:
        return None
    text = str(value)
    allowed = f"comma-separated integers from {low} to {high:,}"
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(low <= v <= high for v in values):
        raise FlopcastError(f"--{name}: expected {allowed}; got {short(text)!r}")
    return values


def plan_requests(r: PlanTrainRequest, warn: Warn = ignore) -> list:
    """The planner's PlanRequests: one per model × sequence length."""
    from flopcast.specs.plan import PlanRequest

    if r.deadline_days is not None and not r.tokens:
        raise FlopcastError(f"--deadline-days {r.deadline_days:g}: needs --tokens (the "
                            "training budget the deadline applies to)")
    options = {k: v for k, v in dict(
        tp=int_list(r.tp, "tp"), pp=int_list(r.pp, "pp"), cp=int_list(r.cp, "cp"),
        ep=int_list(r.ep, "ep"), micro_batch=int_list(r.micro_batch, "micro-batch"),
        zero=int_list(r.zero, "zero", 0, 3)).items() if v is not None}
    refs = [m.strip() for m in r.model.split(",")] if r.model else [None]
    models = [r.resolve(ref) for ref in refs]
    lengths = int_list(r.seq_lens, "seq-lens") or [r.seq_len]
    targets = lora_targets_of(r.lora_targets, r.lora_rank, warn)  # one warning, not one a plan
    return [PlanRequest(
        model=m, gpus=gpu_refs(r.gpu), gpu_counts=parse_gpu_counts(str(r.gpus)),
        seq_len=s, global_batch=r.global_batch, precision=r.precision.value,
        tokens=parse_count(r.tokens) if r.tokens is not None else None, objective=r.objective.value,
        top=r.top, deadline_days=r.deadline_days, options=options, framework=r.framework,
        lora_rank=r.lora_rank, lora_targets=targets,
        attention_backend=r.attention_backend or None,
    ) for m in models for s in lengths]


def run_plan_train(request: PlanTrainRequest, warn: Warn = ignore, use_ray: bool = False,
                   progress=None) -> PlanResult | PlanSweepResult:
    """Search every configuration (and cluster): a PlanResult, or a PlanSweepResult for
    several models or sequence lengths. ``use_ray`` spreads clusters over Ray tasks;
    ``progress(k, n_clusters, done, total)`` hears of a single plan's search."""
    from flopcast.catalog import load_gpu
    from flopcast.workloads.training.distributed import plan_sweep
    from flopcast.workloads.training.plan import plan_training

    requests = plan_requests(request, warn)
    first = requests[0]
    entries = [load_gpu(g, request.calibration) for g in first.gpus]  # unknown GPU: refused
    families = [gpu.family for gpu in entries]
    if len(requests) > 1:
        answers = [annotate(a, families, first.framework)
                   for a in plan_sweep(requests, request.calibration, use_ray=use_ray)]
        result = PlanSweepResult.model_validate({"sweep": [
            {"model": r.model.name, "seq_len": r.seq_len, **a}
            for r, a in zip(requests, answers, strict=True)]})
    else:
        answer = plan_training(first, request.calibration, use_ray=use_ray,
                               progress=progress)
        result = PlanResult.model_validate(annotate(answer, families, first.framework))
    for r in requests:  # after the search: an answer, not an error, follows
        if (text := beyond_context(r.model, r.seq_len, "--seq-len")) is not None:
            warn(text)
    for text in partial_nodes(entries, first.gpu_counts):
        warn(text)
    return result


def partial_nodes(gpus: list, counts: list[int]) -> list[str]:
    """One warning per cluster whose last node is partial (12 H100s on nodes of 8): the
    search prices communication as if every node were full, as ``train`` does."""
    unique = {g.id: g for g in gpus}.values()  # a GPU named twice warns once
    texts = (partial_node(n, gpu.gpus_per_node, gpu.id) for gpu in unique for n in counts)
    return [text for text in texts if text is not None]


def plan_counts(answer: dict) -> dict:
    """How many configurations were enumerated, rejected by a rule before evaluation (per
    reason), evaluated, and of those how many fit in memory: enumerated = rejected by rule +
    evaluated, evaluated = fit + do not fit. (The search's ``rejected`` mixes rule rejections
    with memory rejections of evaluated ones, so its counts did not add up to anything.)"""
    from flopcast.workloads.training.search import REASONS

    memory_reason = REASONS[-1]
    by_rule = {k: v for k, v in answer["rejected"].items() if k != memory_reason}
    evaluated = answer["evaluated"]
    return {"enumerated": evaluated + sum(by_rule.values()), "rejected_by_rule": by_rule,
            "evaluated": evaluated, "fit": sum(c["feasible"] for c in answer["clusters"]),
            "do_not_fit": answer["rejected"].get(memory_reason, 0)}


def annotate(answer: dict, families: list[str], framework=None) -> dict:
    """The answer with its counts, the expected error of its step times (under the request's
    framework profile) and the prices per GPU-hour it assumed (``answer`` itself is left as
    the planner returned it)."""
    from flopcast.accuracy import expected_error, training_kinds
    from flopcast.catalog import load_gpu

    prices = {c["gpu"]: load_gpu(c["gpu"]).price_per_gpu_hour_usd for c in answer["clusters"]}
    out = {**answer, "counts": plan_counts(answer),
           "expected_error": expected_error(
               training_kinds(framework.id if framework else "megatron")[0], families),
           "price_per_gpu_hour_usd": prices}
    ensure_finite(out, "plan")
    return out
