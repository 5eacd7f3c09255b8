"""`validate` and `calibrate`: measured against published runs — requests, typed results,
run_validate and run_calibrate (``flopcast validate``/``calibrate`` and
``POST /api/validate``; calibrate is not offered by the web API: it writes a calibration
file on the server and a leave-one-source-out run takes minutes)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from flopcast.api.common import Request, Warn, ignore
from flopcast.errors import FlopcastError


class ValidateRequest(Request):
    """The options of ``flopcast validate``: a measurement CSV (a path on the machine that
    answers; the web API takes an upload) and a calibration YAML (default: shipped)."""

    file: str
    calibration: str | None = None


class ValidationRow(BaseModel):
    """One row of the file: measured and predicted values, the absolute percentage error,
    or why it was skipped; kernel files add the op, its dtype and the backend."""

    model_config = ConfigDict(extra="allow")

    id: str
    metric: str
    measured: float | None
    predicted: float | None
    skipped: str | None
    source: str


class ErrorSummary(BaseModel):
    """Rows, rows predicted, median and p90 APE (%) of a group (None: nothing predicted)."""

    rows: int
    predicted: int
    median_ape_pct: float | None
    p90_ape_pct: float | None


class ValidateResult(BaseModel):
    """What ``flopcast validate --json`` prints: the kind of file, every row, and the
    summary overall and by source, metric and GPU (kernel files also by op and backend)."""

    kind: str
    rows: list[ValidationRow]
    summary: ErrorSummary
    by_source: dict[str, ErrorSummary]
    by_metric: dict[str, ErrorSummary]
    by_gpu: dict[str, ErrorSummary]
    by_op: dict[str, ErrorSummary] | None = None
    by_backend: dict[str, ErrorSummary] | None = None


def run_validate(request: ValidateRequest, warn: Warn = ignore) -> ValidateResult:
    """Predict every row of a measurement CSV and score the error."""
    from flopcast.validate import validate_file

    return ValidateResult.model_validate(validate_file(request.file, request.calibration))


class CalibrateRequest(Request):
    """The options of ``flopcast calibrate``: the measurement CSV to fit, where to write the
    calibration YAML, whether to also fit without each source and score it, and training
    values to hold instead of fitting (name -> value; training files only)."""

    file: str
    out: str = "calibration.yaml"
    leave_one_source_out: bool = False
    hold: dict[str, float] = {}


class CalibrateResult(BaseModel):
    """The calibration written (``kind`` of file fitted, the document as written: parameters
    per GPU family / engine / framework with their in-sample fit) and, when asked, each
    source's held-out error."""

    kind: str
    doc: dict[str, Any]
    held_out: dict[str, dict[str, Any]] | None = None


def run_calibrate(request: CalibrateRequest, warn: Warn = ignore) -> CalibrateResult:
    """Fit the efficiency parameters a training, inference or kernel file measures; write
    them to ``request.out``."""
    from flopcast.calibration import calibrate, leave_one_source_out
    from flopcast.calibration.fit import check_output
    from flopcast.validate.inputs import read_table

    check_output(request.out)
    kind = read_table(request.file).kind
    if request.hold and kind != "training":
        raise FlopcastError(f"--hold: {request.file} holds {kind} rows (allowed: a training "
                            "measurement file; only the joint training fit holds values)")
    if kind == "serving":
        raise FlopcastError(f"{request.file}: a serving file has no fit (allowed: a training, "
                            "inference or kernel measurement file)")
    if kind == "kernel":
        from flopcast.calibration.kernels import calibrate_kernels

        return CalibrateResult(kind=kind, doc=calibrate_kernels(request.file, request.out))
    if kind == "inference":
        from flopcast.calibration.inference import (
            calibrate_inference,
            leave_one_source_out_inference,
        )

        calibrate, leave_one_source_out = calibrate_inference, leave_one_source_out_inference
    held = {"held": request.hold} if kind == "training" else {}
    doc = calibrate(request.file, request.out, **held)
    held_out = (leave_one_source_out(request.file, **held)
                if request.leave_one_source_out else None)
    return CalibrateResult(kind=kind, doc=doc, held_out=held_out)
