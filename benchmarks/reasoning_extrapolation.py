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
"draw" is the subsample's own unbiased coverage at k = n minus the full data's at k = n, in
points: how lucky the draw was before any extrapolation (every method starts from it).

With --backtest, instead: whether the subsample itself can tell which part of the default
extrapolates better (docs/reasoning.md, "Against issue 9's extrapolation bar"). Each subsample
is split into halves (SPLITS hypergeometric splits, both halves as the fitting half); each part
(Beta, Kumaraswamy, power law) is fitted on n/2 and scored against the unbiased estimator on
all n at k in (n/2, n] (squared error), and the two families also by their held-out
log-likelihood of the other half's counts. Rules built on that, scored like the table above:
stacking (simplex weights of the three parts minimising the backtest's squared error; Wolpert
1992, Neural Networks 5(2):241-259; Breiman 1996, Machine Learning 24:49-64), selection (the
part with the least backtest error), and the default with its Akaike weights replaced by
held-out-likelihood weights (pseudo-BMA, Yao et al. 2018, Bayesian Analysis 13(3):917-1007,
Eq. 8); and the correlation, over (model, seed), between each signal's Kumaraswamy-vs-Beta
preference and the Kumaraswamy-vs-Beta ratio of the real errors at --k.

    python benchmarks/reasoning_extrapolation.py [FILE] [--n 50,100,200] [--seeds 1]
        [--reps 0] [--backtest] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from flopcast.workloads.reasoning.average import FAMILIES, fit_model_average
from flopcast.workloads.reasoning.coverage import (
    DEFAULT_METHOD,
    METHODS,
    coverage,
    fit_power_law,
    held_out,
)
from flopcast.workloads.reasoning.samples import SampleSet, read_sample_groups

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared" / "reasoning" / "pythia-math-samples.csv"
#: The issue's set-up: k beyond the subsample, truth from all 10,000 samples per problem.
DEFAULT_K = (300, 1000, 3000, 10000)
#: The issue's bar: mean absolute error over k, per model, in percentage points, at n = 100.
BAR_POINTS = 3.0
BAR_N = 100
#: The parts of the default the backtest weighs: the model average's two families and the
#: power law (coverage.extrapolate, "combined").
PARTS = ("beta", "kumaraswamy", "power-law")
#: Half-splits of each subsample in the backtest (each used both ways), and their seeds' base.
SPLITS = 4
SPLIT_SEED = 1000
#: Points of k in (n/2, n] the backtest scores, and the step of its simplex grid of weights.
BACKTEST_POINTS = 8
STACK_STEP = 0.05


def measure(path: Path, ns: list[int], ks: list[int], seeds: int, reps: int) -> list[dict]:
    """One row per (model, n, method): errors in points per k (mean over seeds), their mean,
    the bias (signed mean), and the share of band hits when reps > 0."""
    rows = []
    for (model, benchmark), data in read_sample_groups(path).items():
        for n in ns:
            runs = [held_out(data, n, ks, seed=seed, reps=reps) for seed in range(seeds)]
            draw = [_draw_points(data, n, seed) for seed in range(seeds)]
            for method in METHODS:
                err = np.array([100 * r.abs_error(method) for r in runs])
                bias = np.array([100 * (r.predictions[method].coverage - r.truth) for r in runs])
                row = {"model": model, "benchmark": benchmark, "n": n, "method": method,
                       "k": ks, "abs_error_pp": err.mean(axis=0).round(3).tolist(),
                       "mae_pp": round(float(err.mean()), 3),
                       "seed0_mae_pp": round(float(err[0].mean()), 3),
                       "bias_pp": round(float(bias.mean()), 3),
                       "draw_pp": round(float(np.mean(draw)), 3),
                       "seed0_draw_pp": round(draw[0], 3)}
                if reps:
                    row["in_band"] = float(np.mean([r.in_band(method) for r in runs]))
                rows.append(row)
    return rows


def _draw_points(data: SampleSet, n: int, seed: int) -> float:
    """The subsample's unbiased coverage at k = n minus the full data's, in points (Chen et al.
    2021, §2.1, Eq. 1, on both)."""
    sub = data.subsample(n, seed)
    return 100 * float(coverage(sub.samples, sub.correct, n)
                       - coverage(data.samples, data.correct, n))


def _print(rows: list[dict], seeds: int, reps: int) -> None:
    ks = rows[0]["k"]
    head = ["model", "n", "method"] + [f"k={k:,}" for k in ks] + ["mean", "bias", "draw"]
    head += ["in band"] if reps else []
    print(" | ".join(head))
    for r in rows:
        cells = [r["model"], str(r["n"]), r["method"]]
        cells += [f"{e:.1f}" for e in r["abs_error_pp"]]
        cells += [f"{r['mae_pp']:.1f}", f"{r['bias_pp']:+.1f}", f"{r['draw_pp']:+.1f}"]
        cells += [f"{100 * r['in_band']:.0f} %"] if reps else []
        print(" | ".join(cells))
    print(f"(mean absolute error in percentage points; {seeds} seed(s); bias = mean of "
          "predicted - truth; draw = subsample's coverage at k = n minus the full data's)")


