"""Selection strategies beyond pass@k (issue 9): the answer-model vote (Wu et al. 2025 Thm.
1-2), weighted voting, tree search and sequential thinking from documented settings, the
posterior the planner averages them over, and the planner's consistency with them."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scipy")

from flopcast.errors import FlopcastError  # noqa: E402
from flopcast.workloads.reasoning import read_sample_groups  # noqa: E402
from flopcast.workloads.reasoning.answers import (  # noqa: E402
    concentration,
    vote_accuracy,
    vote_credit,
    vote_limit,
)
from flopcast.workloads.reasoning.cost import sampling_flops  # noqa: E402
from flopcast.workloads.reasoning.coverage import extrapolate  # noqa: E402
from flopcast.workloads.reasoning.posterior import (  # noqa: E402
    Posterior,
    difficulty_posterior,
    posterior_of,
)
from flopcast.workloads.reasoning.samples import SampleSet  # noqa: E402
from flopcast.workloads.reasoning.search import (  # noqa: E402
    sequential_given_p,
    sequential_setting,
    tree_search_accuracy,
    tree_setting,
)
from flopcast.workloads.reasoning.strategies import best_of_n_posterior  # noqa: E402
from flopcast.workloads.reasoning.voting import majority_vote_bounds  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "reasoning" / \
    "pythia-math-samples.csv"


def _brute_vote(a, b, s, k, fallback):
    """Credit of the correct answer by enumerating every multinomial outcome."""
    z, total = 1 - a - b - s, 0.0
    for xc, xw, xs in itertools.product(range(k + 1), repeat=3):
        xn = k - xc - xw - xs
        if xn < 0:
            continue
        pr = (math.factorial(k) / (math.factorial(xc) * math.factorial(xw) * math.factorial(xs)
                                   * math.factorial(xn)) * a**xc * b**xw * s**xs * z**xn)
        if xc + xw + xs == 0:
            total += pr * (fallback / z if z > 0 else 0.0)
            continue
        top = max(xc, xw, 1 if xs else 0)
        if xc == top:
            total += pr / ((xc == top) + (xw == top) + (xs if top == 1 else 0))
    return total


def test_vote_kernel_matches_enumeration():
    rng = np.random.default_rng(3)
    for _ in range(25):
        x = rng.dirichlet([1, 1, 1, 1])
        fb = rng.uniform(0, x[3])
        for k in (1, 2, 3, 5, 8):
            assert vote_credit(x[0], x[1], x[2], k, fb) == pytest.approx(
                _brute_vote(x[0], x[1], x[2], k, fb), abs=1e-12)


def test_vote_kernel_reduces_to_the_count_bounds():
    """rho = 1 (all wrong agree) and rho = 0 (all distinct) are voting.py's two bounds."""
    p = np.array([0.1, 0.35, 0.5, 0.8])
    for k in (3, 10, 41):
        exact = [majority_vote_bounds([10**6], [int(10**6 * x)], k) for x in p]
        low = vote_credit(p, 1 - p, 0.0, k)
        high = vote_credit(p, 0.0, 1 - p, k)
        assert np.allclose(low, [e[0] for e in exact], atol=1e-3)
        assert np.allclose(high, [e[1] for e in exact], atol=1e-3)


def test_majority_converges_to_share_with_correct_mode():
    """Wu et al. Thm. 1: as N grows, maj@N -> the share of problems whose most common
    answer is the correct one (here 3 of 5: p > q)."""
    p = np.array([0.30, 0.45, 0.20, 0.60, 0.25])
    q = np.array([0.20, 0.50, 0.30, 0.10, 0.15])
    acc = [float(vote_credit(p, q, 1 - p - q, k).mean()) for k in (1, 16, 256, 4096)]
    assert acc[-1] == pytest.approx(0.6, abs=1e-3)
    assert abs(acc[-1] - 0.6) < abs(acc[1] - 0.6)


def test_weighted_vote_beats_majority_with_an_informative_verifier():
    """Wu et al. Thm. 2 remark: with a better-than-random reward model the weighted limit is at
    least the majority limit; it turns the problems with q > p > q fpr / tpr (2 of 4 here)."""
    p = np.array([0.30, 0.20, 0.10, 0.60])
    q = np.array([0.40, 0.50, 0.60, 0.20])
    post = Posterior(p[:, None], np.ones((4, 1)), ())
    rho = q / (1 - p)
    for k in (64, 1024):
        maj = vote_accuracy(post, [k], rho).mean()
        wv = vote_accuracy(post, [k], rho, 0.9, 0.2).mean()
        assert wv > maj + 0.1
    assert vote_limit(post, rho, 0.9, 0.2) == 0.75 and vote_limit(post, rho) == 0.25
    useless = vote_accuracy(post, [1024], rho, 0.5, 0.5).mean()  # tpr = fpr: no information
    assert useless == pytest.approx(vote_accuracy(post, [1024], rho).mean(), abs=0.02)


