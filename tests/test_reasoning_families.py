"""Difficulty families beyond the Beta mixture: the quadrature for binomial mixtures, the
Kumaraswamy fit, the batched Newton fits and the Akaike-weighted model average
(flopcast.workloads.reasoning.kumaraswamy, .newton, .average)."""

import itertools

import numpy as np
import pytest

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning import average, kumaraswamy
from flopcast.workloads.reasoning.average import akaike_weights, fit_model_average
from flopcast.workloads.reasoning.coverage import coverage, extrapolate, fit_beta_mixture
from flopcast.workloads.reasoning.kumaraswamy import (
    KumaraswamyFit,
    Quadrature,
    fit_kumaraswamy,
    kumaraswamy_terms,
)

special = pytest.importorskip("scipy.special")

#: (n, c) pairs from one sample to 10^9, unsolved, solved every time and in between.
PAIRS = [(1, 0), (1, 1), (2, 1), (5, 2), (100, 0), (100, 1), (100, 7), (100, 50), (100, 100),
         (10_000, 0), (10_000, 1), (10_000, 37), (10_000, 3153), (10**9, 0), (10**9, 5)]


def _kumaraswamy_sample(m: int, n: int, a: float, b: float, seed: int = 0):
    """m problems with p ~ Kumaraswamy(a, b) (inverse CDF) and c ~ Binomial(n, p)."""
    rng = np.random.default_rng(seed)
    p = (1.0 - (1.0 - rng.random(m)) ** (1.0 / b)) ** (1.0 / a)
    return np.full(m, n), rng.binomial(n, p)


def test_quadrature_reproduces_the_beta_binomial_closed_form():
    """The kernel-centred nodes integrate a Beta density against p^c (1-p)^(n-c): log of
    B(c + alpha, n - c + beta) / B(alpha, beta) to 1e-4 wherever it is above -60."""
    n, c = (np.array(x, dtype=float) for x in zip(*PAIRS, strict=True))
    quad = Quadrature.of(n, c)
    for a, b in [(0.18, 28.7), (0.03, 50.0), (2.0, 0.5), (0.5, 0.7), (5.0, 3.0)]:
        log_f = (a - 1) * quad.log_p + (b - 1) * quad.log_1mp - special.betaln(a, b)
        inner = special.logsumexp(quad.log_weight + log_f, axis=1)
        tail = special.betainc(a, b, quad.low) + special.betaincc(a, b, quad.high)
        got = np.logaddexp(inner, np.log(np.maximum(tail, 1e-300)))
        exact = special.betaln(c + a, n - c + b) - special.betaln(a, b)
        keep = exact > -60
        assert np.max(np.abs(got - exact)[keep]) < 1e-4, (a, b)


def test_kumaraswamy_integrals_against_fine_quadrature(monkeypatch):
    """Nodes placed on kernel x density stay accurate for narrow densities (b up to 10^6):
    64 nodes against 2048."""
    n, c = (np.array(x, dtype=float) for x in zip(*PAIRS, strict=True))
    thetas = np.log([[0.29, 6.3], [0.03, 50.0], [2.0, 0.5], [5.0, 3.0], [0.57, 1e6],
                     [2.0, 1e6], [50.0, 1e5]])
    got = kumaraswamy_terms(Quadrature.of(n, c, thetas), thetas, 0)[0]
    monkeypatch.setattr(kumaraswamy, "NODES", 2048)
    fine = kumaraswamy_terms(Quadrature.of(n, c, thetas), thetas, 0)[0]
    keep = fine > -60
    assert np.max(np.abs(got - fine)[keep]) < 1e-4
    assert np.all(got <= 1e-9)  # log of a probability


def test_kumaraswamy_derivatives_match_finite_differences():
    n = np.array([100.0] * 5 + [10_000.0] * 3 + [3.0, 3.0])
    c = np.array([0.0, 1, 5, 60, 100, 0, 37, 9000, 1, 3])
    for theta in np.log([[0.3, 6.0], [2.0, 0.5], [0.05, 40.0]]):
        quad = Quadrature.of(n, c, theta[None])
        value, grad, hess = kumaraswamy_terms(quad, theta[None], 2)
        for i, step in enumerate(np.eye(2) * 1e-5):
            up = kumaraswamy_terms(quad, (theta + step)[None], 1)
            down = kumaraswamy_terms(quad, (theta - step)[None], 1)
            assert np.allclose(grad[0, :, i], (up[0] - down[0])[0] / 2e-5, atol=1e-4, rtol=1e-4)
            assert np.allclose(hess[0, :, i], (up[1] - down[1])[0] / 2e-5, atol=1e-3, rtol=1e-3)


