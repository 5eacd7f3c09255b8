"""The Kumaraswamy difficulty distribution and the quadrature its binomial mixture needs.

Per-problem success rate p ~ Kumaraswamy(a, b), density f(p) = a b p^(a-1) (1 - p^a)^(b-1) on
(0, 1), CDF F(p) = 1 - (1 - p^a)^b (Kumaraswamy 1980, J. Hydrology 46:79-88; properties: Jones
2009, Statistical Methodology 6:70-81). Schaeffer et al. 2025 ("How Do Large Language Monkeys
Get Their Power (Laws)?", code src/analyze.py, ``kumaraswamy_binomial`` likelihood) fit it to
per-problem counts as the alternative to the Beta; here in its unscaled two-parameter form. Near
p = 0 it behaves like p^(a-1), so a sets the left tail that carries the power law of coverage
(README A1); unlike the Beta (a gamma-like law of p), for small a it is close to a gamma law of
-log p, a different guess of how the problems never solved in n samples spread below 1/n.

Its binomial mixture P(c | n) = C(n, c) ∫ p^c (1 - p)^(n-c) f(p) dp has no closed form, so
:class:`Quadrature` computes such integrals for any (n, c) with n from 1 to 10^9: in u = logit p
the kernel p^c (1 - p)^(n-c) is log-concave with its peak at logit(c/n) and width
1/sqrt(c (n - c) / n); nodes u = m + s sinh(z) on a uniform grid in z, cut where the kernel has
fallen by ``KERNEL_DROP`` nats, and the trapezoid rule, which converges exponentially for
integrands that decay at both ends (Trefethen & Weideman 2014, "The exponentially convergent
trapezoidal rule", SIAM Review 56(3), §5, the sinh map for integrands with exponential tails).
For c = 0 the integrand does not decay towards p = 0 (f's own tail); the grid then runs out to
p ~ e^(-1490) / n and the prior mass below the last node, where (1 - p)^n = 1 to double
precision, is added from the CDF (likewise the mass above the last node for c = n). Against
the beta-binomial's closed form (the same quadrature with a Beta density), log P is within
1e-4 for every case the tests try with P > e^-60 (1e-12 where the density is broad next to
the kernel). With nodes centred on kernel x density instead (``Quadrature.of`` with theta),
densities narrower than the kernel (a fit pushed to its bounds) stay within 1e-4 too.

NumPy only (no scipy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flopcast.workloads.reasoning.samples import check_counts, log_choose

#: Quadrature nodes per (n, c) pair (64: log P within 1e-4 of closed forms, module docstring).
NODES = 64
#: Half-width of the uniform z-grid of the sinh map u = m + s sinh(z): sinh(8) = 1490, so for
#: c = 0 the grid reaches p ~ e^-1490 / n, where even a tail as flat as p^0.03 has decayed.
Z_MAX = 8.0
#: Where the grid is cut: the integrand (the kernel p^c (1-p)^(n-c), or kernel x density) has
#: fallen this many nats below its peak.
KERNEL_DROP = 200.0
#: The mode of kernel x density is looked for in |logit p| <= this (beyond, p is 0 or 1 in
#: double precision for any count that matters).
MODE_RANGE = 5000.0
#: Parameters within this (in log a and log b) of an anchor reuse its nodes (:class:`NodeCache`).
NEAR = 0.25
#: Points tested at once in each round of the vectorised bisections (mode, grid edges).
SEARCH_POINTS = 33
#: Bounds of a and b in fits (wider than any fitted value on the data tried; the bootstrap may
#: push a resample with almost nothing solved towards them).
A_BOUNDS = (1e-2, 1e3)
B_BOUNDS = (1e-3, 1e6)


def _log_expit(u):
    """log(1 / (1 + e^-u)) without overflow."""
    return -np.logaddexp(0.0, -u)


def _log_integrand(u, n, c, a=None, b=None):
    """log of the integrand in u = logit p: the kernel c log p + (n - c) log(1 - p), plus (when
    a, b are given) log f(p) + log p + log(1 - p) for f = Kumaraswamy(a, b)."""
    log_p, log_1mp = _log_expit(u), _log_expit(-u)
    value = c * log_p + (n - c) * log_1mp
    if a is None:
        return value
    return value + _log_density_terms(log_p, log_1mp, a, b, 0)[0] + log_p + log_1mp


def _slope_curvature(u, n, c, a, b):
    """First and second derivative in u of :func:`_log_integrand` with the density (see
    :func:`_mode`)."""
    log_p, log_1mp = _log_expit(u), _log_expit(-u)
    ap = a * log_p
    edge = log_p == 0.0
    with np.errstate(divide="ignore"):
        log_1mx = np.where(edge, np.log(a) + log_1mp, np.log(-np.expm1(np.minimum(ap, -1e-300))))
    q = np.where(edge, 1.0, a * np.exp(np.minimum(log_1mp + ap - log_1mx, 700.0)))
    p, one_p = np.exp(log_p), np.exp(log_1mp)
    slope = (c + a) * one_p - (n - c + 1.0) * p - (b - 1.0) * q
    damp = np.where(edge, 1.0, a * np.exp(np.minimum(log_1mp - log_1mx, 700.0)))
    return slope, -(n + 1.0 + a) * p * one_p + (b - 1.0) * q * (p - damp)


def _mode(n, c, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Mode and scale (1 / sqrt(-second derivative)) in u of :func:`_log_integrand` with the
    density, for pairs (n, c) (P,) and parameter rows a, b (R, 1): arrays (R, P). Its slope
    (c + a)(1 - p) - (n - c + 1) p - (b - 1) q, q = a (1 - p) x / (1 - x), x = p^a, is
    positive as u -> -inf and negative as u -> +inf; :func:`_bracket` finds where it changes
    sign (within |u| <= MODE_RANGE). Second derivative: -(n + 1 + a) p (1 - p)
    + (b - 1) q (p - a (1 - p) / (1 - x))."""
    shape = np.broadcast_shapes(np.shape(n), np.shape(a))
    args = (n[..., None], c[..., None], a[..., None], b[..., None])
    lo, hi = _bracket(lambda u: _slope_curvature(u, *args)[0] > 0, np.full(shape, -MODE_RANGE),
                      np.full(shape, MODE_RANGE), rounds=5)
    mode = 0.5 * (lo + hi)
    return mode, 1.0 / np.sqrt(np.clip(-_slope_curvature(mode, n, c, a, b)[1], 1e-8, None))


