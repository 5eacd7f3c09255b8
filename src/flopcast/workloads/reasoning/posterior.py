"""Each problem's success rate p_i after its counts, as weighted points: what every selection
strategy (``strategies``, ``answers``, ``search``) is averaged over.

A selection strategy's accuracy on problem i is E[acc(p_i, k)] over p_i's posterior given its
counts (c_i correct of n_i) under a fitted difficulty distribution as prior (empirical Bayes,
README A1 "Per-problem law"). :func:`posterior_of` builds that posterior for every fit the
coverage methods produce, so the planner uses the same model as ``flopcast reason coverage``:

* Beta component (``BetaMixtureFit``; the Beta half of the model average): the posterior
  Beta(alpha + c, beta + n - c) at the nodes of ``kumaraswamy.Quadrature`` centred on the
  kernel p^c (1 - p)^(n - c) (the trapezoid rule in a sinh-mapped logit p, Trefethen &
  Weideman 2014 §5; for c = 0 the nodes reach p ~ e^-1490 / n, so the heavy left tail of the
  problems never solved is resolved), each weighted by its share of the posterior, plus the
  prior mass beyond the end nodes (closed-form CDF) on those nodes. The point mass at p = 0
  is one point.
* Kumaraswamy (``KumaraswamyFit``): the same with nodes placed on kernel x density.
* Model average (``average.ModelAverageFit``): each family's points with its Akaike weight
  (Burnham & Anderson 2002, §4.2: the model-averaged prediction is sum_m w_m pred_m).
* Combined (``coverage.CombinedFit``, the default): half the model average, half a
  distribution of p implied by the power law exp(a k^b) (Brown et al. 2024, §3.1): the
  non-negative least-squares mixture G on a fixed grid of p whose failure curve E_G[(1-p)^k]
  matches 1 - exp(a k^b) at log-spaced k up to ``IMPLIED_K_MAX`` (relative error; the
  Hausdorff moment problem, solved approximately), conditioned on each problem's counts. The
  power law gives only the aggregate curve; this is flopcast's way to give it a per-problem
  form, so that strategies other than pass@k (which need the spread of p) can use it.

pass@k itself is computed exactly for the Beta (closed form) and Kumaraswamy (quadrature) parts
(``Posterior.fail``), so the planner's pass@k equals ``reason coverage``'s model-average part
exactly; the implied-G part reproduces the power law within the error of its fit
(docs/reasoning.md gives the numbers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.coverage import (
    DEFAULT_METHOD,
    BetaMixtureFit,
    CombinedFit,
    PowerLawFit,
    _ks,
    _posterior_weights,
    _scipy,
    beta_log_fail,
    extrapolate,
)
from flopcast.workloads.reasoning.samples import check_counts

#: Grid of p for the power law's implied distribution: logit p evenly spaced over this range
#: (p from 1e-10 to 1 - 1e-7) ...
IMPLIED_LOGIT = (-23.0, 16.0)
#: ... with this many points.
IMPLIED_POINTS = 157
#: The implied distribution matches the power law at ``IMPLIED_K_POINTS`` log-spaced k in
#: [1, IMPLIED_K_MAX] (past any k the planner tries by default).
IMPLIED_K_MAX = 10**7
IMPLIED_K_POINTS = 60


@dataclass(frozen=True, eq=False)
class Posterior:
    """p_i's posterior per problem as points ``p`` with weights ``w`` (both (problems, points),
    rows of ``w`` summing to 1), and ``parts``: (weight, fail(ks) -> (problems, ks)) giving
    E[(1 - p_i)^k] exactly per part."""

    p: np.ndarray
    w: np.ndarray
    parts: tuple[tuple[float, Callable], ...]

    @property
    def n_problems(self) -> int:
        return int(self.p.shape[0])

    def fail(self, k) -> np.ndarray:
        """E[(1 - p_i)^k] per problem and k, (problems, ks)."""
        ks = _ks(k).ravel().astype(float)
        return sum(weight * part(ks) for weight, part in self.parts)

    def expect(self, values: np.ndarray) -> np.ndarray:
        """E[f(p_i)] per problem from f at the points, ``values`` (problems, points, ...)."""
        return np.einsum("mq,mq...->m...", self.w, values)

    def subset(self, rows) -> Posterior:
        """The posterior of some problems only."""
        rows = np.asarray(rows)
        return Posterior(self.p[rows], self.w[rows],
                         tuple((wt, _rows(part, rows)) for wt, part in self.parts))


def _rows(part: Callable, rows: np.ndarray) -> Callable:
    return lambda ks: part(ks)[rows]


def _combine(weighted: list[tuple[float, Posterior]]) -> Posterior:
    """A mixture of posteriors: points concatenated, weights and parts scaled."""
    kept = [(wt, post) for wt, post in weighted if wt > 0]
    return Posterior(np.concatenate([post.p for _, post in kept], axis=1),
                     np.concatenate([wt * post.w for wt, post in kept], axis=1),
                     tuple((wt * pw, part) for wt, post in kept for pw, part in post.parts))


def beta_posterior(a: float, b: float, n: np.ndarray, c: np.ndarray) -> Posterior:
    """Beta(a + c_i, b + n_i - c_i) per problem at the nodes of ``kumaraswamy.Quadrature``
    centred on each problem's kernel p^c (1 - p)^(n - c) (module docstring); E[(1 - p)^k]
    exactly from the closed form."""
    _, special = _scipy()
    from flopcast.workloads.reasoning import kumaraswamy as kuma

    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    quad = kuma.Quadrature.of(pairs[:, 0], pairs[:, 1])
    log_f = ((a - 1) * quad.log_p + (b - 1) * quad.log_1mp - special.betaln(a, b))
    p, w = _node_weights(quad, log_f, special.betainc(a, b, quad.low),
                         special.betaincc(a, b, quad.high))

    def fail(ks):
        return np.exp(beta_log_fail(a, b, n[:, None], c[:, None], ks[None, :], special))
    inv = inverse.ravel()
    return Posterior(p[inv], w[inv], ((1.0, fail),))


def _node_weights(quad, log_f: np.ndarray, below: np.ndarray, above: np.ndarray):
    """(p, posterior weight) at a quadrature's nodes for prior density f (log at the nodes),
    the prior mass ``below`` the first node (c = 0) and ``above`` the last (c = n) added to
    the end nodes (there the kernel is 1 to double precision)."""
    log_node = quad.log_weight + log_f
    top = log_node.max(axis=1, keepdims=True)
    w = np.exp(log_node - top)
    for col, mass, used in ((0, below, quad.low > 0), (-1, above, quad.high < 1)):
        with np.errstate(divide="ignore"):
            log_mass = np.where(used & (mass > 0), np.log(np.where(mass > 0, mass, 1.0)), -np.inf)
        w[:, col] += np.exp(np.minimum(log_mass - top[:, 0], 700.0))
    return np.exp(quad.log_p), w / w.sum(axis=1, keepdims=True)


def _point_mass(n: np.ndarray) -> Posterior:
    return Posterior(np.zeros((n.size, 1)), np.ones((n.size, 1)),
                     ((1.0, lambda ks: np.ones((n.size, ks.size))),))


def beta_mixture_posterior(fit: BetaMixtureFit, n: np.ndarray, c: np.ndarray) -> Posterior:
    """Point mass at 0 and Beta components, each with the problem's posterior weight."""
    _, special = _scipy()
    post = _posterior_weights(fit, n, c, special)  # (M, 1 + J)
    parts = [_point_mass(n)] + [beta_posterior(a, b, n, c)
                                for a, b in zip(fit.alpha, fit.beta, strict=True)]
    return _weight_rows(parts, post)


