"""The reasoning planner: which model × strategy × samples reaches a target accuracy at the
least cost, or the most accuracy within a budget (Kinetics Eq. 5, Sadhukhan et al. 2025:
argmax Acc s.t. C_TTS <= C; Wu et al. 2025 §4: compute-optimal inference), optionally per
difficulty bin (Snell et al. 2024 §3: the strategy chosen per quantile bin of estimated
difficulty).

Accuracy comes from each candidate's samples file: the difficulty model ``flopcast reason
coverage`` uses (``coverage.DEFAULT_METHOD``, the combined model, fitted to the counts), each
problem's posterior under it (``posterior``), and the strategies of ``strategies``, ``answers``
and ``search`` averaged over it. Cost comes from flopcast's inference model on the chosen
hardware (``cost.batched_problem_cost``: $ and energy per problem with the replica kept full;
``cost.problem_cost``: latency of one problem alone); a tree search's cost is its setting's
multiplier times the cost of as many independent samples (the extra FLOPs taken to cost time
in proportion: assumed), sequential thinking's that of one chain R times as long.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.coverage import DEFAULT_METHOD
from flopcast.workloads.reasoning.samples import SampleSet
from flopcast.workloads.reasoning.search import DEFAULT_SEQUENTIAL, DEFAULT_TREE

#: What the planner may minimise: $ and energy per problem with the replica kept full, the
#: seconds one problem takes alone, or the two hardware-free accounts (FLOPs as Wu et al.
#: count them; Kinetics' eFLOPs with the KV reads) that disagree on purpose.
OBJECTIVES = {"usd": "usd", "energy": "joules", "latency": "latency_s", "flops": "flops",
              "eflops": "kinetics_eflops"}
#: Lagrange multipliers tried when allocating per difficulty bin (log-spaced over the range
#: of accuracy per unit cost that the options span).
LAMBDA_POINTS = 400
#: The cost fields of a row (scaled together by a tree search's cost multiplier).
COST_FIELDS = ("usd", "joules", "gpu_hours", "latency_s", "flops", "kinetics_eflops")


@dataclass
class Candidate:
    """One model: its samples on the benchmark, a fitted difficulty model (kept for callers
    that pass one; the planner fits ``Settings.method`` to the samples itself, the model
    ``flopcast reason coverage`` uses) and its deployment."""

    name: str
    samples: SampleSet
    fit: object
    job: object
    eff: object


@dataclass(frozen=True)
class Settings:
    """What the strategies need beyond the counts: the verifier (best-of-n, weighted vote,
    search), the wrong-answer concentration assumed when the samples have no answer
    histograms (``answers.concentration``), the tree-search and sequential settings
    (``search``), and the difficulty model (a ``coverage.METHODS`` name)."""

    tpr: float = 0.9
    fpr: float = 0.1
    concentration: float | None = None
    tree: str = DEFAULT_TREE
    sequential: str = DEFAULT_SEQUENTIAL
    method: str = DEFAULT_METHOD


@dataclass
class Options:
    """Every (candidate, strategy, k) evaluated: accuracy per problem and cost per problem;
    ``skipped`` names the options whose cost could not be had (e.g. a chain too long for the
    KV memory)."""

    rows: list[dict]
    per_problem: np.ndarray  # (options, problems)
    ceilings: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _accuracy(post, samples: SampleSet, strategy: str, ks, st: Settings):
    """(per-problem accuracy (problems, ks), optimistic mean accuracy per k or None,
    accuracy as k -> infinity) of one strategy."""
    from flopcast.workloads.reasoning import answers, search, strategies

    if strategy == "oracle":
        return 1.0 - post.fail(ks), None, float(post.expect(post.p > 0).mean())
    if strategy == "best-of-n":
        return (strategies.best_of_n_posterior(post, ks, st.tpr, st.fpr), None,
                strategies.best_of_n_plateau(post, st.tpr, st.fpr))
    if strategy == "majority":  # counts only: all wrong answers agree; optimistic: all differ
        high = answers.vote_accuracy(post, ks, 0.0).mean(axis=0)
        return answers.vote_accuracy(post, ks, 1.0), high, answers.vote_limit(post, 1.0)
    if strategy == "sequential":
        seq = search.sequential_setting(st.sequential)
        return search.sequential_accuracy(post, ks, seq), None, search.sequential_limit(post, seq)
    if strategy == "tree-search":
        tree = search.tree_setting(st.tree)
        if tree.selection == "best-of-n":  # a verifier picks: no answer model needed
            return (search.tree_search_accuracy(post, ks, tree, None, st.tpr, st.fpr), None,
                    strategies.best_of_n_plateau(post, st.tpr, st.fpr))
        rho = answers.concentration(samples, st.concentration,
                                    f"tree-search ({st.tree} selects by weighted vote)")
        return (search.tree_search_accuracy(post, ks, tree, rho, st.tpr, st.fpr), None,
                answers.vote_limit(post, rho, st.tpr, st.fpr))
    rho = answers.concentration(samples, st.concentration, strategy)
    if strategy == "majority-answers":
        return answers.vote_accuracy(post, ks, rho), None, answers.vote_limit(post, rho)
    if strategy == "weighted-vote":
        return (answers.vote_accuracy(post, ks, rho, st.tpr, st.fpr), None,
                answers.vote_limit(post, rho, st.tpr, st.fpr))
    raise FlopcastError(f"strategies: unknown {strategy!r}; one of "
                        f"{', '.join(strategies.STRATEGIES)}")


def _run_shape(strategy: str, k: int, out_len: int, st: Settings) -> tuple[int, int, float]:
    """(trials, tokens per trial, cost multiplier) of one option: k samples of out_len
    tokens; a tree search's k solutions at its cost multiplier; sequential thinking's k rounds
    as one chain of k x out_len tokens (``search`` module docstring)."""
    if strategy == "sequential":
        return 1, k * out_len, 1.0
    if strategy == "tree-search":
        from flopcast.workloads.reasoning.search import tree_setting

        return k, out_len, tree_setting(st.tree).cost_multiplier
    return k, out_len, 1.0


def _costs(cand: Candidate, trials: int, out_len: int, prompt_len: int) -> dict:
    """Every cost account of one problem: $, J and GPU-hours with the replica kept full,
    seconds alone, FLOPs (2·P per token) and Kinetics eFLOPs."""
    from flopcast.workloads.reasoning.cost import (
        Shape,
        batched_problem_cost,
        kinetics_cost,
        problem_cost,
        sampling_flops,
    )

    shape = Shape.of(cand.job.model)
    batched = batched_problem_cost(cand.job, cand.eff, trials, prompt_len, out_len)
    alone = problem_cost(cand.job, cand.eff, trials, prompt_len, out_len)
    return {"usd": batched["usd"], "joules": batched["joules"],
            "gpu_hours": batched["gpu_hours"], "latency_s": alone["seconds"],
            "flops": float(sampling_flops(shape.active_params, out_len, trials)),
            "kinetics_eflops": float(kinetics_cost(shape, trials, prompt_len,
                                                   out_len)["eflops"])}


def evaluate(cands: list[Candidate], strategies: list[str], ks: list[int], prompt_len: int,
             out_len: int, tpr: float = 0.9, fpr: float = 0.1, *,
             settings: Settings | None = None) -> Options:
    """Accuracy and cost of every (candidate, strategy, k); ``tpr``/``fpr`` are the verifier's
    when ``settings`` is not given."""
    from flopcast.workloads.reasoning.posterior import difficulty_posterior

    st = settings or Settings(tpr=tpr, fpr=fpr)
    opts = Options([], np.empty(0), [])
    per_problem, cache = [], {}
    for cand in cands:
        s = cand.samples
        post = difficulty_posterior(s.samples, s.correct, st.method)
        for strategy in strategies:
            acc, high, ceiling = _accuracy(post, s, strategy, ks, st)
            opts.ceilings.append({"model": cand.name, "strategy": strategy, "ceiling": ceiling})
            for i, k in enumerate(ks):
                trials, tokens, mult = _run_shape(strategy, int(k), out_len, st)
                key = (cand.name, trials, tokens)
                try:
                    if key not in cache:
                        cache[key] = _costs(cand, trials, tokens, prompt_len)
                except FlopcastError as e:
                    opts.skipped.append(f"{cand.name} {strategy} k={k}: {e}")
                    continue
                opts.rows.append({
                    "model": cand.name, "strategy": strategy, "k": int(k),
                    "accuracy": float(acc[:, i].mean()),
                    "accuracy_high": None if high is None else float(high[i]),
                    **{f: mult * cache[key][f] for f in COST_FIELDS}})
                per_problem.append(acc[:, i])
    if not opts.rows:
        raise FlopcastError("reason plan: no option could be priced (" + "; ".join(
            opts.skipped[:1]) + ")")
    opts.per_problem = np.array(per_problem)
    return opts


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