def _bracket(holds, lo, hi, rounds: int):
    """Narrow [lo, hi] to where ``holds`` (true at lo, false at hi, one change between) stops
    holding: each round tests SEARCH_POINTS evenly spaced points at once and keeps the cell of
    the first failure (vectorised bisection, SEARCH_POINTS - 1 cells per round)."""
    grid = np.linspace(0.0, 1.0, SEARCH_POINTS)
    for _ in range(rounds):
        pts = lo[..., None] + (hi - lo)[..., None] * grid
        fails = ~holds(pts)
        first = np.where(fails.any(axis=-1), fails.argmax(axis=-1), SEARCH_POINTS - 1)
        first = np.maximum(first, 1)
        lo = np.take_along_axis(pts, (first - 1)[..., None], -1)[..., 0]
        hi = np.take_along_axis(pts, first[..., None], -1)[..., 0]
    return lo, hi


def _z_edge(m, s, top, side: float, log_integrand) -> np.ndarray:
    """A z in [0, Z_MAX] just past where log_integrand(m + side * s * sinh(z)) falls below
    top - KERNEL_DROP (the mode's value), or Z_MAX (:func:`_bracket`, 2 rounds)."""
    def holds(z):
        return log_integrand(m[..., None] + side * s[..., None] * np.sinh(z)) \
            > top[..., None] - KERNEL_DROP
    return _bracket(holds, np.zeros_like(m), np.full_like(m, Z_MAX), rounds=2)[1]


