"""Exhaustive search over parallel configurations, evaluated as arrays in one call.

The space is the product of every tp (dividing the GPU count, within one NVLink domain:
Narayanan et al. 2021 §3.3 takeaway #1, TP across nodes is never competitive), pp, vp, cp, ep,
micro-batch, ZeRO stage, recompute mode, pipeline schedule and sequence parallelism; offload
placements (OFFLOAD_PRESETS) only when nothing fits without them. Combinations that are not
distinct configurations (sequence parallelism with tp = 1, a schedule that contradicts vp) are
not counted; invalid ones are rejected with the first rule
they break, counted per reason; the rest are evaluated by the same ``training_step`` as
``flopcast train`` and filtered on memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.physics.flops import RECOMPUTE_CODES
from flopcast.physics.pipeline import SCHEDULE_CODES
from flopcast.specs.framework import Framework
from flopcast.specs.model import Model
from flopcast.specs.precision import Precision
from flopcast.specs.system import System
from flopcast.workloads.training.layout import Layout
from flopcast.workloads.training.step import training_step

RECOMPUTE_NAMES = {v: k for k, v in RECOMPUTE_CODES.items()}
SCHEDULE_NAMES = {v: k for k, v in SCHEDULE_CODES.items()}
MAX_MICRO_BATCH = 64
MAX_VP = 16
MAX_CP = 32
#: Most grid points one search enumerates. Measured on a 2-core laptop-class machine: ~1.5·10⁷
#: grid points/s (the rules reject most points in broadcast form) and ~1.1 GB peak memory for
#: the 95M-point search of Megatron-LM's 1T-parameter run (3072 GPUs), so 2·10⁸ points is
#: ~15 s. Larger spaces come from GPU counts with hundreds of divisors; pin axes instead.
MAX_SEARCH_POINTS = 200_000_000

#: Results kept per configuration: enough to rank and to draw the fronts; the top ones are
#: re-estimated in full with estimate_training.
RANKING_KEYS = ("step_time_s", "memory_total_bytes", "memory_capacity_bytes", "board_power_w",
                "offload_fits")

#: Offload placements the planner tries, as the ``offload`` search axis (tier codes of
#: specs/parallelism.TIER_CODES for optimizer states, gradients, parameters, activations), from
#: least to most offloaded: ZeRO-Offload (optimizer; + gradients, Ren et al. 2021),
#: ZeRO-Infinity on host memory (+ parameters, + activation checkpoints) and on NVMe
#: (optimizer states and parameters on the drives, gradients through the host; Rajbhandari
#: et al. 2021). Index 0 offloads nothing and is the only one searched unless nothing fits.
OFFLOAD_PRESETS = np.array([
    (0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 1, 1), (2, 1, 2, 0),
    (2, 1, 2, 1)])
TIER_NAMES = ("gpu", "cpu", "nvme")

REASONS = (
    "tp does not divide the attention heads or KV heads",
    "tp·pp·cp does not divide the GPU count",
    "interleaving searched only where pp·vp divides the layers",
    "cp does not divide the sequence length",
    "global batch is not a multiple of micro-batch·dp",
    "interleaved schedule needs micro-batches divisible by pp",
    "ep does not divide the experts or dp·cp",
    "does not fit in GPU memory",
)
#: Rejection reason of configurations whose GPU memory fits but whose offloaded states do not
#: fit the host memory or the NVMe drives.
OFFLOAD_REASON = "offloaded states do not fit in host memory or NVMe"


def divisors(n: int, limit: int | None = None) -> list[int]:
    """Divisors of n (at most ``limit``)."""
    out = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    out = sorted(set(out + [n // d for d in out]))
    return [d for d in out if limit is None or d <= limit]


@dataclass
class SearchResult:
    """Every evaluated configuration (arrays) and the rejection counts."""

    layout: Layout
    results: dict[str, np.ndarray]
    feasible: np.ndarray
    evaluated: int
    rejected: dict[str, int] = field(default_factory=dict)
    offload_searched: bool = False

    def order(self) -> np.ndarray:
        """Indices of feasible configurations, best first.

        Shortest step first (equal to 1 part in 10⁹ counts as a tie); among ties, the simpler
        configuration: no offload, lower ZeRO stage, fewer cp, vp and pp, then less memory.
        """
        idx = np.flatnonzero(self.feasible)
        if len(idx) == 0:
            return idx
        step = self.results["step_time_s"][idx]
        step_key = np.round(step / step.min(), 9)
        lay = self.layout
        keys = (self.results["memory_total_bytes"][idx], lay.tp[idx], lay.pp[idx],
                lay.vp[idx], lay.cp[idx], lay.zero[idx], lay.offload_act[idx],
                lay.offload_param[idx], lay.offload_grad[idx], lay.offload[idx], step_key)
        return idx[np.lexsort(keys)]


def candidate_axes(model: Model, system: System, global_batch: int,
                   options: dict | None = None) -> dict[str, np.ndarray]:
    """The values searched on each axis (``options`` pins an axis to given values)."""
    n = system.num_gpus
    opts = options or {}
    axes = dict(
        tp=opts.get("tp") or divisors(n, system.domain_size),
        pp=opts.get("pp") or divisors(n, model.num_layers),
        cp=opts.get("cp") or divisors(n, MAX_CP),
        vp=opts.get("vp") or divisors(model.num_layers, MAX_VP),
        ep=opts.get("ep") or (divisors(model.num_experts) if model.is_moe else [1]),
        micro_batch=opts.get("micro_batch") or divisors(global_batch, MAX_MICRO_BATCH),
        zero=opts.get("zero") or [0, 1, 2, 3],
        recompute=opts.get("recompute") or [0, 1, 2],
        schedule=opts.get("schedule") or [0, 1, 2],
        sp=opts.get("sp") or [0, 1],
        offload=opts.get("offload") or [0],
    )
    return {k: np.asarray(v) for k, v in axes.items()}


def search_size(axes: dict[str, np.ndarray]) -> int:
    """Grid points of a search over ``axes`` (before rules and de-duplication)."""
    return int(np.prod([len(v) for v in axes.values()], dtype=object))


def check_search_size(axes: dict[str, np.ndarray]) -> None:
    """Refuse, before any work, a search larger than MAX_SEARCH_POINTS, naming the axes."""
    size = search_size(axes)
    if size > MAX_SEARCH_POINTS:
        shape = " × ".join(f"{k} {len(v)}" for k, v in axes.items() if len(v) > 1)
        raise FlopcastError(
            f"search: {size:,} configurations ({shape}); at most {MAX_SEARCH_POINTS:,} are "
            "searched at once: pin axes (--tp, --pp, --cp, --micro-batch, …) or choose a GPU "
            "count with fewer divisors")


def _grid(axes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each axis as an array with its own dimension, so formulas broadcast over the grid and
    intermediate results only span the axes they depend on."""
    ndim = len(axes)
    out = {}
    for d, (k, v) in enumerate(axes.items()):
        shape = [1] * ndim
        shape[d] = len(v)
        out[k] = v.reshape(shape)
    return out


