"""Checked inputs of `flopcast validate` and `flopcast calibrate` (internal to the package).

One reading path for every measurement CSV: a file that cannot be read as a table of the
measurement schema (../shared/measurements/README.md) is refused with one line naming the
file, the line, the column, the value and what is allowed (a :class:`FlopcastError`); a single
row that breaks a rule (a number that is not one, not finite, not positive where a physical
quantity must be, not whole where a count is, out of physical range; a cell too long; a
wrong number of fields) is kept with the reason, so that the row is reported as skipped and
never scored or fitted.

Accepted encodings: UTF-8 (a byte-order mark is dropped) and UTF-16 with a byte-order mark.
Calibration files given with ``--calibration`` are checked here too (:func:`check_calibration`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from flopcast.errors import FlopcastError
from flopcast.files import path_exists, read_text

#: Largest measurement file read: 64 MiB is ~200,000 rows of the published schemas (~300
#: bytes a row), hours of validation; a larger campaign is better split.
MAX_FILE_BYTES = 64 * 2**20
#: Longest CSV field (the csv module's default limit): a longer one is a file-level error.
MAX_FIELD_CHARS = 131_072
#: Longest cell of a column that names something (id, model, gpu, engine, …).
MAX_NAME_CHARS = 1024
#: Columns of free text, limited by MAX_FIELD_CHARS only.
FREE_TEXT = frozenset({"source", "url", "notes"})
#: Characters of a value shown in a message.
SHOWN_CHARS = 40


class Range(NamedTuple):
    """Allowed values of a numeric column: ``low`` ≤ v ≤ ``high`` (``low`` < v when
    ``open_low``); ``whole`` for counts; ``inf`` when the text ``inf`` is allowed."""

    low: float
    high: float
    whole: bool = True
    open_low: bool = False
    inf: bool = False


_COUNT = Range(1, 10**9)
_GPUS = Range(1, 10**7)
_SHAPE = Range(1, 10**7)
_TOKENS = Range(1, 10**7)
#: Numeric columns of the measurement schemas and their physical range. The bounds are far
#: beyond any run that exists; a value outside them is a typo or a hostile file.
LIMITS: dict[str, Range] = {
    "layers": Range(1, 100_000), "hidden": _SHAPE, "heads": Range(1, 10**6),
    "kv_heads": Range(1, 10**6), "ffn_hidden": _SHAPE, "vocab": Range(1, 10**9),
    "seq_len": _TOKENS, "moe_experts": Range(0, 10**6), "moe_topk": Range(1, 10**6),
    "num_gpus": _GPUS, "gpus_per_node": _GPUS, "tp": _GPUS, "pp": _GPUS, "dp": _GPUS,
    "cp": _GPUS, "ep": _GPUS, "etp": _GPUS, "vp": Range(1, 100_000), "sp": Range(0, 1),
    "zero_stage": Range(0, 3), "micro_batch": _COUNT, "global_batch": Range(1, 10**12),
    "input_len": _TOKENS, "output_len": _TOKENS, "batch_size": Range(1, 65_536),
    "concurrency": Range(1, 10**7), "num_requests": _COUNT, "replicas": _GPUS,
    "max_batch_size": Range(1, 10**7), "max_num_tokens": _TOKENS,
    "request_rate": Range(0, 1e9, whole=False, open_low=True, inf=True),
    "slo_ttft_ms": Range(0, 1e9, whole=False, open_low=True),
    "slo_tpot_ms": Range(0, 1e9, whole=False, open_low=True),
    "m": _COUNT, "n": _COUNT, "k": _COUNT, "batch": _COUNT, "kv_len": _TOKENS,
    "head_dim": Range(1, 100_000), "bytes": Range(0, 1e18, whole=False, open_low=True),
    "value": Range(0, 1e12, whole=False, open_low=True),
}

#: Columns every row of a schema needs (README.md; the rest have documented defaults).
REQUIRED = {
    "training": ("model", "gpu", "num_gpus", "metric", "value"),
    "inference": ("model", "gpu", "metric", "value"),
    "serving": ("model", "gpu", "metric", "value"),
    "kernel": ("gpu", "op", "metric", "value"),
}


def shown(value: object) -> str:
    """``value`` quoted for a message, cut to SHOWN_CHARS characters."""
    text = str(value)
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return repr(text[:SHOWN_CHARS]) + f"…({len(text):,} characters)"


def allowed(rule: Range) -> str:
    """What ``rule`` allows, in words."""
    if rule.whole:
        text = f"whole numbers {int(rule.low):,}–{int(rule.high):,}"
    else:
        low = f"> {rule.low:g}" if rule.open_low else f">= {rule.low:g}"
        text = f"numbers {low} and <= {rule.high:g}"
    return text + (" or inf" if rule.inf else "")


def parse_number(column: str, text: str) -> float:
    """The value of a non-empty numeric cell, checked against ``LIMITS[column]``."""
    rule = LIMITS.get(column, Range(-math.inf, math.inf, whole=False))
    cell = text.strip()
    try:
        value = float(cell)
    except ValueError:
        raise FlopcastError(f"{column} {shown(cell)} is not a number "
                            f"(allowed: {allowed(rule)})") from None
    if math.isnan(value):
        problem = "is not a number"
    elif math.isinf(value):
        if rule.inf and value > 0 and cell.lower().lstrip("+") in ("inf", "infinity"):
            return value
        spelled = cell.lower().lstrip("+-") in ("inf", "infinity")
        problem = "is not finite" if spelled else "is out of range"
    elif rule.whole and not value.is_integer():
        problem = "is not a whole number"
    elif value < rule.low or value > rule.high or (rule.open_low and value == rule.low):
        problem = "is out of range"
    else:
        return value
    raise FlopcastError(f"{column} {shown(cell)} {problem} (allowed: {allowed(rule)})")


def number(row: dict, column: str, default: float | None = None) -> float | None:
    """The row's checked number in ``column`` (an int for whole-number columns), or
    ``default`` when the cell is empty or absent."""
    text = (row.get(column) or "").strip()
    if not text:
        return default
    value = parse_number(column, text)
    rule = LIMITS.get(column)
    return int(value) if rule is not None and rule.whole else value


def measured_value(row: dict) -> float:
    """The row's measured ``value``: a finite number > 0 (FlopcastError says why not)."""
    value = number(row, "value")
    if value is None:
        raise FlopcastError(f"value is empty (allowed: {allowed(LIMITS['value'])})")
    return float(value)


