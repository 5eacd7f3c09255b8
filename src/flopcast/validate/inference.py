"""Rows of the inference measurement schema (../shared/measurements/README.md) as jobs.

Each row becomes an InferenceJob: a static batch when ``batch_size`` is given (TensorRT-LLM's
gptSessionBenchmark tables, first-token latency at batch 1), steady-state continuous batching
at ``concurrency``, or the saturated engine for ``max_output_tokens_per_s``. Rows without fixed
input and output lengths (ShareGPT prompts), or driven by an open-loop request rate, are
skipped with the reason: they need a length distribution or a queueing simulation.
Defaults: tp = gpus/pp; pp, ep = 1; KV cache the engine's default (Engine.kv_cache_auto: fp8
with fp8/fp4 weights where the engine takes the checkpoint's KV quantisation, else 16-bit). An
ep larger than tp spreads the experts over the data-parallel replicas (InferenceJob's rules).
A max-throughput row's ``num_requests`` makes the run finite (InferenceJob.num_requests).
An ``engine_version`` column, where a file has one, prices that release (Engine.at_version:
its CUDA graphs, scheduling, decode attention kernel); without it the catalog's engine stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import ValidationError

from flopcast.catalog import load_gpu, resolve_model
from flopcast.catalog.loader import inference_efficiency, load_engine
from flopcast.errors import FlopcastError
from flopcast.specs import System
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.inference import InferenceJob
from flopcast.validate.inputs import measured_value, number, shown
from flopcast.validate.training import _int, _reason
from flopcast.workloads.inference import estimate_inference
from flopcast.workloads.inference.estimate import InferenceEstimate

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
    """The number in ``key`` (checked against its physical range), or None when empty."""
    value = number(row, key)
    return None if value is None else float(value)


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
        engine=load_engine(row.get("engine") or "generic").at_version(
            (row.get("engine_version") or "").strip() or None),
        tp=_int(row, "tp") or n // pp, pp=pp, ep=_int(row, "ep", 1),
        weights=(row.get("precision") or "bf16").strip(),
        input_len=_int(row, "input_len"), output_len=_int(row, "output_len"),
        mode=mode, batch=size,
        num_requests=_int(row, "num_requests") if mode == "max_throughput" else None,
    )


def prepare_inference_rows(rows: list[dict], calibration: str | None = None) -> list[InferenceCase]:
    """Each row as a case with its job; rows that cannot be modelled carry the reason."""
    return [_inference_case(i, row, calibration) for i, row in enumerate(rows)]


def _inference_case(i: int, row: dict, calibration: str | None) -> InferenceCase:
    rid = row.get("id") or f"row{i + 1}"
    metric = (row.get("metric") or "").strip()
    measured, job, skipped = math.nan, None, None
    try:
        measured = measured_value(row)
        if metric not in INFERENCE_METRICS:
            raise FlopcastError(f"metric {shown(metric)} is not an inference metric")
        if not (row.get("input_len") or "").strip() or not (row.get("output_len") or "").strip():
            raise FlopcastError("variable-length prompts (e.g. ShareGPT): needs a request-length "
                                "distribution, not modelled yet")
        job = job_from_row(row, calibration)
    except (FlopcastError, ValidationError, ValueError, TypeError, KeyError) as e:
        skipped = _reason(e)
    return InferenceCase(rid, row.get("source", ""), metric, measured, job, skipped)


def predict_inference_case(case: InferenceCase, calibration: str | None = None,
                           efficiency_override=None) -> float | None:
    """The case's metric, predicted; None when skipped."""
    if case.job is None:
        return None
    est = estimate_inference(case.job, calibration, efficiency_override, strict=False)
    return estimate_metric(est, case.metric)


def estimate_metric(est: InferenceEstimate, metric: str) -> float:
    """An inference metric of the schema from an estimate."""
    values = {
        "output_tokens_per_s_per_gpu": est.output_tokens_per_s_per_gpu,
        "output_tokens_per_s": est.output_tokens_per_s,
        "max_output_tokens_per_s": est.output_tokens_per_s,
        "ttft_ms": est.ttft_ms, "tpot_ms": est.tpot_ms, "itl_ms": est.itl_ms,
        "e2e_latency_ms": est.e2e_latency_ms, "requests_per_s": est.requests_per_s,
    }
    return values[metric]


class InferencePredictor:
    """Predicts cases as :func:`predict_inference_case` does, with the calibrated efficiency
    of each (GPU, engine) looked up once and each distinct job estimated once."""

    def __init__(self, calibration: str | None = None) -> None:
        self.calibration = calibration
        self.efficiencies: dict[tuple[str, str], Efficiency] = {}
        self.estimates: dict[str, InferenceEstimate] = {}

    def efficiency(self, job: InferenceJob) -> Efficiency:
        key = (job.system.gpu.model_dump_json(), job.engine.id)
        if key not in self.efficiencies:
            self.efficiencies[key] = inference_efficiency(job.system.gpu, job.engine,
                                                          self.calibration)
        return self.efficiencies[key]

    def predict(self, case: InferenceCase) -> float | None:
        if case.job is None:
            return None
        key = case.job.model_dump_json()
        if key not in self.estimates:
            self.estimates[key] = estimate_inference(
                case.job, self.calibration, self.efficiency(case.job), strict=False)
        return estimate_metric(self.estimates[key], case.metric)