def search(model: Model, system: System, precision: Precision, seq_len: int,
           global_batch: int, options: dict | None = None, progress=None,
           framework: Framework | None = None,
           step_keywords: dict | None = None) -> SearchResult:
    """Evaluate every valid configuration under ``framework`` (None = megatron) with
    ``step_keywords`` (training_step's lora_rank / lora_targets for a LoRA fine-tune, and
    attention_backend);
    ``progress(done, total)`` is called per tp value. Offload (OFFLOAD_PRESETS) is searched
    only when nothing fits without it, unless ``options`` pins the ``offload`` axis; the
    result then says so (``offload_searched``) and counts both searches."""
    options = options or {}
    first = _search_axes(model, system, precision, seq_len, global_batch, options, progress,
                         framework, step_keywords)
    if "offload" in options or first.feasible.any():
        return first
    more = _search_axes(model, system, precision, seq_len, global_batch,
                        {**options, "offload": list(range(1, len(OFFLOAD_PRESETS)))}, progress,
                        framework, step_keywords)
    more.offload_searched = True
    more.evaluated += first.evaluated
    # The rules reject the same points in both searches (counted once); memory adds up.
    unfit = first.rejected.get(REASONS[-1], 0)
    if unfit:
        more.rejected[REASONS[-1]] = more.rejected.get(REASONS[-1], 0) + unfit
    return more


