"""Coverage (pass@k) from per-problem sample counts, and its extrapolation beyond the samples
drawn.

Within the data (k <= n): the unbiased estimator of Chen et al. 2021. Beyond it (k > n),
models fitted to the counts (shared/reasoning/README.md, A1):

* ``"beta-mixture"``: per-problem success rates p_i from a mixture of a point mass at p = 0 (a
  share of problems never solved) and one or two Beta(alpha, beta) components, fitted by maximum
  likelihood to the binomial counts (beta-binomial likelihood). Under independent sampling
  pass_i@k = 1 - (1 - p_i)^k exactly, so coverage follows in closed form; for the problems at
  hand it is computed from each problem's posterior given its own counts (empirical Bayes).
* ``"model-average"`` and ``"kumaraswamy"``: Beta and Kumaraswamy laws of p_i, fitted alike and
  averaged by Akaike weights (``average``, ``kumaraswamy``), or the Kumaraswamy alone.
* ``"power-law"``: coverage(k) = exp(a * k^b) fitted to the k <= n coverage curve (Brown et al.
  2024, "Large Language Monkeys", §3.1 / Fig. 5).
* ``"combined"``, the default: the mean of ``"model-average"`` and ``"power-law"``
  (:func:`extrapolate`).

Uncertainty bands resample problems with replacement (seeded, deterministic) and refit.
:func:`held_out` compares them on a hypergeometric subsample against the full-data estimate.
The Beta fits need scipy (``scipy.optimize``, ``scipy.special``), imported when used.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning.samples import SampleSet, check_counts, log_choose

Method = Literal["combined", "model-average", "beta-mixture", "kumaraswamy", "power-law"]
METHODS: tuple[str, ...] = ("combined", "model-average", "beta-mixture", "kumaraswamy",
                            "power-law")
#: The extrapolation ``extrapolate``, ``held_out`` and ``flopcast reason coverage`` use unless
#: told otherwise (docs/reasoning.md, "Against issue 9's extrapolation bar").
DEFAULT_METHOD = "combined"

#: Cells of the (problems x k) work array of :func:`pass_at_k` per chunk of problems.
_CHUNK_CELLS = 1 << 22


def _ks(k) -> np.ndarray:
    """k as an int64 array of whole numbers >= 1 (any shape)."""
    arr = np.asarray(k)
    if (arr.size == 0 or not np.issubdtype(arr.dtype, np.number) or np.any(arr != np.round(arr))
            or np.any(arr < 1)):
        raise FlopcastError(f"k must be whole numbers >= 1, got {k!r}")
    return arr.astype(np.int64)


def pass_at_k(samples, correct, k) -> np.ndarray:
    """Unbiased pass@k per problem: 1 - C(n_i - c_i, k) / C(n_i, k), shape (problems, *k.shape).

    Chen et al. 2021, "Evaluating Large Language Models Trained on Code" (arXiv:2107.03374),
    §2.1, Eq. 1; used by Brown et al. 2024 and Kinetics App. D.1 (shared/reasoning/README.md,
    A1). Evaluated in the numerically stable product form, here C(n-c, k)/C(n, k) =
    prod_{j=0}^{k-1} (1 - c/(n - j)) (the same ratio as Chen et al.'s Fig. 3 product
    prod_{j=n-c+1}^{n} (1 - k/j), since C(n-c, k)/C(n, k) = C(n-k, c)/C(n, c)), as a running sum
    of log1p terms, so one pass gives every k up to max(k) for all problems at once.

    Refuses k > n_i: C(n, k) = 0 there and the estimator is undefined; implementations that return
    1 count unsolved problems as solved (README A1, "Caveat"). Use :func:`extrapolate` instead.

    >>> pass_at_k([4], [1], [1, 2, 4]).round(3).tolist()
    [[0.25, 0.5, 1.0]]
    """
    n, c = check_counts(samples, correct, "pass@k")
    ks = _ks(k)
    k_max = int(ks.max())
    if k_max > n.min():
        i = int(np.argmin(n))
        raise FlopcastError(
            f"pass@k: k = {k_max} exceeds the {n[i]} samples drawn for problem {i}; the unbiased "
            "estimator needs k <= n (C(n, k) = 0 beyond), and counting k > n as solved would be "
            "wrong for unsolved problems; extrapolate beyond n with a fitted model instead")
    j = np.arange(k_max)
    out = np.empty((n.size, ks.size))
    rows = max(1, _CHUNK_CELLS // k_max)
    for start in range(0, n.size, rows):
        nn, cc = n[start:start + rows, None], c[start:start + rows, None]
        with np.errstate(divide="ignore"):
            log_fail = np.cumsum(np.log1p(-np.minimum(cc / (nn - j), 1.0)), axis=1)
        out[start:start + rows] = -np.expm1(log_fail[:, ks.ravel() - 1])
    return out.reshape(n.size, *ks.shape)


def coverage(samples, correct, k) -> np.ndarray:
    """Coverage(k) = (1/M) sum_i pass@k_i, the share of problems with at least one correct
    sample among k (Chen et al. 2021, §2.1, Eq. 1, averaged; README A1). Shape of ``k``.

    >>> round(float(coverage([4, 4], [1, 0], 2)), 12)  # exp of a log1p sum: last-bit rounding
    0.25
    """
    return pass_at_k(samples, correct, k).mean(axis=0)


# --- Beta mixture with a point mass at p = 0 -----------------------------------------------

def _scipy():
    """scipy.optimize and scipy.special, or a FlopcastError saying how to get them."""
    try:
        from scipy import optimize, special
    except ImportError:
        raise FlopcastError("the Beta-mixture and majority-vote models need scipy: "
                            "pip install scipy (or 'flopcast[calibrate]')") from None
    return optimize, special


@dataclass(frozen=True)
class BetaMixtureFit:
    """Per-problem success rate p ~ w0 * delta(p = 0) + sum_j w_j * Beta(alpha_j, beta_j),
    fitted by maximum likelihood (:func:`fit_beta_mixture`). ``weights`` are the w_j (they sum
    to 1 - w0); ``log_likelihood`` is of the counts it was fitted to, binomial coefficients
    included."""

    zero_mass: float
    weights: tuple[float, ...]
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    log_likelihood: float
    n_problems: int

    def coverage(self, k) -> np.ndarray:
        """Coverage of a fresh problem drawn from the fitted distribution:
        1 - E[(1 - p)^k] = 1 - w0 - sum_j w_j * B(alpha_j, beta_j + k) / B(alpha_j, beta_j).

        pass_i@k = 1 - (1 - p_i)^k under independent sampling (README A1, "Per-problem law";
        Schaeffer et al. 2025, who integrate (1-p)^k against a fitted Beta numerically in
        src/analyze.py); the Beta-function ratio is that integral in closed form
        (E[(1-p)^k] = B(alpha, beta + k) / B(alpha, beta) for p ~ Beta(alpha, beta)). The mass at
        p = 0 never succeeds and adds nothing.
        """
        _, special = _scipy()
        ks = _ks(k).astype(float)
        fail = self.zero_mass + sum(w * np.exp(beta_log_fail(a, b, 0, 0, ks, special))
                                    for w, a, b in zip(self.weights, self.alpha, self.beta,
                                                       strict=True))
        return 1.0 - fail

    def coverage_given(self, samples, correct, k) -> np.ndarray:
        """Coverage(k) of the problems whose counts are given: 1 - (1/M) sum_i
        E[(1 - p_i)^k | n_i, c_i], each p_i's posterior under the fitted distribution as prior
        (empirical Bayes). Given c_i correct of n_i, component j's posterior is
        Beta(alpha_j + c_i, beta_j + n_i - c_i) with weight proportional to w_j times the
        beta-binomial probability of c_i; the point mass keeps weight only when c_i = 0. Each
        term is the closed form of :meth:`coverage` (README A1, "Per-problem law")."""
        _, special = _scipy()
        n, c = check_counts(samples, correct, "coverage_given")
        ks = _ks(k).astype(float)
        post = _posterior_weights(self, n, c, special)  # (M, 1 + J): point mass, components
        fail = post[:, :1] * np.ones(ks.size)
        for j, (a, b) in enumerate(zip(self.alpha, self.beta, strict=True)):
            ratio = np.exp(beta_log_fail(a, b, n[:, None], c[:, None], ks.ravel(), special))
            fail = fail + post[:, 1 + j, None] * ratio
        return (1.0 - fail.mean(axis=0)).reshape(ks.shape)


def beta_log_fail(a, b, samples, correct, k, special):
    """log E[(1 - p)^k | c correct of n] for p ~ Beta(a, b) a priori: the posterior is
    Beta(a + c, b + n - c) and E[(1 - p)^k] = B(a', b' + k) / B(a', b') under Beta(a', b')
    (README A1, "Per-problem law"; c = n = 0 gives the prior's). Broadcasts."""
    a_post, b_post = a + correct, b + samples - correct
    return special.betaln(a_post, b_post + k) - special.betaln(a_post, b_post)


def beta_binomial_log_pmf(samples, correct, a, b, special, choose: bool = True):
    """log C(n, c) B(c + a, n - c + b) / B(a, b): the beta-binomial pmf, the binomial with p
    integrated over Beta(a, b) (standard; Skellam 1948, JRSS B 10(2)); without the log C(n, c)
    when ``choose`` is false. Broadcasts."""
    n, c = samples, correct
    value = special.betaln(c + a, n - c + b) - special.betaln(a, b)
    return value + log_choose(n, c) if choose else value


def _component_log_pmf(alpha: tuple[float, ...], beta: tuple[float, ...], n: np.ndarray,
                       c: np.ndarray, special) -> np.ndarray:
    """log P(c_i | n_i, component) for the point mass at 0 (0 if c_i = 0, else -inf) and each
    Beta component (:func:`beta_binomial_log_pmf`), shape (M, 1 + J)."""
    cols = [np.where(c == 0, 0.0, -np.inf)]
    cols += [beta_binomial_log_pmf(n, c, a, b, special)
             for a, b in zip(alpha, beta, strict=True)]
    return np.stack(cols, axis=1)


def _posterior_weights(fit: BetaMixtureFit, n: np.ndarray, c: np.ndarray,
                       special) -> np.ndarray:
    """Each problem's posterior weights on (point mass, components) given its counts, (M, 1 + J):
    proportional to w_m * P(c_i | n_i, m)."""
    log_post = _component_log_pmf(fit.alpha, fit.beta, n, c, special) + _log_weights(fit)
    return np.exp(log_post - _logsumexp_rows(log_post)[:, None])


def _log_weights(fit: BetaMixtureFit) -> np.ndarray:
    """log of (w0, w_1, ..., w_J); log 0 = -inf."""
    with np.errstate(divide="ignore"):
        return np.log(np.array((fit.zero_mass, *fit.weights)))


def _nll_grad(theta: np.ndarray, n: np.ndarray, c: np.ndarray, mult: np.ndarray,
              components: int, zero_mass: bool, special) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the counts (each distinct (n, c) weighted by ``mult``) and its
    gradient in the :func:`_unpack` parameters. With q_m = P(c | m) / L and L = sum_m w_m P(c | m):
    d log L / d w_m = q_m; the beta-binomial's d/d alpha = psi(c + alpha) - psi(n + alpha + beta)
    - psi(alpha) + psi(alpha + beta), d/d beta likewise with n - c and beta."""
    fit = _unpack(theta, components, zero_mass)
    log_pmf = _component_log_pmf(fit.alpha, fit.beta, n, c, special)
    log_total = _logsumexp_rows(log_pmf + _log_weights(fit))
    q = np.exp(np.minimum(log_pmf - log_total[:, None], 700.0))  # P(c|m)/L, finite
    rest, grads = 1.0 - fit.zero_mass, []
    shares = np.array(fit.weights) / rest
    if zero_mass:
        grads.append(q[:, 0] - q[:, 1:] @ shares)
    if components == 2:
        grads.append(rest * (q[:, 1] - q[:, 2]))
    psi = special.digamma
    for j, (a, b) in enumerate(zip(fit.alpha, fit.beta, strict=True)):
        resp = fit.weights[j] * q[:, 1 + j]
        common = psi(a + b) - psi(n + a + b)
        d_a = psi(c + a) - psi(a) + common
        d_b = psi(n - c + b) - psi(b) + common
        grads += [resp * (a * b / (a + b)) * (d_a - d_b), resp * (a * d_a + b * d_b)]
    return -float(mult @ log_total), -(np.stack(grads, axis=1).T @ mult)


def _logsumexp_rows(x: np.ndarray) -> np.ndarray:
    """log(sum(exp(x), axis=1)) without overflow (scipy's is ~10x slower on small arrays)."""
    top = x.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(x - top[:, None]).sum(axis=1))


def _unpack(theta: np.ndarray, components: int, zero_mass: bool) -> BetaMixtureFit:
    """Parameters -> a fit. Weights directly (bounded, so the optimiser can reach and leave
    w0 = 0): w0 if ``zero_mass``, then for two components the first's share s of 1 - w0; then
    per component logit of the mean mu_j = alpha_j / (alpha_j + beta_j) and log of the
    concentration kappa_j = alpha_j + beta_j (better conditioned than log alpha, log beta: a Beta
    narrowing at a fixed mean is one coordinate)."""
    w0 = float(theta[0]) if zero_mass else 0.0
    rest = 1.0 - w0
    shares = (1.0,) if components == 1 else (float(theta[int(zero_mass)]),
                                              1.0 - float(theta[int(zero_mass)]))
    shape = theta[_n_weights(components, zero_mass):].reshape(components, 2)
    mu, kappa = 1.0 / (1.0 + np.exp(-shape[:, 0])), np.exp(shape[:, 1])
    ab = np.stack([mu * kappa, (1.0 - mu) * kappa], axis=1)
    return BetaMixtureFit(w0, tuple(rest * s for s in shares), tuple(ab[:, 0].tolist()),
                          tuple(ab[:, 1].tolist()), float("nan"), 0)


def _n_weights(components: int, zero_mass: bool) -> int:
    """How many weight parameters lead the parameter vector."""
    return int(zero_mass) + (components - 1)


def _pack(fit: BetaMixtureFit, zero_mass: bool, w0: float | None = None) -> np.ndarray:
    """Inverse of :func:`_unpack`, optionally with the point mass's weight replaced by ``w0``."""
    head = [fit.zero_mass if w0 is None else w0] if zero_mass else []
    if len(fit.weights) == 2:
        head.append(fit.weights[0] / max(sum(fit.weights), 1e-300))
    a, b = np.array(fit.alpha), np.array(fit.beta)
    return np.concatenate([head, np.stack([np.log(a / b), np.log(a + b)], axis=1).ravel()])


def _starts(n: np.ndarray, c: np.ndarray, components: int, zero_mass: bool) -> list[np.ndarray]:
    """Starting points: Beta means matched to the solved problems' mean rate, a few shapes, and
    the point mass at none, half and nine tenths of the unsolved share."""
    solved = (c / n)[c > 0]
    mean = float(np.clip(solved.mean() if solved.size else 1.0 / n.max(), 1e-4, 0.9))
    unsolved = float(np.mean(c == 0))
    shares = (0.0, 0.5 * unsolved, 0.9 * unsolved) if zero_mass else (None,)
    starts = []
    for a, share in itertools.product((0.1, 0.5, 2.0), shares):
        head = ([share] if zero_mass else []) + [0.5] * (components - 1)
        comps = []
        for j in range(components):
            m = float(np.clip(mean * 4.0 ** (j - (components - 1) / 2), 1e-4, 0.95))
            comps += [np.log(m / (1 - m)), np.log(a / m)]
        starts.append(np.array(head + comps))
    return starts


def fit_beta_mixture(samples, correct, components: int = 1, zero_mass: bool = True,
                     start: BetaMixtureFit | None = None) -> BetaMixtureFit:
    """Maximum-likelihood fit of the per-problem success-rate distribution w0 * delta(p = 0) +
    sum_j w_j * Beta(alpha_j, beta_j) to binomial counts (c_i correct of n_i).

    Likelihood of problem i: w0 * [c_i == 0] + sum_j w_j * BetaBinomial(c_i | n_i, alpha_j,
    beta_j) (:func:`_component_log_pmf`). The model is the one README A1 derives from Schaeffer
    et al. 2025 (per-problem exponential scaling, aggregate power law from the left tail of the
    p_i distribution), with a point mass at 0 for problems the model never solves. Fitted with
    SLSQP (analytic gradient, :func:`_nll_grad`) from 9 starts, or from ``start`` and ``start``
    with w0 at half the unsolved share (the bootstrap's refits). Bounds: Beta mean in
    [2e-9, 1 - 5e-5], alpha + beta in [1e-2, 1e6]. ``components``: 1 or 2.
    """
    optimize, special = _scipy()
    if components not in (1, 2):
        raise FlopcastError(f"beta mixture: components must be 1 or 2, got {components!r}")
    n, c = check_counts(samples, correct, "beta mixture")
    pairs, mult = np.unique(np.stack([n, c], axis=1), axis=0, return_counts=True)
    nu, cu = pairs[:, 0], pairs[:, 1]

    bounds = np.array([(0.0, 1.0 - 1e-9)] * _n_weights(components, zero_mass)
                      + [(-20.0, 10.0), (np.log(1e-2), np.log(1e6))] * components)
    if start is None:
        starts = _starts(n, c, components, zero_mass)
    else:
        starts = [_pack(start, zero_mass)]
        if zero_mass:
            starts.append(_pack(start, zero_mass, w0=0.5 * float(np.mean(c == 0))))
    best = None
    for x0 in starts:
        res = optimize.minimize(_nll_grad, np.clip(x0, bounds[:, 0], bounds[:, 1]),
                                args=(nu, cu, mult, components, zero_mass, special), jac=True,
                                method="SLSQP", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    fit = _unpack(best.x, components, zero_mass)
    return BetaMixtureFit(fit.zero_mass, fit.weights, fit.alpha, fit.beta, -float(best.fun),
                          int(n.size))


# --- Exponentiated power law ----------------------------------------------------------------

@dataclass(frozen=True)
class PowerLawFit:
    """coverage(k) = exp(a * k^b), a < 0, b < 0, fitted on k in [1, k_max]."""

    a: float
    b: float
    k_max: int

    def coverage(self, k) -> np.ndarray:
        """exp(a * k^b) (Brown et al. 2024, "Large Language Monkeys", §3.1 / Fig. 5; README A1)."""
        return np.exp(self.a * _ks(k).astype(float) ** self.b)


def _k_grid(k_max: int, points: int = 40) -> np.ndarray:
    """Up to ``points`` distinct whole k, log-spaced over [1, k_max]."""
    return np.unique(np.round(np.geomspace(1, k_max, points)).astype(np.int64))


def fit_power_law_curve(k, cov) -> PowerLawFit:
    """Least squares of log coverage on a * k^b over the given curve (zero coverage dropped).

    The exponentiated power law of Brown et al. 2024, §3.1 / Fig. 5 (form from a secondary
    summary, grade C; README A1, which fits it the same way: least squares of log c). For fixed
    b the best a is linear least squares; b is searched on a grid over [-3, 0) and refined
    (:func:`_power_law_params`).
    """
    ks = _ks(k).astype(float).ravel()
    cov = np.asarray(cov, dtype=float).ravel()
    if np.unique(ks[cov > 0]).size < 2:
        raise FlopcastError("power law: needs coverage > 0 at two or more k to fit (no problem "
                            "solved, or fewer than 2 samples per problem)")
    a, b = _power_law_params(ks, cov[None, :])
    return PowerLawFit(float(a[0]), float(b[0]), int(ks[cov > 0].max()))


def _power_law_params(ks: np.ndarray, curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of exp(a * k^b) for each row of ``curves`` (R, len(ks)), zero coverage dropped
    from its row: for fixed b, a = min(sum x y / sum x^2, 0) with x = k^b, y = log coverage;
    b on a 600-point grid over [-3, 0), then 40 golden-section steps between the grid
    neighbours of the best point. A row with fewer than two positive points gets a = -inf."""
    with np.errstate(divide="ignore"):
        y = np.log(curves)
    w = np.isfinite(y).astype(float)
    y = np.where(w > 0, y, 0.0)
    yy = (w * y * y).sum(axis=1)

    def solve(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = ks ** b[..., None]
        xx, xy = (w * x * x).sum(axis=-1), (w * x * y).sum(axis=-1)
        a = np.minimum(xy / np.where(xx > 0, xx, 1.0), 0.0)
        return a, yy - 2.0 * a * xy + a * a * xx

    grid = np.linspace(-3.0, -1e-3, 600)
    x = ks ** grid[:, None]
    xx, xy = w @ (x * x).T, (w * y) @ x.T
    a = np.minimum(xy / np.where(xx > 0, xx, 1.0), 0.0)
    i = np.argmin(yy[:, None] - 2.0 * a * xy + a * a * xx, axis=1)
    lo, hi = grid[np.maximum(i - 1, 0)], grid[np.minimum(i + 1, grid.size - 1)]
    for _ in range(40):  # golden-section refinement
        m1, m2 = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        left = solve(m1)[1] < solve(m2)[1]
        lo, hi = np.where(left, lo, m1), np.where(left, m2, hi)
    b = 0.5 * (lo + hi)
    a = np.where(w.sum(axis=1) >= 2, solve(b)[0], -np.inf)
    return a, b


def fit_power_law(samples, correct, points: int = 40) -> PowerLawFit:
    """exp(a * k^b) fitted to the unbiased coverage curve at ``points`` log-spaced k in
    [1, min n_i] (:func:`coverage`, :func:`fit_power_law_curve`)."""
    n, c = check_counts(samples, correct, "power law")
    ks = _k_grid(int(n.min()), points)
    return fit_power_law_curve(ks, coverage(n, c, ks))


# --- Extrapolation with a band, and the held-out comparison ---------------------------------

@dataclass(frozen=True, eq=False)
class Extrapolation:
    """Predicted coverage at ``k`` by ``method``, with a ``level`` bootstrap band [low, high]
    (NaN when no resamples were asked for) and the fit to all problems."""

    method: str
    k: np.ndarray
    coverage: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    fit: object  # CombinedFit, average.ModelAverageFit, BetaMixtureFit or PowerLawFit


def extrapolate(samples, correct, k, method: Method = DEFAULT_METHOD, *, components: int = 1,
                reps: int = 200, level: float = 0.9, seed: int = 0) -> Extrapolation:
    """Coverage at any k >= 1 (beyond the n_i samples drawn too) from a model fitted to the
    counts, with an uncertainty band from ``reps`` bootstrap resamples of the problems (drawn
    with replacement, each refitted; percentile interval at ``level``; seeded, deterministic).

    ``"combined"`` (the default): the mean of ``"model-average"`` and ``"power-law"``, draw by
    draw in the bootstrap (equal-weight forecast combination, Bates & Granger 1969, Operational
    Research Quarterly 20(4):451-468; equal weights are the robust choice when the errors of
    the parts cannot be estimated well, Clemen 1989, Int. J. Forecasting 5(4):559-583). The two
    extrapolate from different evidence: the fitted distribution of per-problem rates, and the
    shape of the coverage curve within the samples; on the Pythia file their errors are of
    opposite sign (docs/reasoning.md). With no problem solved, or a problem with one sample,
    the power law cannot be fitted and the model average alone predicts.
    ``"model-average"``: Beta and Kumaraswamy fits averaged by their Akaike weights
    (``average``), each predicting the problems at hand from their posteriors; every bootstrap
    resample refits and re-weights both, so the band includes which family fits.
    ``"kumaraswamy"``: that family alone. ``"beta-mixture"``: :func:`fit_beta_mixture` with
    ``components`` and a point mass at 0, predicting with :meth:`BetaMixtureFit.coverage_given`;
    bootstrap refits start from the full fit. ``"power-law"``: :func:`fit_power_law` (Brown et
    al. 2024, §3.1 / Fig. 5). The band reflects which problems were drawn and their counts (and
    for the averages which family), not whether any form is right (docs/reasoning.md).
    """
    if method not in METHODS:
        raise FlopcastError(f"extrapolate: unknown method {method!r}; "
                            f"allowed: {', '.join(METHODS)}")
    if isinstance(reps, bool) or int(reps) != reps or reps < 0 or not 0 < level < 1:
        raise FlopcastError(f"extrapolate: reps must be a whole number >= 0 and 0 < level < 1, "
                            f"got reps={reps!r}, level={level!r}")
    n, c = check_counts(samples, correct, "extrapolate")
    ks = _ks(k)
    draws = np.random.default_rng(seed).integers(0, n.size, size=(int(reps), n.size))
    fit, point, boot = _predictions(method, n, c, ks.ravel(), draws, components)
    point, boot = point.reshape(ks.shape), [row.reshape(ks.shape) for row in boot]
    # coverage never falls as k grows: beyond the samples every problem has, a fitted curve
    # that starts below the exact estimate there (the unbiased estimator at k = min n_i)
    # is lifted to it, so the answer does not dip where the exact value hands over
    n_min = int(n.min())
    floor = np.where(ks >= n_min, float(coverage(n, c, n_min)), -np.inf)
    point = np.maximum(point, floor)
    if boot:
        low, high = np.maximum(np.quantile(
            np.array(boot), [(1 - level) / 2, (1 + level) / 2], axis=0), floor)
    else:
        low = high = np.full(ks.shape, np.nan)
    return Extrapolation(method, ks, point, low, high, level, fit)


@dataclass(frozen=True)
class CombinedFit:
    """The default extrapolation's two parts, averaged with equal weights: the Akaike-weighted
    Beta/Kumaraswamy average (``average.ModelAverageFit``) and Brown et al.'s power law
    (None when no problem was solved or some problem has a single sample: the power law
    cannot be fitted, the average alone predicts)."""

    model_average: object
    power_law: PowerLawFit | None


def _predictions(method: str, n: np.ndarray, c: np.ndarray, ks: np.ndarray, draws: np.ndarray,
                 components: int) -> tuple[object, np.ndarray, np.ndarray]:
    """(fit, coverage at ks, one row per bootstrap draw (reps, ks)) of ``method``
    (:func:`extrapolate`)."""
    if method == "combined":
        avg, point, boot = _predictions("model-average", n, c, ks, draws, components)
        if not np.any(c > 0) or n.min() < 2:  # fit_power_law_curve needs 2 points > 0
            return CombinedFit(avg, None), point, boot
        power, p_point, p_boot = _predictions("power-law", n, c, ks, draws, components)
        return CombinedFit(avg, power), 0.5 * (point + p_point), 0.5 * (boot + p_boot)
    if method in ("model-average", "kumaraswamy"):
        from flopcast.workloads.reasoning.average import (
            DEFAULT_FAMILIES,
            bootstrap_model_average,
            fit_model_average,
        )
        fit = fit_model_average(n, c, DEFAULT_FAMILIES if method == "model-average"
                                else ("kumaraswamy",))
        return fit, fit.coverage_given(n, c, ks), bootstrap_model_average(fit, n, c, draws, ks)
    if method == "beta-mixture":
        fit = fit_beta_mixture(n, c, components)
        boot = [fit_beta_mixture(n[d], c[d], components, start=fit).coverage_given(n[d], c[d], ks)
                for d in draws]
        return fit, fit.coverage_given(n, c, ks), np.array(boot).reshape(len(draws), ks.size)
    grid = _k_grid(int(n.min()))
    per_problem = pass_at_k(n, c, grid)
    fit = fit_power_law_curve(grid, per_problem.mean(axis=0))
    return fit, fit.coverage(ks), _power_law_boot(grid, per_problem, draws, ks)


def _power_law_boot(grid: np.ndarray, per_problem: np.ndarray, draws: np.ndarray,
                    ks: np.ndarray) -> np.ndarray:
    """Each bootstrap resample's refitted power law at ``ks``, (reps, ks): the resampled
    problems' coverage curve on ``grid`` fitted by :func:`_power_law_params`; a resample with
    no problem solved predicts 0 (the limit a -> -inf of exp(a * k^b)) rather than failing."""
    if not len(draws):
        return np.empty((0, ks.size))
    curves = np.stack([per_problem[d].mean(axis=0) for d in draws])
    a, b = _power_law_params(grid.astype(float), curves)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.exp(a[:, None] * ks.astype(float).ravel() ** b[:, None]))


@dataclass(frozen=True, eq=False)
class HeldOut:
    """Each method fitted on ``n_sub`` samples per problem, against ``truth``: the unbiased
    coverage of all samples at the same k."""

    n_sub: int
    k: np.ndarray
    truth: np.ndarray
    predictions: dict[str, Extrapolation]

    def abs_error(self, method: str) -> np.ndarray:
        """|predicted - truth| per k."""
        return np.abs(self.predictions[method].coverage - self.truth)

    def in_band(self, method: str) -> np.ndarray:
        """Whether the truth lies in the method's band, per k."""
        p = self.predictions[method]
        return (p.low <= self.truth) & (self.truth <= p.high)

    @property
    def preferred(self) -> str:
        """The method with the smaller mean absolute error over k."""
        return min(self.predictions, key=lambda m: float(self.abs_error(m).mean()))


def held_out(data: SampleSet, n_sub: int, k, *, seed: int = 0, components: int = 1,
             reps: int = 200, level: float = 0.9) -> HeldOut:
    """Which extrapolation the data prefers: draw ``n_sub`` of each problem's samples without
    replacement (:meth:`SampleSet.subsample`, seeded), fit every method in METHODS
    (:func:`extrapolate`) on that, and compare with the unbiased estimate (:func:`coverage`,
    Chen et al. 2021 §2.1) from all samples at ``k`` (n_sub < k <= min n_i is the interesting
    range). shared/reasoning/README.md ("Data") proposes this set-up: a small campaign with the
    truth known."""
    ks = _ks(k)
    truth = coverage(data.samples, data.correct, ks)
    sub = data.subsample(n_sub, seed)
    predictions = {m: extrapolate(sub.samples, sub.correct, ks, m, components=components,
                                  reps=reps, level=level, seed=seed) for m in METHODS}
    return HeldOut(int(n_sub), ks, truth, predictions)