def _weight_rows(parts: list[Posterior], post: np.ndarray) -> Posterior:
    """Mixture whose weights differ per problem (``post`` (problems, parts))."""
    return Posterior(np.concatenate([x.p for x in parts], axis=1),
                     np.concatenate([post[:, j, None] * x.w for j, x in enumerate(parts)], 1),
                     tuple((1.0, _scaled(x, post[:, j])) for j, x in enumerate(parts)))


def _scaled(post: Posterior, row_weight: np.ndarray) -> Callable:
    return lambda ks: row_weight[:, None] * post.fail(ks)


def kumaraswamy_posterior(fit, n: np.ndarray, c: np.ndarray) -> Posterior:
    """Kumaraswamy posterior per problem at quadrature nodes placed on kernel x density
    (module docstring); E[(1 - p)^k] exactly by ``kumaraswamy.log_fail_given``."""
    from flopcast.workloads.reasoning import kumaraswamy as kuma

    theta = fit.theta
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    quad = kuma.Quadrature.of(pairs[:, 0], pairs[:, 1], theta)
    quad = kuma.Quadrature(*(x[0] for x in vars(quad).values()))  # one parameter row
    log_f = kuma._log_density_terms(quad.log_p, quad.log_1mp, fit.a, fit.b, 0)[0]
    p, w = _node_weights(quad, log_f, 1.0 - kuma._survival(quad.low, fit.a, fit.b)[0],
                         kuma._survival(quad.high, fit.a, fit.b)[0])

    def fail(ks):
        return np.exp(kuma.log_fail_given(theta, n, c, ks))[0]
    inv = inverse.ravel()
    return Posterior(p[inv], w[inv], ((1.0, fail),))


