"""Several independent draws of a random workload, summarised by their median.

A simulated run whose request lengths or arrival times are random is one sample of what the
engine would measure. Most of its metrics settle as the run grows, but not all: a finite
offline run's throughput is the number of requests over the time until the *last* one
finishes, and that is set by the longest few outputs, which a second draw of the same
length law changes by tens of percent (Llama-3.1-70B on 4 H200, 200 ShareGPT requests:
5.2 to 9.9 requests/s over eight seeds). One seed's value is therefore not a prediction of
what someone else's run measured; the median over independent draws is, and it is what the
absolute error is smallest against for any spread of the measured run (the median
minimises the expected absolute deviation). The draws use seeds seed, seed + 1, …; with one
draw the answer is the plain simulation of ``seed``.

How many: enough that the draws together simulate ``REQUESTS_OVER_DRAWS`` requests, rounded
up to an odd count (so each median is one draw's value, and metrics that are monotone in one
another, such as requests/s and the duration, stay consistent), at most ``MAX_DRAWS``; one
when the workload does not depend on the seed (fixed lengths and arrivals, a trace), even
when more were asked for. These are Monte Carlo settings, not fitted values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from flopcast.errors import FlopcastError

# the counts live in a NumPy-free module, so the CLI can quote them in --help
from flopcast.workloads.serving.draw_counts import draws_needed

#: Summary entries whose range over the draws is reported (``draw_range``).
RANGED = ("duration_s", "requests_per_s", "output_tokens_per_s", "total_tokens_per_s",
          "output_tokens_per_s_per_gpu", "output_tokens_per_s_per_user",
          "goodput_requests_per_s", "ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms")
#: Seeds beside the first compared to tell whether the workload depends on the seed (two,
#: so that a tiny workload whose next seed happens to give the same requests is still seen).
SEEDS_COMPARED = 2


def same_requests(a, b) -> bool:
    """Whether two request sets are identical (the workload does not depend on the seed)."""
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in
               ("arrival_s", "input_len", "output_len", "prefix_id", "prefix_len"))


def _median(values: list[Any]) -> Any:
    """The median of one summary entry over the draws: element-wise for lists and dicts,
    the first draw's value for anything that is not a number (config, names)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _median([v[k] for v in values]) for k in first}
    if isinstance(first, list):
        # a distribution is empty in a draw where nothing has it (TPOT when every output is
        # one token): the median is over the draws that have it, as for its percentiles
        rows = [v for v in values if v]
        if not rows or not all(isinstance(x, (int, float)) for x in rows[0]):
            return first
        return [float(x) for x in _nanmedian(np.array(rows, dtype=float), axis=0)]
    if isinstance(first, bool) or not isinstance(first, (int, float)) and first is not None:
        return first
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    med = float(_nanmedian(arr))
    if isinstance(first, int) and math.isfinite(med):
        return int(round(med))
    return None if first is None and not math.isfinite(med) else med


def _nanmedian(arr: np.ndarray, axis=None):
    with warnings.catch_warnings():  # an entry undefined in every draw stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(arr, axis=axis)


def _range(values: list[Any]) -> Any:
    """[min, max] of one entry over the draws (element-wise for a statistics dict)."""
    if isinstance(values[0], dict):
        return {k: _range([v[k] for v in values]) for k in values[0]}
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    if not np.isfinite(arr).any():
        return None
    return [float(np.nanmin(arr)), float(np.nanmax(arr))]


def median_summary(summaries: list[dict]) -> dict:
    """The entry-by-entry median of several simulation summaries (serving.metrics.summarize
    plus ``config``), with ``draws`` (how many) and ``draw_range`` (min and max of the
    throughputs, the duration and the latency statistics over the draws)."""
    if not summaries:
        raise FlopcastError("draws: no simulation to summarise")
    out = {k: _median([s[k] for s in summaries]) if all(k in s for s in summaries)
           else summaries[0][k] for k in summaries[0]}
    out["draws"] = len(summaries)
    out["draw_range"] = {k: _range([s[k] for s in summaries]) for k in RANGED
                         if all(k in s for s in summaries)}
    return out


def serve_draws(simulate: Callable[[Any, bool], tuple[dict, object]],
                requests_of: Callable[[int], Any], seed: int = 0,
                draws: int | None = None) -> tuple[dict, object]:
    """Simulate the workload ``requests_of(seed + i)`` for each draw i and return (the median
    summary, the first draw's raw result). ``simulate(requests, keep)`` runs one draw
    (``keep``: the first, whose raw result is returned). ``draws`` None: draws_needed, the
    seed mattering when a seed after ``seed`` (SEEDS_COMPARED of them) gives other requests;
    one draw, whatever was asked, when it does not."""
    workloads = [requests_of(seed + i) for i in range(SEEDS_COMPARED + 1)]
    seed_matters = any(not same_requests(workloads[0], w) for w in workloads[1:])
    if draws is None:
        draws = draws_needed(len(workloads[0].arrival_s), seed_matters)
    if draws < 1:
        raise FlopcastError(f"draws: must be at least 1; got {draws}")
    if not seed_matters:
        draws = 1
    workloads += [requests_of(seed + i) for i in range(len(workloads), draws)]
    summary, res = simulate(workloads[0], True)
    rest = [simulate(w, False)[0] for w in workloads[1:draws]]
    return median_summary([summary, *rest]), res