def bar(rows: list[dict], method: str = DEFAULT_METHOD) -> dict[str, float]:
    """Seed-0 mean absolute error of ``method`` at n = BAR_N, per model (the issue's bar)."""
    return {r["model"]: r["seed0_mae_pp"] for r in rows
            if r["n"] == BAR_N and r["method"] == method}


# --- Can the subsample tell which part extrapolates better? (--backtest) --------------------

def _parts(n: np.ndarray, c: np.ndarray, ks: np.ndarray) -> tuple[np.ndarray, object]:
    """Coverage at ``ks`` by each of PARTS fitted to the counts, (3, ks), and the model
    average's fit (its families' parameters and Akaike weights)."""
    avg = fit_model_average(n, c)
    fams = [f.coverage_given(n, c, ks) for f in avg.fits]
    return np.stack([*fams, fit_power_law(n, c).coverage(ks)]), avg


def _log_marginal(family: str, theta, n: np.ndarray, c: np.ndarray) -> float:
    """sum_i log of the integral of p^c_i (1 - p)^(n_i - c_i) over the family's density at
    ``theta``: the log-likelihood of the counts without the binomial coefficients (the
    family's likelihood terms, average.FAMILIES)."""
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    terms = FAMILIES[family].terms(pairs[:, 0].astype(float), pairs[:, 1].astype(float))
    return float(terms(np.array([theta]), 0)[0][0][inverse.ravel()].sum())


