"""Per-problem sample counts: how many samples were drawn for each problem and how many were
correct, read from a CSV and validated.

The schema is the one of ``shared/reasoning/pythia-math-samples.csv`` (Brown et al. 2024,
"Large Language Monkeys", arXiv:2407.21787, as redistributed by Schaeffer et al. 2025):

    id, source, model, params, benchmark, problem, samples, correct

``model``, ``benchmark``, ``problem``, ``samples`` and ``correct`` are required; ``params``
(parameter count), ``id``, ``source``, ``url``, ``notes`` and answer-histogram columns are
optional: ``top_wrong`` (samples giving the most common wrong answer; read, for the voting
models of ``answers``) and ``answers`` (accepted, not used yet); any other column is
refused (a misspelt column must not be silently ignored). Rows are grouped by (model,
benchmark); each group is one :class:`SampleSet`. Problems may have different sample counts
n_i. Every problem in the file is one FlopcastError line naming the file, row (and
line), column, value and what is allowed.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.files import column_names_shown, read_text

#: Columns a samples CSV must have.
REQUIRED_COLUMNS = ("model", "benchmark", "problem", "samples", "correct")
#: Columns it may have besides.
OPTIONAL_COLUMNS = ("id", "source", "url", "notes", "params", "answers", "top_wrong")


@dataclass(frozen=True, eq=False)
class SampleSet:
    """One (model, benchmark): per problem i, ``samples`` n_i >= 1 drawn and ``correct``
    0 <= c_i <= n_i of them correct (read-only int64 arrays of equal length), the problem
    names, the model's parameter count if known, and the file it came from."""

    model: str
    benchmark: str
    problems: tuple[str, ...]
    samples: np.ndarray
    correct: np.ndarray
    params: float | None = None
    path: Path | None = None
    top_wrong: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"samples {self.model}/{self.benchmark}"
        n, c = check_counts(self.samples, self.correct, where)
        if len(self.problems) != n.size:
            raise FlopcastError(f"{where}: {len(self.problems)} problem names for {n.size} "
                                "rows of counts")
        object.__setattr__(self, "samples", n)
        object.__setattr__(self, "correct", c)
        if self.top_wrong is not None:
            object.__setattr__(self, "top_wrong", check_top_wrong(n, c, self.top_wrong, where))

    @property
    def n_problems(self) -> int:
        return int(self.samples.size)

    def subsample(self, n_sub: int, seed: int = 0) -> SampleSet:
        """The counts had only ``n_sub`` of each problem's samples been drawn: c_i' ~
        Hypergeometric(n_i, c_i, n_sub), drawing n_sub of the n_i recorded samples without
        replacement (shared/reasoning/README.md, "Data": reproduces a small sampling campaign
        with the truth known). Seeded: the same seed gives the same counts."""
        if isinstance(n_sub, bool) or int(n_sub) != n_sub or n_sub < 1:
            raise FlopcastError(f"subsample: n_sub must be a whole number >= 1, got {n_sub!r}")
        short = np.flatnonzero(self.samples < n_sub)
        if short.size:
            i = int(short[0])
            raise FlopcastError(f"subsample: n_sub = {n_sub} exceeds the {self.samples[i]} samples "
                                f"of problem {self.problems[i]!r} ({self.model}/{self.benchmark})")
        rng = np.random.default_rng(seed)
        c_sub = rng.hypergeometric(self.correct, self.samples - self.correct, int(n_sub))
        # the answer histogram of the subsample is not known from the counts: left out
        return SampleSet(self.model, self.benchmark, self.problems,
                         np.full(self.n_problems, int(n_sub)), c_sub, self.params, self.path)



