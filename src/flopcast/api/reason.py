"""`reason coverage`, `reason cost` and `reason plan`: test-time reasoning — requests, typed
results and run_reason_coverage / run_reason_cost / run_reason_plan (``flopcast reason …``
and ``POST /api/reason/…``)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flopcast.api.common import Finite, Int, Request, Seed, Warn, ignore
from flopcast.errors import FlopcastError, echo
from flopcast.specs.limits import MAX_SEQ_LEN

#: Largest sample count per problem (Large Language Monkeys drew 10⁴; beyond 10⁹ the
#: extrapolation means nothing and the float arithmetic of (1 - p)^k loses meaning too).
MAX_SAMPLES = 10**9
#: Largest arithmetic intensity (FLOPs per byte of HBM): B200 is 562.5 (Kinetics), no
#: accelerator is above a few thousand.
MAX_INTENSITY = 1e5
#: Most bootstrap resamples (each refits the difficulty model: ~ 10 ms per model).
MAX_REPS = 10_000
#: Most values in one list option.
MAX_LIST = 1000
#: Default largest k: 4,096 samples per problem (Brown et al. 2024 drew 10,000; beyond a few
#: thousand the extrapolation rests on the fitted tail alone).
DEFAULT_MAX_K = 4096


def parse_ks(text: str | int, name: str = "k") -> list[int]:
    """'1,10,100' → [1, 10, 100] (sorted, unique); one line naming ``name`` otherwise."""
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
        whole = all(v == int(v) for v in values)
    except (ValueError, OverflowError):  # not a number, nan, inf
        whole = False
    if not whole:
        raise FlopcastError(f"{name}: expected comma-separated whole numbers such as "
                            f"1,10,100; got {echo(text)}")
    ks = [int(v) for v in values]
    if not ks or min(ks) < 1 or max(ks) > MAX_SAMPLES or len(ks) > MAX_LIST:
        raise FlopcastError(f"{name}: at most {MAX_LIST} values, each in 1..{MAX_SAMPLES:.0e}; "
                            f"got {echo(text)}")
    return sorted(set(ks))


def check_tokens(**lengths: int) -> None:
    """Prompt and output lengths within 1..MAX_SEQ_LEN (keyword = the option's name)."""
    for name, value in lengths.items():
        if not 1 <= value <= MAX_SEQ_LEN:
            name = name.replace("_", "-")
            raise FlopcastError(f"{name}: tokens in 1..{MAX_SEQ_LEN:,}; got {echo(value)}")


# ----------------------------------------------------------------------------- coverage

class ReasonCoverageRequest(Request):
    """The options of ``flopcast reason coverage``: a per-problem samples CSV (a path on the
    machine that answers), the sample counts k, the extrapolation method, the bootstrap."""

    samples: str
    k: str | Int = "1,10,100,1000"
    method: str = "combined"
    reps: Int = 200
    seed: Seed = 0


class CoverageCurve(BaseModel):
    """Coverage (pass@k) of one model on one benchmark per k, with its 90 % band (equal to
    the value where exact; None where extrapolated without a bootstrap, reps = 0) and
    whether each k is extrapolated."""

    model: str
    benchmark: str
    problems: int
    samples_per_problem: int
    method: str
    k: list[int]
    coverage: list[float]
    low: list[float | None]
    high: list[float | None]
    extrapolated: list[bool]


class ReasonCoverageResult(BaseModel):
    """What ``flopcast reason coverage --json`` prints."""

    curves: list[CoverageCurve]


def coverage_curve(data, ks: list[int], method: str, reps: int, seed: int) -> dict:
    """One model × benchmark: the unbiased estimator where every problem has ≥ k samples
    (exact, no band), the fitted model beyond (with its bootstrap band)."""
    import numpy as np

    from flopcast.workloads.reasoning.coverage import coverage, extrapolate

    ks_arr = np.asarray(ks)
    inside = ks_arr <= int(data.samples.min())
    cov = np.empty(ks_arr.size)
    low, high = np.empty_like(cov), np.empty_like(cov)
    if inside.any():
        cov[inside] = low[inside] = high[inside] = coverage(data.samples, data.correct,
                                                            ks_arr[inside])
    if (~inside).any():
        ext = extrapolate(data.samples, data.correct, ks_arr[~inside], method, reps=reps,
                          seed=seed)
        cov[~inside], low[~inside], high[~inside] = ext.coverage, ext.low, ext.high
    return {"model": data.model, "benchmark": data.benchmark, "problems": data.n_problems,
            "samples_per_problem": int(data.samples.min()), "method": method,
            "k": ks, "coverage": cov.tolist(), "low": _nan_as_none(low),
            "high": _nan_as_none(high),
            "extrapolated": (~inside).tolist()}


def _nan_as_none(values) -> list[float | None]:
    """A band bound per k; None where there is none (NaN: no bootstrap was drawn)."""
    return [None if v != v else float(v) for v in values]


def run_reason_coverage(request: ReasonCoverageRequest,
                        warn: Warn = ignore) -> ReasonCoverageResult:
    """Coverage curves of every model × benchmark in the samples file."""
    from flopcast.workloads.reasoning.coverage import METHODS
    from flopcast.workloads.reasoning.samples import read_sample_groups

    r = request
    ks = parse_ks(r.k)
    if r.method not in METHODS:
        raise FlopcastError(f"method: one of {', '.join(METHODS)}; got {echo(r.method)}")
    if not 0 <= r.reps <= MAX_REPS:
        raise FlopcastError(f"reps: bootstrap resamples in 0..{MAX_REPS}; got {echo(r.reps)}")
    return ReasonCoverageResult(curves=[
        coverage_curve(data, ks, r.method, r.reps, r.seed)
        for _, data in sorted(read_sample_groups(r.samples).items())])


# ----------------------------------------------------------------------------- cost

class ReasonCostRequest(Request):
    """The options of ``flopcast reason cost`` (same names, snake_case; defaults as the
    CLI's)."""

    model: str
    gpu: str = "h100-sxm"
    gpus: Int = 1
    engine: str = "vllm"
    precision: str = "bf16"
    kv_precision: str | None = None
    trials: str | Int = "1,8,64"
    prompt_len: Int = 500
    out_len: Int = 4000
    intensity: Finite = 562.5


class CostRow(BaseModel):
    """One problem at ``trials`` samples: FLOPs (2·P per token), Kinetics eFLOPs and the
    share of them that is KV memory, and on the hardware the time (prefill and decode),
    trials run at once, waves of them, GPU-hours, $ and energy (J)."""

    trials: int
    flops: float
    kinetics_eflops: float
    kinetics_memory_share: float
    seconds: float
    prefill_s: float
    decode_s: float
    parallel_trials: float
    waves: float
    gpu_hours: float
    usd: float
    joules: float


class ReasonCostResult(BaseModel):
    """What ``flopcast reason cost --json`` prints."""

    model: str
    gpu: str
    gpus: int
    precision: str
    kv_precision: str
    prompt_len: int
    out_len: int
    costs: list[CostRow]


def run_reason_cost(request: ReasonCostRequest, warn: Warn = ignore) -> ReasonCostResult:
    """Cost of one problem at each number of trials, three ways."""
    from flopcast.catalog import load_gpu, resolve_model
    from flopcast.catalog.loader import inference_efficiency, load_engine
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.reasoning.cost import (
        Shape,
        kinetics_cost,
        problem_cost,
        sampling_flops,
    )

    r = request
    ns = parse_ks(r.trials, "trials")
    check_tokens(prompt_len=r.prompt_len, out_len=r.out_len)
    if not 0 < r.intensity <= MAX_INTENSITY:
        raise FlopcastError(f"intensity: FLOPs per byte in (0, {MAX_INTENSITY:g}]; got "
                            f"{r.intensity}")
    job = InferenceJob(model=resolve_model(r.model), engine=load_engine(r.engine), tp=r.gpus,
                       system=System(gpu=load_gpu(r.gpu), num_gpus=r.gpus), weights=r.precision,
                       kv_format=r.kv_precision)
    eff = inference_efficiency(job.system.gpu, job.engine)
    shape = Shape.of(job.model)
    rows = []
    for n in ns:
        hw = problem_cost(job, eff, n, r.prompt_len, r.out_len)
        kin = kinetics_cost(shape, n, r.prompt_len, r.out_len, r.intensity)
        rows.append({"trials": n,
                     "flops": float(sampling_flops(shape.active_params, r.out_len, n)),
                     "kinetics_eflops": float(kin["eflops"]),
                     "kinetics_memory_share": float(kin["memory_eflops"] / kin["eflops"]),
                     **{k: float(v) for k, v in hw.items()}})
    return ReasonCostResult(model=job.model.name, gpu=job.system.gpu.id, gpus=r.gpus,
                            precision=job.weights.name, kv_precision=job.kv_format,
                            prompt_len=r.prompt_len, out_len=r.out_len, costs=rows)


# ----------------------------------------------------------------------------- plan

class ReasonPlanRequest(Request):
    """The options of ``flopcast reason plan`` (same names, snake_case; defaults as the
    CLI's): samples files (paths on the machine that answers), the deployment, the
    strategies, and exactly one of ``target_accuracy`` and ``budget``."""

    samples: list[str] = Field(min_length=1)
    benchmark: str | None = None
    model_map: str = ""
    gpu: str = "h100-sxm"
    gpus: Int = 1
    engine: str = "vllm"
    precision: str = "bf16"
    kv_precision: str | None = None
    prompt_len: Int = 500
    out_len: Int = 512
    strategies: str = "oracle,best-of-n,majority"
    verifier_tpr: Finite = 0.9
    verifier_fpr: Finite = 0.1
    max_k: Int = DEFAULT_MAX_K
    k_per_octave: Int = 4
    target_accuracy: Finite | None = None
    budget: Finite | None = None
    objective: str = "usd"
    per_bin: Int = 0
    concentration: Finite | None = None
    tree_search: str = "rebase-mistral-7b-math"
    sequential: str = "ttspm-absorbing"
    method: str = "combined"


class PlanOption(BaseModel):
    """One model × strategy × k: accuracy (and its upper band where extrapolated) and its
    cost per problem in every objective's unit."""

    model_config = ConfigDict(extra="allow")

    model: str
    strategy: str
    k: int
    accuracy: float


class ReasonPlanResult(BaseModel):
    """What ``flopcast reason plan --json`` prints: the choice, the accuracy-vs-cost Pareto
    front, each model × strategy's accuracy ceiling, and with ``per_bin`` the allocation per
    difficulty bin."""

    model_config = ConfigDict(extra="forbid")

    benchmark: str
    objective: str
    kv_precision: str
    target_accuracy: float | None
    budget: float | None
    best: PlanOption
    front: list[PlanOption]
    ceilings: list[dict[str, Any]]
    skipped: list[str] = []
    per_bin: dict[str, Any] | None = None


def model_map(text: str) -> dict[str, str]:
    """'my-12b=pythia-12b,…' → {samples model: catalog model}."""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, ref = item.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise FlopcastError(f"model-map: expected name=catalog-id pairs such as "
                                f"pythia-12b=pythia-12b; got {echo(item)}")
        out[name.strip()] = ref.strip()
    return out


def candidates(paths: list, benchmark: str | None, mapping: dict, deployment: dict):
    """One planner candidate per model in the samples files, on ``benchmark``."""
    from flopcast.catalog import load_gpu, resolve_model
    from flopcast.catalog.loader import inference_efficiency, load_engine
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.reasoning import read_sample_groups
    from flopcast.workloads.reasoning.plan import Candidate

    groups = {}
    for path in paths:
        groups.update(read_sample_groups(path))
    benches = sorted({b for _, b in groups})
    if benchmark is None and len(benches) > 1:
        raise FlopcastError(f"benchmark: the samples hold {', '.join(benches)}; choose one")
    bench = benchmark or benches[0]
    chosen = {m: s for (m, b), s in sorted(groups.items()) if b == bench}
    if not chosen:
        raise FlopcastError(f"benchmark: {echo(bench)} not in the samples ({', '.join(benches)})")
    gpu, engine = load_gpu(deployment["gpu"]), load_engine(deployment["engine"])
    cands = []
    for name, s in chosen.items():
        try:
            model = resolve_model(mapping.get(name, name))
        except FlopcastError as e:
            raise FlopcastError(f"model-map: samples model {name!r} is not a catalog model "
                                f"({e}); map it with --model-map {name}=<catalog id>") from None
        job = InferenceJob(model=model, engine=engine, tp=deployment["gpus"],
                           system=System(gpu=gpu, num_gpus=deployment["gpus"]),
                           weights=deployment["precision"],
                           kv_format=deployment.get("kv_precision"))
        # The planner fits its own difficulty model (--method) to the samples.
        cands.append(Candidate(name, s, None, job, inference_efficiency(gpu, engine)))
    return bench, cands


def _check_plan(r: ReasonPlanRequest) -> tuple[list[str], list[int]]:
    """(the strategies, the sample counts k to try) of a valid request; one line otherwise."""
    from flopcast.workloads.reasoning.plan import OBJECTIVES
    from flopcast.workloads.reasoning.strategies import STRATEGIES, check_verifier

    check_tokens(prompt_len=r.prompt_len, out_len=r.out_len)
    if r.target_accuracy is not None and not 0 < r.target_accuracy < 1:
        # accuracy from a fitted difficulty model reaches 1 only as k → ∞: a target of 1 would
        # pick whichever k rounds to it
        raise FlopcastError(f"target-accuracy: a share in (0, 1), e.g. 0.99; got "
                            f"{r.target_accuracy}")
    if r.budget is not None and not (math.isfinite(r.budget) and r.budget > 0):
        raise FlopcastError(f"budget: a finite number > 0; got {r.budget}")
    if (r.target_accuracy is None) == (r.budget is None):
        raise FlopcastError("reason plan: give --target-accuracy or --budget (one of them)")
    if r.objective not in OBJECTIVES:
        raise FlopcastError(f"objective: one of {', '.join(OBJECTIVES)}; got "
                            f"{echo(r.objective)}")
    chosen = [s.strip() for s in r.strategies.split(",") if s.strip()]
    if [s for s in chosen if s not in STRATEGIES] or not chosen:
        raise FlopcastError(f"strategies: each one of {', '.join(STRATEGIES)}; got "
                            f"{echo(r.strategies)}")
    check_verifier(r.verifier_tpr, r.verifier_fpr)
    _check_settings(r)
    if not 0 <= r.per_bin <= 20:
        raise FlopcastError(f"per-bin: bins in 0..20; got {r.per_bin}")
    top = parse_ks(str(r.max_k), "max-k")[0]
    if not 1 <= r.k_per_octave <= 16:
        raise FlopcastError(f"k-per-octave: 1..16; got {r.k_per_octave}")
    n = r.k_per_octave
    return chosen, sorted({min(top, round(2 ** (i / n))) for i in range(n * top.bit_length() + 1)})


def _check_settings(r: ReasonPlanRequest) -> None:
    """The strategy settings name catalog entries and a coverage method; one line otherwise."""
    from flopcast.workloads.reasoning.coverage import METHODS
    from flopcast.workloads.reasoning.search import sequential_setting, tree_setting

    if r.concentration is not None and not 0.0 <= r.concentration <= 1.0:
        raise FlopcastError(f"concentration: a share in [0, 1]; got {r.concentration}")
    if r.method not in METHODS:
        raise FlopcastError(f"method: one of {', '.join(METHODS)}; got {echo(r.method)}")
    tree_setting(r.tree_search)
    sequential_setting(r.sequential)


def _settings(r: ReasonPlanRequest):
    from flopcast.workloads.reasoning.plan import Settings

    return Settings(tpr=r.verifier_tpr, fpr=r.verifier_fpr, concentration=r.concentration,
                    tree=r.tree_search, sequential=r.sequential, method=r.method)


def run_reason_plan(request: ReasonPlanRequest, warn: Warn = ignore,
                    options_to: Any = None) -> ReasonPlanResult:
    """The cheapest model × strategy × k reaching the target accuracy, or the most accurate
    within the budget, with the Pareto front. ``options_to(rows, cost key)`` (the CLI's
    --plot) receives every option evaluated."""
    from flopcast.workloads.reasoning.plan import (
        OBJECTIVES,
        allocate_by_bin,
        choose,
        difficulty_bins,
        evaluate,
        pareto_front,
    )

    r = request
    strategies, ks = _check_plan(r)
    bench, cands = candidates(r.samples, r.benchmark, model_map(r.model_map),
                              {"gpu": r.gpu, "gpus": r.gpus, "engine": r.engine,
                               "precision": r.precision, "kv_precision": r.kv_precision})
    opts = evaluate(cands, strategies, ks, r.prompt_len, r.out_len, settings=_settings(r))
    key = OBJECTIVES[r.objective]
    answer = {"benchmark": bench, "objective": r.objective,
              "kv_precision": cands[0].job.kv_format, "target_accuracy": r.target_accuracy,
              "budget": r.budget, "best": choose(opts, key, r.target_accuracy, r.budget),
              "front": pareto_front(opts.rows, key), "ceilings": opts.ceilings,
              "skipped": opts.skipped}
    if r.per_bin:
        if len({c.samples.problems for c in cands}) > 1:
            raise FlopcastError("per-bin: the candidates' samples cover different problems")
        answer["per_bin"] = allocate_by_bin(opts, difficulty_bins(cands[0].samples, r.per_bin),
                                            key, r.target_accuracy, r.budget)
    if options_to is not None:
        options_to(opts.rows, key)
    return ReasonPlanResult.model_validate(answer)