def _search_axes(model, system, precision, seq_len, global_batch, options, progress,
                 framework, step_keywords=None) -> SearchResult:
    """One exhaustive search over the axes ``options`` leaves open (search's first step)."""
    if global_batch < 1:
        raise FlopcastError(f"global_batch must be at least 1; got {global_batch}")
    axes = candidate_axes(model, system, global_batch, options)
    check_search_size(axes)
    layouts, results, rejected, evaluated = [], [], {}, 0
    tps = axes["tp"]
    for k, tp in enumerate(tps):  # one slab per tp value: bounded memory, progress ticks
        lay, res, rej = _search_slab(model, system, precision, seq_len, global_batch,
                                     {**axes, "tp": np.asarray([tp])}, framework,
                                     step_keywords)
        for reason, count in rej.items():
            rejected[reason] = rejected.get(reason, 0) + count
        if lay is not None:
            layouts.append(lay)
            results.append(res)
            evaluated += len(lay.tp)
        if progress is not None:
            progress(k + 1, len(tps))
    if not layouts:
        empty = _layout({k: np.zeros(0, int) for k in axes}, np.zeros(0), np.zeros(0))
        return SearchResult(layout=empty, results={}, feasible=np.zeros(0, bool), evaluated=0,
                            rejected=rejected)
    layout = Layout(**{f: np.concatenate([getattr(x, f) for x in layouts])
                       for f in Layout.__dataclass_fields__})
    merged = {key: np.concatenate([r[key] for r in results]) for key in results[0]}
    fits_gpu = merged["memory_total_bytes"] <= merged["memory_capacity_bytes"]
    feasible = fits_gpu & (merged["offload_fits"] > 0)
    if (~fits_gpu).any():
        rejected[REASONS[-1]] = int((~fits_gpu).sum())
    if (fits_gpu & ~feasible).any():
        rejected[OFFLOAD_REASON] = int((fits_gpu & ~feasible).sum())
    return SearchResult(layout=layout, results=merged, feasible=feasible, evaluated=evaluated,
                        rejected=rejected)