@dataclass(frozen=True, eq=False)
class Quadrature:
    """Nodes and weights for I_i = ∫ p^c_i (1 - p)^(n_i - c_i) g(p) dp, one row per (n_i, c_i):
    I_i ≈ sum_j exp(log_weight_ij) g(p_ij) + G(low_i) + (1 - G(high_i)), G the CDF of g when
    g is a density (module docstring). ``log_p`` and ``log_1mp`` are log p and log(1 - p) at
    the nodes, each (pairs, NODES)."""

    log_p: np.ndarray
    log_1mp: np.ndarray
    log_weight: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, samples, correct, theta=None) -> Quadrature:
        """Nodes for the pairs (n, c): centred on the kernel's peak (arrays (pairs, NODES)),
        or, given parameter rows theta = (log a, log b), on the peak of kernel x Kumaraswamy
        density for each row (arrays (rows, pairs, NODES)); the latter stays accurate when the
        density is narrower than the kernel (a fit pushed to its bounds)."""
        n = np.asarray(samples, dtype=float)
        c = np.asarray(correct, dtype=float)
        if theta is None:
            inner = (c > 0) & (c < n)
            share = np.clip(c / n, 1e-300, 1.0 - 1e-16)
            m = np.where(inner, np.log(share) - np.log1p(-share),
                         np.where(c == 0, -np.log(n), np.log(n)))
            s = np.where(inner, 1.0 / np.sqrt(np.maximum(c * (n - c) / n, 1e-300)), 1.0)
            a = b = None
        else:
            theta = np.atleast_2d(theta)
            a, b = np.exp(theta[:, :1]), np.exp(theta[:, 1:])
            m, s = _mode(n, c, a, b)
            n, c = np.broadcast_to(n, m.shape), np.broadcast_to(c, m.shape)
        top = _log_integrand(m, n, c, a, b)
        a3, b3 = (None, None) if a is None else (a[..., None], b[..., None])

        def log_integrand(u):
            return _log_integrand(u, n[..., None], c[..., None], a3, b3)
        left = _z_edge(m, s, top, -1.0, log_integrand)
        right = _z_edge(m, s, top, 1.0, log_integrand)
        if theta is None:
            left, right = np.where(c == 0, Z_MAX, left), np.where(c == n, Z_MAX, right)
        return cls._build(n, c, m, s, left, right)

    @classmethod
    def _build(cls, n, c, m, s, left, right) -> Quadrature:
        """Trapezoid nodes z on [-left, right], u = m + s sinh(z), and their log-weights."""
        grid = np.linspace(0.0, 1.0, NODES)
        z = -left[..., None] + (left + right)[..., None] * grid
        u = m[..., None] + s[..., None] * np.sinh(z)
        log_p, log_1mp = _log_expit(u), _log_expit(-u)
        trapezoid = np.ones(NODES)
        trapezoid[[0, -1]] = 0.5
        log_weight = (c[..., None] * log_p + (n - c)[..., None] * log_1mp + log_p + log_1mp
                      + np.log(s * (left + right) / (NODES - 1))[..., None]
                      + np.log(np.cosh(z)) + np.log(trapezoid))
        low = np.where(c == 0, np.exp(log_p[..., 0]), 0.0)
        high = np.where(c == n, -np.expm1(log_1mp[..., -1]), 1.0)
        return cls(log_p, log_1mp, log_weight, low, high)


class NodeCache:
    """Quadratures for fixed pairs (n, c) placed at parameter anchors (:meth:`Quadrature.of`
    with theta): a row theta is served by the nearest anchor within NEAR (largest difference
    in log a or log b), and anchors are placed, in one batch, for the rows that have none.
    Node placement costs more than the integrals; fits and bootstrap refits move theta a
    little at a time, so most rows reuse an anchor (log I within 1e-5 of nodes placed at theta
    itself for moves up to NEAR, tests)."""

    def __init__(self, samples, correct, anchors=None):
        self.n, self.c = np.asarray(samples, dtype=float), np.asarray(correct, dtype=float)
        self.anchors, self.fields = np.empty((0, 2)), None
        if anchors is not None:
            self._place(np.atleast_2d(np.asarray(anchors, dtype=float)))

    def _place(self, theta: np.ndarray) -> None:
        fields = list(vars(Quadrature.of(self.n, self.c, theta)).values())
        self.anchors = np.concatenate([self.anchors, theta])
        self.fields = fields if self.fields is None else [
            np.concatenate([old, new]) for old, new in zip(self.fields, fields, strict=True)]

    def __call__(self, theta) -> Quadrature:
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        if not len(self.anchors):
            self._place(theta)
        dist = np.abs(theta[:, None, :] - self.anchors[None]).max(axis=-1)
        far = dist.min(axis=1) > NEAR
        if far.any():
            self._place(theta[far])
            dist = np.abs(theta[:, None, :] - self.anchors[None]).max(axis=-1)
        nearest = dist.argmin(axis=1)
        return Quadrature(*(f[nearest] for f in self.fields))


