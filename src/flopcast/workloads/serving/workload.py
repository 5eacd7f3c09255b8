"""Serving workload: when requests arrive and how many tokens each reads and writes.

Requests come from a length spec and an arrival spec (``make_requests``), from a trace file
(``read_trace``) or from a named request-length dataset (``load_dataset``,
catalog/datasets/*.yaml). Everything is NumPy-vectorised and seeded: the same seed gives
identical arrays. The simulator owns time from there on: it admits requests no earlier than
``arrival_s`` (and, in a closed loop, no more than the concurrency at once).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from flopcast.errors import FlopcastError, echo, validation_message
from flopcast.files import column_names_shown, load_shipped_yaml
from flopcast.specs.dataset import LengthDataset
from flopcast.specs.limits import (
    MAX_ARRIVAL_CV,
    MAX_REQUEST_RATE,
    MAX_REQUESTS,
    MAX_SEQ_LEN,
    MIN_REQUEST_RATE,
)

DATASET_DIR = Path(__file__).resolve().parents[2] / "catalog" / "datasets"

INT_FIELDS = ("input_len", "output_len", "prefix_id", "prefix_len")


@dataclass(frozen=True, eq=False)
class Requests:
    """One row per request, as read-only NumPy arrays of equal length.

    ``arrival_s`` (float64, seconds from the start; non-decreasing in what this module
    returns), ``input_len`` and ``output_len`` (int64 >= 1: prompt tokens, tokens to generate),
    ``prefix_id`` (int64, -1 = no shared prefix; requests with the same id share their first
    ``prefix_len`` prompt tokens, a system prompt an engine's prefix cache can reuse) and
    ``prefix_len`` (int64, 0 <= prefix_len <= input_len; counted inside ``input_len``).
    """

    arrival_s: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    prefix_id: np.ndarray | None = None
    prefix_len: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = np.shape(self.arrival_s)[0] if np.ndim(self.arrival_s) == 1 else -1
        if n < 0:
            raise FlopcastError("requests: arrival_s must be a one-dimensional array")
        defaults = {"prefix_id": -1, "prefix_len": 0}
        for name in ("arrival_s", *INT_FIELDS):
            value = getattr(self, name)
            if value is None:
                value = np.full(n, defaults[name])
            arr = _as_column(name, value, np.float64 if name == "arrival_s" else np.int64)
            if arr.shape != (n,):
                raise FlopcastError(f"requests: {name} has {arr.shape[0]} rows, arrival_s {n}")
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        self._check_values()

    def _check_values(self) -> None:
        checks = [("arrival_s", ~(np.isfinite(self.arrival_s) & (self.arrival_s >= 0)),
                   "must be a finite number of seconds >= 0"),
                  ("input_len", self.input_len < 1, "must be >= 1 token"),
                  ("output_len", self.output_len < 1, "must be >= 1 token"),
                  ("prefix_id", self.prefix_id < -1, "must be >= -1 (-1 = no prefix)"),
                  ("prefix_len", (self.prefix_len < 0) | (self.prefix_len > self.input_len),
                   "must lie in [0, input_len]")]
        for name, bad, allowed in checks:
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                value = getattr(self, name)[i]
                raise FlopcastError(f"requests: {name}[{i}] = {value} {allowed}")

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def sorted(self) -> Requests:
        """The same requests ordered by arrival time (stable: ties keep their order)."""
        order = np.argsort(self.arrival_s, kind="stable")
        return Requests(*(getattr(self, f)[order] for f in ("arrival_s", *INT_FIELDS)))


def _as_column(name: str, value, dtype) -> np.ndarray:
    """``value`` as a 1-D array of ``dtype``; integer columns refuse fractional numbers."""
    arr = np.asarray(value)
    fractional = arr.dtype.kind == "f" and not (
        np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    if dtype is np.int64 and fractional:
        raise FlopcastError(f"requests: {name} must hold whole numbers of tokens")
    return np.array(arr, dtype=dtype)


# --------------------------------------------------------------------------- specs

LengthKind = Literal["fixed", "uniform", "normal", "lognormal", "dataset", "random"]

#: Largest lognormal σ of ln(length): e^4 ≈ 55× per standard deviation, far beyond request
#: sets (ShareGPT's lengths fit σ of about 1); larger ones overflow the truncated mean.
MAX_LOG_SIGMA = 4.0
#: Which length kinds use which spread field (others refuse it rather than ignore it).
_KIND_FIELDS = {"range_ratio": ("uniform", "random"), "input_std": ("normal",),
                "output_std": ("normal",), "input_sigma": ("lognormal",),
                "output_sigma": ("lognormal",), "dataset": ("dataset",)}


class LengthSpec(BaseModel):
    """How many tokens each request reads (input) and generates (output).

    Kinds (``input_len``/``output_len`` = L):

    - ``fixed``: exactly L (TensorRT-LLM/static-batch benchmarks, vLLM latency tests).
    - ``random``: integers uniform on [max(int(L·range_ratio), 1), L], sglang.bench_serving
      --dataset-name random with --random-range-ratio (ratio 0 → [1, L], mean ≈ L/2; sglang
      @50a61368 sample_random_requests; sglang lets outputs reach 0, here they start at 1).
    - ``uniform``: integers uniform on [floor(L·(1-r)), ceil(L·(1+r))], r = range_ratio < 1,
      mean L: vLLM's random dataset (vllm/benchmarks/datasets.py RandomDataset
      get_sampling_params; 'r = 0.15' is the ±15 % of vLLM blog runs).
    - ``normal``: round(Normal(L, std)) clamped to the bounds (NVIDIA AIPerf sequence-length
      distributions, 'ISL ~ Normal(64, 10)', 'values are automatically clamped to be at least
      1': docs.nvidia.com/aiperf/tutorials/datasets-inputs).
    - ``lognormal``: a lognormal with shape ``*_sigma`` truncated to the bounds (out-of-bound
      draws are redrawn, as the benchmarks drop out-of-range samples) whose mean AFTER
      truncation is L: sources state means, so the mean is what is kept.
    - ``dataset``: the named catalog dataset's distributions and caps; ``input_len`` or
      ``output_len`` given fixes that side (sglang's --sharegpt-output-len does this for
      outputs) and is required where the dataset does not state the distribution.

    Bounds (``*_min``/``*_max``) clamp fixed/uniform/random/normal draws and truncate lognormal
    ones; ``max_total_len`` redraws pairs whose input + output exceeds it (bench_serving's
    ShareGPT 'prompt_len + output_len > 2048' filter).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LengthKind
    input_len: float | None = None
    output_len: float | None = None
    range_ratio: float | None = None
    input_std: float | None = None
    output_std: float | None = None
    input_sigma: float | None = None
    output_sigma: float | None = None
    dataset: str | None = None
    input_min: int = 1
    input_max: int | None = None
    output_min: int = 1
    output_max: int | None = None
    max_total_len: int | None = None

    @field_validator("input_len", "output_len")
    @classmethod
    def _length(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0 < v <= MAX_SEQ_LEN):
            raise ValueError(f"{v!r} is not allowed: a length is a number of tokens in "
                             f"(0, {MAX_SEQ_LEN:,}]")
        return v

    @field_validator("input_min", "input_max", "output_min", "output_max", "max_total_len")
    @classmethod
    def _bound(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= MAX_SEQ_LEN:
            raise ValueError(f"{v!r} is not allowed: a bound is a whole number of tokens in "
                             f"1..{MAX_SEQ_LEN:,}")
        return v

    @field_validator("range_ratio")
    @classmethod
    def _ratio(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError(f"{v!r} is not allowed: range_ratio lies in [0, 1]")
        return v

    @field_validator("input_std", "output_std", "input_sigma", "output_sigma")
    @classmethod
    def _spread(cls, v: float | None, info) -> float | None:
        std = info.field_name.endswith("std")
        ok = v is None or (v >= 0 if std else 0 < v <= MAX_LOG_SIGMA)
        if v is not None and not (math.isfinite(v) and ok):
            what = (">= 0 tokens" if std else
                    f"in (0, {MAX_LOG_SIGMA:g}] (std of ln length)")
            raise ValueError(f"{v!r} is not allowed: {info.field_name} must be finite and {what}")
        return v

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str | None) -> str | None:
        if v is not None and v.strip().lower() not in _datasets():
            raise ValueError(f"unknown {v!r}; known: {', '.join(dataset_ids())}")
        return None if v is None else load_dataset(v).id

    @model_validator(mode="after")
    def _check(self) -> LengthSpec:
        for name, kinds in _KIND_FIELDS.items():
            value = getattr(self, name)
            if value is not None and self.kind not in kinds:
                raise ValueError(f"{name} = {value!r} applies to kind {' or '.join(kinds)}, "
                                 f"not {self.kind}")
        required = {"dataset": ["dataset"], "normal": ["input_std", "output_std"],
                    "lognormal": ["input_sigma", "output_sigma"]}.get(self.kind, [])
        if self.kind != "dataset":
            required = ["input_len", "output_len", *required]
        missing = [f for f in required if getattr(self, f) is None]
        if missing:
            raise ValueError(f"kind {self.kind} needs {' and '.join(missing)}")
        if self.kind == "uniform" and (self.range_ratio or 0) >= 1:
            raise ValueError(f"range_ratio = {self.range_ratio!r} is not allowed for kind "
                             "uniform: it lies in [0, 1) (vLLM's --random-range-ratio)")
        for side in ("input", "output"):
            self._check_side(side)
        low = self.input_min + self.output_min
        if self.max_total_len is not None and self.max_total_len < low:
            raise ValueError(f"max_total_len = {self.max_total_len} is below input_min + "
                             f"output_min = {low}")
        if self.kind in ("fixed", "lognormal") and self.max_total_len is not None:
            total = self.input_len + self.output_len
            if total > self.max_total_len or (self.kind == "lognormal" and
                                              total == self.max_total_len):
                raise ValueError(f"input_len + output_len = {total:g} must stay below "
                                 f"max_total_len = {self.max_total_len}")
        return self

    def _check_side(self, side: str) -> None:
        lo, hi = getattr(self, f"{side}_min"), getattr(self, f"{side}_max")
        if hi is not None and hi < lo:
            raise ValueError(f"{side}_max = {hi} is below {side}_min = {lo}")
        length = getattr(self, f"{side}_len")
        if length is None or self.kind == "dataset":
            return
        top = math.inf if hi is None else hi
        inside = lo < length < top if self.kind == "lognormal" else lo <= length <= top
        if not inside:
            edge = "strictly inside" if self.kind == "lognormal" else "within"
            raise ValueError(f"{side}_len = {length:g} must lie {edge} [{side}_min, {side}_max]"
                             f" = [{lo}, {top:g}]")


ArrivalKind = Literal["poisson", "gamma", "fixed", "offline", "concurrency"]


class ArrivalSpec(BaseModel):
    """When requests arrive.

    - ``poisson``: exponential gaps at ``rate`` req/s (vLLM benchmark_serving and
      sglang.bench_serving get_request: np.random.exponential(1/request_rate); the MLPerf
      server scenario's Poisson load).
    - ``gamma``: gamma gaps with coefficient of variation ``cv`` (shape 1/cv², scale
      cv²/rate, mean 1/rate): vLLM's --burstiness b is shape b, so b = 1/cv² (``burstiness``);
      cv = 1 is Poisson, cv > 1 burstier, cv < 1 more regular.
    - ``fixed``: request i at i/rate.
    - ``offline``: all at t = 0 (request rate inf; MLPerf offline).
    - ``concurrency``: a closed loop holding ``concurrency`` requests in flight; arrival times
      are the simulator's to decide, so ``arrival_times`` gives zeros (every request ready
      at 0, the simulator admits at most ``concurrency`` at a time: vLLM's --max-concurrency
      semaphore with --request-rate inf).

    ``rate`` may be inf (all at once, as the benchmarks' request_rate inf). ``concurrency``
    may also cap the other kinds (vLLM's --max-concurrency combined with a rate).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ArrivalKind
    rate: float | None = None
    cv: float = 1.0
    concurrency: int | None = None

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: float | None) -> float | None:
        if v is not None and not (MIN_REQUEST_RATE <= v <= MAX_REQUEST_RATE
                                  or v == math.inf):  # NaN too
            raise ValueError(f"{v!r} is not allowed: rate is requests per second in "
                             f"[{MIN_REQUEST_RATE:.0e}, {MAX_REQUEST_RATE:.0e}] (or inf)")
        return v

    @field_validator("cv")
    @classmethod
    def _cv(cls, v: float) -> float:
        if not 0 < v <= MAX_ARRIVAL_CV:  # NaN too
            raise ValueError(f"{v!r} is not allowed: cv (coefficient of variation of the gaps) "
                             f"is in (0, {MAX_ARRIVAL_CV:g}]")
        return v

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= MAX_REQUESTS:
            raise ValueError(f"{v!r} is not allowed: concurrency is a whole number in "
                             f"1..{MAX_REQUESTS:,}")
        return v

    @model_validator(mode="after")
    def _check(self) -> ArrivalSpec:
        timed = self.kind in ("poisson", "gamma", "fixed")
        if timed and self.rate is None:
            raise ValueError(f"kind {self.kind} needs rate (requests per second)")
        if not timed and self.rate is not None:
            raise ValueError(f"rate = {self.rate!r} applies to kinds poisson, gamma and fixed, "
                             f"not {self.kind}")
        if "cv" in self.model_fields_set and self.kind != "gamma" and self.cv != 1:
            raise ValueError(f"cv = {self.cv!r} applies to kind gamma only (poisson is cv 1)")
        if self.kind == "concurrency" and self.concurrency is None:
            raise ValueError("kind concurrency needs concurrency (requests in flight)")
        return self

    @property
    def burstiness(self) -> float:
        """vLLM benchmark_serving's --burstiness (gamma shape) for this cv: 1/cv²."""
        return 1.0 / self.cv**2


# --------------------------------------------------------------------------- datasets


@cache
def _datasets() -> dict[str, LengthDataset]:
    out: dict[str, LengthDataset] = {}
    for path in sorted(DATASET_DIR.glob("*.yaml")):
        try:
            ds = LengthDataset.model_validate(load_shipped_yaml(path))
        except ValidationError as e:
            raise FlopcastError(f"dataset {path.name}: {validation_message(e)}") from None
        if ds.id != path.stem:
            raise FlopcastError(f"dataset {path.name}: id {ds.id!r} differs from the file name")
        for name in [ds.id, *ds.aliases]:
            out[name.lower()] = ds
    return out


def dataset_ids() -> list[str]:
    """Ids of the catalog's request-length datasets."""
    return sorted({ds.id for ds in _datasets().values()})


def load_dataset(name: str) -> LengthDataset:
    """A request-length dataset by id or alias (case-insensitive), e.g. 'sharegpt'.

    Each catalog/datasets/<id>.yaml states input/output length distributions and, per number,
    the statistic it rests on or 'assumed' (``sources``); shared/measurements/datasets.md
    lists the published statistics."""
    ds = _datasets().get(name.strip().lower())
    if ds is None:
        raise FlopcastError(f"dataset: unknown {name!r}; known: {', '.join(dataset_ids())}")
    return ds


# --------------------------------------------------------------------------- lengths


@dataclass(frozen=True)
class _Marginal:
    """One side's length law: kind, centre (L or the mean), spread, bounds [lo, hi]."""

    side: str
    kind: str
    centre: float
    spread: float = 0.0
    lo: int = 1
    hi: int | None = None
    mu: float | None = None  # lognormal location, when solved jointly (_joint_lognormal_mus)

    def draw(self, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``m`` integer lengths and the mask of those to keep (lognormal: inside bounds)."""
        hi = math.inf if self.hi is None else self.hi
        c, r = self.centre, self.spread
        if self.kind == "fixed":
            x = np.full(m, float(round(c)))
        elif self.kind == "uniform":
            a = max(1, math.floor(round(c * (1 - r), 9)))  # round: 100·1.1 is 110.00…01
            b = max(a, math.ceil(round(c * (1 + r), 9)))
            x = rng.integers(a, b + 1, m).astype(np.float64)
        elif self.kind == "random":
            top = max(1, round(c))
            x = rng.integers(max(int(top * r), 1), top + 1, m).astype(np.float64)
        elif self.kind == "normal":
            x = np.rint(rng.normal(c, r, m))
        else:
            mu = self.mu if self.mu is not None else _lognormal_mu(c, r, self.lo - 0.5, hi + 0.5)
            with np.errstate(over="ignore"):
                x = np.rint(np.exp(rng.normal(mu, r, m)))
            keep = (x >= self.lo) & (x <= hi)
            return np.where(keep, x, self.lo).astype(np.int64), keep
        x = np.clip(x, self.lo, hi)
        return x.astype(np.int64), np.ones(m, dtype=bool)


def _upper_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z (accurate in both tails)."""
    return 0.0 if z == math.inf else 0.5 * math.erfc(z / math.sqrt(2.0))


def _truncated_lognormal_mean(mu: float, sigma: float, lo: float, hi: float) -> float:
    """E[X | lo <= X <= hi] for ln X ~ Normal(mu, sigma) (Johnson, Kotz & Balakrishnan,
    Continuous Univariate Distributions vol. 1, ch. 14: partial moments of the lognormal)."""
    a = (math.log(lo) - mu) / sigma
    b = math.inf if hi == math.inf else (math.log(hi) - mu) / sigma
    mass = _upper_tail(a) - _upper_tail(b)
    if mass <= 0.0:
        return lo if a > 0 else hi
    return math.exp(mu + sigma**2 / 2) * (_upper_tail(a - sigma) - _upper_tail(b - sigma)) / mass


@lru_cache(maxsize=256)
def _lognormal_mu(mean: float, sigma: float, lo: float, hi: float) -> float:
    """The mu whose lognormal, truncated to [lo, hi], has mean ``mean`` (bisection: the
    truncated mean rises with mu)."""
    if not lo < mean < hi:
        raise FlopcastError(f"lengths: a lognormal mean of {mean:g} must lie strictly inside "
                            f"its bounds ({lo + 0.5:g}, {hi - 0.5:g})")
    down = math.log(lo) - 6 * sigma
    up = (math.log(hi) + 6 * sigma) if hi != math.inf else math.log(mean) + 1.0
    if not _truncated_lognormal_mean(down, sigma, lo, hi) < mean:
        return down
    for _ in range(200):
        mid = 0.5 * (down + up)
        if _truncated_lognormal_mean(mid, sigma, lo, hi) < mean:
            down = mid
        else:
            up = mid
        if up - down < 1e-12:
            break
    return 0.5 * (down + up)


class _PairMeans:
    """Means of integer lengths (X, Y) drawn as rounded lognormals inside their bounds and
    kept only when X + Y <= total: sums over the integer grid (the density at each integer
    stands for the mass rounding to it). The grid, its logarithms and the cut are built once
    per (x, y, total); each side's mean is computed alone, with the other side's location
    fixed (the alternating bisection of ``_joint_lognormal_mus`` asks for one at a time)."""

    def __init__(self, x: _Marginal, y: _Marginal, total: int):
        self.x, self.y = x, y
        self.kx = np.arange(x.lo, min(x.hi or total, total - y.lo) + 1, dtype=np.float64)
        self.ky = np.arange(y.lo, min(y.hi or total, total - x.lo) + 1, dtype=np.float64)
        self.log_kx, self.log_ky = np.log(self.kx), np.log(self.ky)
        # last y index per x
        self.top = np.clip(total - self.kx - y.lo, -1, self.ky.size - 1).astype(np.int64)
        self.cut = self.top >= 0

    @staticmethod
    def _weights(log_k: np.ndarray, mu: float, law: _Marginal) -> np.ndarray:
        return np.exp(-((log_k - mu) ** 2) / (2 * law.spread**2) - log_k)

    @lru_cache(maxsize=2)  # noqa: B019 (one object per solve; the side held fixed repeats)
    def _x_side(self, mu_x: float) -> np.ndarray:
        return self._weights(self.log_kx, mu_x, self.x)

    @lru_cache(maxsize=2)  # noqa: B019
    def _y_side(self, mu_y: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        wy = self._weights(self.log_ky, mu_y, self.y)
        mass_y, sum_y = np.cumsum(wy), np.cumsum(self.ky * wy)
        return mass_y, sum_y, np.where(self.cut, mass_y[self.top], 0.0)

    def mean_x(self, mu_x: float, mu_y: float) -> float:
        w = self._x_side(mu_x) * self._y_side(mu_y)[2]
        return float(np.sum(self.kx * w) / np.sum(w))

    def mean_y(self, mu_x: float, mu_y: float) -> float:
        wx = self._x_side(mu_x)
        _, sum_y, kept = self._y_side(mu_y)
        return float(np.sum(wx * sum_y[self.top]) / np.sum(wx * kept))


@lru_cache(maxsize=64)
def _joint_lognormal_mus(x: _Marginal, y: _Marginal, total: int) -> tuple[float, float]:
    """Locations (mu_x, mu_y) whose rounded, bounded lognormals keep their stated means after
    pairs over ``total`` are dropped (alternating bisections; the coupling is weak)."""
    mus = [_lognormal_mu(law.centre, law.spread, law.lo - 0.5,
                         math.inf if law.hi is None else law.hi + 0.5) for law in (x, y)]
    pairs = _PairMeans(x, y, total)
    for _ in range(4):
        for i, law in enumerate((x, y)):
            mean = pairs.mean_x if i == 0 else pairs.mean_y
            down, up = mus[i] - 3 * law.spread, mus[i] + 3 * law.spread
            for _ in range(60):
                trial = [*mus]
                trial[i] = 0.5 * (down + up)
                if mean(*trial) < law.centre:
                    down = trial[i]
                else:
                    up = trial[i]
            mus[i] = 0.5 * (down + up)
    return mus[0], mus[1]


def _marginals(spec: LengthSpec) -> tuple[_Marginal, _Marginal, int | None]:
    """(input law, output law, max_total_len) of a length spec; datasets resolved here."""
    if spec.kind != "dataset":
        fields = {"uniform": ("range_ratio",) * 2, "random": ("range_ratio",) * 2,
                  "normal": ("input_std", "output_std"),
                  "lognormal": ("input_sigma", "output_sigma")}.get(spec.kind, (None, None))
        laws = []
        for side, field in zip(("input", "output"), fields, strict=True):
            spread = (getattr(spec, field) if field else None) or 0.0
            laws.append(_Marginal(side, spec.kind, getattr(spec, f"{side}_len"), spread,
                                  getattr(spec, f"{side}_min"), getattr(spec, f"{side}_max")))
        return laws[0], laws[1], spec.max_total_len
    ds = load_dataset(spec.dataset)
    inp, out = (_dataset_marginal(ds, side, spec) for side in ("input", "output"))
    overridden = spec.input_len is not None or spec.output_len is not None
    max_total = spec.max_total_len or (None if overridden else ds.max_total_len)
    return inp, out, max_total


def _dataset_marginal(ds: LengthDataset, side: str, spec: LengthSpec) -> _Marginal:
    """One side of a dataset, with the spec's explicit bounds and length overriding it."""
    dist = getattr(ds, side)
    set_ = spec.model_fields_set
    lo = getattr(spec, f"{side}_min") if f"{side}_min" in set_ else dist.min
    hi = getattr(spec, f"{side}_max") if f"{side}_max" in set_ else dist.max
    given = getattr(spec, f"{side}_len")
    if given is not None:
        if not lo <= given <= (math.inf if hi is None else hi):
            raise FlopcastError(f"{side}_len = {given:g} lies outside dataset {ds.id}'s {side} "
                                f"range [{lo}, {hi if hi is not None else 'inf'}]")
        return _Marginal(side, "fixed", given, 0.0, lo, hi)
    if dist.kind == "unknown":
        raise FlopcastError(f"dataset {ds.id}: the {side}-length distribution is not stated in "
                            f"its sources; give {side}_len (--{side}-len) to fix it")
    return _Marginal(side, dist.kind, dist.mean, dist.sigma or 0.0, lo, hi)


def _draw_pairs(inp: _Marginal, out: _Marginal, max_total: int | None, n: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (input, output) pairs; pairs out of bounds or over ``max_total`` are redrawn."""
    xs, ys = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    have, drawn, kept = 0, 0, 0
    for _ in range(64):
        if have == n:
            return xs, ys
        need = n - have
        m = min(math.ceil(need / max(kept / drawn if drawn else 1.0, 0.02)), 50 * need) + 8
        x, keep_x = inp.draw(m, rng)
        y, keep_y = out.draw(m, rng)
        keep = keep_x & keep_y
        if max_total is not None:
            keep &= x + y <= max_total
        idx = np.flatnonzero(keep)[:need]
        xs[have:have + idx.size], ys[have:have + idx.size] = x[idx], y[idx]
        have, drawn, kept = have + idx.size, drawn + m, kept + int(keep.sum())
    if have < n:
        raise FlopcastError(f"lengths: only {kept} of {drawn} drawn (input, output) pairs fall "
                            f"within the bounds and max_total_len {max_total}; widen them")
    return xs, ys


def sample_lengths(spec: LengthSpec, n: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (input_len, output_len) int64 arrays drawn from ``spec`` with ``rng``.

    Semantics and sources per kind: see ``LengthSpec``. Draws are vectorised; pairs that fall
    outside a truncated law's bounds or over ``max_total_len`` are redrawn (the way
    sglang.bench_serving / vLLM benchmark_serving drop ShareGPT pairs that fail their
    filter), so the arrays depend only on the spec, ``n`` and the generator's state. When both
    sides are lognormal under a ``max_total_len``, their locations are solved jointly so that
    the means AFTER dropping long pairs are the stated ones (sharegpt: 224 / 191 tokens).
    """
    inp, out, max_total = _marginals(spec)
    if max_total is not None and max_total <= 200_000 and inp.kind == out.kind == "lognormal":
        mu_in, mu_out = _joint_lognormal_mus(inp, out, max_total)
        inp, out = replace(inp, mu=mu_in), replace(out, mu=mu_out)
    return _draw_pairs(inp, out, max_total, _count(n, "n", 0), rng)


# --------------------------------------------------------------------------- arrivals


def arrival_times(spec: ArrivalSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` non-decreasing arrival times in seconds (float64).

    poisson: cumulative sum of Exponential(1/rate) gaps, the first arrival one gap after 0
    (vLLM benchmark_serving / sglang.bench_serving sleep an exponential interval between
    requests, np.random.exponential(1.0 / request_rate); MLPerf's server scenario is a
    Poisson process too). gamma: gaps Gamma(shape 1/cv², scale cv²/rate), vLLM's
    --burstiness (np.random.gamma(shape=burstiness, scale=1/(request_rate·burstiness))).
    fixed: i/rate. offline, concurrency and rate inf: zeros (see ``ArrivalSpec``).
    The benchmarks send their first request at t = 0; starting one gap later shifts every
    arrival by a mean of 1/rate and leaves the gaps unchanged.
    """
    n = _count(n, "n", 0)
    if spec.kind in ("offline", "concurrency") or spec.rate == math.inf:
        return np.zeros(n)
    if spec.kind == "fixed":
        return np.arange(n, dtype=np.float64) / spec.rate
    if spec.kind == "poisson":
        gaps = rng.exponential(1.0 / spec.rate, n)
    else:
        gaps = rng.gamma(1.0 / spec.cv**2, spec.cv**2 / spec.rate, n)
    return np.cumsum(gaps)


def make_requests(lengths: LengthSpec, arrivals: ArrivalSpec, n: int, seed: int = 0,
                  shared_prefix_len: int = 0, num_prefixes: int = 0) -> Requests:
    """``n`` requests, sorted by arrival, deterministic in ``seed``.

    Lengths, arrivals and prefixes draw from three independent streams spawned from
    ``numpy.random.SeedSequence(seed)`` (each fed to ``numpy.random.default_rng``), so that
    changing the arrival law leaves the lengths as they were. With ``num_prefixes`` shared
    system prompts of ``shared_prefix_len`` tokens, each request picks one uniformly and
    prefix_len = min(shared_prefix_len, input_len - 1) of its prompt tokens are that prefix
    (sglang.bench_serving --dataset-name generated-shared-prefix: gsp_num_groups system prompts
    of gsp_system_prompt_len tokens; vLLM's prefix_repetition dataset; here the prefix is
    counted inside input_len, where vLLM's --random-prefix-len adds it on top).
    """
    n = _count(n, "num_requests", 1, MAX_REQUESTS)
    shared_prefix_len = _count(shared_prefix_len, "shared_prefix_len", 0)
    num_prefixes = _count(num_prefixes, "num_prefixes", 0)
    if (shared_prefix_len > 0) != (num_prefixes > 0):
        raise FlopcastError(f"shared_prefix_len = {shared_prefix_len} and num_prefixes = "
                            f"{num_prefixes}: a shared prefix needs both >= 1, or both 0")
    seed = _count(seed, "seed", 0, 2**63 - 1)
    rng_len, rng_arr, rng_pre = (np.random.default_rng(s)
                                 for s in np.random.SeedSequence(seed).spawn(3))
    input_len, output_len = sample_lengths(lengths, n, rng_len)
    arrival = arrival_times(arrivals, n, rng_arr)
    prefix_id, prefix_len = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    if num_prefixes:
        prefix_len = np.minimum(shared_prefix_len, input_len - 1)
        prefix_id = np.where(prefix_len > 0, rng_pre.integers(0, num_prefixes, n), -1)
    return Requests(arrival, input_len, output_len, prefix_id, prefix_len).sorted()


def _count(value, name: str, minimum: int, maximum: int = MAX_SEQ_LEN) -> int:
    """``value`` as a whole number in minimum..maximum, else a FlopcastError naming it."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not minimum <= value <= maximum):
        raise FlopcastError(f"{name} = {echo(value)} is not allowed: a whole number in "
                            f"{minimum}..{maximum:,}")
    return int(value)


# --------------------------------------------------------------------------- traces

ARRIVAL_COLUMNS = ("arrival_s", "arrival", "timestamp")
TRACE_SUFFIXES = (".csv", ".jsonl", ".ndjson")


def read_trace(path: str | Path) -> Requests:
    """Requests from a CSV or JSONL trace, sorted by arrival (stable).

    Columns: ``arrival_s`` (or ``arrival``, ``timestamp``; seconds >= 0, used as given, not
    shifted to start at 0), ``input_len`` and ``output_len`` (whole tokens >= 1), optional
    ``prefix_id`` (>= -1; -1 or empty = none) and ``prefix_len`` (0..input_len; empty = 0),
    the per-request fields of replayable traces such as vLLM benchmark_serving's custom
    dataset or Splitwise/Azure LLM inference traces once converted to seconds. Every problem
    is one FlopcastError line naming the file, row and line, column, value and what is
    allowed.
    """
    path = Path(path)
    if path.is_dir():
        raise FlopcastError(f"trace: {path} is a directory, not a file (allowed: a CSV or "
                            "JSONL trace)")
    if not path.is_file():
        raise FlopcastError(f"trace: file not found: {path}")
    if path.suffix.lower() not in TRACE_SUFFIXES:
        raise FlopcastError(f"trace {path}: unknown format {path.suffix or '(none)'!r}; "
                            f"allowed: {', '.join(TRACE_SUFFIXES)}")
    rows, lines, columns = (_csv_rows if path.suffix.lower() == ".csv" else _jsonl_rows)(path)
    if not rows:
        raise FlopcastError(f"trace {path}: empty trace (no requests)")
    arrival_col = next((c for c in ARRIVAL_COLUMNS if c in columns), None)
    for name, found in (("arrival_s", arrival_col), ("input_len", "input_len" in columns),
                        ("output_len", "output_len" in columns)):
        if not found:
            also = " (or arrival, timestamp)" if name == "arrival_s" else ""
            raise FlopcastError(f"trace {path}: missing column {name}{also}; columns found: "
                                f"{column_names_shown(columns)}")
    col = _TraceColumns(path, rows, lines)
    input_len = col.get("input_len", whole=True, low=1)
    prefix_len = col.get("prefix_len", whole=True, low=0, default=0)
    too_long = np.flatnonzero(prefix_len > input_len)
    if too_long.size:
        i = int(too_long[0])
        raise FlopcastError(f"trace {path}: row {i + 1} (line {lines[i]}), column prefix_len: "
                            f"{prefix_len[i]} exceeds input_len {input_len[i]} (allowed: "
                            "0..input_len)")
    return Requests(col.get(arrival_col, whole=False, low=0.0), input_len,
                    col.get("output_len", whole=True, low=1),
                    col.get("prefix_id", whole=True, low=-1, default=-1), prefix_len).sorted()


def _csv_rows(path: Path) -> tuple[list[dict], list[int], list[str]]:
    """Rows of a CSV with a header line, their line numbers, and the column names."""
    with path.open(newline="", encoding="utf-8-sig") as f:  # a spreadsheet's BOM too
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return [], [], []
        columns = [h.strip() for h in header]
        rows, lines = [], []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            rows.append(dict(zip(columns, cells, strict=False)))  # short rows: cells missing
            lines.append(reader.line_num)
    return rows, lines, columns


def _jsonl_rows(path: Path) -> tuple[list[dict], list[int], list[str]]:
    """Objects of a JSON-lines file, their line numbers, and every key seen."""
    rows, lines, columns = [], [], {}
    with path.open(encoding="utf-8-sig") as f:
        for k, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise FlopcastError(f"trace {path}: line {k}: not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise FlopcastError(f"trace {path}: line {k}: expected a JSON object of "
                                    f"columns, got {type(obj).__name__}")
            rows.append(obj)
            lines.append(k)
            columns.update(dict.fromkeys(obj))
    return rows, lines, list(columns)


@dataclass(frozen=True)
class _TraceColumns:
    """Typed, checked columns of a trace's rows (errors name file, row, line and column)."""

    path: Path
    rows: list[dict]
    lines: list[int]

    def get(self, name: str, whole: bool, low: float, default: float | None = None):
        values = np.empty(len(self.rows), dtype=np.float64)
        for i, row in enumerate(self.rows):
            raw = row.get(name)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                if default is None:
                    self._fail(i, name, raw, "a value is required")
                values[i] = default
                continue
            try:
                values[i] = float(raw) if not isinstance(raw, bool) else math.nan
            except (TypeError, ValueError):
                self._fail(i, name, raw, "not a number")
        kind = "a whole number" if whole else "a number"
        bad = ~np.isfinite(values) | (values < low)
        if whole:
            bad |= values != np.round(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            self._fail(i, name, self.rows[i].get(name), f"allowed: {kind} >= {low:g}")
        return values.astype(np.int64) if whole else values

    def _fail(self, i: int, name: str, raw, allowed: str) -> None:
        raise FlopcastError(f"trace {self.path}: row {i + 1} (line {self.lines[i]}), column "
                            f"{name}: {raw!r} is not allowed ({allowed})")
