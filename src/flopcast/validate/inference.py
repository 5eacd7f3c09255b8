"""Rows of the inference measurement schema (../shared/measurements/README.md) as jobs.

Each row becomes an InferenceJob: a static batch when ``batch_size`` is given (TensorRT-LLM's
gptSessionBenchmark tables, first-token latency at batch 1), steady-state continuous batching
at ``concurrency``, or the best concurrency for ``max_output_tokens_per_s``. Rows without fixed
input and output lengths (ShareGPT prompts), or driven by an open-loop request rate, are
skipped with the reason: they need a length distribution or a queueing simulation.
Defaults: tp = gpus/pp; pp, ep = 1; KV cache fp8 with fp8/fp4 weights, else 16-bit. An ep
larger than tp spreads the experts over the data-parallel replicas (InferenceJob's rules).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from flopcast.catalog import load_gpu, resolve_model
from flopcast.catalog.loader import load_engine
from flopcast.errors import FlopcastError
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.validate.training import _int, _reason
from flopcast.workloads.inference import estimate_inference

INFERENCE_METRICS = ("output_tokens_per_s_per_gpu", "output_tokens_per_s",
                     "max_output_tokens_per_s", "ttft_ms", "tpot_ms", "itl_ms",
                     "e2e_latency_ms", "requests_per_s")


@dataclass(frozen=True)
class InferenceCase:
    id: str
    source: str
    metric: str
    measured: float
    job: InferenceJob | None
    skipped: str | None


def _float(row: dict, key: str) -> float | None:
    value = (row.get(key) or "").strip()
    return float(value) if value else None


def job_from_row(row: dict, calibration: str | None = None) -> InferenceJob:
    metric = row["metric"].strip()
    n = _int(row, "num_gpus", 1)
    pp = _int(row, "pp", 1)
    batch, concurrency = _int(row, "batch_size"), _int(row, "concurrency")
    if metric == "max_output_tokens_per_s":
        mode, size = "max_throughput", 1
    elif batch is not None:
        mode, size = "batch", batch
    elif concurrency is not None:
        mode, size = "concurrency", concurrency
    else:
        raise FlopcastError("no batch_size or concurrency: an open-loop request rate needs the "
                            "serving simulator (not modelled yet)")
    return InferenceJob(
        model=resolve_model(row["model"].strip()),
        system=System(gpu=load_gpu(row["gpu"].strip(), calibration), num_gpus=n),
        engine=load_engine(row.get("engine") or "generic"),
        tp=_int(row, "tp") or n // pp, pp=pp, ep=_int(row, "ep", 1),
        weights=(row.get("precision") or "bf16").strip(),
        input_len=_int(row, "input_len"), output_len=_int(row, "output_len"),
        mode=mode, batch=size,
    )


def prepare_inference_rows(rows: list[dict], calibration: str | None = None) -> list[InferenceCase]:
    cases = []
    for i, row in enumerate(rows):
        rid = row.get("id") or f"row{i + 1}"
        metric = (row.get("metric") or "").strip()
        measured = _float(row, "value")
        job, skipped = None, None
        if measured is None:
            skipped = "value is not a number"
        elif metric not in INFERENCE_METRICS:
            skipped = f"metric {metric!r} is not an inference metric"
        elif not (row.get("input_len") or "").strip() or not (row.get("output_len") or "").strip():
            skipped = ("variable-length prompts (e.g. ShareGPT): needs a request-length "
                       "distribution, not modelled yet")
        else:
            try:
                job = job_from_row(row, calibration)
            except (FlopcastError, ValidationError, ValueError, TypeError, KeyError) as e:
                skipped = _reason(e)
        cases.append(InferenceCase(rid, row.get("source", ""), metric,
                                   float("nan") if measured is None else measured, job, skipped))
    return cases


def predict_inference_case(case: InferenceCase, calibration: str | None = None,
                           efficiency_override=None) -> float | None:
    """The case's metric, predicted; None when skipped."""
    if case.job is None:
        return None
    est = estimate_inference(case.job, calibration, efficiency_override, strict=False)
    values = {
        "output_tokens_per_s_per_gpu": est.output_tokens_per_s_per_gpu,
        "output_tokens_per_s": est.output_tokens_per_s,
        "max_output_tokens_per_s": est.output_tokens_per_s,
        "ttft_ms": est.ttft_ms, "tpot_ms": est.tpot_ms, "itl_ms": est.itl_ms,
        "e2e_latency_ms": est.e2e_latency_ms, "requests_per_s": est.requests_per_s,
    }
    return values[case.metric]