def test_voting_refuses_without_answer_data():
    s = SampleSet("m", "b", ("a", "b"), np.array([10, 10]), np.array([3, 0]))
    with pytest.raises(FlopcastError, match="top_wrong"):
        concentration(s)
    assert np.allclose(concentration(s, 0.5), 0.5)
    with pytest.raises(FlopcastError, match="concentration"):
        concentration(s, 1.5)
    h = SampleSet("m", "b", ("a", "b"), np.array([10, 10]), np.array([3, 10]),
                  top_wrong=np.array([4, 0]))
    assert np.allclose(concentration(h), [4 / 7, 1.0])
    with pytest.raises(FlopcastError, match="top_wrong"):
        SampleSet("m", "b", ("a",), np.array([10]), np.array([3]), top_wrong=np.array([8]))


def test_samples_file_top_wrong_column(tmp_path):
    from flopcast.workloads.reasoning import read_samples

    f = tmp_path / "s.csv"
    f.write_text("model,benchmark,problem,samples,correct,top_wrong\n"
                 "m,b,p1,10,3,4\nm,b,p2,10,10,0\n")
    assert list(read_samples(f).top_wrong) == [4, 0]
    f.write_text("model,benchmark,problem,samples,correct,top_wrong\nm,b,p1,10,3,4\nm,b,p2,10,1,\n")
    with pytest.raises(FlopcastError, match="row 2.*top_wrong.*every row or none"):
        read_samples(f)


def test_tree_search_cost_multiplier_from_the_paper():
    """Wu et al. 2025 Table 4, Mistral-7B on MATH500: sampling 32 x 3.4e12 = 109.2e12 FLOPs,
    REBASE at the same N 136.2e12; Llama3-8B 122.9e12 and 172.8e12."""
    sampling = sampling_flops(7.24e9, 235, 32)
    assert sampling == pytest.approx(109.2e12, rel=0.01)
    assert tree_setting("rebase-mistral-7b-math").cost_multiplier * 109.2e12 == \
        pytest.approx(136.2e12, rel=1e-3)
    assert tree_setting("rebase-llama3-8b-math").cost_multiplier * 122.9e12 == \
        pytest.approx(172.8e12, rel=1e-3)
    assert tree_setting("beam-snell").cost_multiplier == 1.0  # Snell §5.3: N beams = N gens
    with pytest.raises(FlopcastError, match="unknown setting"):
        tree_setting("mcts")


def test_tree_search_is_its_selection_at_more_samples():
    p = np.array([0.05, 0.3, 0.5])
    post = Posterior(p[:, None], np.ones((3, 1)), ())
    setting = tree_setting("beam-snell")
    assert np.allclose(tree_search_accuracy(post, [4], setting, 1.0, 0.9, 0.1),
                       best_of_n_posterior(post, [16], 0.9, 0.1))
    rebase = tree_setting("rebase-mistral-7b-math")
    assert np.allclose(tree_search_accuracy(post, [4], rebase, 0.5, 0.9, 0.1),
                       vote_accuracy(post, [32], 0.5, 0.9, 0.1))


def test_sequential_chain():
    """TTSPM's absorbing chain is the parallel form; a break rate caps it at f / (f + g)."""
    p = np.array([0.01, 0.2, 0.7])
    absorbing = sequential_setting("ttspm-absorbing")
    assert np.allclose(sequential_given_p(p, 1, absorbing), p)
    assert np.allclose(sequential_given_p(p, 7, absorbing), 1 - (1 - p) ** 7)
    snell = sequential_setting("snell-revisions")
    g = snell.break_rate
    far = sequential_given_p(p, 10**6, snell)
    assert np.allclose(far, p / (p + g))
    assert sequential_given_p(0.95, 5, snell) < 0.95  # p + g > 1: revising breaks more


