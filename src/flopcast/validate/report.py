"""Scoring: absolute percentage error per row, median and p90 over the predicted rows."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.validate.training import predict_case, prepare_training_rows, read_rows


def ape_pct(predicted: float, measured: float) -> float:
    """Absolute percentage error, 100·|p - m|/m."""
    return 100.0 * abs(predicted - measured) / abs(measured)


def error_summary(errors: list[float]) -> dict:
    """Median and p90 of absolute percentage errors (None when there are none)."""
    return {
        "median_ape_pct": float(np.median(errors)) if errors else None,
        "p90_ape_pct": float(np.percentile(errors, 90)) if errors else None,
    }


def summarize(rows: list[dict]) -> dict:
    """rows, predicted, median and p90 APE over the rows that have a prediction."""
    errors = [r["ape_pct"] for r in rows if r["predicted"] is not None]
    return {"rows": len(rows), "predicted": len(errors), **error_summary(errors)}


def detect_kind(rows: list[dict]) -> str:
    if not rows:
        raise FlopcastError("the file has no rows")
    columns = set(rows[0])
    if "op" in columns and "metric" in columns:
        return "kernel"
    if "scenario" in columns and "engine" in columns:
        return "serving"
    if "input_len" in columns or "engine" in columns:
        return "inference"
    if {"metric", "value", "gpu", "num_gpus"} <= columns:
        return "training"
    raise FlopcastError(
        "file: columns match neither the training nor the inference measurement schema"
    )


def gpu_file_beside(row: dict, folder: Path) -> dict:
    """``row`` with relative file paths resolved against the CSV's folder, when the file
    exists there: a GPU entry file in its ``gpu`` column (`flopcast profile` writes FILE.yaml
    and FILE.kernels.csv side by side) and a Hugging Face config.json in its ``model`` column
    (the training schema allows one relative to the CSV's folder)."""
    from flopcast.catalog.loader import is_gpu_file

    out = dict(row)
    for column, is_file in (("gpu", is_gpu_file), ("model", lambda v: v.endswith(".json"))):
        value = (row.get(column) or "").strip()
        if value and is_file(value) and not Path(value).is_absolute() \
                and (folder / value).is_file():
            out[column] = str(folder / value)
    return out


def _scored(case, predicted: float | None, **extra) -> dict:
    """One report row: the case's id, metric, measured and predicted values, skip reason,
    source and, when predicted, its APE."""
    row = {"id": case.id, "metric": case.metric, "measured": case.measured,
           "predicted": predicted, "skipped": case.skipped, "source": case.source, **extra}
    if predicted is not None:
        row["ape_pct"] = ape_pct(predicted, case.measured)
    return row


def validate_file(path: str | Path, calibration: str | None = None) -> dict:
    """Score every row of a measurement CSV: {"kind", "rows": [...], "summary", "by_source"}."""
    shown = read_rows(path)
    kind = detect_kind(shown)
    raw = [gpu_file_beside(row, Path(path).parent) for row in shown]
    if kind == "kernel":
        from flopcast.validate.kernels import predict_kernel_case, prepare_kernel_rows

        out_rows = []
        for case in prepare_kernel_rows(raw, calibration):
            dtype = (case.row.get("dtype") or "").strip()
            out_rows.append(_scored(case, predict_kernel_case(case), op=case.op,
                                    op_dtype=f"{case.op} {dtype}".strip(),
                                    backend=(case.row.get("backend") or "").strip()))
    elif kind in ("inference", "serving"):
        out_rows = _inference_rows(raw, kind, calibration)
    else:
        out_rows = [_scored(case, predict_case(case))
                    for case in prepare_training_rows(raw, calibration)]
    for r, source_row in zip(out_rows, shown, strict=True):
        r["gpu"] = (source_row.get("gpu") or "").strip()
        if isinstance(r["measured"], float) and math.isnan(r["measured"]):
            r["measured"] = None  # strict JSON has no NaN
    extra = {}
    if kind == "kernel":
        extra["by_op"] = _grouped(out_rows, lambda r: r["op_dtype"])
        extra["by_backend"] = _grouped(
            [r for r in out_rows if r["backend"]], lambda r: f"{r['op']} {r['backend']}")
    return {
        "kind": kind,
        "rows": out_rows,
        "summary": summarize(out_rows),
        "by_source": _grouped(out_rows, source_of),
        "by_metric": _grouped(out_rows, lambda r: r["metric"]),
        "by_gpu": _grouped(out_rows, lambda r: r["gpu"]),
        **extra,
    }


def source_of(row: dict) -> str:
    """The source group of a row id: 'MEGATRON_2021:3' and 'TRTLLM_TUNE-0001' give their
    prefix."""
    return re.sub(r"-\d+$", "", row["id"].split(":")[0])


def _inference_rows(raw: list[dict], kind: str, calibration: str | None) -> list[dict]:
    """Inference rows by the steady-state estimate; serving rows, and inference rows with
    variable lengths or an open-loop rate, by the serving simulator (one run per setup)."""
    from flopcast.validate.inference import predict_inference_case, prepare_inference_rows
    from flopcast.validate.serving import (
        ServingPredictor,
        needs_simulation,
        prepare_serving_rows,
    )

    sim = ServingPredictor(calibration)
    out = []
    for row in raw:
        if kind == "serving" or needs_simulation(row):
            case = prepare_serving_rows([row], calibration)[0]
            out.append(_scored(case, sim.predict(case), simulated=True))
        else:
            case = prepare_inference_rows([row], calibration)[0]
            out.append(_scored(case, predict_inference_case(case, calibration)))
    return out


def _grouped(rows: list[dict], key) -> dict[str, dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return {k: summarize(v) for k, v in sorted(groups.items())}