def _backtest(sub: SampleSet) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (folds, PARTS, k) of each part fitted on half of each problem's samples
    against the unbiased coverage of all of them at k in (n/2, n], and each family's held-out
    log-likelihood of the other half, (folds, families): log P(c_B | c_A) = log P(c_A + c_B)
    - log P(c_A) under the fit to A (the binomial coefficients, equal for every family, left
    out). SPLITS splits, each half fitted once; a half with nothing solved is skipped."""
    n, c = sub.samples, sub.correct
    half = int(n.min()) // 2
    kg = np.unique(np.round(np.geomspace(half + 1, n.min(), BACKTEST_POINTS)).astype(np.int64))
    truth = coverage(n, c, kg)
    residuals, scores = [], []
    for s in range(SPLITS):
        first = sub.subsample(half, SPLIT_SEED + s)
        for n_fit, c_fit in ((first.samples, first.correct),
                             (n - first.samples, c - first.correct)):
            if not np.any(c_fit > 0):
                continue
            pred, avg = _parts(n_fit, c_fit, kg)
            residuals.append(pred - truth)
            scores.append([_log_marginal(f, t, n, c) - _log_marginal(f, t, n_fit, c_fit)
                           for f, t in zip(avg.families, avg.thetas, strict=True)])
    return np.array(residuals).reshape(-1, len(PARTS), kg.size), np.array(scores)


def _simplex(parts: int, step: float) -> np.ndarray:
    """Every weight vector of ``parts`` entries, multiples of ``step``, summing to 1."""
    m = round(1 / step)
    grid = [w for w in itertools.product(range(m + 1), repeat=parts) if sum(w) == m]
    return np.array(grid, dtype=float) / m


def backtest_rules(parts: np.ndarray, akaike, residuals: np.ndarray,
                   scores: np.ndarray) -> dict[str, np.ndarray]:
    """The predictions at the target k (from ``parts``, (PARTS, k), fitted on the whole
    subsample) of the default and of the rules built on the backtest (module docstring). With
    no usable fold (nothing solved in any half) the backtest rules fall back to the default."""
    default = 0.5 * (np.asarray(akaike) @ parts[:2]) + 0.5 * parts[2]
    if not len(residuals):
        return {"default": default, "stacked": default, "selected": default,
                "held-out weights": default}
    grid = _simplex(len(PARTS), STACK_STEP)
    stack_err = (np.einsum("gp,fpk->gfk", grid, residuals) ** 2).sum(axis=(1, 2))
    held = np.exp(scores.mean(axis=0) - scores.mean(axis=0).max())
    return {"default": default,
            "stacked": grid[int(np.argmin(stack_err))] @ parts,
            "selected": parts[int(np.argmin((residuals ** 2).sum(axis=(0, 2))))],
            "held-out weights": 0.5 * (held / held.sum()) @ parts[:2] + 0.5 * parts[2]}


def _signals(parts, truth, avg, residuals, scores) -> list[float]:
    """The real log error ratio Kumaraswamy / Beta at the target k (positive: the Beta was
    closer), then each signal's preference for the Beta: the backtest's log squared-error
    ratio Kumaraswamy / Beta, and the held-out and in-sample log-likelihood differences Beta -
    Kumaraswamy; a positive correlation with the first means the signal points the right way."""
    err = np.abs(parts[:2] - truth).mean(axis=1)
    sq = (residuals[:, :2] ** 2).sum(axis=(0, 2)) if len(residuals) else np.ones(2)
    held = scores.mean(axis=0) if len(scores) else np.zeros(2)
    ll = [f.log_likelihood for f in avg.fits]
    return [float(np.log(err[1] / err[0])), float(np.log(sq[1] / sq[0])),
            float(held[0] - held[1]), float(ll[0] - ll[1])]


def _oracle(parts: np.ndarray, truth: np.ndarray) -> list[float]:
    """Errors in points per seed of the fixed weights of PARTS that minimise the mean error
    over the seeds, chosen on the truth: a bound on what any fixed weighting could do for this
    model (not a rule: it looks at the truth). ``parts``: (seeds, PARTS, k)."""
    grid = _simplex(len(PARTS), STACK_STEP)
    err = 100 * np.abs(np.einsum("gp,spk->gsk", grid, parts) - truth).mean(axis=2)
    return err[int(np.argmin(err.mean(axis=1)))].tolist()


def measure_backtest(path: Path, ns: list[int], ks: list[int], seeds: int) -> list[dict]:
    """Per n: each rule's error in points per model (mean over seeds, and seed 0), and the
    correlations of the signals with the real error ratio over (model, seed)."""
    out = []
    for n in ns:
        errors: dict[str, dict[str, list[float]]] = {}
        signals = []
        for (model, _), data in read_sample_groups(path).items():
            truth = coverage(data.samples, data.correct, ks)
            seen = []
            for seed in range(seeds):
                sub = data.subsample(n, seed)
                parts, avg = _parts(sub.samples, sub.correct, np.array(ks))
                residuals, scores = _backtest(sub)
                for rule, pred in backtest_rules(parts, avg.weights, residuals, scores).items():
                    errors.setdefault(rule, {}).setdefault(model, []).append(
                        100 * float(np.abs(pred - truth).mean()))
                signals.append(_signals(parts, truth, avg, residuals, scores))
                seen.append(parts)
            errors.setdefault("oracle fixed weights", {})[model] = _oracle(np.array(seen), truth)
        sig = np.array(signals)
        corr = {name: round(float(np.corrcoef(sig[:, 0], sig[:, j])[0, 1]), 3)
                for j, name in enumerate(("backtest error", "held-out likelihood",
                                          "in-sample likelihood (AIC)"), start=1)}
        out.append({"n": n, "mae_pp": {r: {m: round(float(np.mean(e)), 3) for m, e in v.items()}
                                       for r, v in errors.items()},
                    "seed0_mae_pp": {r: {m: round(e[0], 3) for m, e in v.items()}
                                     for r, v in errors.items()},
                    "correlation": corr})
    return out


def _print_backtest(rows: list[dict], seeds: int) -> None:
    for row in rows:
        models = list(next(iter(row["mae_pp"].values())))
        print(f"n = {row['n']}: rule | " + " ".join(models) + f" (mean of {seeds} seeds) | "
              "mean | seed 0 per model")
        for rule, per_model in row["mae_pp"].items():
            seed0 = row["seed0_mae_pp"][rule]
            print(f"{rule} | " + " ".join(f"{per_model[m]:.1f}" for m in models)
                  + f" | {np.mean(list(per_model.values())):.2f} | "
                  + " ".join(f"{seed0[m]:.1f}" for m in models))
        print("correlation with the real Kumaraswamy/Beta error ratio: "
              + ", ".join(f"{k} {v:+.2f}" for k, v in row["correlation"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--n", default="50,100,200", help="samples per problem to fit on")
    parser.add_argument("--k", default=",".join(map(str, DEFAULT_K)))
    parser.add_argument("--seeds", type=int, default=1, help="subsample seeds 0..S-1")
    parser.add_argument("--reps", type=int, default=0, help="bootstrap resamples (bands)")
    parser.add_argument("--backtest", action="store_true",
                        help="can the subsample tell which part extrapolates better?")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    ns, ks = [int(x) for x in args.n.split(",")], [int(x) for x in args.k.split(",")]
    start = time.perf_counter()
    if args.backtest:
        rows = measure_backtest(args.file, ns, ks, args.seeds)
        if args.json:
            print(json.dumps({"backtest": rows}, indent=1))
        else:
            _print_backtest(rows, args.seeds)
            print(f"{time.perf_counter() - start:.1f} s")
        return 0
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