def _log_density_terms(log_p, log_1mp, a, b, order: int):
    """log f at the nodes and, for order >= 1, its derivatives in (log a, log b): gradient
    (g_a, g_b) and, for order 2, Hessian (h_aa, h_ab, h_bb). With x = p^a and r = x / (1 - x):
    g_a = 1 + a log p - (b - 1) a log p r, g_b = 1 + b log(1 - x); h_aa = a log p - (b - 1)
    a log p r (1 + a log p (1 + r)), h_ab = -a b log p r, h_bb = b log(1 - x). Where p
    rounds to 1, a log p r -> -1 and log(1 - x) -> log a + log(1 - p)."""
    ap = a * log_p
    edge = log_p == 0.0
    with np.errstate(divide="ignore"):
        log_1mx = np.where(edge, np.log(a) + log_1mp, np.log(-np.expm1(np.minimum(ap, -1e-300))))
    value = np.log(a) + np.log(b) + (a - 1.0) * log_p + (b - 1.0) * log_1mx
    if order == 0:
        return value, None, None
    apr = np.where(edge, -1.0, ap * np.exp(np.minimum(ap - log_1mx, 700.0)))
    g_b = b * log_1mx
    grad = (1.0 + ap - (b - 1.0) * apr, 1.0 + g_b)
    if order == 1:
        return value, grad, None
    h_aa = ap - (b - 1.0) * apr * np.where(edge, 0.0, 1.0 + ap + apr)
    return value, grad, (h_aa, -b * apr, g_b)


def _survival(p, a, b):
    """1 - F(p) = (1 - p^a)^b and its derivatives in (log a, log b), (..., 2)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = p ** a
        surv = np.exp(b * np.log1p(-x))
        d_a = np.where((p > 0) & (x < 1), -a * b * x * np.log(np.where(p > 0, p, 1.0))
                       * surv / (1.0 - x), 0.0)
        d_b = np.where(x < 1, b * np.log1p(-x) * surv, 0.0)
    return surv, np.stack([d_a, d_b], axis=-1)


#: Largest (parameter rows x pairs x nodes) array one step of :func:`kumaraswamy_terms` makes.
_CHUNK = 1 << 19


def kumaraswamy_terms(quad: Quadrature, theta, order: int = 2):
    """log I_i for f = Kumaraswamy(a, b) at each parameter row theta = (log a, log b), (R, 2):
    value (R, pairs) and, by ``order``, gradient (R, pairs, 2) and Hessian (R, pairs, 2, 2).
    ``quad`` holds nodes shared by all rows (pairs, NODES) or one set per row (R, pairs,
    NODES). The derivatives of log I are the node-weighted mean of those of log f (and, for
    the Hessian, plus their covariance); the CDF tails enter the value and gradient, not the
    Hessian (they matter only for a << 0.03, and a Newton step needs no exact Hessian)."""
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    per_row = quad.log_p.ndim == 3
    rows = max(1, _CHUNK // quad.log_p[0].size) if per_row else max(1, _CHUNK // quad.log_p.size)
    parts = []
    for i in range(0, len(theta), rows):
        part = Quadrature(*(x[i:i + rows] for x in vars(quad).values())) if per_row else quad
        parts.append(_terms_chunk(part, theta[i:i + rows], order))
    return tuple(None if parts[0][j] is None else np.concatenate([p[j] for p in parts])
                 for j in range(3))


def _terms_chunk(quad: Quadrature, theta: np.ndarray, order: int):
    a, b = np.exp(theta[:, 0])[:, None], np.exp(theta[:, 1])[:, None]
    log_f, grad_f, hess_f = _log_density_terms(quad.log_p, quad.log_1mp, a[..., None],
                                               b[..., None], order)
    t = quad.log_weight + log_f
    top = t.max(axis=2)
    e = np.exp(t - top[..., None])
    surv_low, d_low = _survival(quad.low, a, b)
    surv_high, d_high = _survival(quad.high, a, b)
    tail = (1.0 - surv_low) + surv_high
    with np.errstate(divide="ignore"):
        value = np.logaddexp(top + np.log(e.sum(axis=2)), np.log(tail))
    if order == 0:
        return value, None, None
    q = e * np.exp(top - value)[..., None]
    tail_grad = np.where(tail[..., None] > 0, (d_high - d_low)
                         * np.exp(np.minimum(-value, 700.0))[..., None], 0.0)
    g_a, g_b = grad_f
    grad = np.stack([(q * g_a).sum(axis=2), (q * g_b).sum(axis=2)], axis=-1) + tail_grad
    if order == 1:
        return value, grad, None
    h_aa, h_ab, h_bb = hess_f
    m_aa, m_ab, m_bb = ((q * (h_aa + g_a * g_a)).sum(axis=2), (q * (h_ab + g_a * g_b)).sum(axis=2),
                        (q * (h_bb + g_b * g_b)).sum(axis=2))
    hess = np.stack([np.stack([m_aa, m_ab], -1), np.stack([m_ab, m_bb], -1)], -2)
    return value, grad, hess - grad[..., :, None] * grad[..., None, :]


def log_fail_given(theta, samples, correct, k, anchor=None) -> np.ndarray:
    """log E[(1 - p_i)^k | c_i of n_i] per parameter row, problem and k, (R, problems, ks):
    I(n_i + k, c_i) / I(n_i, c_i), each problem's posterior under Kumaraswamy(a, b) as prior
    (the empirical-Bayes prediction of README A1, "Per-problem law"). Nodes: :class:`NodeCache`
    started at ``anchor`` (default: the first row)."""
    n, c = check_counts(samples, correct, "kumaraswamy")
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    anchor = theta[:1] if anchor is None else anchor
    ks = np.asarray(k, dtype=float).ravel()
    pairs, inverse = np.unique(np.stack([n, c], axis=1), axis=0, return_inverse=True)
    pn, pc = pairs[:, 0].astype(float), pairs[:, 1].astype(float)

    def log_integral(total):
        return kumaraswamy_terms(NodeCache(total, pc, anchor)(theta), theta, 0)[0]

    base = log_integral(pn)
    out = [log_integral(pn + kk) - base for kk in ks]
    return np.stack(out, axis=-1)[:, inverse.ravel(), :]


@dataclass(frozen=True)
class KumaraswamyFit:
    """Per-problem success rate p ~ Kumaraswamy(a, b), fitted by maximum likelihood
    (:func:`fit_kumaraswamy`); ``log_likelihood`` of the counts, binomial coefficients
    included (comparable with :class:`~flopcast.workloads.reasoning.coverage.BetaMixtureFit`)."""

    a: float
    b: float
    log_likelihood: float
    n_problems: int

    @property
    def theta(self) -> np.ndarray:
        return np.log([[self.a, self.b]])

    def coverage(self, k) -> np.ndarray:
        """Coverage of a fresh problem: 1 - E[(1 - p)^k] (README A1), E by :class:`Quadrature`
        (the integral with n = k, c = 0)."""
        ks = np.asarray(k, dtype=float)
        quad = Quadrature.of(ks.ravel(), np.zeros(ks.size), self.theta)
        log_fail = kumaraswamy_terms(quad, self.theta, 0)[0][0]
        return -np.expm1(log_fail).reshape(ks.shape)

    def coverage_given(self, samples, correct, k) -> np.ndarray:
        """Coverage(k) of the given problems, 1 - mean_i E[(1 - p_i)^k | c_i of n_i]
        (:func:`log_fail_given`), shape of ``k``."""
        ks = np.asarray(k)
        fail = np.exp(log_fail_given(self.theta, samples, correct, ks))[0]
        return (1.0 - fail.mean(axis=0)).reshape(ks.shape)


def kumaraswamy_family(n: np.ndarray, c: np.ndarray, anchor=None):
    """(terms(theta, order), constant) for the distinct pairs (n, c): per-pair log P(c | n) is
    terms' value plus log C(n, c) (the constant). Nodes from a :class:`NodeCache` (started at
    ``anchor``, the fit a bootstrap's refits start from)."""
    nodes = NodeCache(n, c, anchor)

    def terms(theta, order):
        return kumaraswamy_terms(nodes(theta), theta, order)
    return terms, log_choose(n, c)