def implied_distribution(power_law: PowerLawFit) -> tuple[np.ndarray, np.ndarray]:
    """(p grid, weights g) whose failure curve sum_j g_j (1 - p_j)^k matches the power law's
    1 - exp(a k^b) at log-spaced k in [1, IMPLIED_K_MAX], in relative error, with g >= 0 and
    sum g = 1 (non-negative least squares, Lawson & Hanson 1974, ``scipy.optimize.nnls``; the
    sum enforced by a heavily weighted extra row). Module docstring: why."""
    from scipy.optimize import nnls

    p = 1.0 / (1.0 + np.exp(-np.linspace(*IMPLIED_LOGIT, IMPLIED_POINTS)))
    ks = np.unique(np.round(np.geomspace(1, IMPLIED_K_MAX, IMPLIED_K_POINTS)))
    target = -np.expm1(power_law.a * ks ** power_law.b)
    scale = 1.0 / np.maximum(target, 1e-300)
    design = np.exp(ks[:, None] * np.log1p(-p[None, :])) * scale[:, None]
    heavy = 1e3
    design = np.vstack([design, np.full((1, p.size), heavy)])
    g, _ = nnls(design, np.concatenate([target * scale, [heavy]]), maxiter=50 * p.size)
    keep = g > 0
    if not keep.any():  # a curve already at 1 (every problem solved): the easiest point
        return p[-1:], np.ones(1)
    return p[keep], g[keep] / g[keep].sum()


def grid_posterior(p: np.ndarray, g: np.ndarray, n: np.ndarray, c: np.ndarray) -> Posterior:
    """A discrete prior (points ``p``, weights ``g``) conditioned on each problem's counts:
    weight proportional to g_j p_j^c_i (1 - p_j)^(n_i - c_i)."""
    log_w = (np.log(g)[None, :] + c[:, None] * np.log(p)[None, :]
             + (n - c)[:, None] * np.log1p(-p)[None, :])
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    points = np.broadcast_to(p, w.shape).copy()

    def fail(ks):
        return w @ np.exp(np.log1p(-p)[:, None] * ks[None, :])
    return Posterior(points, w, ((1.0, fail),))


def posterior_of(fit, samples, correct) -> Posterior:
    """Each problem's posterior under ``fit`` (any fit the coverage methods return: module
    docstring); a power-law fit alone has no per-problem form beyond its implied distribution."""
    from flopcast.workloads.reasoning.average import ModelAverageFit
    from flopcast.workloads.reasoning.kumaraswamy import KumaraswamyFit

    n, c = check_counts(samples, correct, "posterior")
    n, c = n.astype(float), c.astype(float)
    if isinstance(fit, BetaMixtureFit):
        return beta_mixture_posterior(fit, n, c)
    if isinstance(fit, KumaraswamyFit):
        return kumaraswamy_posterior(fit, n, c)
    if isinstance(fit, ModelAverageFit):
        return _combine([(w, posterior_of(f, n, c))
                         for w, f in zip(fit.weights, fit.fits, strict=True)])
    if isinstance(fit, PowerLawFit):
        return grid_posterior(*implied_distribution(fit), n, c)
    if isinstance(fit, CombinedFit):
        avg = posterior_of(fit.model_average, n, c)
        if fit.power_law is None:
            return avg
        return _combine([(0.5, avg), (0.5, posterior_of(fit.power_law, n, c))])
    raise FlopcastError(f"posterior: no per-problem form for a {type(fit).__name__}")


def difficulty_posterior(samples, correct, method: str = DEFAULT_METHOD) -> Posterior:
    """The posterior of each problem under ``method`` fitted to the counts, the fit
    ``coverage.extrapolate`` (so ``flopcast reason coverage``) makes for the same method."""
    fit = extrapolate(samples, correct, [1], method, reps=0).fit
    return posterior_of(fit, samples, correct)