def shown_measured(row: dict) -> float | None:
    """The measured value to show for a row (None when it is not a finite number)."""
    try:
        value = float((row.get("value") or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def row_problem(row: dict) -> str | None:
    """Why a row cannot be scored whatever its schema (cell lengths, numeric columns, the
    measured value), or None."""
    for column, text in row.items():
        if column not in FREE_TEXT and len(text) > MAX_NAME_CHARS:
            return (f"{column}: {len(text):,} characters (allowed: at most "
                    f"{MAX_NAME_CHARS:,})")
    try:
        for column in LIMITS:
            number(row, column)
        measured_value(row)
    except FlopcastError as e:
        return str(e)
    return None


@dataclass
class Table:
    """A measurement CSV read and checked: its schema, rows (header → cell), the line each
    row starts on, and per row the reason it cannot be scored (None when it can)."""

    path: Path
    kind: str
    columns: list[str]
    rows: list[dict[str, str]]
    lines: list[int]
    problems: list[str | None]

    def usable(self) -> list[dict[str, str]]:
        """The rows that can be scored or fitted, with relative paths resolved against the
        file's folder (gpu_file_beside) and an id where the row has none."""
        return [gpu_file_beside(with_id(row, i), self.path.parent)
                for i, (row, problem) in enumerate(zip(self.rows, self.problems, strict=True))
                if problem is None]


def with_id(row: dict, index: int) -> dict:
    """``row`` with an ``id`` (``row<N>``, 1-based, when the file gives none)."""
    return row if (row.get("id") or "").strip() else {**row, "id": f"row{index + 1}"}


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
                and path_exists(str(folder / value)) and (folder / value).is_file():
            out[column] = str(folder / value)
    return out


def read_table(path: str | Path) -> Table:
    """Read and check a measurement CSV (module docstring); file-level problems raise."""
    path = Path(path)
    text = _read_text(path)
    header, records = _parse(path, text)
    kind = schema_of(path, header)
    rows, lines, problems = [], [], []
    for line, cells in records:
        row = dict(zip(header, cells, strict=False))
        row.update((c, "") for c in header[len(cells):])
        problem = None
        if len(cells) != len(header):
            problem = (f"line {line} has {len(cells)} fields; the header has {len(header)} "
                       "(a comma or quote out of place?)")
        rows.append(row)
        lines.append(line)
        problems.append(problem or row_problem(row))
    if not rows:
        raise FlopcastError(f"{path}: no data rows after the header")
    return Table(path, kind, header, rows, lines, problems)


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """Every row of a checked measurement CSV (rows with problems included)."""
    return read_table(path).rows


def _read_text(path: Path) -> str:
    """The file's text through the one safe reader (UTF-8, BOM dropped, or UTF-16/32 with a
    BOM; no NUL; at most MAX_FILE_BYTES), refusing an empty file."""
    text = read_text(path, "measurements", MAX_FILE_BYTES, "a measurement CSV file")
    if not text.strip():
        raise FlopcastError(f"{path}: empty file (allowed: a header line, then one row per "
                            "measurement)")
    return text


def _parse(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(first line, cells)] of the non-blank records); CSV syntax errors raise."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    line = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                if header is None:
                    header = [c.strip() for c in cells]
                else:
                    records.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as e:
        detail = (f"a field longer than {MAX_FIELD_CHARS:,} characters (allowed: at most "
                  f"{MAX_FIELD_CHARS:,})" if "field limit" in str(e) else f"CSV syntax: {e}")
        raise FlopcastError(f"{path}: line {reader.line_num}: {detail}") from None
    if header is None:
        raise FlopcastError(f"{path}: empty file (allowed: a header line, then one row per "
                            "measurement)")
    _check_header(path, header)
    return header, records


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if len(name) > MAX_NAME_CHARS:
            raise FlopcastError(f"{path}: line 1: header column {shown(name)} is "
                                f"{len(name):,} characters (allowed: a column name)")
        if name and name in seen:
            raise FlopcastError(f"{path}: line 1: column {shown(name)} appears twice in the "
                                "header (allowed: each column once)")
        seen.add(name)


def schema_of(path: str | Path, columns: list[str] | set[str]) -> str:
    """The schema a header belongs to: training, inference, serving or kernel (README.md);
    a header that matches none, or lacks a column its schema needs, raises."""
    names = set(columns)
    if "op" in names and "metric" in names:
        kind = "kernel"
    elif "scenario" in names and "engine" in names:
        kind = "serving"
    elif "input_len" in names or "engine" in names:
        kind = "inference"
    elif {"metric", "value", "gpu", "num_gpus"} <= names:
        kind = "training"
    else:
        found = ", ".join(shown(c) for c in list(columns)[:12]) or "(none)"
        raise FlopcastError(
            f"{path}: line 1: the header ({found}) matches no measurement schema (allowed: "
            f"training {', '.join(REQUIRED['training'])}; inference the same less num_gpus, "
            "plus input_len or engine; serving adds scenario; kernel "
            f"{', '.join(REQUIRED['kernel'])}; see shared/measurements/README.md)")
    missing = [c for c in REQUIRED[kind] if c not in names]
    if missing:
        raise FlopcastError(f"{path}: line 1: no column {', '.join(missing)} (a {kind} file "
                            f"needs {', '.join(REQUIRED[kind])})")
    return kind


def check_calibration(path: str | Path | None) -> None:
    """Refuse a ``--calibration`` file that cannot be one, before any work is done (the
    loader's own check: one reading path for every command)."""
    if path is None:
        return
    from flopcast.catalog.loader import load_calibration

    load_calibration(path)