#: Starting points (log a, log b) of a fit: a in {0.1, 0.3, 1}, b in {1, 5, 30} (the fits to
#: all 10,000 samples per problem of the Pythia file lie in a = 0.2-0.4, b = 5-8).
STARTS = np.log([[a, b] for a in (0.1, 0.3, 1.0) for b in (1.0, 5.0, 30.0)])


def fit_kumaraswamy(samples, correct) -> KumaraswamyFit:
    """Maximum-likelihood Kumaraswamy(a, b) for binomial counts (c_i correct of n_i): the
    likelihood of problem i is C(n_i, c_i) ∫ p^c_i (1 - p)^(n_i - c_i) f(p) dp
    (:class:`Quadrature`), maximised by damped Newton (``newton.maximise``) from ``STARTS``
    within ``A_BOUNDS`` x ``B_BOUNDS``."""
    from flopcast.workloads.reasoning.newton import maximise

    n, c = check_counts(samples, correct, "kumaraswamy")
    pairs, mult = np.unique(np.stack([n, c], axis=1), axis=0, return_counts=True)
    terms, const = kumaraswamy_family(pairs[:, 0].astype(float), pairs[:, 1].astype(float))
    theta, ll = maximise(terms, STARTS, mult, BOUNDS)
    best = int(np.argmax(ll))
    return KumaraswamyFit(float(np.exp(theta[best, 0])), float(np.exp(theta[best, 1])),
                          float(ll[best] + mult @ const), int(n.size))


#: Box of (log a, log b) for fits.
BOUNDS = np.log([A_BOUNDS, B_BOUNDS])
