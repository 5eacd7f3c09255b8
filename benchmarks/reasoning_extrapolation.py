"""Issue 9's extrapolation bar: coverage predicted from a small sampling campaign against the
truth from the full one.

For every model in a samples CSV (default: shared/reasoning/pythia-math-samples.csv) and every
n in --n: draw n of each problem's samples (hypergeometric, seeded: SampleSet.subsample), fit
each extrapolation method on that, predict coverage at --k, and compare with the unbiased
estimator on all samples (coverage.held_out). Prints the mean absolute error in percentage
points per k and over k, per model x n x method, and whether the bar (mean <= --bar points at
every model, for the default method at n = 100) holds. With --seeds S, each cell is the mean
over seeds 0..S-1 (one seed is one draw; the bar is stated for one fixed seed, 0); with
--reps R > 0, also the share of (seed, k) whose truth lies in the method's bootstrap band.

    python benchmarks/reasoning_extrapolation.py [FILE] [--n 50,100,200] [--seeds 1]
        [--reps 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from flopcast.workloads.reasoning.coverage import DEFAULT_METHOD, METHODS, held_out
from flopcast.workloads.reasoning.samples import read_sample_groups

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "reasoning" / "pythia-math-samples.csv"
#: The issue's set-up: k beyond the subsample, truth from all 10,000 samples per problem.
DEFAULT_K = (300, 1000, 3000, 10000)
#: The issue's bar: mean absolute error over k, per model, in percentage points, at n = 100.
BAR_POINTS = 3.0
BAR_N = 100


def measure(path: Path, ns: list[int], ks: list[int], seeds: int, reps: int) -> list[dict]:
    """One row per (model, n, method): errors in points per k (mean over seeds), their mean,
    the bias (signed mean), and the share of band hits when reps > 0."""
    rows = []
    for (model, benchmark), data in read_sample_groups(path).items():
        for n in ns:
            runs = [held_out(data, n, ks, seed=seed, reps=reps) for seed in range(seeds)]
            for method in METHODS:
                err = np.array([100 * r.abs_error(method) for r in runs])
                bias = np.array([100 * (r.predictions[method].coverage - r.truth) for r in runs])
                row = {"model": model, "benchmark": benchmark, "n": n, "method": method,
                       "k": ks, "abs_error_pp": err.mean(axis=0).round(3).tolist(),
                       "mae_pp": round(float(err.mean()), 3),
                       "seed0_mae_pp": round(float(err[0].mean()), 3),
                       "bias_pp": round(float(bias.mean()), 3)}
                if reps:
                    row["in_band"] = float(np.mean([r.in_band(method) for r in runs]))
                rows.append(row)
    return rows


def _print(rows: list[dict], seeds: int, reps: int) -> None:
    ks = rows[0]["k"]
    head = ["model", "n", "method"] + [f"k={k:,}" for k in ks] + ["mean", "bias"]
    head += ["in band"] if reps else []
    print(" | ".join(head))
    for r in rows:
        cells = [r["model"], str(r["n"]), r["method"]]
        cells += [f"{e:.1f}" for e in r["abs_error_pp"]]
        cells += [f"{r['mae_pp']:.1f}", f"{r['bias_pp']:+.1f}"]
        cells += [f"{100 * r['in_band']:.0f} %"] if reps else []
        print(" | ".join(cells))
    print(f"(mean absolute error in percentage points; {seeds} seed(s); bias = mean of "
          "predicted - truth)")


def bar(rows: list[dict], method: str = DEFAULT_METHOD) -> dict[str, float]:
    """Seed-0 mean absolute error of ``method`` at n = BAR_N, per model (the issue's bar)."""
    return {r["model"]: r["seed0_mae_pp"] for r in rows
            if r["n"] == BAR_N and r["method"] == method}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--n", default="50,100,200", help="samples per problem to fit on")
    parser.add_argument("--k", default=",".join(map(str, DEFAULT_K)))
    parser.add_argument("--seeds", type=int, default=1, help="subsample seeds 0..S-1")
    parser.add_argument("--reps", type=int, default=0, help="bootstrap resamples (bands)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ns, ks = [int(x) for x in args.n.split(",")], [int(x) for x in args.k.split(",")]
    start = time.perf_counter()
    rows = measure(args.file, ns, ks, args.seeds, args.reps)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"rows": rows, "seconds": round(seconds, 1)}, indent=1))
        return 0
    _print(rows, args.seeds, args.reps)
    if BAR_N in ns:
        errors = bar(rows)
        verdict = "met" if max(errors.values()) <= BAR_POINTS else "NOT met"
        print(f"bar (seed 0, n = {BAR_N}, {DEFAULT_METHOD}, <= {BAR_POINTS:g} points per "
              f"model): {verdict}: " + ", ".join(f"{m} {e:.1f}" for m, e in errors.items()))
    print(f"{seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