def test_beta_terms_derivatives_match_finite_differences():
    n, c = np.array([100.0, 100, 10_000, 3]), np.array([0.0, 7, 3153, 3])
    terms = average.FAMILIES["beta"].terms(n, c)
    theta = np.log([[0.3, 12.0]])
    _, grad, hess = terms(theta, 2)
    for i, step in enumerate(np.eye(2) * 1e-6):
        up, down = terms(theta + step, 1), terms(theta - step, 1)
        assert np.allclose(grad[0, :, i], (up[0] - down[0])[0] / 2e-6, rtol=1e-5, atol=1e-6)
        assert np.allclose(hess[0, :, i], (up[1] - down[1])[0] / 2e-6, rtol=1e-4, atol=1e-5)


def test_kumaraswamy_coverage_matches_numerical_integral():
    from scipy import integrate

    fit = KumaraswamyFit(0.35, 5.0, float("nan"), 0)
    for k in (1, 30, 1000, 10**6):
        def integrand(t, k=k):  # over t = log p
            p = np.exp(t)
            return (0.35 * 5.0 * p ** 0.35 * (1 - p ** 0.35) ** 4.0
                    * (1 - (1 - p) ** k if p > 1e-12 else k * p))
        covered = sum(integrate.quad(integrand, lo, hi, limit=400)[0]
                      for lo, hi in [(-400, -30), (-30, -10), (-10, 0)])
        assert float(fit.coverage(k)) == pytest.approx(covered, rel=1e-6, abs=1e-9)


def test_fit_kumaraswamy_recovers_known_parameters():
    n, c = _kumaraswamy_sample(4000, 200, a=0.4, b=6.0, seed=1)
    fit = fit_kumaraswamy(n, c)
    assert fit.a == pytest.approx(0.4, rel=0.1) and fit.b == pytest.approx(6.0, rel=0.2)
    truth = KumaraswamyFit(0.4, 6.0, float("nan"), 0)
    ks = [1, 100, 10_000, 10**6]
    assert fit.coverage(ks) == pytest.approx(truth.coverage(ks), abs=0.02)
    assert fit.n_problems == 4000


def test_newton_beta_fit_matches_the_slsqp_fit():
    """The batched Newton fit of the Beta family finds the likelihood the Beta-mixture fitter
    (SLSQP, zero mass off) finds, on the synthetic data of either family."""
    for n, c in (_kumaraswamy_sample(300, 100, 0.3, 7.0, seed=2),
                 (np.full(200, 50), np.random.default_rng(3).binomial(50, np.random.default_rng(
                     4).beta(0.4, 9.0, 200)))):
        avg = fit_model_average(n, c, ("beta",))
        slsqp = fit_beta_mixture(n, c, zero_mass=False)
        assert avg.fits[0].log_likelihood == pytest.approx(slsqp.log_likelihood, abs=1e-4)
        assert avg.fits[0].alpha[0] == pytest.approx(slsqp.alpha[0], rel=1e-3)


def test_model_average_weights_follow_the_likelihoods():
    n, c = _kumaraswamy_sample(400, 100, 0.35, 6.0, seed=5)
    fit = fit_model_average(n, c)
    assert fit.families == ("beta", "kumaraswamy")
    ll = [f.log_likelihood for f in fit.fits]
    assert fit.weights == pytest.approx(akaike_weights(ll).tolist())
    assert fit.weights[1] / fit.weights[0] == pytest.approx(np.exp(ll[1] - ll[0]))
    ks = np.unique(np.geomspace(1, 1e6, 40).astype(int))
    for curve in (fit.coverage(ks), fit.coverage_given(n, c, ks)):
        assert np.all(np.diff(curve) >= -1e-12) and np.all((curve >= 0) & (curve <= 1))
    inside = [1, 10, 50, 100]
    assert fit.coverage_given(n, c, inside) == pytest.approx(coverage(n, c, inside), abs=0.01)
    assert akaike_weights([[0.0, 0.0], [0.0, -np.log(3.0)]]) == pytest.approx(
        np.array([[0.5, 0.5], [0.75, 0.25]]))
    with pytest.raises(FlopcastError, match="families must be some of beta, kumaraswamy"):
        fit_model_average(n, c, ("gamma",))


