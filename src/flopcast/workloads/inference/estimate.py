"""estimate_inference(job): latency and throughput of a static batch or a steady state."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from flopcast.catalog.loader import inference_calibration_source, inference_efficiency
from flopcast.errors import FlopcastError
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import (
    attention_backends,
    decode_efficiency,
    forward_step,
    graph_efficiency,
    graph_replayed,
    max_sequences_in_flight,
    memory_plan,
    pipeline_paced,
    with_host_time,
)

GIB = 2**30


@dataclass(frozen=True)
class InferenceEstimate:
    """Latency in ms, throughput in tokens/s and requests/s (whole system, all replicas),
    memory in bytes per GPU; ``batch`` is the sequences in flight per replica."""

    mode: str
    batch: int
    ttft_ms: float
    tpot_ms: float
    itl_ms: float
    e2e_latency_ms: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    requests_per_s: float
    max_concurrent_sequences: int
    kv_bytes_per_sequence: float
    memory: dict[str, float]
    fits: bool
    prefill_breakdown_s: dict[str, float]
    decode_breakdown_s: dict[str, float]
    limited_by: str
    config: dict

    def to_dict(self) -> dict:
        return asdict(self)


def _steady_step(job, eff, concurrency):
    """Continuous batching in steady state: every step decodes each of C sequences once and
    prefills, on average, C·input/output new prompt tokens (requests finish and arrive at the
    same rate; chunked prefill mixes them in, Agrawal et al. 2024 Sarathi-Serve). With pp
    stages the engine keeps pp micro-batches of C/pp sequences in flight, each advancing one
    token per pass through all stages (GPipe-style pipelining of decode steps), so the time
    per output token is min(pp, C) slots of the slowest stage for one C/pp micro-batch, and
    never less than its crossing of all stages (``pipeline_paced``).

    Engines that replay decode-only steps as CUDA graphs (``graph_replayed``) run most
    steady steps so: the step is the eager mixed step less what graph replay saves on its
    decode part, as the serving simulator prices decode-only and mixed steps
    (serving.cost.StepCost). The saving is taken on every step, also on the share that
    carries prompts, because C identical requests in a closed loop fall into waves (they
    finish together and their successors prefill together: the simulator shows it), so the
    prompts' eager work runs in steps of its own and the decode steps replay graphs; with
    staggered arrivals every step with a prompt would run eagerly (tried: infer's host-time
    share moved from the simulator's 0.73 to 0.93 on a pipelined 70B at C = 512). The
    engine's host time (``with_host_time``) is added once, to that GPU time, per pipeline
    slot."""
    concurrency = np.asarray(concurrency, dtype=float)
    in_flight = np.minimum(concurrency, job.pp)
    c = concurrency / in_flight  # fewer sequences than stages: one per micro-batch
    decode = dict(decode_seqs=c, decode_context=job.input_len + job.output_len / 2,
                  logit_rows=c)
    # GPU time first (scheduled=False), the host's per-sequence time once on the result:
    # each slot schedules the micro-batch's sequences and its share of new prompts
    scheduled = c + np.maximum(c / job.output_len, 1.0)
    mixed = _mixed_steps(job, eff, c, decode, in_flight)
    replayed = graph_replayed(job, c)
    if not np.any(replayed):
        return with_host_time(job, mixed, scheduled, in_flight)
    eager = pipeline_paced(job, forward_step(job, eff, scheduled=False, **decode), in_flight)
    graph = pipeline_paced(job, forward_step(job, graph_efficiency(eff), scheduled=False,
                                             **decode), in_flight)
    gpu = {k: mixed[k] - np.where(replayed, eager[k] - graph[k], 0.0) for k in mixed}
    return with_host_time(job, gpu, scheduled, in_flight)


def _mixed_steps(job, eff, c, decode: dict, in_flight) -> dict:
    """The mean step when c/output prompts arrive per step, each prefilled in pieces of u
    tokens (the whole prompt, or the engine's prefill chunk when it is shorter): with p
    pieces per step, a share frac(p) of the steps carries ceil(p) pieces and the rest
    floor(p). Spreading the prompt tokens evenly over every step is nearly the same for a
    dense layer (its time is close to affine in tokens; tile and memory-vs-compute bounds
    move it a few %) but not for an MoE one: a few prompt tokens in every step would touch
    most experts in every step, where whole pieces touch them once per piece."""
    engine = job.engine
    piece = min(job.input_len, engine.prefill_chunk_tokens or engine.max_num_tokens)
    pieces = c * job.input_len / (job.output_len * piece)
    fewer = np.floor(pieces)
    share_more = pieces - fewer

    def step(n_pieces):
        return pipeline_paced(job, forward_step(
            job, eff, prefill_tokens=n_pieces * piece, prefill_len=job.input_len,
            scheduled=False, **decode), in_flight)

    low, high = step(fewer), step(fewer + 1.0)
    return {k: (1.0 - share_more) * low[k] + share_more * high[k] for k in low}


def _first(d: dict) -> dict[str, float]:
    return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in d.items()}


def does_not_fit(job: InferenceJob, mem: dict, context: int) -> FlopcastError:
    """The refusal when not one sequence's KV cache fits: what the weights and workspace
    take of the memory the engine uses (all of it, or its share: Engine.memory_fraction_of)."""
    need = mem["weights_bytes"] + mem["reserved_bytes"] + mem["workspace_bytes"]
    engine, share = job.engine, job.engine.memory_share(job.tp * job.pp)
    usable, note = mem["capacity_bytes"], ""
    if engine.memory_fraction_of != "free":
        usable, note = usable * share, f" (the {share:g} share {engine.id} uses)"
    return FlopcastError(
        f"{job.model.name} does not fit on {job.system.num_gpus}x {job.system.gpu.id} with "
        f"tp={job.tp} pp={job.pp} in {job.weights.name}: weights and workspace take "
        f"{need / GIB:.1f} GiB of {usable / GIB:.1f} GiB per GPU{note}, leaving no room for "
        f"one {context}-token sequence's KV cache")


def _batch(job: InferenceJob, eff, mem: dict, strict: bool, held: float) -> tuple[int, str]:
    """Sequences per replica and what limits them: the requested batch or concurrency (a
    concurrency is system-wide: the load balancer spreads it over the replicas), or, for
    ``max_throughput``, the engine saturated. An offline run submits every request at once
    and the scheduler admits them while KV memory and its limits allow (trtllm-bench's
    MAX_UTILIZATION, vLLM's offline benchmark), so the batch is the engine's capacity, not a
    chosen optimum: throughput rises with the batch up to it, and searching the model's
    curve for a best batch picks its tile-quantisation steps instead (up to 8 % above the
    capacity's throughput a few sequences below it). ``held``: tokens each sequence holds
    in the KV cache (memory_plan's context)."""
    max_seqs = int(mem["max_sequences"])
    if job.mode == "max_throughput":
        cap_tokens = int(job.engine.max_num_tokens // (1 + job.input_len / job.output_len))
        limits = {"KV-cache memory": max_seqs,
                  "engine sequence limit": max_sequences_in_flight(job, eff),
                  "engine max_num_tokens": cap_tokens}
        if job.num_requests is not None:
            limits["requests in the run"] = -(-job.num_requests // job.replicas)
        limited_by = min(limits, key=limits.get)
        return max(1, limits[limited_by]), limited_by
    batch = -(-job.batch // job.replicas) if job.mode == "concurrency" else job.batch
    if batch > max_seqs and strict:
        given = (f"batch: {batch} sequences" if job.mode == "batch" else
                 f"concurrency: {job.batch} over {plural_replicas(job.replicas)} is {batch} "
                 "sequences per replica")
        raise FlopcastError(
            f"{given} holding {held:,.0f} tokens each"
            f"{'' if job.mode == 'batch' else ' (on average over their life)'} need "
            f"{batch * mem['kv_bytes_per_sequence'] / GIB:.2f} GiB of KV cache per GPU; "
            f"{mem['kv_budget_bytes'] / GIB:.2f} GiB is free (at most {max_seqs} sequences)")
    return batch, "requested"


def plural_replicas(n: int) -> str:
    """'1 replica', '4 replicas'."""
    return "1 replica" if n == 1 else f"{n} replicas"


def _timings(job: InferenceJob, eff, batch: int):
    """(prefill breakdown, decode breakdown, TTFT, TPOT, E2E, output tokens/s) of a static
    batch (prefill together, then decode) or of continuous batching in steady state."""
    if job.mode == "batch":
        # a static batch runs in a session loop with no per-request scheduler (no host time)
        prefill = _first(forward_step(job, eff, prefill_tokens=batch * job.input_len,
                                      prefill_len=job.input_len, logit_rows=batch,
                                      scheduled=False))
        # decode steps see contexts input+1 … input+output-1; step time is affine in the
        # context (KV bytes), so the mean step is the step at the mean context
        decode = _first(forward_step(job, decode_efficiency(job, eff, batch),
                                     decode_seqs=batch,
                                     decode_context=job.input_len + job.output_len / 2,
                                     logit_rows=batch, scheduled=False))
        ttft, tpot = prefill["step_s"], decode["step_s"]
        e2e = ttft + (job.output_len - 1) * tpot
        return prefill, decode, ttft, tpot, e2e, job.replicas * batch * job.output_len / e2e
    prefill = _first(forward_step(job, eff, prefill_tokens=job.input_len,
                                  prefill_len=job.input_len, logit_rows=1))
    decode = _first(_steady_step(job, eff, batch))
    tpot = decode["step_s"]
    # a new request waits on average half a step (and, under overlapped scheduling, the
    # step already formed: Engine.overlap_scheduling), then its prompt is prefilled
    waited_steps = 0.5 + (1.0 if job.engine.overlap_scheduling else 0.0)
    ttft = prefill["step_s"] + waited_steps * tpot
    e2e = ttft + (job.output_len - 1) * tpot
    if job.mode == "max_throughput" and job.num_requests is not None:
        return prefill, decode, ttft, tpot, e2e, _finite_run_tokens_per_s(job, eff, batch, tpot)
    return prefill, decode, ttft, tpot, e2e, job.replicas * batch / tpot


def _finite_run_tokens_per_s(job: InferenceJob, eff, batch: int, tpot: float) -> float:
    """Output tokens/s of an offline run of ``job.num_requests`` identical requests, all
    submitted at once (trtllm-bench throughput reports total output tokens over the run's
    makespan). The engine holds ``batch`` sequences per replica; identical requests start
    and finish together, so they pass in waves of ``batch``, each lasting output_len steady
    steps (its prompts' prefill included, as in ``_steady_step``), and the last wave holds
    what is left: a part-full wave costs less than a full one only by the KV and compute
    its fewer sequences save, so where the weights bound the step a run of 1.1 waves comes
    close to two waves' time (with a small model at large batch, much less). The busiest
    replica (⌈requests / replicas⌉) sets the makespan."""
    per_replica = -(-job.num_requests // job.replicas)
    full_waves, last_wave = divmod(per_replica, batch)
    makespan = full_waves * job.output_len * tpot
    if last_wave:
        makespan += job.output_len * _first(_steady_step(job, eff, last_wave))["step_s"]
    return job.num_requests * job.output_len / makespan


def estimate_inference(job: InferenceJob, calibration: str | None = None,
                       efficiency=None, strict: bool = True) -> InferenceEstimate:
    """Estimate one serving job (see InferenceJob for the modes).

    A static batch whose KV cache exceeds the free memory is refused when ``strict``, else
    estimated with ``fits`` False (validation predicts runs that did happen); ``efficiency``
    overrides the calibrated one (used when fitting).

    >>> from flopcast.catalog import load_gpu, load_model
    >>> from flopcast.catalog.loader import load_engine
    >>> from flopcast.specs import System
    >>> job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
    ...                    system=System(gpu=load_gpu("h100-sxm"), num_gpus=1),
    ...                    input_len=1000, output_len=200, batch=1)
    >>> est = estimate_inference(job)
    >>> est.fits, 4 < est.tpot_ms < 15
    (True, True)
    """
    eff = efficiency or inference_efficiency(job.system.gpu, job.engine, calibration)
    replicas = job.replicas
    context = job.input_len + job.output_len
    # a static batch holds every sequence to its full length. So does the max-throughput
    # mode, an offline run of identical requests (trtllm-bench throughput, vLLM's offline
    # benchmark): they start together and advance in lock step, so at the end of each wave
    # every running sequence holds input + output tokens at once (the serving simulator's
    # offline runs show the waves; a no-evict scheduler reserves that much up front). Under
    # continuous batching of staggered requests with paged KV a sequence holds, on average
    # over its life, input + output/2 tokens. (The max-throughput mode's TTFT is still timed
    # as in a staggered steady state; its throughput is what the mode answers.)
    lock_step = job.mode in ("batch", "max_throughput")
    held = context if lock_step else job.input_len + job.output_len / 2
    mem = _first(memory_plan(job, eff, held))
    max_seqs = int(mem["max_sequences"])
    if max_seqs < 1:
        raise does_not_fit(job, mem, context)
    batch, limited_by = _batch(job, eff, mem, strict, held)
    n = job.system.num_gpus
    prefill, decode, ttft, tpot, e2e, out_tps = _timings(job, eff, batch)
    memory = {
        "weights": mem["weights_bytes"], "workspace": mem["workspace_bytes"],
        "reserved": mem["reserved_bytes"], "kv_cache_in_use": batch * mem["kv_bytes_per_sequence"],
        "kv_cache_budget": mem["kv_budget_bytes"], "capacity": mem["capacity_bytes"],
    }
    return InferenceEstimate(
        mode=job.mode, batch=batch, ttft_ms=1e3 * ttft, tpot_ms=1e3 * tpot, itl_ms=1e3 * tpot,
        e2e_latency_ms=1e3 * e2e, output_tokens_per_s=out_tps,
        output_tokens_per_s_per_gpu=out_tps / n, requests_per_s=out_tps / job.output_len,
        max_concurrent_sequences=max_seqs, kv_bytes_per_sequence=mem["kv_bytes_per_sequence"],
        memory=memory, fits=bool(batch <= max_seqs), prefill_breakdown_s=prefill,
        decode_breakdown_s=decode,
        limited_by=limited_by,
        config=dict(model=job.model.name, gpu=job.system.gpu.id, num_gpus=n,
                    engine=job.engine.id, engine_release=job.engine.release,
                    tp=job.tp, pp=job.pp, ep=job.ep, replicas=replicas,
                    precision=job.weights.name, kv_precision=job.kv_format,
                    input_len=job.input_len, output_len=job.output_len,
                    num_requests=job.num_requests,
                    efficiency_source=job.system.gpu.efficiency_source + "; " +
                    inference_calibration_source(job.system.gpu, job.engine, calibration)[0],
                    kernels_source=job.system.gpu.kernels_source,
                    attention_backends=list(attention_backends(job))),
    )
