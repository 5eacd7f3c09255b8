"""Rows of the kernel measurement schema (../shared/measurements/README.md, kernels.csv).

Each row names one kernel (a GEMM, a grouped expert GEMM, causal attention forward or
forward+backward, decode attention, a device copy) or a board-power reading, on a catalog GPU.
Its time is predicted by physics/kernels.py with that GPU's kernel profile; board power by
``board_power_w`` with the share of time the named loop keeps the tensor cores or HBM busy.
A row whose op, backend or dtype has no model is skipped with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flopcast.catalog import load_gpu
from flopcast.errors import FlopcastError
from flopcast.physics import kernels as K
from flopcast.specs.gpu import GPU
from flopcast.specs.quantization import weight_format
from flopcast.validate.inputs import measured_value, number, shown

KERNEL_OPS = ("gemm", "grouped_gemm", "attention", "decode_attention", "copy")
#: Element bytes of GEMM operands per dtype (fp8 GEMMs take 8-bit x and W, write 16-bit y).
#: fp4 rows are NVFP4, block scales included, as the inference path streams them.
ELEMENT_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0,
                 "fp4": weight_format("nvfp4").weight_bytes, "fp32": 4.0}
#: What bounds each power loop: (tensor-core share, HBM share) of its time.
POWER_LOADS = {"power:idle": (0.0, 0.0), "power:hbm_copy": (0.0, 1.0)}


@dataclass(frozen=True)
class KernelCase:
    id: str
    source: str
    op: str
    metric: str
    measured: float
    row: dict
    skipped: str | None
    predicted: float | None = None


def _num(row: dict, key: str, default: float | None = None) -> float | None:
    """The number in ``key`` as a float (checked against its physical range), or
    ``default`` when the cell is empty."""
    value = number(row, key)
    return default if value is None else float(value)


def _need(row: dict, key: str) -> float:
    """The number in ``key``; FlopcastError when the cell is empty."""
    value = _num(row, key)
    if value is None:
        raise FlopcastError(f"{key} is empty (op {shown((row.get('op') or '').strip())} "
                            "needs it)")
    return value


def predict_kernel_row(row: dict, gpu: GPU) -> float:
    """Predicted value of one kernel row in its own unit (time_ms or board_power_w)."""
    op, metric = row["op"].strip(), row["metric"].strip()
    if op.startswith("power:"):
        if metric != "board_power_w":
            raise FlopcastError(f"metric {shown(metric)} for {shown(op)}: expected board_power_w")
        return float(K.board_power_w(gpu, *_power_load(op)))
    if metric != "time_ms":
        raise FlopcastError(f"metric {shown(metric)}: kernel rows predict time_ms or board_power_w")
    return 1e3 * float(_kernel_seconds(op, row, gpu))


def _power_load(op: str) -> tuple[float, float]:
    if op in POWER_LOADS:
        return POWER_LOADS[op]
    if "gemm" in op:
        return (1.0, 0.0)
    raise FlopcastError(f"op {shown(op)}: no power model (known: idle, *gemm*, hbm_copy)")


def _kernel_seconds(op: str, row: dict, gpu: GPU):
    dtype = (row.get("dtype") or "bf16").strip()
    backend = (row.get("backend") or "").strip() or None
    if op == "copy":
        return K.stream_time(_need(row, "bytes"), gpu)
    if op in ("gemm", "grouped_gemm", "decode_attention") and dtype not in ELEMENT_BYTES:
        raise FlopcastError(f"dtype {shown(dtype)}: no element size (known: "
                            f"{', '.join(ELEMENT_BYTES)})")
    if op in ("gemm", "grouped_gemm"):
        m, n, k = (_need(row, c) for c in ("m", "n", "k"))
        return K.gemm_time(m, n, k, gpu, dtype, ELEMENT_BYTES[dtype], out_bytes=2.0,
                           groups=_num(row, "batch", 1.0), grouped=op == "grouped_gemm")
    b, heads = _num(row, "batch", 1.0), _need(row, "heads")
    kv_heads = _num(row, "kv_heads", heads)
    d = _need(row, "head_dim")
    if op == "decode_attention":
        return K.decode_attention_time(b, _need(row, "kv_len"), kv_heads * 2 * d, heads,
                                       ELEMENT_BYTES[dtype], gpu, backend, kv_heads=kv_heads)
    if op == "attention":
        s = _need(row, "seq_len")
        causal = (row.get("causal") or "1").strip() not in ("0", "false", "False")
        context = (s + 1) / 2 if causal else _num(row, "kv_len", s)
        t = K.attention_time(b * s, context, heads, d, d, gpu, dtype, backend, "fwd", b)
        if (row.get("pass") or "fwd").strip() == "fwd_bwd":
            t = t + K.attention_time(b * s, context, heads, d, d, gpu, dtype, backend, "bwd", b)
        return t
    raise FlopcastError(f"op {shown(op)}: no kernel model (known: {', '.join(KERNEL_OPS)})")


def prepare_kernel_rows(raw: list[dict], calibration: str | None = None) -> list[KernelCase]:
    """Each CSV row as a case, predicted once; rows flopcast cannot predict carry the reason."""
    cases = []
    for row in raw:
        rid, op = row.get("id", "?"), (row.get("op") or "").strip()
        metric = (row.get("metric") or "").strip()
        predicted, skipped, measured = None, None, math.nan
        try:
            measured = measured_value(row)
            predicted = predict_kernel_row(row, load_gpu(row["gpu"].strip(), calibration))
        except (FlopcastError, KeyError, ValueError, TypeError) as e:
            skipped = str(e)
        cases.append(KernelCase(rid, row.get("source", ""), op, metric, measured, row, skipped,
                                predicted))
    return cases


def predict_kernel_case(case: KernelCase, calibration: str | None = None) -> float | None:
    """The prediction made when the case was prepared (None when skipped)."""
    return case.predicted
