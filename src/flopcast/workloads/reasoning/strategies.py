"""Per-problem accuracy of selection strategies over k samples, from a fitted difficulty model.

Every function returns an array (problems, ks): the planner averages it over all problems or
over a difficulty bin (Snell et al. 2024 §3: compute-optimal allocation by estimated
difficulty). Each problem's success rate p_i is uncertain given its counts (c_i correct of
n_i); its posterior under a fitted difficulty model (``posterior.posterior_of``: any fit the
coverage methods return, the combined default included; empirical Bayes) is what k > n_i
samples are predicted from. The functions taking ``(fit, samples, correct)`` build that
posterior; the ``*_posterior`` ones take it built. Voting with an answer model, weighted
voting: ``answers``; tree search and sequential thinking: ``search``.

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
- ``majority``: Wu et al. 2025 Thm. 1 from counts alone: the planner uses the answer model of
  ``answers`` with all wrong answers agreeing (rho = 1, the lower bound of ``voting``), the
  conservative case, and reports all of them distinct (rho = 0, the upper bound).
"""

from __future__ import annotations

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.coverage import _ks
from flopcast.workloads.reasoning.posterior import Posterior, posterior_of

STRATEGIES = ("oracle", "best-of-n", "majority", "majority-answers", "weighted-vote",
              "tree-search", "sequential")


def oracle_accuracy(fit, samples, correct, k) -> np.ndarray:
    """pass@k per problem (problems, ks) from each problem's posterior (module docstring)."""
    return 1.0 - posterior_of(fit, samples, correct).fail(k)


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


def best_of_n_posterior(post: Posterior, k, tpr: float, fpr: float) -> np.ndarray:
    """Best-of-k accuracy per problem (problems, ks), averaged over each posterior."""
    check_verifier(tpr, fpr)
    ks = _ks(k).ravel()
    return post.expect(best_of_n_given_p(post.p[..., None], ks[None, None, :], tpr, fpr))


def best_of_n_accuracy(fit, samples, correct, k, tpr: float, fpr: float) -> np.ndarray:
    """Best-of-k accuracy per problem (problems, ks) under ``fit``'s posterior."""
    return best_of_n_posterior(posterior_of(fit, samples, correct), k, tpr, fpr)


def best_of_n_plateau(post: Posterior, tpr: float, fpr: float) -> float:
    """Accuracy of best-of-k as k -> infinity: E[p·tpr / (p·tpr + (1-p)·fpr)]."""
    check_verifier(tpr, fpr)
    p = post.p
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(p > 0, p * tpr / (p * tpr + (1 - p) * fpr), 0.0)
    return float(post.expect(share).mean())