def test_default_extrapolation_band_is_seeded_and_brackets_the_point():
    n, c = _kumaraswamy_sample(150, 60, 0.3, 6.0, seed=6)
    for method in ("combined", "model-average", "kumaraswamy"):
        one = extrapolate(n, c, [10, 1000, 10**5], method, reps=30, seed=3)
        two = extrapolate(n, c, [10, 1000, 10**5], method, reps=30, seed=3)
        assert np.array_equal(one.low, two.low) and np.array_equal(one.high, two.high)
        assert np.all(one.low <= one.coverage + 1e-9) and np.all(one.coverage <= one.high + 1e-9)
        assert np.all(np.diff(one.coverage) > 0) and np.all(one.high - one.low > 0)
    assert extrapolate(n, c, 1000).method == "combined"


@pytest.mark.parametrize(("solved", "expect_max"), [(0, 1e-6), (1, 0.2)])
def test_model_average_with_almost_nothing_solved(solved, expect_max):
    """No problem solved: no evidence of any success, so (almost) none predicted (the
    likelihood is flat there: refits may stop a hair away from the fit); one solved once: a
    band that still brackets the point."""
    n, c = np.full(50, 100), np.zeros(50, dtype=int)
    c[:solved] = 1
    result = extrapolate(n, c, 1000, reps=20)
    assert 0 <= result.low <= result.coverage + 1e-6 and result.coverage <= result.high + 1e-6
    assert result.high <= 1
    assert float(result.coverage) <= expect_max


def test_kumaraswamy_needs_no_scipy(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "scipy", None)
    n, c = _kumaraswamy_sample(200, 100, 0.4, 6.0, seed=7)
    fit = fit_kumaraswamy(n, c)
    assert 0 < float(fit.coverage_given(n, c, 1000)) < 1
    with pytest.raises(FlopcastError, match="need scipy"):
        fit_model_average(n, c)


def test_quadrature_pairs_from_one_to_a_billion_samples_are_finite():
    for (n, c), theta in itertools.product(PAIRS, np.log([[0.3, 6.0], [3.0, 0.4]])):
        value = kumaraswamy_terms(Quadrature.of([float(n)], [float(c)], theta[None]),
                                  theta[None], 2)
        assert all(np.all(np.isfinite(x)) for x in value)


def test_combined_is_the_mean_of_model_average_and_power_law():
    n, c = _kumaraswamy_sample(128, 100, 0.3, 6.0, seed=8)
    ks = [300, 1000, 10**4]
    parts = [extrapolate(n, c, ks, m, reps=25, seed=1) for m in ("model-average", "power-law")]
    both = extrapolate(n, c, ks, "combined", reps=25, seed=1)
    assert both.coverage == pytest.approx(0.5 * (parts[0].coverage + parts[1].coverage))
    assert both.fit.model_average.weights == parts[0].fit.weights
    assert both.fit.power_law == parts[1].fit
    assert np.all(both.low <= both.coverage) and np.all(both.coverage <= both.high)


def test_power_law_bootstrap_refits_equal_single_fits():
    """The vectorised refits of the bootstrap give each resample's own least-squares fit."""
    from flopcast.workloads.reasoning import coverage as cov

    n, c = _kumaraswamy_sample(60, 80, 0.3, 6.0, seed=9)
    grid = cov._k_grid(80)
    per_problem = cov.pass_at_k(n, c, grid)
    draws = np.random.default_rng(0).integers(0, 60, size=(5, 60))
    boot = cov._power_law_boot(grid, per_problem, draws, np.array([1000, 10**5]))
    for row, d in zip(boot, draws, strict=True):
        single = cov.fit_power_law_curve(grid, per_problem[d].mean(axis=0))
        assert row == pytest.approx(single.coverage([1000, 10**5]), rel=1e-9)
