"""serve(): one call from a deployment and a workload to the metrics, shared by the CLI, the
validator, the capacity search and the benchmarks."""

from __future__ import annotations

from flopcast.catalog.loader import inference_calibration_source, inference_efficiency
from flopcast.errors import FlopcastError, echo
from flopcast.specs.inference import InferenceJob
from flopcast.specs.limits import MAX_REQUESTS, MAX_STEP_TOKENS
from flopcast.workloads.inference.step import max_sequences_in_flight
from flopcast.workloads.serving.metrics import summarize
from flopcast.workloads.serving.schedulers import SCHEDULERS, Limits
from flopcast.workloads.serving.simulator import Deployment, simulate


def deployment_for(job: InferenceJob, scheduler: str | None = None,
                   max_num_seqs: int | None = None, max_num_tokens: int | None = None,
                   chunk_tokens: int | None = None, batch_size: int | None = None,
                   prefix_caching: bool | None = None, router: str = "round-robin",
                   calibration: str | None = None) -> Deployment:
    """A deployment with the engine's defaults (catalog/engines/*.yaml) where not overridden.
    ``chunk_tokens`` 0 turns chunked prefill off."""
    engine = job.engine
    name = scheduler or engine.scheduler
    if name not in SCHEDULERS:
        raise FlopcastError(f"scheduler: {name!r} is not one of {', '.join(SCHEDULERS)}")
    for field, value, most in (("max_num_seqs", max_num_seqs, MAX_REQUESTS),
                               ("max_num_tokens", max_num_tokens, MAX_STEP_TOKENS),
                               ("batch_size", batch_size, MAX_REQUESTS),
                               ("chunk_tokens", chunk_tokens, MAX_STEP_TOKENS)):
        if value is not None and not (1 if field != "chunk_tokens" else 0) <= value <= most:
            raise FlopcastError(f"{field}: must be in {1 if field != 'chunk_tokens' else 0}.."
                                f"{most:,}; got {echo(value)}")
    tokens = max_num_tokens or engine.max_num_tokens
    chunk = engine.prefill_chunk_tokens if chunk_tokens is None else (chunk_tokens or None)
    eff = inference_efficiency(job.system.gpu, engine, calibration)
    seqs = max_num_seqs or max_sequences_in_flight(job, eff)
    if name == "static" and batch_size:
        seqs = max(seqs, batch_size)  # a static batch holds all its sequences at once
    limits = Limits(max_seqs=seqs, max_tokens=tokens,
                    chunk_tokens=min(chunk, tokens) if chunk else None,
                    batch_size=batch_size)
    caching = engine.prefix_caching if prefix_caching is None else prefix_caching
    return Deployment(job=job, scheduler=name, limits=limits, eff=eff, router=router,
                      prefix_caching=caching)


def serve(dep: Deployment | list[Deployment], requests, concurrency: int | None = None,
          slo_ttft_ms: float | None = None, slo_tpot_ms: float | None = None,
          keep_trace: bool = False, calibration: str | None = None) -> tuple[dict, object]:
    """Simulate and summarise: (metrics with a ``config`` entry, the raw SimResult)."""
    res = simulate(dep, requests, concurrency, keep_trace)
    pools = dep if isinstance(dep, list) else [dep]
    dep, job = pools[0], pools[0].job
    gpus = sum(p.job.system.num_gpus for p in pools)
    out = summarize(res, gpus, slo_ttft_ms, slo_tpot_ms)
    out["config"] = dict(
        model=job.model.name, gpu=job.system.gpu.id, num_gpus=job.system.num_gpus,
        engine=job.engine.id, engine_release=job.engine.release,
        tp=job.tp, pp=job.pp, ep=job.ep, replicas=job.replicas,
        precision=job.weights.name, kv_precision=job.kv_format, scheduler=dep.scheduler,
        total_gpus=gpus,
        max_num_seqs=dep.limits.max_seqs, max_num_tokens=dep.limits.max_tokens,
        prefill_chunk_tokens=dep.limits.chunk_tokens, prefix_caching=dep.prefix_caching,
        router=dep.router, concurrency=concurrency,
        pools=[dict(role=p.role, gpu=p.job.system.gpu.id, num_gpus=p.job.system.num_gpus,
                    tp=p.job.tp, pp=p.job.pp, scheduler=p.scheduler) for p in pools],
        efficiency_source=inference_calibration_source(job.system.gpu, job.engine,
                                                       calibration)[0],
        kernels_source=job.system.gpu.kernels_source)
    return out, res
