"""Where coverage extrapolation holds and where it fails: synthetic sampling campaigns with the
truth known, drawn from difficulty laws of other shapes than the Pythia file's.

Each scenario draws per-problem success rates p_i from a law (below), then 10,000 samples per
problem (c_i ~ Binomial(10,000, p_i)); the truth is the unbiased estimator on those counts
at --k, as in benchmarks/reasoning_extrapolation.py. A campaign of --n samples per problem
is the hypergeometric subsample of them; every method is fitted on it and scored by the mean
absolute error over k in coverage points (and its mean signed error: + is over-prediction),
averaged over --seeds campaigns. The laws:

- beta: Beta(0.3, 10), the family the default fits (Schaeffer et al. 2025);
- kumaraswamy: Kumaraswamy(0.3, 5), the default's other family;
- two-groups: 40 % easy problems, Beta(2, 3), and 60 % hard ones, Beta(0.2, 30);
- strong: Beta(0.6, 1.5), most problems solved within the campaign;
- unsolvable-10 / unsolvable-30: 10 % / 30 % of problems with p = 0 (never solved: a wrong
  reference answer, an impossible task) and Beta(0.3, 8) / Beta(0.4, 5) for the rest;
- logit-normal: logit p ~ Normal(-5, 3), rates spread over many orders of magnitude.

    python benchmarks/reasoning_synthetic.py [--n 100] [--problems 128] [--seeds 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from flopcast.workloads.reasoning.coverage import METHODS, coverage, extrapolate

DEFAULT_K = (300, 1000, 3000, 10000)
FULL_SAMPLES = 10_000


def _kumaraswamy(rng, a, b, size):
    """Inverse-CDF draw: F(p) = 1 - (1 - p^a)^b."""
    return (1.0 - (1.0 - rng.random(size)) ** (1.0 / b)) ** (1.0 / a)


def _with_unsolvable(rng, share, p):
    return np.where(rng.random(p.size) < share, 0.0, p)


LAWS = {
    "beta": lambda rng, m: rng.beta(0.3, 10.0, m),
    "kumaraswamy": lambda rng, m: _kumaraswamy(rng, 0.3, 5.0, m),
    "two-groups": lambda rng, m: np.where(rng.random(m) < 0.4, rng.beta(2.0, 3.0, m),
                                          rng.beta(0.2, 30.0, m)),
    "strong": lambda rng, m: rng.beta(0.6, 1.5, m),
    "unsolvable-10": lambda rng, m: _with_unsolvable(rng, 0.1, rng.beta(0.3, 8.0, m)),
    "unsolvable-30": lambda rng, m: _with_unsolvable(rng, 0.3, rng.beta(0.4, 5.0, m)),
    "logit-normal": lambda rng, m: 1.0 / (1.0 + np.exp(-rng.normal(-5.0, 3.0, m))),
}


def score(law: str, n: int, problems: int, seeds: int, ks: np.ndarray) -> dict:
    """{method: (mean abs error, mean signed error)} in points over ``seeds`` campaigns."""
    errors: dict[str, list[tuple[float, float]]] = {m: [] for m in METHODS}
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        p = LAWS[law](rng, problems)
        full = rng.binomial(FULL_SAMPLES, p)
        truth = coverage(np.full(problems, FULL_SAMPLES), full, ks)
        sub = rng.hypergeometric(full, FULL_SAMPLES - full, n)
        for method in METHODS:
            pred = extrapolate(np.full(problems, n), sub, ks, method, reps=0).coverage
            errors[method].append((100 * float(np.mean(np.abs(pred - truth))),
                                   100 * float(np.mean(pred - truth))))
    return {m: tuple(np.mean(v, axis=0).round(2).tolist()) for m, v in errors.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="samples per problem in a campaign")
    ap.add_argument("--problems", type=int, default=128)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ks = np.array(DEFAULT_K)
    start = time.perf_counter()
    table = {law: score(law, args.n, args.problems, args.seeds, ks) for law in LAWS}
    if args.json:
        print(json.dumps({"n": args.n, "problems": args.problems, "seeds": args.seeds,
                          "k": list(DEFAULT_K), "errors": table}, indent=2))
        return
    print("law | " + " | ".join(METHODS) + "   (mean abs error (signed), points)")
    for law, row in table.items():
        print(law + " | " + " | ".join(f"{a:.1f} ({s:+.1f})" for a, s in row.values()))
    print(f"{args.seeds} campaigns of {args.n} samples x {args.problems} problems per law; "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
