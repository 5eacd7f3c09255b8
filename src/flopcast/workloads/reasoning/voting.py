"""Majority-vote accuracy (no verifier) bounded from per-problem correct counts alone.

Wu et al. 2025, "Inference Scaling Laws" (ICLR 2025, arXiv:2408.00724), §3.1, Theorem 1:
majority voting over k samples converges to the share of problems whose most likely final answer
is the correct one, exponentially fast in k. Computing maj@k needs each problem's distribution
over distinct final answers (shared/reasoning/README.md, A2), and a samples CSV records only how
many samples were correct. So this module gives the two extremes the counts allow, with ties
shared uniformly (a tie among t + 1 leading answers credits 1 / (t + 1)):

* ``low`` assumes every wrong sample gives the *same* wrong answer (two answers in all): the
  correct answer needs a strict majority, maj@k = P(X > k/2) + P(X = k/2) / 2.
* ``high`` assumes every wrong sample gives a *different* answer: the correct answer wins once
  it appears twice, maj@k = P(X >= 2) + P(X = 1) / k.

X is the number of correct samples among k. Merging wrong answers never helps the correct one
and splitting them never hurts it (pointwise, for every draw), so the true maj@k lies between
the two whatever the wrong answers are. Both equal pass@1 at k = 1 and 2. As k grows, ``low``
tends to the share of problems with p > 1/2 and ``high`` to the share with p > 0 (Wu et al.'s
limit under each assumption).
"""

from __future__ import annotations

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.coverage import (
    BetaMixtureFit,
    _ks,
    _posterior_weights,
    _scipy,
)
from flopcast.workloads.reasoning.samples import check_counts


def _credit(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Credit of the correct answer with x of k samples correct: (two answers, all distinct)."""
    low = (2 * x > k) + 0.5 * (2 * x == k)
    high = (x >= 2) + (x == 1) / k
    return low, high


def _log_comb(n, r, special) -> np.ndarray:
    """log C(n, r) for arrays (r outside 0..n gives -inf)."""
    n, r = np.asarray(n, dtype=float), np.asarray(r, dtype=float)
    ok = (r >= 0) & (r <= n)
    with np.errstate(invalid="ignore"):
        out = special.gammaln(n + 1) - special.gammaln(np.where(ok, r, 0) + 1) \
            - special.gammaln(np.where(ok, n - r, 0) + 1)
    return np.where(ok, out, -np.inf)


def majority_vote_bounds(samples, correct, k) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) bounds on maj@k averaged over problems, for k <= n_i: each problem's X is the
    correct count among k of its n_i recorded samples drawn without replacement (hypergeometric),
    averaged over all such draws, the same construction as the unbiased pass@k estimator (Chen et
    al. 2021, §2.1), hence unbiased for the bounds at k independent samples. Assumptions and
    sources: module docstring (Wu et al. 2025, §3.1, Theorem 1). Shapes follow ``k``.

    >>> [round(float(b), 3) for b in majority_vote_bounds([4], [2], 3)]
    [0.5, 0.667]
    """
    _, special = _scipy()
    n, c = check_counts(samples, correct, "majority vote")
    ks = _ks(k)
    if ks.max() > n.min():
        raise FlopcastError(f"majority vote: k = {ks.max()} exceeds the {n.min()} samples drawn "
                            "for some problem; beyond n use majority_vote_bounds_given with a fit")
    low, high = np.empty(ks.size), np.empty(ks.size)
    for i, kk in enumerate(ks.ravel().tolist()):
        x = np.arange(kk + 1)
        log_pmf = (_log_comb(c[:, None], x, special) + _log_comb((n - c)[:, None], kk - x, special)
                   - _log_comb(n, kk, special)[:, None])
        lo, hi = _credit(x, kk)
        pmf = np.exp(log_pmf)
        low[i], high[i] = float((pmf @ lo).mean()), float((pmf @ hi).mean())
    return low.reshape(ks.shape), high.reshape(ks.shape)


def majority_vote_bounds_given(fit: BetaMixtureFit, samples, correct,
                               k) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) bounds on maj@k for the given problems at any k, from each problem's posterior
    success rate under a fitted Beta mixture (:meth:`BetaMixtureFit.coverage_given`): X given
    component j is BetaBinomial(k, alpha_j + c_i, beta_j + n_i - c_i); the point mass at p = 0
    never votes correctly. Assumptions and sources: module docstring (Wu et al. 2025, §3.1,
    Theorem 1)."""
    ks = _ks(k)
    low, high = majority_vote_bounds_per_problem(fit, samples, correct, ks.ravel())
    return low.mean(axis=0).reshape(ks.shape), high.mean(axis=0).reshape(ks.shape)


def majority_vote_bounds_per_problem(fit: BetaMixtureFit, samples, correct,
                                     k) -> tuple[np.ndarray, np.ndarray]:
    """The bounds of :func:`majority_vote_bounds_given` per problem, each (problems, ks)."""
    _, special = _scipy()
    n, c = check_counts(samples, correct, "majority vote")
    ks = _ks(k).ravel()
    post = _posterior_weights(fit, n, c, special)
    low, high = np.zeros((n.size, ks.size)), np.zeros((n.size, ks.size))
    for i, kk in enumerate(ks.tolist()):
        x = np.arange(kk + 1)
        lo, hi = _credit(x, kk)
        for j, (a, b) in enumerate(zip(fit.alpha, fit.beta, strict=True)):
            a_post, b_post = (a + c)[:, None], (b + n - c)[:, None]
            log_pmf = (_log_comb(kk, x, special) + special.betaln(x + a_post, kk - x + b_post)
                       - special.betaln(a_post, b_post))
            pmf = np.exp(log_pmf)
            low[:, i] += post[:, 1 + j] * (pmf @ lo)
            high[:, i] += post[:, 1 + j] * (pmf @ hi)
    return low, high


def majority_vote_limits(fit: BetaMixtureFit, samples, correct) -> tuple[float, float]:
    """(low, high) limits of maj@k as k -> infinity for the given problems (Wu et al. 2025,
    §3.1, Theorem 1: the share whose modal answer is correct): with two answers, the posterior
    probability that p > 1/2 (1 - I_{1/2}(alpha', beta'), the regularised incomplete Beta); with
    all wrong answers distinct, that p > 0 (1 - the point mass's posterior weight)."""
    _, special = _scipy()
    n, c = check_counts(samples, correct, "majority vote")
    post = _posterior_weights(fit, n, c, special)
    above_half = sum(post[:, 1 + j] * special.betaincc(a + c, b + n - c, 0.5)
                     for j, (a, b) in enumerate(zip(fit.alpha, fit.beta, strict=True)))
    return float(np.mean(above_half)), float(np.mean(1.0 - post[:, 0]))