def test_posterior_points_reproduce_exact_pass_at_k():
    """The quadrature points give the closed-form / quadrature pass@k within 1e-3 for every
    fit type (the strategies average over the points, pass@k uses the exact form)."""
    rng = np.random.default_rng(0)
    n = np.full(60, 100)
    c = rng.binomial(100, rng.beta(0.3, 6.0, 60))
    ks = np.array([1, 30, 1000, 30000])
    for method in ("combined", "model-average", "kumaraswamy", "beta-mixture"):
        fit = extrapolate(n, c, ks, method, reps=0).fit
        post = posterior_of(fit, n, c)
        exact = post.fail(ks)
        points = post.expect((1 - post.p[..., None]) ** ks[None, None, :])
        assert np.allclose(post.w.sum(axis=1), 1.0)
        assert np.max(np.abs(exact - points)) < 1e-3, method


@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/reasoning absent")
def test_planner_pass_at_k_is_the_coverage_model():
    """The planner's pass@k on a 100-sample subsample is `reason coverage`'s combined model:
    its model-average half exactly, the power-law half through its implied distribution
    (within 1.5 points at k = 300..10,000 on every Pythia model)."""
    ks = np.array([300, 1000, 3000, 10000])
    for s in read_sample_groups(SAMPLES).values():
        sub = s.subsample(100, seed=0)
        ext = extrapolate(sub.samples, sub.correct, ks, reps=0)
        post = difficulty_posterior(sub.samples, sub.correct)
        planner = 1 - post.fail(ks).mean(axis=0)
        assert np.max(np.abs(planner - ext.coverage)) < 0.015, s.model
        avg = ext.fit.model_average
        half = posterior_of(avg, sub.samples, sub.correct)
        assert np.allclose(1 - half.fail(ks).mean(0),
                           avg.coverage_given(sub.samples, sub.correct, ks), atol=1e-9)


@pytest.mark.skipif(not SAMPLES.exists(), reason="../shared/reasoning absent")
def test_planner_with_every_strategy_is_consistent():
    from flopcast.api.reason import candidates as _candidates
    from flopcast.workloads.reasoning.plan import Settings, choose, evaluate

    _, cands = _candidates([SAMPLES], None, {"pythia-70m": "pythia-160m"},
                           {"gpu": "h100-sxm", "gpus": 1, "engine": "vllm",
                            "precision": "bf16"})
    cands = [c for c in cands if c.name in ("pythia-410m", "pythia-2.8b")]
    strategies = ["oracle", "best-of-n", "majority", "majority-answers", "weighted-vote",
                  "tree-search", "sequential"]
    with pytest.raises(FlopcastError, match="top_wrong"):
        evaluate(cands, ["majority-answers"], [1, 4], 500, 512)
    st = Settings(concentration=0.5, sequential="snell-revisions")
    opts = evaluate(cands, strategies, [1, 4, 16, 64], 500, 512, settings=st)
    rows = {(r["model"], r["strategy"], r["k"]): r for r in opts.rows}
    for m in ("pythia-410m", "pythia-2.8b"):
        # an imperfect verifier never beats a perfect one; voting never beats pass@k
        for k in (1, 4, 16, 64):
            top = rows[(m, "oracle", k)]["accuracy"]
            for s in ("best-of-n", "majority", "majority-answers", "weighted-vote"):
                assert rows[(m, s, k)]["accuracy"] <= top + 1e-3
        # tree search costs its multiplier x sampling; sequential is one chain k x as long
        assert rows[(m, "tree-search", 16)]["flops"] == pytest.approx(
            1.247 * rows[(m, "oracle", 16)]["flops"])
        assert rows[(m, "sequential", 16)]["flops"] == pytest.approx(
            rows[(m, "oracle", 16)]["flops"])
        assert rows[(m, "sequential", 16)]["kinetics_eflops"] > \
            rows[(m, "oracle", 16)]["kinetics_eflops"]  # the chain's KV grows: L^2 term
    budgets = np.geomspace(min(r["usd"] for r in opts.rows), max(r["usd"] for r in opts.rows),
                           20)
    best = [choose(opts, "usd", budget=b)["accuracy"] for b in budgets]
    assert np.all(np.diff(best) >= 0)
    ceilings = {(c["model"], c["strategy"]): c["ceiling"] for c in opts.ceilings}
    assert max(v for (m, s), v in ceilings.items() if s != "oracle" and s != "sequential") < 1
    vote_only = evaluate(cands, ["majority-answers", "weighted-vote", "tree-search"],
                         [1, 4], 500, 512, settings=st)
    # a vote's limit is not its supremum (a problem whose correct answer is not the modal one
    # still wins sometimes at finite k), so the refused target is above both
    above = max(max(c["ceiling"] for c in vote_only.ceilings),
                max(r["accuracy"] for r in vote_only.rows)) + 0.01
    with pytest.raises(FlopcastError, match="ceiling"):
        choose(vote_only, "usd", target=above)