def check_top_wrong(samples: np.ndarray, correct: np.ndarray, top_wrong,
                    what: str) -> np.ndarray:
    """The most common wrong answer's count per problem, checked: whole numbers with
    1 <= top_wrong <= samples - correct where some sample was wrong, else 0."""
    t = np.asarray(top_wrong)
    if t.shape != samples.shape or not np.issubdtype(t.dtype, np.number) \
            or np.any(t != np.round(t)):
        raise FlopcastError(f"{what}: top_wrong must be whole numbers, one per problem")
    t = t.astype(np.int64)
    wrong = samples - correct
    bad = np.flatnonzero((t > wrong) | (t < np.minimum(wrong, 1)))
    if bad.size:
        i = int(bad[0])
        raise FlopcastError(f"{what}: problem {i} has top_wrong = {t[i]} with {wrong[i]} wrong "
                            "samples (allowed: 1..wrong samples, or 0 when none was wrong)")
    t.flags.writeable = False
    return t


def check_counts(samples, correct, what: str = "samples") -> tuple[np.ndarray, np.ndarray]:
    """``samples`` and ``correct`` as read-only int64 arrays, one entry per problem, after
    checking: equal length >= 1, whole numbers, n_i >= 1 and 0 <= c_i <= n_i."""
    arrays = []
    for name, value in (("samples", samples), ("correct", correct)):
        arr = np.asarray(value)
        if arr.ndim != 1 or arr.size == 0:
            raise FlopcastError(f"{what}: {name} must be a non-empty one-dimensional array")
        if not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr)):
            raise FlopcastError(f"{what}: {name} must be whole numbers")
        arrays.append(arr.astype(np.int64))
    n, c = arrays
    if n.size != c.size:
        raise FlopcastError(f"{what}: {n.size} sample counts but {c.size} correct counts")
    bad = np.flatnonzero((n < 1) | (c < 0) | (c > n))
    if bad.size:
        i = int(bad[0])
        raise FlopcastError(f"{what}: problem {i} has samples = {n[i]}, correct = {c[i]} "
                            "(allowed: samples >= 1, 0 <= correct <= samples)")
    n.flags.writeable = c.flags.writeable = False
    return n, c


_LGAMMA = np.vectorize(math.lgamma, otypes=[float])


def log_choose(samples, correct) -> np.ndarray:
    """log C(n, c), the binomial coefficient of c correct among n samples (log-gamma; arrays
    broadcast)."""
    n, c = np.asarray(samples, dtype=float), np.asarray(correct, dtype=float)
    return _LGAMMA(n + 1.0) - _LGAMMA(c + 1.0) - _LGAMMA(n - c + 1.0)


def read_sample_groups(path: str | Path) -> dict[tuple[str, str], SampleSet]:
    """Every (model, benchmark) in a samples CSV, in order of first appearance."""
    path = Path(path)
    rows, lines = _read_rows(path)
    groups: dict[tuple[str, str], list[int]] = {}
    for r, row in enumerate(rows):
        groups.setdefault((row["model"], row["benchmark"]), []).append(r)
    return {key: _group(path, rows, lines, members) for key, members in groups.items()}


def read_samples(path: str | Path, model: str | None = None,
                 benchmark: str | None = None) -> SampleSet:
    """The one (model, benchmark) of a samples CSV; ``model``/``benchmark`` pick it when the file
    holds several (exact match)."""
    groups = read_sample_groups(path)
    picked = [s for (m, b), s in groups.items()
              if (model is None or m == model) and (benchmark is None or b == benchmark)]
    if len(picked) == 1:
        return picked[0]
    listing = ", ".join(f"{m}/{b}" for m, b in groups)
    if not picked:
        raise FlopcastError(f"samples {path}: no rows for model={model!r}, "
                            f"benchmark={benchmark!r}; the file holds {listing}")
    raise FlopcastError(f"samples {path}: {len(picked)} (model, benchmark) groups match "
                        f"({listing}); choose one with model and benchmark")


