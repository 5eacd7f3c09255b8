"""`infer`: one serving configuration in steady state — its request, result and run_infer
(``flopcast infer`` and ``POST /api/infer``).

Imports the inference workload: the CLI imports this module inside the command."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import create_model

from flopcast.api.common import (
    Int,
    ModelFlags,
    Release,
    Warn,
    beyond_context,
    engine_of,
    engine_version_note,
    ensure_finite,
    fields_of,
    ignore,
)
from flopcast.errors import FlopcastError
from flopcast.specs.engine import ExpertDispatch
from flopcast.workloads.inference.estimate import InferenceEstimate


class InferRequest(ModelFlags):
    """The options of ``flopcast infer`` (same names, snake_case; defaults as the CLI's).
    At most one of ``batch``, ``concurrency``, ``max_throughput``; none = a static batch
    of 1."""

    gpu: str = "h100-sxm"
    gpus: Int = 1
    tp: Int | None = None
    pp: Int = 1
    ep: Int = 1
    precision: str = "bf16"
    kv_precision: str | None = None
    engine: str = "vllm"
    engine_version: Release | None = None
    expert_dispatch: ExpertDispatch | None = None
    input_len: Int = 1024
    output_len: Int = 128
    batch: Int | None = None
    concurrency: Int | None = None
    max_throughput: bool = False
    num_requests: Int | None = None
    calibration: str | None = None


#: What ``flopcast infer --json`` prints: the InferenceEstimate's fields (latency in ms,
#: throughput per s, memory in bytes per GPU) and the expected error.
InferResult = create_model(
    "InferResult", __doc__="What `flopcast infer --json` prints: an inference estimate "
    "(latency in ms, tokens/s and requests/s, memory in bytes per GPU) and its expected error.",
    **fields_of(InferenceEstimate), expected_error=(dict[str, Any], ...))


def _mode(r: InferRequest) -> tuple[Literal["batch", "concurrency", "max_throughput"], int]:
    """(mode, sequences in flight) of the request; one line if it names two modes."""
    chosen = [x for x in (r.batch is not None, r.concurrency is not None, r.max_throughput)
              if x]
    if len(chosen) > 1:
        raise FlopcastError("mode: give at most one of --batch, --concurrency, --max-throughput")
    mode = ("max_throughput" if r.max_throughput else "concurrency"
            if r.concurrency is not None else "batch")
    # `is not None`, not `or`: batch 0 / concurrency 0 must be refused, not become 1.
    size = r.concurrency if r.concurrency is not None else r.batch if r.batch is not None else 1
    if size < 1:
        flag = "--concurrency" if r.concurrency is not None else "--batch"
        raise FlopcastError(f"{flag}: must be at least 1; got {size}")
    if r.num_requests is not None and not r.max_throughput:
        raise FlopcastError(f"--num-requests: applies to --max-throughput only; got "
                            f"{r.num_requests} with the {mode} mode")
    return mode, size


def inference_job(r: InferRequest, mode: str = "batch", size: int = 1):
    """The InferenceJob a request describes (tp defaults to gpus / pp)."""
    from flopcast.catalog import load_gpu
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob

    return InferenceJob(
        model=r.resolve(), system=System(gpu=load_gpu(r.gpu, r.calibration), num_gpus=r.gpus),
        # max(pp, 1): pp 0 must reach InferenceJob's validator, not divide by zero here.
        engine=engine_of(r.engine, r.engine_version, r.expert_dispatch),
        tp=r.tp if r.tp is not None else max(r.gpus // max(r.pp, 1), 1),
        pp=r.pp, ep=r.ep, weights=r.precision, kv_format=r.kv_precision,
        input_len=r.input_len, output_len=r.output_len, mode=mode, batch=size,
        num_requests=r.num_requests)


def run_infer(request: InferRequest, warn: Warn = ignore):
    """Estimate serving one configuration: an InferResult."""
    from flopcast.accuracy import expected_error
    from flopcast.workloads.inference import estimate_inference

    job = inference_job(request, *_mode(request))
    if note := engine_version_note(request.engine, request.engine_version):
        warn(note)
    est = estimate_inference(job, request.calibration)
    text = beyond_context(job.model, request.input_len + request.output_len,
                          "--input-len + --output-len")
    if text is not None:
        warn(text)
    out = est.to_dict() | {"expected_error": expected_error("inference",
                                                            [job.system.gpu.family])}
    ensure_finite(out, "estimate")
    return InferResult.model_validate(out)
