"""The default difficulty model: Beta and Kumaraswamy fits, averaged by their Akaike weights.

What coverage beyond the n samples drawn depends on is how the problems never solved in n
samples spread below p = 1/n: the left tail of the per-problem success-rate distribution, which
carries the power law of coverage (Schaeffer et al. 2025; README A1). The counts say little
about it, and Schaeffer et al. fit two families that guess it differently: the Beta (a gamma-like
law of p near 0) and the Kumaraswamy (for small a close to a gamma law of -log p). Fitted to the
Pythia MATH counts the two are equally likely (log-likelihoods within 2 on all 10,000 samples
per problem, docs/reasoning.md), yet from 100 samples per problem they extrapolate to 10,000 on
opposite sides of the truth. Neither can be chosen on the counts, so the prediction is their
model average with Akaike weights w_m ∝ exp(-AIC_m / 2), AIC_m = 2 K_m - 2 log L_m (Burnham &
Anderson 2002, "Model Selection and Multimodel Inference", §4.2, Eq. 4.1-4.2 for the model-averaged
prediction); both have K = 2 parameters, so the weights are the likelihood ratio. The rule uses
only the counts it is given and is the same for every model and benchmark.

Each family is fitted by maximum likelihood to the binomial counts (Beta: the beta-binomial's
closed form; Kumaraswamy: ``kumaraswamy.Quadrature``), without a point mass at p = 0 (that
stays available in ``coverage.fit_beta_mixture``: with a continuous left tail, problems never
solved still carry their share). The bootstrap band refits both families on each resample of
the problems and re-weights them, so it includes the uncertainty of which family fits (Burnham
& Anderson §4.3.3: model-selection uncertainty by the bootstrap).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning import kumaraswamy as kuma
from flopcast.workloads.reasoning.coverage import (
    BetaMixtureFit,
    _ks,
    _scipy,
    beta_binomial_log_pmf,
    beta_log_fail,
)
from flopcast.workloads.reasoning.newton import maximise
from flopcast.workloads.reasoning.samples import check_counts, log_choose

#: Parameters of each family (both two), the K of AIC = 2 K - 2 log L.
PARAMETERS = 2
#: Box of (log alpha, log beta) for the Beta fits: alpha in [1e-4, 1e6], beta in [1e-4, 1e8]
#: (the upper ends are a Beta narrower than any count can resolve: nearly one p for all).
BETA_BOUNDS = np.log([[1e-4, 1e6], [1e-4, 1e8]])


def _beta_terms(n: np.ndarray, c: np.ndarray, anchor=None):
    """terms(theta, order) for the beta-binomial at the pairs (n, c), theta = (log alpha,
    log beta) rows (R, 2): value (R, pairs) = log B(c + alpha, n - c + beta) - log B(alpha,
    beta), its gradient and Hessian (digamma and trigamma of the same arguments). Closed
    form: ``anchor`` (the quadrature families' node placement) is not needed."""
    _, special = _scipy()

    def terms(theta, order):
        a, b = np.exp(theta[:, :1]), np.exp(theta[:, 1:])
        value = beta_binomial_log_pmf(n, c, a, b, special, choose=False)
        if order == 0:
            return value, None, None
        dig, tri = special.digamma, lambda x: special.polygamma(1, x)
        d_a = dig(c + a) - dig(n + a + b) - dig(a) + dig(a + b)
        d_b = dig(n - c + b) - dig(n + a + b) - dig(b) + dig(a + b)
        t_ab = tri(a + b) - tri(n + a + b)
        t_aa, t_bb = tri(c + a) - tri(a) + t_ab, tri(n - c + b) - tri(b) + t_ab
        grad = np.stack([a * d_a, b * d_b], axis=-1)
        h_ab = a * b * t_ab
        hess = np.stack([np.stack([a * d_a + a * a * t_aa, h_ab], -1),
                         np.stack([h_ab, b * d_b + b * b * t_bb], -1)], -2)
        return value, grad, hess
    return terms


def _beta_log_fail(theta, n, c, ks, anchor=None):
    """log E[(1 - p)^k | c of n] per row, pair and k, (R, pairs, ks) (coverage.beta_log_fail;
    closed form, no ``anchor`` needed)."""
    _, special = _scipy()
    a, b = np.exp(theta[:, :1, None]), np.exp(theta[:, 1:, None])
    return beta_log_fail(a, b, n[None, :, None], c[None, :, None], ks[None, None, :], special)


def _kuma_log_fail(theta, n, c, ks, anchor=None):
    """The same under Kumaraswamy (kumaraswamy.log_fail_given on the distinct pairs)."""
    return kuma.log_fail_given(theta, n, c, ks, anchor)


@dataclass(frozen=True)
class Family:
    """A two-parameter difficulty distribution: its box and starts in log-parameters, per-pair
    likelihood terms (value without log C(n, c); ``terms(n, c, anchor)``, anchor the
    parameters near which a bootstrap refits), posterior failure rates, and its fit type."""

    name: str
    bounds: np.ndarray
    starts: np.ndarray
    terms: Callable
    log_fail: Callable
    make: Callable


FAMILIES = {
    "beta": Family("beta", BETA_BOUNDS,
                   np.log([[a, b] for a in (0.1, 0.3, 1.0) for b in (3.0, 10.0, 100.0)]),
                   _beta_terms, _beta_log_fail,
                   lambda t, ll, m: BetaMixtureFit(0.0, (1.0,), (float(np.exp(t[0])),),
                                                   (float(np.exp(t[1])),), ll, m)),
    "kumaraswamy": Family("kumaraswamy", kuma.BOUNDS, kuma.STARTS,
                          lambda n, c, anchor=None: kuma.kumaraswamy_family(n, c, anchor)[0],
                          _kuma_log_fail,
                          lambda t, ll, m: kuma.KumaraswamyFit(float(np.exp(t[0])),
                                                               float(np.exp(t[1])), ll, m)),
}
#: The families the default model averages.
DEFAULT_FAMILIES = ("beta", "kumaraswamy")


def akaike_weights(log_likelihoods, parameters=PARAMETERS) -> np.ndarray:
    """w_m = exp(-Delta_m / 2) / sum, Delta_m = AIC_m - min AIC, AIC = 2 K - 2 log L (Burnham
    & Anderson 2002, §2.9, Eq. 2.14); along the last axis."""
    aic = 2.0 * parameters - 2.0 * np.asarray(log_likelihoods, dtype=float)
    rel = np.exp(-(aic - aic.min(axis=-1, keepdims=True)) / 2.0)
    return rel / rel.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class ModelAverageFit:
    """Fits of several difficulty families to the same counts and their Akaike weights
    (module docstring); ``thetas`` are each fit's log-parameters."""

    families: tuple[str, ...]
    fits: tuple
    thetas: tuple[tuple[float, float], ...]
    weights: tuple[float, ...]
    n_problems: int

    def coverage(self, k) -> np.ndarray:
        """Coverage of a fresh problem: sum_m w_m * coverage_m(k)."""
        return sum(w * f.coverage(k) for w, f in zip(self.weights, self.fits, strict=True))

    def coverage_given(self, samples, correct, k) -> np.ndarray:
        """Coverage(k) of the given problems: sum_m w_m * coverage_given_m (each from every
        problem's posterior under family m, README A1 "Per-problem law")."""
        return sum(w * f.coverage_given(samples, correct, k)
                   for w, f in zip(self.weights, self.fits, strict=True))


def _pairs(samples, correct):
    n, c = check_counts(samples, correct, "model average")
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    return n, c, pairs[:, 0].astype(float), pairs[:, 1].astype(float), inverse.ravel()


def fit_model_average(samples, correct,
                      families: tuple[str, ...] = DEFAULT_FAMILIES) -> ModelAverageFit:
    """Maximum-likelihood fit of each family in ``families`` (from its starting points, by
    ``newton.maximise``) to the counts, and their Akaike weights (module docstring)."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise FlopcastError(f"model average: families must be some of {', '.join(FAMILIES)}; "
                            f"got {families!r}")
    _scipy()  # the Beta family needs it: say so before any work
    n, _, pn, pc, inverse = _pairs(samples, correct)
    mult = np.bincount(inverse, minlength=pn.size).astype(float)
    const = float(mult @ log_choose(pn, pc))
    fits, thetas, lls = [], [], []
    for name in families:
        fam = FAMILIES[name]
        theta, ll = maximise(fam.terms(pn, pc), fam.starts, mult, fam.bounds)
        best = int(np.argmax(ll))
        lls.append(float(ll[best]) + const)
        thetas.append(tuple(theta[best].tolist()))
        fits.append(fam.make(theta[best], lls[-1], int(n.size)))
    weights = akaike_weights(lls)
    return ModelAverageFit(tuple(families), tuple(fits), tuple(thetas),
                           tuple(weights.tolist()), int(n.size))


def bootstrap_model_average(fit: ModelAverageFit, samples, correct, draws, k) -> np.ndarray:
    """Coverage at ``k`` (flattened) for each bootstrap resample of the problems (``draws``:
    (reps, problems) indices), each family refitted from ``fit``'s parameters and the families
    re-weighted, (reps, ks). The resampled problems are predicted from their own posteriors,
    as :meth:`ModelAverageFit.coverage_given` predicts the originals."""
    _, _, pn, pc, inverse = _pairs(samples, correct)
    ks = _ks(k).ravel().astype(float)
    draws = np.asarray(draws, dtype=np.int64).reshape(-1, inverse.size)
    if not len(draws):
        return np.empty((0, ks.size))
    mult = np.stack([np.bincount(inverse[d], minlength=pn.size) for d in draws]).astype(float)
    const = mult @ log_choose(pn, pc)
    lls, covs = [], []
    for name, theta0 in zip(fit.families, fit.thetas, strict=True):
        fam = FAMILIES[name]
        start = np.repeat(np.array([theta0]), len(draws), axis=0)
        theta, ll = maximise(fam.terms(pn, pc, start[:1]), start, mult, fam.bounds)
        lls.append(ll + const)
        fail = np.exp(fam.log_fail(theta, pn, pc, ks, start[:1]))
        covs.append(1.0 - np.einsum("rp,rpk->rk", mult, fail) / inverse.size)
    weights = akaike_weights(np.stack(lls, axis=1))
    return np.einsum("rf,frk->rk", weights, np.stack(covs))
