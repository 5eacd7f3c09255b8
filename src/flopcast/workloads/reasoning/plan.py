"""The reasoning planner: which model × strategy × samples reaches a target accuracy at the
least cost, or the most accuracy within a budget (Kinetics Eq. 5, Sadhukhan et al. 2025:
argmax Acc s.t. C_TTS <= C; Wu et al. 2025 §4: compute-optimal inference), optionally per
difficulty bin (Snell et al. 2024 §3: the strategy chosen per quantile bin of estimated
difficulty).

Accuracy comes from each candidate's samples file (``strategies``), cost from flopcast's
inference model on the chosen hardware (``cost.batched_problem_cost``: $ and energy per problem
with the replica kept full; ``cost.problem_cost``: latency of one problem alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.coverage import BetaMixtureFit, _posterior_weights, _scipy
from flopcast.workloads.reasoning.samples import SampleSet
from flopcast.workloads.reasoning.strategies import (
    best_of_n_accuracy,
    best_of_n_limit,
    oracle_accuracy,
)
from flopcast.workloads.reasoning.voting import (
    majority_vote_bounds_per_problem,
    majority_vote_limits,
)

#: What the planner may minimise: $ and energy per problem with the replica kept full, the
#: seconds one problem takes alone, or the two hardware-free accounts (FLOPs as Wu et al.
#: count them; Kinetics' eFLOPs with the KV reads) that disagree on purpose.
OBJECTIVES = {"usd": "usd", "energy": "joules", "latency": "latency_s", "flops": "flops",
              "eflops": "kinetics_eflops"}
#: Lagrange multipliers tried when allocating per difficulty bin (log-spaced over the range
#: of accuracy per unit cost that the options span).
LAMBDA_POINTS = 400


@dataclass
class Candidate:
    """One model: its samples on the benchmark, its fitted difficulty model and deployment."""

    name: str
    samples: SampleSet
    fit: BetaMixtureFit
    job: object
    eff: object


@dataclass
class Options:
    """Every (candidate, strategy, k) evaluated: accuracy per problem and cost per problem."""

    rows: list[dict]
    per_problem: np.ndarray  # (options, problems)
    ceilings: list[dict] = field(default_factory=list)


def _accuracy(cand: Candidate, strategy: str, ks, tpr: float, fpr: float):
    """(per-problem accuracy (problems, ks), optimistic per-problem accuracy or None)."""
    s = cand.samples
    if strategy == "oracle":
        return oracle_accuracy(cand.fit, s.samples, s.correct, ks), None
    if strategy == "best-of-n":
        return best_of_n_accuracy(cand.fit, s.samples, s.correct, ks, tpr, fpr), None
    low, high = majority_vote_bounds_per_problem(cand.fit, s.samples, s.correct, ks)
    return low, high.mean(axis=0)


def _ceiling(cand: Candidate, strategy: str, tpr: float, fpr: float) -> float:
    s = cand.samples
    if strategy == "oracle":
        _, special = _scipy()
        post = _posterior_weights(cand.fit, s.samples, s.correct, special)
        return float(np.mean(1.0 - post[:, 0]))
    if strategy == "best-of-n":
        return best_of_n_limit(cand.fit, s.samples, s.correct, tpr, fpr)
    return majority_vote_limits(cand.fit, s.samples, s.correct)[0]


def evaluate(cands: list[Candidate], strategies: list[str], ks: list[int], prompt_len: int,
             out_len: int, tpr: float = 0.9, fpr: float = 0.1) -> Options:
    """Accuracy and cost of every (candidate, strategy, k)."""
    from flopcast.workloads.reasoning.cost import (
        Shape,
        batched_problem_cost,
        kinetics_cost,
        problem_cost,
        sampling_flops,
    )

    rows, per_problem, ceilings = [], [], []
    for cand in cands:
        shape = Shape.of(cand.job.model)
        costs = {k: (batched_problem_cost(cand.job, cand.eff, k, prompt_len, out_len),
                     problem_cost(cand.job, cand.eff, k, prompt_len, out_len)) for k in ks}
        for strategy in strategies:
            acc, high = _accuracy(cand, strategy, ks, tpr, fpr)
            ceilings.append({"model": cand.name, "strategy": strategy,
                             "ceiling": _ceiling(cand, strategy, tpr, fpr)})
            for i, k in enumerate(ks):
                batched, alone = costs[k]
                rows.append({
                    "model": cand.name, "strategy": strategy, "k": int(k),
                    "accuracy": float(acc[:, i].mean()),
                    "accuracy_high": None if high is None else float(high[i]),
                    "usd": batched["usd"], "joules": batched["joules"],
                    "gpu_hours": batched["gpu_hours"], "latency_s": alone["seconds"],
                    "flops": float(sampling_flops(shape.active_params, out_len, k)),
                    "kinetics_eflops": float(kinetics_cost(shape, k, prompt_len,
                                                           out_len)["eflops"]),
                })
                per_problem.append(acc[:, i])
    return Options(rows, np.array(per_problem), ceilings)


def pareto_front(rows: list[dict], cost_key: str) -> list[dict]:
    """Options no other beats on both cost (lower) and accuracy (higher), cheapest first."""
    front, best = [], -np.inf
    for row in sorted(rows, key=lambda r: (r[cost_key], -r["accuracy"])):
        if row["accuracy"] > best:
            front.append(row)
            best = row["accuracy"]
    return front


def choose(opts: Options, cost_key: str, target: float | None = None,
           budget: float | None = None) -> dict:
    """The cheapest option reaching ``target``, or the most accurate within ``budget`` (ties:
    the cheaper). Refuses a target above every fitted ceiling, naming the best ceiling."""
    if (target is None) == (budget is None):
        raise FlopcastError("reason plan: give a target accuracy or a budget, not both")
    if target is not None:
        hits = [r for r in opts.rows if r["accuracy"] >= target]
        if not hits:
            top = max(opts.ceilings, key=lambda c: c["ceiling"])
            if target > top["ceiling"]:
                raise FlopcastError(
                    f"target-accuracy: {target:.3f} is above the fitted ceiling of every "
                    f"candidate (best: {top['model']} with {top['strategy']}, "
                    f"{top['ceiling']:.3f} as k → ∞: the rest of the problems are predicted "
                    "never to be solved or selected)")
            best = max(opts.rows, key=lambda r: r["accuracy"])
            raise FlopcastError(
                f"target-accuracy: {target:.3f} is below the ceiling but not reached by k ≤ "
                f"{max(r['k'] for r in opts.rows)} (best: {best['accuracy']:.3f}); raise --max-k")
        return min(hits, key=lambda r: (r[cost_key], -r["accuracy"]))
    fits = [r for r in opts.rows if r[cost_key] <= budget]
    if not fits:
        cheapest = min(opts.rows, key=lambda r: r[cost_key])
        raise FlopcastError(f"budget: {budget:.4g} is below the cheapest option "
                            f"({cheapest[cost_key]:.4g}: {cheapest['model']}, k = 1)")
    return max(fits, key=lambda r: (r["accuracy"], -r[cost_key]))


def difficulty_bins(samples: SampleSet, n_bins: int) -> np.ndarray:
    """Bin of each problem (0 = easiest): quantiles of its estimated pass@1 c_i/n_i (Snell et
    al. 2024 §3.2, 'oracle' difficulty: quantiles of the base model's pass@1)."""
    n_bins = min(n_bins, samples.n_problems)  # never an empty bin
    p1 = samples.correct / samples.samples
    order = np.argsort(-p1, kind="stable")
    bins = np.empty(p1.size, int)
    bins[order] = np.arange(p1.size) * n_bins // p1.size
    return bins


def allocate_by_bin(opts: Options, bins: np.ndarray, cost_key: str,
                    target: float | None = None, budget: float | None = None) -> dict:
    """One option per difficulty bin, maximising accuracy within the mean ``budget`` per
    problem or minimising cost at ``target`` accuracy: Lagrangian relaxation (each bin takes
    argmax acc − λ·cost over a log grid of λ, plus every uniform choice), best feasible kept."""
    cost = np.array([r[cost_key] for r in opts.rows])
    n_bins = int(bins.max()) + 1
    share = np.bincount(bins, minlength=n_bins) / bins.size
    acc = np.stack([opts.per_problem[:, bins == b].mean(axis=1) for b in range(n_bins)], 1)
    spread = np.ptp(acc) / max(np.ptp(cost), 1e-300) if np.ptp(cost) else 1.0
    lams = np.concatenate([[0.0], spread * np.logspace(-6, 6, LAMBDA_POINTS)])
    picks = [np.argmax(acc - lam * cost[:, None], axis=0) for lam in lams]
    picks += [np.full(n_bins, i) for i in range(len(cost))]
    best = None
    for pick in picks:
        total_acc = float(acc[pick, np.arange(n_bins)] @ share)
        total_cost = float(cost[pick] @ share)
        ok = total_cost <= budget if budget is not None else total_acc >= target
        key = (total_acc, -total_cost) if budget is not None else (-total_cost, total_acc)
        if ok and (best is None or key > best[0]):
            best = (key, pick, total_acc, total_cost)
    if best is None:
        raise FlopcastError("reason plan: no per-bin allocation meets the "
                            + ("budget" if budget is not None else "target"))
    _, pick, total_acc, total_cost = best
    return {"accuracy": total_acc, cost_key: total_cost, "bins": [
        {"bin": b, "share": float(share[b]), **{k: opts.rows[i][k] for k in
                                                ("model", "strategy", "k")},
         "accuracy": float(acc[i, b])} for b, i in enumerate(pick.tolist())]}