def _search_slab(model, system, precision, seq_len, global_batch, axes, framework=None,
                 step_keywords=None):
    g = _grid(axes)
    n = system.num_gpus
    model_parallel = g["tp"] * g["pp"] * g["cp"]
    divides = n % model_parallel == 0
    dp = np.where(divides, n // model_parallel, 0)
    per_replica = np.where(dp > 0, global_batch // np.maximum(dp, 1), 0)
    m = per_replica // g["micro_batch"]
    # Not distinct configurations: SP is meaningless at tp = 1; the schedule follows vp; a
    # pipeline of one stage has one schedule.
    interleaved = SCHEDULE_CODES["interleaved"]
    distinct = (
        ~((g["sp"] == 1) & (g["tp"] == 1))
        & np.where(g["vp"] > 1, g["schedule"] == interleaved, g["schedule"] != interleaved)
        & ~((g["vp"] > 1) & (g["pp"] == 1))
        & ~((g["pp"] == 1) & (g["schedule"] == SCHEDULE_CODES["gpipe"]))
    )
    kv = model.num_attention_heads if model.is_mla else model.kv_heads
    no_ep_rule = np.zeros((1,) * len(axes), dtype=bool)
    rules = [
        (model.num_attention_heads % g["tp"] != 0) | (kv % g["tp"] != 0),
        ~divides,
        (g["vp"] > 1) & (model.num_layers % (g["pp"] * g["vp"]) != 0),
        seq_len % g["cp"] != 0,
        (dp == 0) | (global_batch % np.maximum(g["micro_batch"] * dp, 1) != 0),
        (g["vp"] > 1) & (m % g["pp"] != 0),
        ((g["ep"] > 1) & ((dp * g["cp"]) % g["ep"] != 0)) if model.is_moe else no_ep_rule,
    ]
    shape = np.broadcast_shapes(*(v.shape for v in g.values()))
    valid = np.broadcast_to(distinct, shape).copy()
    rejected = {}
    for reason, bad in zip(REASONS, rules, strict=False):
        hit = valid & bad
        count = int(hit.sum())
        if count:
            rejected[reason] = count
        valid &= ~np.broadcast_to(bad, shape)
    if not valid.any():
        return None, None, rejected
    lay = _layout(g, dp, m)
    with np.errstate(all="ignore"):  # invalid grid points may divide by zero; dropped below
        res = training_step(model, system, precision, seq_len, lay, framework=framework,
                            detail=False, **(step_keywords or {}))
    where = np.nonzero(valid)
    flat_index = np.flatnonzero(valid)

    def gather(a):
        a = np.asarray(a)
        if a.shape == shape:
            return a.reshape(-1)[flat_index]
        a = a.reshape((1,) * (len(shape) - a.ndim) + a.shape)
        out = a[tuple(ix if a.shape[d] > 1 else 0 for d, ix in enumerate(where))]
        return np.full(flat_index.shape, out) if np.ndim(out) == 0 else out

    flat = {k: gather(v) for k, v in g.items()}
    return (_layout(flat, gather(dp), gather(m)),
            {k: gather(res[k]) for k in RANKING_KEYS}, rejected)


def _layout(c: dict[str, np.ndarray], dp: np.ndarray, m: np.ndarray) -> Layout:
    """A Layout from axis values (grid-shaped or flat) with derived dp and micro-batch count:
    SP turns TP overlap on, as Parallelism's default does; DP overlap is always on; the
    experts keep tp as their tensor-parallel size (etp = tp: MoE parallel folding is not
    searched)."""
    sp = c["sp"].astype(bool)
    return Layout(
        tp=c["tp"], pp=c["pp"], vp=c["vp"], cp=c["cp"], ep=c["ep"], dp=dp,
        micro_batch=c["micro_batch"], num_micro_batches=m, sp=sp, zero=c["zero"],
        recompute=c["recompute"], schedule=c["schedule"], tp_overlap=sp & (c["tp"] > 1),
        dp_overlap=np.ones_like(dp, dtype=bool), etp=c["tp"],
        **{name: OFFLOAD_PRESETS[c["offload"], k] for k, name in enumerate(
            ("offload", "offload_grad", "offload_param", "offload_act"))},
    )


def config_at(result: SearchResult, i: int, global_batch: int) -> dict:
    """The i-th configuration as Parallelism keyword arguments."""
    lay = result.layout
    return dict(
        tp=int(lay.tp[i]), pp=int(lay.pp[i]), vp=int(lay.vp[i]), cp=int(lay.cp[i]),
        ep=int(lay.ep[i]), etp=int(lay.etp[i]), dp=int(lay.dp[i]), sp=bool(lay.sp[i]),
        zero_stage=int(lay.zero[i]),
        micro_batch=int(lay.micro_batch[i]), global_batch=global_batch,
        recompute=RECOMPUTE_NAMES[int(lay.recompute[i])],
        schedule=SCHEDULE_NAMES[int(lay.schedule[i])], tp_comm_overlap=bool(lay.tp_overlap[i]),
        **{f"offload_{kind}": TIER_NAMES[int(getattr(lay, code)[i])] for kind, code in (
            ("optimizer", "offload"), ("gradients", "offload_grad"),
            ("params", "offload_param"), ("activations", "offload_act"))},
    )


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points not dominated when maximising both x and y, sorted by x descending."""
    order = np.lexsort((-y, -x))
    best_y = -np.inf
    keep = []
    for i in order:
        if y[i] > best_y:
            keep.append(i)
            best_y = y[i]
    return np.asarray(keep, dtype=int)
