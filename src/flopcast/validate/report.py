"""Scoring: absolute percentage error per row, median and p90 over the predicted rows."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from flopcast.errors import FlopcastError
from flopcast.validate.inputs import (  # noqa: F401  (gpu_file_beside: its former home)
    check_calibration,
    gpu_file_beside,
    read_table,
    schema_of,
    shown_measured,
)
from flopcast.validate.training import TrainingPredictor, _reason, prepare_training_rows

#: Longest id or metric shown for a row the reader refused.
MAX_ID_CHARS = 200


def ape_pct(predicted: float, measured: float) -> float:
    """Absolute percentage error, 100·|p - m|/m (``measured`` finite and > 0)."""
    if not (math.isfinite(measured) and measured > 0):
        raise FlopcastError(f"measured value {measured!r}: an error needs a finite measured "
                            "value > 0")
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
    """The schema of rows read from a measurement CSV (see inputs.schema_of)."""
    if not rows:
        raise FlopcastError("the file has no rows")
    return schema_of("file", list(rows[0]))


def _scored(case, predict: Callable, **extra) -> dict:
    """One report row: the case's id, metric, measured and predicted (``predict(case)``)
    values, skip reason, source and, when predicted, its APE. A prediction the model refuses
    or that is not a finite number > 0 skips the row with the reason."""
    skipped = case.skipped
    try:
        predicted = predict(case)
    except (FlopcastError, ValidationError, ValueError, ArithmeticError) as e:
        predicted, skipped = None, f"no prediction: {_reason(e)}"
    if predicted is not None and not (math.isfinite(predicted) and predicted > 0):
        predicted, skipped = None, f"no prediction: the model gave {predicted!r}"
    row = {"id": case.id, "metric": case.metric, "measured": case.measured,
           "predicted": predicted, "skipped": skipped, "source": case.source, **extra}
    if predicted is not None:
        row["ape_pct"] = ape_pct(predicted, case.measured)
    return row


def _refused(row: dict, reason: str, kind: str) -> dict:
    """The report row of a row the reader refused (inputs.row_problem gives the reason)."""
    rid = (row.get("id") or "").strip() or "?"
    if len(rid) > MAX_ID_CHARS:
        rid = rid[:MAX_ID_CHARS] + "…"
    extra = _kernel_columns(row) if kind == "kernel" else {}
    return {"id": rid, "metric": (row.get("metric") or "").strip()[:MAX_ID_CHARS],
            "measured": shown_measured(row), "predicted": None, "skipped": reason,
            "source": row.get("source", ""), **extra}


def _kernel_columns(row: dict) -> dict:
    op, dtype = (row.get("op") or "").strip(), (row.get("dtype") or "").strip()
    return {"op": op, "op_dtype": f"{op} {dtype}".strip(),
            "backend": (row.get("backend") or "").strip()}


def validate_file(path: str | Path, calibration: str | None = None) -> dict:
    """Score every row of a measurement CSV: {"kind", "rows": [...], "summary", "by_source",
    "by_metric", "by_gpu"} (kernel files add "by_op", "by_backend")."""
    check_calibration(calibration)
    table = read_table(path)
    kind = table.kind
    out_rows = [None if problem is None else _refused(row, problem, kind)
                for row, problem in zip(table.rows, table.problems, strict=True)]
    scored = iter(_score_rows(kind, table.usable(), calibration))
    out_rows = [r if r is not None else next(scored) for r in out_rows]
    for r, source_row, line in zip(out_rows, table.rows, table.lines, strict=True):
        r["gpu"] = (source_row.get("gpu") or "").strip()
        r["line"] = line
        if isinstance(r["measured"], float) and not math.isfinite(r["measured"]):
            r["measured"] = None  # strict JSON has no NaN or infinity
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


def _score_rows(kind: str, rows: list[dict], calibration: str | None) -> list[dict]:
    """Report rows of the usable rows of a ``kind`` file, in order."""
    if kind == "kernel":
        from flopcast.validate.kernels import predict_kernel_case, prepare_kernel_rows

        return [_scored(case, predict_kernel_case, **_kernel_columns(case.row))
                for case in prepare_kernel_rows(rows, calibration)]
    if kind in ("inference", "serving"):
        return _inference_rows(rows, kind, calibration)
    predictor = TrainingPredictor()
    return [_scored(case, predictor.predict)
            for case in prepare_training_rows(rows, calibration)]


def source_of(row: dict) -> str:
    """The source group of a row id: 'MEGATRON_2021:3' and 'TRTLLM_TUNE-0001' give their
    prefix."""
    return re.sub(r"-\d+$", "", row["id"].split(":")[0])


def _inference_rows(raw: list[dict], kind: str, calibration: str | None) -> list[dict]:
    """Inference rows by the steady-state estimate; serving rows, and inference rows with
    variable lengths or an open-loop rate, by the serving simulator (one run per setup)."""
    from flopcast.validate.inference import InferencePredictor, prepare_inference_rows
    from flopcast.validate.serving import (
        ServingPredictor,
        needs_simulation,
        prepare_serving_rows,
    )

    sim, steady = ServingPredictor(calibration), InferencePredictor(calibration)
    out = []
    for row in raw:
        if kind == "serving" or needs_simulation(row):
            case = prepare_serving_rows([row], calibration)[0]
            out.append(_scored(case, sim.predict, simulated=True))
        else:
            case = prepare_inference_rows([row], calibration)[0]
            out.append(_scored(case, steady.predict))
    return out


def _grouped(rows: list[dict], key) -> dict[str, dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[key(r)].append(r)
    return {k: summarize(v) for k, v in sorted(groups.items())}