def _read_rows(path: Path) -> tuple[list[dict[str, str]], list[int]]:
    """Non-blank rows (stripped cells) and their line numbers, after checking the header."""
    text = read_text(path, "samples")  # missing, binary, UTF-16/BOM, over-long: one line
    try:
        return _parse_rows(path, csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise FlopcastError(f"samples {path}: not a CSV file ({e})") from None


def _parse_rows(path: Path, reader) -> tuple[list[dict[str, str]], list[int]]:
    """Header checked, then non-blank rows (stripped cells) and their line numbers."""
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise FlopcastError(f"samples {path}: empty file (no header line)")
    columns = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise FlopcastError(f"samples {path}: missing column {', '.join(missing)}; columns "
                            f"found: {column_names_shown(columns)}")
    unknown = [c for c in columns if c and c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise FlopcastError(
            f"samples {path}: unknown column {', '.join(unknown)}; allowed: "
            f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}")
    rows, lines = [], []
    for cells in reader:
        if any(c.strip() for c in cells):
            padded = [c.strip() for c in cells] + [""] * (len(columns) - len(cells))
            rows.append(dict(zip(columns, padded, strict=False)))
            lines.append(reader.line_num)
    if not rows:
        raise FlopcastError(f"samples {path}: no rows after the header")
    return rows, lines


def _group(path: Path, rows: list[dict[str, str]], lines: list[int],
           members: list[int]) -> SampleSet:
    """One (model, benchmark)'s rows as a SampleSet; each cell checked where it stands."""
    def where(r: int, column: str) -> str:
        problem = rows[r].get("problem")
        named = f", problem {problem!r}" if problem and column != "problem" else ""
        return f"samples {path}: row {r + 1} (line {lines[r]}{named}), column {column}"

    seen: dict[str, int] = {}
    n, c, params, top = [], [], set(), []
    for r in members:
        row = rows[r]
        for column in ("model", "benchmark", "problem"):
            if not row[column]:
                raise FlopcastError(f"{where(r, column)}: empty (a name is required)")
        if row["problem"] in seen:
            raise FlopcastError(f"{where(r, 'problem')}: {row['problem']!r} repeats row "
                                f"{seen[row['problem']] + 1} for {row['model']}/{row['benchmark']}")
        seen[row["problem"]] = r
        n.append(_whole(row["samples"], 1, where(r, "samples"), "a whole number >= 1"))
        c.append(_whole(row["correct"], 0, where(r, "correct"), "a whole number >= 0"))
        if c[-1] > n[-1]:
            raise FlopcastError(f"{where(r, 'correct')}: {c[-1]} exceeds samples = {n[-1]} "
                                "(allowed: 0..samples)")
        params.add(_params(row.get("params", ""), where(r, "params")))
        top.append(row.get("top_wrong", ""))
    if len(params) > 1:
        raise FlopcastError(f"samples {path}: column params differs between rows of "
                            f"{rows[members[0]]['model']}/{rows[members[0]]['benchmark']} "
                            f"({', '.join(sorted(str(p) for p in params))})")
    first = rows[members[0]]
    return SampleSet(first["model"], first["benchmark"], tuple(seen), np.array(n), np.array(c),
                     params.pop(), path, _top_wrong(top, members, where))


def _top_wrong(cells: list[str], members: list[int], where) -> np.ndarray | None:
    """The optional top_wrong column of one group: on every row or on none."""
    filled = [bool(x) for x in cells]
    if not any(filled):
        return None
    if not all(filled):
        r = members[filled.index(False)]
        raise FlopcastError(f"{where(r, 'top_wrong')}: empty while other rows of the group "
                            "have it (give it on every row or none)")
    return np.array([_whole(x, 0, where(r, "top_wrong"), "a whole number >= 0")
                     for x, r in zip(cells, members, strict=True)])


def _whole(cell: str, low: int, where: str, allowed: str) -> int:
    """A whole number >= low from a CSV cell ('10000', '1e4' and '10000.0' all read as 10000)."""
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    if not value.is_integer() or value < low:
        raise FlopcastError(f"{where}: {cell!r} (allowed: {allowed})")
    return int(value)


def _params(cell: str, where: str) -> float | None:
    """The optional parameter count: blank, or a number > 0."""
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise FlopcastError(f"{where}: {cell!r} (allowed: a parameter count > 0, or blank)")
    return value
