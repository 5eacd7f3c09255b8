"""Per-problem accuracy of selection strategies over k samples, from a fitted difficulty model.

Every function returns an array (problems, ks): the planner averages it over all problems or
over a difficulty bin (Snell et al. 2024 §3: compute-optimal allocation by estimated
difficulty). Each problem's success rate p_i is uncertain given its counts (c_i correct of
n_i); its posterior under the fitted Beta mixture (``coverage.BetaMixtureFit``, empirical
Bayes) is what k > n_i samples are predicted from.

- ``oracle``: a perfect verifier (unit tests, exact answer check): pass@k = 1 - E[(1 - p_i)^k]
  over p_i's posterior (README A1) at every k. Within the samples drawn the unbiased estimator
  (Chen et al. 2021 Eq. 1; ``flopcast reason coverage``) is exact for the samples at hand, but
  mixing it with the posterior beyond n_i makes a problem's accuracy fall with k (1 correct of
  100 gives pass@100 = 1, a fresh 1,000 samples 0.94); the planner compares strategies and k on
  one model, so it uses the posterior throughout.
- ``best-of-n``: a verifier that accepts a correct sample with probability ``tpr`` and a wrong
  one with ``fpr``; one accepted sample is returned at random, or a random sample when none is
  accepted. With a = p·tpr, b = (1-p)·fpr, q = 1 - a - b:
  acc(p, k) = a/(a+b)·(1 - q^k) + p·(1 - tpr)·q^(k-1). It plateaus at p·tpr/(p·tpr +
  (1-p)·fpr) — the saturation Brown et al. 2024 and Wu et al. 2025 report for reward models
  (README A2: "no closed form was found in any source"; this one is flopcast's, under
  independent samples and a verifier whose errors are independent of the sample).
- ``majority``: Wu et al. 2025 Thm. 1 bounds from counts alone (``voting``): the planner uses
  the lower bound (all wrong answers agree), the conservative case, and reports the upper.
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

STRATEGIES = ("oracle", "best-of-n", "majority")
#: Quantile points per posterior component when averaging a nonlinear acc(p, k) over a
#: problem's posterior (mid-quantiles: exact for the mean, resolves posteriors of any width).
POSTERIOR_POINTS = 48


def oracle_accuracy(fit: BetaMixtureFit, samples, correct, k) -> np.ndarray:
    """pass@k per problem (problems, ks) from each problem's posterior (module docstring)."""
    _, special = _scipy()
    n, c = check_counts(samples, correct, "oracle")
    ks = _ks(k).ravel()
    post = _posterior_weights(fit, n, c, special)
    fail = post[:, :1] * np.ones(ks.size)
    for j, (a, b) in enumerate(zip(fit.alpha, fit.beta, strict=True)):
        a_post, b_post = (a + c)[:, None], (b + n - c)[:, None]
        fail = fail + post[:, 1 + j, None] * np.exp(special.betaln(a_post, b_post + ks)
                                                     - special.betaln(a_post, b_post))
    return 1.0 - fail


def _posterior_points(fit: BetaMixtureFit, n: np.ndarray, c: np.ndarray):
    """(p, weight) arrays (problems, points): each problem's posterior as weighted quantile
    points; the point mass at p = 0 is one point."""
    _, special = _scipy()
    post = _posterior_weights(fit, n, c, special)
    u = (np.arange(POSTERIOR_POINTS) + 0.5) / POSTERIOR_POINTS
    ps, ws = [np.zeros((n.size, 1))], [post[:, :1]]
    for j, (a, b) in enumerate(zip(fit.alpha, fit.beta, strict=True)):
        ps.append(special.betaincinv((a + c)[:, None], (b + n - c)[:, None], u[None, :]))
        ws.append(np.repeat(post[:, 1 + j, None] / POSTERIOR_POINTS, POSTERIOR_POINTS, axis=1))
    return np.concatenate(ps, axis=1), np.concatenate(ws, axis=1)


def best_of_n_given_p(p, k, tpr: float, fpr: float) -> np.ndarray:
    """acc(p, k) of best-of-k with an imperfect verifier (module docstring), broadcasting."""
    p, k = np.asarray(p, float), np.asarray(k, float)
    a, b = p * tpr, (1 - p) * fpr
    q = np.clip(1 - a - b, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(a + b > 0, a / np.where(a + b > 0, a + b, 1.0), 0.0)
    return share * (1 - q**k) + p * (1 - tpr) * q ** (k - 1)


def check_verifier(tpr: float, fpr: float) -> None:
    if not (0 < tpr <= 1 and 0 <= fpr < 1):
        raise FlopcastError(f"verifier: tpr must be in (0, 1] and fpr in [0, 1); got tpr={tpr}, "
                            f"fpr={fpr}")


def best_of_n_accuracy(fit: BetaMixtureFit, samples, correct, k, tpr: float,
                       fpr: float) -> np.ndarray:
    """Best-of-k accuracy per problem (problems, ks), averaged over each posterior."""
    check_verifier(tpr, fpr)
    n, c = check_counts(samples, correct, "best-of-n")
    ks = _ks(k).ravel()
    p, w = _posterior_points(fit, n, c)
    acc = best_of_n_given_p(p[:, :, None], ks[None, None, :], tpr, fpr)
    return np.einsum("mq,mqk->mk", w, acc)


def best_of_n_limit(fit: BetaMixtureFit, samples, correct, tpr: float, fpr: float) -> float:
    """Accuracy of best-of-k as k -> infinity: E[p·tpr / (p·tpr + (1-p)·fpr)]."""
    check_verifier(tpr, fpr)
    n, c = check_counts(samples, correct, "best-of-n")
    p, w = _posterior_points(fit, n, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(p > 0, p * tpr / (p * tpr + (1 - p) * fpr), 0.0)
    return float((w * share).sum(axis=1).mean())
