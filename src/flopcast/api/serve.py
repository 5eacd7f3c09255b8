"""`serve` and `serve plan`: simulate a request stream on a deployment, and find the cheapest
fleet meeting an SLO — requests, typed results, run_serve and run_serve_plan
(``flopcast serve``/``serve plan`` and ``POST /api/serve``/``/api/serve/plan``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from flopcast.api.common import (
    Finite,
    Int,
    LatencyMs,
    ModelFlags,
    Release,
    Seed,
    Warn,
    engine_of,
    engine_version_note,
    ensure_finite,
    ignore,
    one_line,
)
from flopcast.errors import FlopcastError
from flopcast.specs.engine import ExpertDispatch

#: Requests simulated when --num-requests is not given (vLLM's benchmark_serving default).
DEFAULT_NUM_REQUESTS = 1000
#: --draws at most (a guard against a typo that would run for hours, not a model value).
MAX_DRAWS_ASKED = 100


class _Load(ModelFlags):
    """What `serve` and `serve plan` share: the model, the engine and the request lengths."""

    precision: str = "bf16"
    engine: str = "vllm"
    engine_version: Release | None = None
    expert_dispatch: ExpertDispatch | None = None
    dataset: str | None = None
    input_len: Int | None = None
    output_len: Int | None = None
    length_dist: str = "fixed"
    seed: Seed = 0
    slo_ttft_p99: LatencyMs | None = None
    slo_tpot_p99: LatencyMs | None = None
    calibration: str | None = None


class ServeRequest(_Load):
    """The options of ``flopcast serve`` (same names, snake_case; defaults as the CLI's):
    exactly one load (``request_rate``, ``concurrency``, ``offline``, or a ``trace`` file);
    with an SLO and no load, the highest Poisson rate meeting it."""

    gpu: str = "h100-sxm"
    gpus: Int = 1
    tp: Int | None = None
    pp: Int = 1
    ep: Int = 1
    kv_precision: str | None = None
    scheduler: str | None = None
    max_num_seqs: Int | None = None
    max_num_tokens: Int | None = None
    chunk_tokens: Int | None = None
    batch_size: Int | None = None
    prefix_caching: bool | None = None
    router: str = "round-robin"
    request_rate: Finite | None = None
    burstiness: Finite = 1.0
    concurrency: Int | None = None
    offline: bool = False
    range_ratio: Finite | None = None
    spread: Finite | None = None
    trace: str | None = None
    num_requests: Int | None = None
    shared_prefix_len: Int = 0
    num_prefixes: Int = 0
    slo_itl_p99: LatencyMs | None = None
    #: Independent draws of a random workload, summarised by their median (None: enough to
    #: simulate serving.draw_counts.REQUESTS_OVER_DRAWS requests, an odd count, at most MAX_DRAWS;
    #: 1 when the seed does not change the workload, whatever is asked).
    draws: Int | None = None


class LatencyCdf(BaseModel):
    """One latency's distribution over the simulated requests (ITL: over output tokens):
    the value in ms at each quantile of the fixed grid (serving.metrics.CDF_QUANTILES:
    min, 0.01, 0.05 … 0.95 by 0.05, 0.99, max); ``values`` is empty when nothing has it."""

    quantiles: list[float]
    values: list[float]


class ServeResult(BaseModel):
    """What ``flopcast serve --json`` prints: latency statistics in ms (mean and
    percentiles) and their distributions (``cdf``: TTFT, TPOT, ITL, end-to-end), throughput
    per s, goodput, KV and queue occupancy (absent when nothing ran), the deployment
    (``config``), with an SLO and no rate the highest rate meeting it, and the expected
    error."""

    # extra="allow": a key the simulator adds later reaches the answer rather than failing it
    model_config = ConfigDict(extra="allow")

    num_requests: int
    duration_s: float
    ttft_ms: dict[str, float | None]  # null: no request has it (e.g. TPOT of 1-token outputs)
    tpot_ms: dict[str, float | None]
    itl_ms: dict[str, float | None]
    e2e_latency_ms: dict[str, float | None]
    cdf: dict[str, LatencyCdf]
    requests_per_s: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    output_tokens_per_s_per_user: float | None
    goodput_requests_per_s: float
    mean_input_len: float
    mean_output_len: float
    preemptions: int
    kv_utilization_mean: float | None = None
    kv_utilization_peak: float | None = None
    queue_length_mean: float | None = None
    queue_length_peak: int | None = None
    busy_share: float | None = None
    config: dict[str, Any] | None = None
    max_request_rate_under_slo: float | None = None
    #: "latency" when the SLO bounds the rate, "saturation" when it still holds at the
    #: replica's saturated throughput (capacity.saturated_rate), beyond which queues grow.
    slo_rate_limited_by: Literal["latency", "saturation"] | None = None
    #: With an SLO and a load: whether every given p99 bound (TTFT, TPOT, ITL) holds.
    slo_p99_met: bool | None = None
    expected_error: dict[str, Any] | None = None
    #: Independent draws of the workload the statistics are medians of (serving.draws).
    draws: int = 1
    #: [min, max] over the draws of the throughputs, the duration and each latency statistic.
    draw_range: dict[str, Any] | None = None


def requests_for(r: _Load, rate=None, concurrency=None, offline=False, trace=None,
                 num_requests: int = 1000, extra: dict | None = None):
    """(the simulated requests, the closed-loop concurrency or None) of a load: a trace, or
    lengths (a dataset, or input/output lengths in a distribution) with arrivals."""
    from flopcast.workloads.serving.workload import ArrivalSpec, make_requests, read_trace

    extra = extra or {}
    modes = [x for x in (rate is not None, concurrency is not None, offline) if x]
    if trace is not None:
        if modes or r.dataset:
            raise FlopcastError("trace: a trace fixes arrivals and lengths; drop --request-rate"
                                ", --concurrency, --offline and --dataset")
        return read_trace(trace), None
    if len(modes) != 1:
        raise FlopcastError("load: give exactly one of --request-rate, --concurrency, "
                            "--offline (or --trace)")
    lengths = _lengths(r, extra.get("range_ratio"), extra.get("spread"))
    if rate is not None:
        burstiness = extra.get("burstiness", 1.0)
        arrivals = ArrivalSpec(kind="poisson" if burstiness == 1.0 else "gamma", rate=rate,
                               cv=burstiness)
    elif concurrency is not None:
        arrivals = ArrivalSpec(kind="concurrency", concurrency=concurrency)
    else:
        arrivals = ArrivalSpec(kind="offline")
    reqs = make_requests(lengths, arrivals, num_requests, seed=r.seed,
                         shared_prefix_len=extra.get("shared_prefix_len", 0),
                         num_prefixes=extra.get("num_prefixes", 0))
    return reqs, concurrency


def _lengths(r: _Load, range_ratio, spread):
    """The LengthSpec of a load: its dataset, or its lengths in its distribution."""
    from flopcast.workloads.serving.workload import LengthSpec

    if r.dataset:
        return LengthSpec(kind="dataset", dataset=r.dataset, input_len=r.input_len,
                          output_len=r.output_len)
    if r.input_len is None or r.output_len is None:
        raise FlopcastError("lengths: give --dataset, or --input-len and --output-len")
    extra: dict = {"range_ratio": range_ratio} if range_ratio is not None else {}
    if r.length_dist == "lognormal":
        sigma = 1.0 if spread is None else spread
        extra.update(input_sigma=sigma, output_sigma=sigma)
    elif r.length_dist == "normal":
        share = 0.2 if spread is None else spread  # 0 = fixed lengths
        extra.update(input_std=share * r.input_len, output_std=share * r.output_len)
    return LengthSpec(kind=r.length_dist, input_len=r.input_len, output_len=r.output_len,
                      **extra)


def serving_job(r: _Load, gpu: str, gpus: int, tp, pp: int = 1, ep: int = 1,
                kv_precision=None):
    """The InferenceJob of one replica (tp defaults to gpus / pp)."""
    from flopcast.catalog import load_gpu
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob

    return InferenceJob(
        model=r.resolve(), system=System(gpu=load_gpu(gpu, r.calibration), num_gpus=gpus),
        # max(pp, 1): pp 0 must reach InferenceJob's validator, not divide by zero here.
        engine=engine_of(r.engine, r.engine_version, r.expert_dispatch),
        tp=tp if tp is not None else max(gpus // max(pp, 1), 1),
        pp=pp, ep=ep, weights=r.precision, kv_format=kv_precision)


def run_serve(request: ServeRequest, warn: Warn = ignore,
              trace_to: Callable[[Any], None] | None = None) -> ServeResult:
    """Simulate serving: a ServeResult. ``trace_to`` (the CLI's --plot, --chrome-trace)
    receives the simulation with its per-iteration trace when a rate or load was given."""
    from flopcast.accuracy import expected_error
    from flopcast.workloads.serving.run import deployment_for, serve

    r = request
    if r.num_requests is not None and r.num_requests < 1:
        raise FlopcastError(f"num-requests: must be at least 1; got {r.num_requests}")
    if r.draws is not None and not 1 <= r.draws <= MAX_DRAWS_ASKED:
        raise FlopcastError(f"draws: must be between 1 and {MAX_DRAWS_ASKED}; got {r.draws}")
    if r.router == "by-size":
        # its size ranges come from `serve plan --by-size`; here it would silently balance load
        raise FlopcastError("router: 'by-size' splits requests by size between GPU types "
                            "(`serve plan --by-size` sets it up); one deployment takes "
                            "round-robin, least-outstanding-tokens or prefix-affinity")
    find_rate = _finds_rate(r)
    def requests_of(seed: int):
        return requests_for(
            r.model_copy(update={"seed": seed}), 1.0 if find_rate else r.request_rate,
            r.concurrency, r.offline, r.trace, r.num_requests or DEFAULT_NUM_REQUESTS,
            {k: getattr(r, k) for k in ("range_ratio", "spread", "burstiness",
                                        "shared_prefix_len", "num_prefixes")})

    reqs, closed = requests_of(r.seed)
    job = serving_job(r, r.gpu, r.gpus, r.tp, r.pp, r.ep, r.kv_precision)
    dep = deployment_for(job, r.scheduler, r.max_num_seqs, r.max_num_tokens, r.chunk_tokens,
                         r.batch_size, r.prefix_caching, r.router, r.calibration)
    # warnings only once the request is known to be valid: a refused one gets one line
    if note := engine_version_note(r.engine, r.engine_version):
        warn(note)
    for text in _unused_load_options(r):
        warn(text)
    if r.batch_size is not None and dep.scheduler != "static":
        warn(f"--batch-size {r.batch_size}: ignored by the {dep.scheduler} scheduler (it "
             "sizes static batches; continuous batching is bounded by --max-num-seqs)")
    if find_rate:
        from flopcast.workloads.serving.capacity import max_rate_under_slo

        best, summary = max_rate_under_slo(dep, reqs, r.slo_ttft_p99, r.slo_tpot_p99,
                                           r.slo_itl_p99)
        summary["max_request_rate_under_slo"] = best
        summary["draws"] = 1  # one draw per rate tried
        summary["slo_rate_limited_by"] = "saturation" if summary.pop(
            "at_saturation", False) else "latency"
    else:
        from flopcast.workloads.serving.draws import serve_draws

        summary, res = serve_draws(
            lambda q, first: serve(dep, q, closed, r.slo_ttft_p99, r.slo_tpot_p99,
                                   keep_trace=first and trace_to is not None),
            lambda seed: reqs if seed == r.seed else requests_of(seed)[0], r.seed, r.draws)
        if r.draws is not None and r.draws > summary["draws"]:
            warn(f"--draws {r.draws}: the workload does not depend on the seed (fixed "
                 "lengths and arrivals, or a trace); one draw")
        if any(x is not None for x in (r.slo_ttft_p99, r.slo_tpot_p99, r.slo_itl_p99)):
            from flopcast.workloads.serving.capacity import meets_slo

            summary["slo_p99_met"] = meets_slo(summary, r.slo_ttft_p99, r.slo_tpot_p99,
                                               r.slo_itl_p99)
        if trace_to is not None:
            trace_to(res)
    summary["expected_error"] = expected_error("serving", [job.system.gpu.family])
    ensure_finite(undefined_as_null(summary), "simulation")
    return ServeResult.model_validate(summary)


def _finds_rate(r: ServeRequest) -> bool:
    """Whether the request asks for the highest rate meeting its SLO (an SLO, no load)."""
    return bool(r.request_rate is None and (r.slo_ttft_p99 or r.slo_tpot_p99 or r.slo_itl_p99)
                and not (r.concurrency or r.offline or r.trace))


def _unused_load_options(r: ServeRequest) -> list[str]:
    """Load options given that this load does not use, one warning each (not refused: the
    rest of the request is well defined)."""
    out = []
    find_rate = _finds_rate(r)
    if find_rate and r.draws is not None:
        out.append(f"--draws {r.draws}: ignored; the SLO search simulates one draw per rate")
    if r.trace is not None and r.num_requests is not None:
        out.append(f"--num-requests {r.num_requests}: ignored; the trace fixes the requests")
    if r.shared_prefix_len and r.input_len is not None and r.shared_prefix_len >= r.input_len:
        out.append(f"--shared-prefix-len {r.shared_prefix_len}: not shorter than --input-len "
                   f"{r.input_len}; each prefix is capped at its prompt's length − 1 tokens")
    return out


LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms")


def undefined_as_null(summary: dict) -> dict:
    """Latencies no request has (TPOT and ITL when every output is one token) are null, not
    NaN: strict JSON has no NaN, and ensure_finite keeps refusing real overflows."""
    for key in LATENCY_KEYS:
        if not summary.get("cdf", {}).get(key, {}).get("values", [None]):
            summary[key] = {k: None for k in summary[key]}
            if key == "tpot_ms":
                summary["output_tokens_per_s_per_user"] = None
    return summary


class ServePlanRequest(_Load):
    """The options of ``flopcast serve plan`` (same names, snake_case; defaults as the
    CLI's): the Poisson ``request_rate`` the fleet must take, the GPU types and largest tp to
    consider, whether a fleet may mix two types."""

    request_rate: Finite
    gpu_types: str = "h100-sxm,h200,a100-80gb,l40s"
    max_tp: Int = 8
    num_requests: Int = 400
    mixed: bool = True
    by_size: bool = False


class FleetPart(BaseModel):
    replica: str
    count: int
    usd_per_hour: float
    #: under by-size routing: [lo, hi, share] request-size ranges (prompt + output tokens,
    #: lo <= size < hi) this type takes, and the share of each
    sizes: list[tuple[int, int, float]] | None = None


class Fleet(BaseModel):
    """The cheapest fleet: replicas of each kind, $ per hour, and its simulated summary."""

    fleet: list[FleetPart]
    usd_per_hour: float
    routing: str
    summary: ServeResult


class AloneRow(BaseModel):
    """One GPU type alone at the rate: replicas needed, $ per hour, simulated p99s (ms)."""

    replica: str
    capacity_rps: float
    count: int
    usd_per_hour: float
    ttft_p99_ms: float
    tpot_p99_ms: float | None


class ReplicaOptionRow(BaseModel):
    replica: str
    capacity_rps: float
    usd_per_hour: float
    #: with by_size: the capacity on each request-size bucket alone (0: SLO not met on it)
    bucket_capacity_rps: list[float] = []


class ServePlanResult(BaseModel):
    """What ``flopcast serve plan --json`` prints."""

    best: Fleet
    front: list[AloneRow]
    left_out: list[str]
    options: list[ReplicaOptionRow]
    expected_error: dict[str, Any]


def run_serve_plan(request: ServePlanRequest, warn: Warn = ignore,
                   progress: Callable[[str], None] | None = None) -> ServePlanResult:
    """The cheapest fleet meeting the p99 SLOs at the rate, and each GPU type alone.
    ``progress`` hears the replica whose capacity is being measured."""
    from flopcast.accuracy import expected_error
    from flopcast.catalog import load_gpu
    from flopcast.workloads.serving.fleet import front, plan_fleet, replica_options

    r = request
    if r.request_rate <= 0:
        raise FlopcastError(f"request-rate: must be > 0; got {r.request_rate}")
    if r.slo_ttft_p99 is None and r.slo_tpot_p99 is None:
        # without a bound every replica "fails" it, which read as "no GPU meets the SLO"
        raise FlopcastError("slo: serve plan sizes a fleet to an SLO; give --slo-ttft-p99 "
                            "and/or --slo-tpot-p99")
    reqs, _ = requests_for(r, r.request_rate, num_requests=r.num_requests)
    types = [g.strip() for g in r.gpu_types.split(",") if g.strip()]
    if not types:
        raise FlopcastError(f"gpu-types: one or more GPU catalog ids, comma-separated; got "
                            f"{r.gpu_types!r}")
    if r.max_tp < 1:
        raise FlopcastError(f"max-tp: a tensor parallel size >= 1; got {r.max_tp}")
    if r.by_size and (not r.mixed or len(set(types)) < 2):
        # size routing only splits the traffic between two GPU types: alone it would be ignored
        got = "--single-type" if not r.mixed else f"--gpu-types {r.gpu_types}"
        raise FlopcastError("by-size: routes requests between two GPU types by size, so it "
                            f"needs --mixed and two or more --gpu-types; got {got}")
    deps, not_built = _deployments(r, types)
    # warnings only once the request is known to be valid: a refused one gets one line
    if note := engine_version_note(r.engine, r.engine_version):
        warn(note)
    options, left_out = replica_options(deps, reqs, r.slo_ttft_p99, r.slo_tpot_p99,
                                        progress=progress, by_size=r.by_size and r.mixed)
    left_out = not_built + left_out
    if not options:
        raise FlopcastError(_none_left("no GPU type and tp meets the SLO at any rate",
                                       left_out[-1], len(left_out)))
    best = plan_fleet(options, reqs, r.request_rate, r.slo_ttft_p99, r.slo_tpot_p99, r.mixed)
    alone = front(options, reqs, r.request_rate, r.slo_ttft_p99, r.slo_tpot_p99)
    families = sorted({load_gpu(g, r.calibration).family for g in types})
    answer = {"best": best, "front": alone, "left_out": left_out,
              "options": [{"replica": o.name, "capacity_rps": o.capacity_rps,
                           "usd_per_hour": o.usd_per_hour,
                           "bucket_capacity_rps": list(o.bucket_capacity_rps)}
                          for o in options],
              "expected_error": expected_error("serving", families)}
    undefined_as_null(best["summary"])
    for row in alone:  # NaN: no request has a TPOT (one-token outputs)
        if math.isnan(row["tpot_p99_ms"]):
            row["tpot_p99_ms"] = None
    ensure_finite(answer, "fleet plan")
    return ServePlanResult.model_validate(answer)


def _deployments(r: ServePlanRequest, types: list[str]) -> tuple[list, list[str]]:
    """One deployment per GPU type × tp (powers of two up to max_tp) the model can run on,
    and why the others were left out. A GPU type that cannot be read (unknown id, bad file)
    is an error of the request, raised as is; so is a request no GPU type and tp can run."""
    from flopcast.catalog import load_gpu
    from flopcast.errors import UnsupportedError
    from flopcast.workloads.serving.run import deployment_for

    for gpu in types:
        load_gpu(gpu, r.calibration)  # refuses an unknown id or a malformed file
    deps, refused = [], []  # refused: (replica, reason)
    for gpu in types:
        tp = 1
        while tp <= r.max_tp:
            try:
                deps.append(deployment_for(serving_job(r, gpu, tp, tp),
                                           calibration=r.calibration))
            except (FlopcastError, ValueError) as e:
                if isinstance(e, UnsupportedError):
                    raise
                refused.append((f"{gpu} tp={tp}", one_line(e)))
            tp *= 2
    left_out = [f"{name}: {reason}" for name, reason in refused]
    if not deps and len({reason for _, reason in refused}) == 1:
        raise FlopcastError(refused[0][1])  # not about any GPU or tp: the request's own error
    if not deps:
        raise FlopcastError(_none_left("no GPU type and tp can run the model", left_out[0],
                                       len(left_out)))
    return deps, left_out


def _none_left(what: str, example: str, count: int) -> str:
    """'fleet: WHAT (EXAMPLE; and N more)': why a fleet plan has nothing to choose from."""
    more = f"; and {count - 1} more" if count > 1 else ""
    return f"fleet: {what} ({example}{more})"

