"""Coverage (pass@k) from per-problem samples: the unbiased estimator, the Beta-mixture and
power-law extrapolations, and the samples CSV reader (flopcast.workloads.reasoning)."""

import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from flopcast.errors import FlopcastError
from flopcast.workloads.reasoning import (
    BetaMixtureFit,
    SampleSet,
    extrapolate,
    fit_beta_mixture,
    fit_power_law,
    held_out,
    pass_at_k,
    read_sample_groups,
    read_samples,
)
from flopcast.workloads.reasoning import coverage as cov_module
from flopcast.workloads.reasoning.coverage import coverage
from flopcast.workloads.reasoning.voting import (
    majority_vote_bounds,
    majority_vote_bounds_given,
    majority_vote_limits,
)

REASONING = Path(__file__).resolve().parents[2] / "shared" / "reasoning"
HEADER = "id,source,model,params,benchmark,problem,samples,correct\n"


@pytest.fixture(scope="module")
def pythia() -> dict:
    path = REASONING / "pythia-math-samples.csv"
    if not path.exists():
        pytest.skip(f"shared reasoning data not found at {path} (shared/ sits beside checkout)")
    return read_sample_groups(path)


def _synthetic(m: int, n: int, w0: float, a: float, b: float, seed: int = 0):
    """m problems: p = 0 with probability w0, else Beta(a, b); c ~ Binomial(n, p)."""
    rng = np.random.default_rng(seed)
    p = np.where(rng.random(m) < w0, 0.0, rng.beta(a, b, m))
    return np.full(m, n), rng.binomial(n, p)


# --- the unbiased estimator ------------------------------------------------------------------

def test_pass_at_k_matches_brute_force_enumeration():
    for n in range(1, 7):
        for c in range(n + 1):
            ks = np.arange(1, n + 1)
            got = pass_at_k([n], [c], ks)[0]
            for k in ks:
                subsets = list(itertools.combinations(range(n), int(k)))
                hit = sum(any(i < c for i in s) for s in subsets)
                assert got[k - 1] == pytest.approx(hit / len(subsets), abs=1e-12)


def test_pass_at_k_matches_exact_binomials_vectorised():
    n = np.array([12, 20, 30, 7, 30])
    c = np.array([0, 3, 29, 7, 1])
    ks = np.array([[1, 2], [5, 7]])  # any shape of k
    got = pass_at_k(n, c, ks)
    assert got.shape == (5, 2, 2)
    for i, k in itertools.product(range(5), ks.ravel()):
        exact = 1 - Fraction(math.comb(n[i] - c[i], int(k)), math.comb(n[i], int(k)))
        where = tuple(np.argwhere(ks == k)[0])
        assert got[(i, *where)] == pytest.approx(float(exact), rel=1e-12, abs=1e-15)


def test_pass_at_k_large_n_is_stable():
    """n = 10,000: tiny and near-1 values keep their precision (the product form)."""
    got = pass_at_k([10000, 10000, 10000], [1, 5000, 9999], [1, 100, 9999])
    assert got[0, 0] == pytest.approx(1e-4, rel=1e-12)
    assert got[0, 1] == pytest.approx(0.01, rel=1e-12)
    assert got[0, 2] == pytest.approx(0.9999, rel=1e-12)
    assert got[1, 1] == 1.0 or got[1, 1] == pytest.approx(1.0, abs=1e-15)
    assert got[2, 0] == pytest.approx(0.9999, rel=1e-12)
    assert got[2, 2] == 1.0


def test_coverage_is_the_mean_and_follows_k_shape():
    assert float(coverage([10, 10], [0, 10], 3)) == pytest.approx(0.5)
    assert coverage([10, 10], [1, 2], [1, 2, 3]).shape == (3,)
    assert pass_at_k([10, 10], [1, 2], 3).shape == (2,)


def test_estimator_refuses_k_beyond_samples():
    with pytest.raises(FlopcastError, match=r"k = 11 exceeds the 10 samples drawn for problem 1"):
        pass_at_k([20, 10], [0, 0], [5, 11])
    for bad in (0, 1.5, -3, [], "2"):
        with pytest.raises(FlopcastError, match="k must be whole numbers >= 1"):
            coverage([10], [1], bad)
    with pytest.raises(FlopcastError, match="allowed: samples >= 1, 0 <= correct <= samples"):
        coverage([10, 10], [1, 11], 1)


# --- Beta mixture -----------------------------------------------------------------------------

def test_beta_expectation_closed_form_matches_integral():
    """E[(1-p)^k] = B(a, b + k) / B(a, b), checked by numerical integration."""
    from scipy import integrate, special

    fit = BetaMixtureFit(0.2, (0.5, 0.3), (0.4, 3.0), (6.0, 2.0), float("nan"), 0)
    for k in (1, 7, 250):
        def integrand(p, a, b, k=k):
            return p ** (a - 1) * (1 - p) ** (b - 1 + k) / special.beta(a, b)

        fail = 0.2 + sum(w * integrate.quad(integrand, 0, 1, args=(a, b), limit=200)[0]
                         for w, a, b in zip(fit.weights, fit.alpha, fit.beta, strict=True))
        assert float(fit.coverage(k)) == pytest.approx(1 - fail, abs=1e-7)


def test_gradient_matches_finite_differences():
    from scipy import optimize, special

    n, c = _synthetic(60, 100, 0.3, 0.5, 5.0, seed=3)
    pairs, mult = np.unique(np.stack([n, c], axis=1), axis=0, return_counts=True)
    rng = np.random.default_rng(0)
    for components, zero_mass in itertools.product((1, 2), (True, False)):
        k = cov_module._n_weights(components, zero_mass)
        theta = np.concatenate([rng.uniform(0.1, 0.8, k),
                                rng.normal(size=2 * components) + np.tile([-1.0, 1.0], components)])
        args = (pairs[:, 0], pairs[:, 1], mult, components, zero_mass, special)
        grad = cov_module._nll_grad(theta, *args)[1]
        numeric = optimize.approx_fprime(
            theta, lambda t, args=args: cov_module._nll_grad(t, *args)[0], 1e-7)
        assert np.max(np.abs(grad - numeric)) <= 1e-4 * max(1.0, np.max(np.abs(grad)))


def test_beta_mixture_recovers_known_parameters():
    n, c = _synthetic(4000, 200, w0=0.3, a=0.5, b=4.0, seed=1)
    fit = fit_beta_mixture(n, c)
    assert fit.zero_mass == pytest.approx(0.3, abs=0.03)
    assert fit.alpha[0] == pytest.approx(0.5, rel=0.15)
    assert fit.beta[0] == pytest.approx(4.0, rel=0.25)
    assert fit.n_problems == 4000
    truth = BetaMixtureFit(0.3, (0.7,), (0.5,), (4.0,), float("nan"), 0)
    ks = [1, 10, 1000, 100000]
    assert fit.coverage(ks) == pytest.approx(truth.coverage(ks), abs=0.02)


def test_beta_mixture_without_zero_mass_and_two_components():
    n, c = _synthetic(3000, 100, w0=0.0, a=0.3, b=8.0, seed=2)
    plain = fit_beta_mixture(n, c, zero_mass=False)
    assert plain.zero_mass == 0.0 and plain.alpha[0] == pytest.approx(0.3, rel=0.15)
    free = fit_beta_mixture(n, c)  # a point mass is allowed but the data need none
    assert free.zero_mass < 0.03
    two = fit_beta_mixture(n, c, components=2)
    assert two.log_likelihood >= plain.log_likelihood - 1e-6
    assert sum(two.weights) + two.zero_mass == pytest.approx(1.0)
    with pytest.raises(FlopcastError, match="components must be 1 or 2"):
        fit_beta_mixture(n, c, components=3)


def test_beta_mixture_without_scipy_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "scipy", None)  # import scipy -> ImportError
    with pytest.raises(FlopcastError, match="need scipy: pip install scipy"):
        fit_beta_mixture([10, 10], [1, 0])
    assert float(coverage([10, 10], [1, 0], 5)) == pytest.approx(0.25)  # NumPy only
    assert fit_power_law([10, 10, 10], [1, 0, 3]).b < 0


def test_extrapolated_coverage_monotone_and_at_most_one():
    n, c = _synthetic(300, 50, w0=0.2, a=0.3, b=6.0, seed=4)
    ks = np.unique(np.geomspace(1, 1e6, 60).astype(int))
    fit = fit_beta_mixture(n, c)
    for curve in (fit.coverage(ks), fit.coverage_given(n, c, ks),
                  fit_power_law(n, c).coverage(ks), coverage(n, c, ks[ks <= 50])):
        assert np.all(np.diff(curve) >= -1e-12)
        assert np.all((curve >= 0) & (curve <= 1))
    assert fit.coverage(10 ** 9) <= 1 - fit.zero_mass + 1e-9  # never-solvable share stays


def test_extrapolation_agrees_with_estimator_within_samples():
    n, c = _synthetic(400, 200, w0=0.25, a=0.4, b=5.0, seed=5)
    ks = [1, 5, 20, 100, 200]
    fit = fit_beta_mixture(n, c)
    assert fit.coverage_given(n, c, ks) == pytest.approx(coverage(n, c, ks), abs=0.01)
    assert fit.coverage(ks) == pytest.approx(coverage(n, c, ks), abs=0.02)
    # The power law tends to 1, so a point mass at p = 0 bends it off the curve even in-sample.
    assert fit_power_law(n, c).coverage(ks) == pytest.approx(coverage(n, c, ks), abs=0.05)


def test_extrapolate_band_is_seeded_and_brackets_the_point():
    n, c = _synthetic(150, 40, w0=0.2, a=0.3, b=6.0, seed=6)
    for method in ("beta-mixture", "power-law"):
        one = extrapolate(n, c, [10, 1000], method, reps=15, seed=3)
        two = extrapolate(n, c, [10, 1000], method, reps=15, seed=3)
        assert np.array_equal(one.low, two.low) and np.array_equal(one.high, two.high)
        assert np.all(one.low <= one.coverage + 1e-9) and np.all(one.coverage <= one.high + 1e-9)
        assert one.method == method and one.level == 0.9
    bare = extrapolate(n, c, 1000, reps=0)
    assert np.isnan(bare.low) and np.isnan(bare.high)
    with pytest.raises(FlopcastError, match="unknown method 'oracle'"):
        extrapolate(n, c, 10, "oracle")
    with pytest.raises(FlopcastError, match="reps must be a whole number"):
        extrapolate(n, c, 10, reps=-1)


def test_extrapolate_with_almost_nothing_solved():
    """One solved problem: resamples without it still give a band; none solved: the power law
    refuses, the Beta mixture predicts (almost) nothing."""
    n, c = np.full(50, 100), np.zeros(50, dtype=int)
    c[0] = 1
    for method in ("beta-mixture", "power-law"):
        result = extrapolate(n, c, 1000, method, reps=20)
        assert 0 <= result.low <= result.coverage <= result.high <= 1
    c[0] = 0
    assert float(extrapolate(n, c, 1000, reps=0).coverage) < 1e-6
    with pytest.raises(FlopcastError, match="no problem solved"):
        extrapolate(n, c, 1000, "power-law")


# --- majority voting bounds ------------------------------------------------------------------

def _vote_credit(answers: list[str]) -> float:
    """Plurality credit of answer 'C' among the votes, ties shared uniformly."""
    counts = {a: answers.count(a) for a in set(answers)}
    top = max(counts.values())
    leaders = [a for a, v in counts.items() if v == top]
    return 1 / len(leaders) if "C" in leaders else 0.0


def test_majority_bounds_match_brute_force_votes():
    """Every k-subset of the recorded samples, labelled two ways: all wrong answers alike (low)
    and all distinct (high)."""
    for n, c in [(5, 2), (6, 3), (6, 1), (7, 5), (4, 0)]:
        alike = ["C"] * c + ["W"] * (n - c)
        distinct = ["C"] * c + [f"W{i}" for i in range(n - c)]
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            low = np.mean([_vote_credit([alike[i] for i in s]) for s in subsets])
            high = np.mean([_vote_credit([distinct[i] for i in s]) for s in subsets])
            got = majority_vote_bounds([n], [c], k)
            assert float(got[0]) == pytest.approx(low, abs=1e-12)
            assert float(got[1]) == pytest.approx(high, abs=1e-12)


def test_majority_bounds_order_and_limits():
    n, c = _synthetic(300, 60, w0=0.2, a=0.8, b=1.5, seed=8)
    ks = np.array([1, 2, 5, 20, 60])
    low, high = majority_vote_bounds(n, c, ks)
    assert low[:2] == pytest.approx([np.mean(c / n)] * 2) and high[:2] == pytest.approx(low[:2])
    assert np.all(low <= high + 1e-12) and np.all(high <= coverage(n, c, ks) + 1e-12)
    fit = fit_beta_mixture(n, c)
    low_fit, high_fit = majority_vote_bounds_given(fit, n, c, ks)
    assert low_fit == pytest.approx(low, abs=0.02) and high_fit == pytest.approx(high, abs=0.02)
    limit_low, limit_high = majority_vote_limits(fit, n, c)
    far_low, far_high = majority_vote_bounds_given(fit, n, c, 20000)
    assert float(far_low) == pytest.approx(limit_low, abs=0.01)
    assert float(far_high) == pytest.approx(limit_high, abs=0.02)
    with pytest.raises(FlopcastError, match="k = 61 exceeds the 60 samples"):
        majority_vote_bounds(n, c, 61)


# --- samples CSV -----------------------------------------------------------------------------

def _csv(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "samples.csv"
    path.write_text(header + body)
    return path


def test_read_samples_groups_and_picks(tmp_path):
    path = _csv(tmp_path, "a,s,m1,1e9,MATH,1,10,3\nb,s,m1,1e9,MATH,2,20,0\n"
                          "c,s,m2,,MATH,1,1e1,10\n\n")
    groups = read_sample_groups(path)
    assert list(groups) == [("m1", "MATH"), ("m2", "MATH")]
    m1 = groups[("m1", "MATH")]
    assert m1.problems == ("1", "2") and m1.samples.tolist() == [10, 20]
    assert m1.correct.tolist() == [3, 0] and m1.params == 1e9 and m1.path == path
    assert read_samples(path, model="m2").params is None
    assert not read_samples(path, model="m2").samples.flags.writeable
    with pytest.raises(FlopcastError, match="2 .model, benchmark. groups match .m1/MATH, m2/MATH"):
        read_samples(path)
    with pytest.raises(FlopcastError, match="no rows for model='m3'"):
        read_samples(path, model="m3")


@pytest.mark.parametrize(("body", "header", "expected"), [
    ("", "", "empty file"),
    ("", HEADER, "no rows after the header"),
    ("a,s,m,1,MATH,1,10\n", "id,source,model,params,benchmark,problem,samples\n",
     "missing column correct; columns found: id, source"),
    ("a,s,m,1,MATH,1,10,-1\n", HEADER,
     r"row 1 \(line 2, problem '1'\), column correct: '-1' \(allowed"),
    ("a,s,m,1,MATH,1,10,3\na,s,m,1,MATH,2,10,11\n", HEADER,
     r"row 2 \(line 3, problem '2'\), column correct: 11 exceeds samples = 10"),
    ("a,s,m,1,MATH,1,ten,3\n", HEADER, r"column samples: 'ten' \(allowed: a whole number >= 1\)"),
    ("a,s,m,1,MATH,1,0,0\n", HEADER, r"column samples: '0'"),
    ("a,s,m,1,MATH,1,10,2.5\n", HEADER, r"column correct: '2.5'"),
    ("a,s,m,1,MATH,1,10,\n", HEADER, r"column correct: ''"),
    ("a,s,m,1,MATH,1,10,1\nb,s,m,1,MATH,1,10,2\n", HEADER, r"column problem: '1' repeats row 1"),
    ("a,s,m,1,MATH,,10,1\n", HEADER, r"column problem: empty"),
    ("a,s,m,-5,MATH,1,10,1\n", HEADER, r"column params: '-5'"),
    ("a,s,m,1,MATH,1,10,1\nb,s,m,2,MATH,2,10,1\n", HEADER, "column params differs"),
])
def test_bad_samples_csv_names_the_field(tmp_path, body, header, expected):
    path = _csv(tmp_path, body, header)
    with pytest.raises(FlopcastError, match=expected) as err:
        read_sample_groups(path)
    assert str(path) in str(err.value)


def test_missing_file_and_bad_arrays(tmp_path):
    with pytest.raises(FlopcastError, match="file not found"):
        read_samples(tmp_path / "none.csv")
    with pytest.raises(FlopcastError, match="2 problem names for 1 rows"):
        SampleSet("m", "b", ("1", "2"), np.array([3]), np.array([1]))


def test_subsample_is_hypergeometric_and_seeded():
    data = SampleSet("m", "b", tuple("abc"), np.array([1000, 1000, 50]), np.array([0, 500, 50]))
    one, two = data.subsample(20, seed=7), data.subsample(20, seed=7)
    assert np.array_equal(one.correct, two.correct)
    assert one.samples.tolist() == [20, 20, 20]
    assert one.correct[0] == 0 and one.correct[2] == 20 and 0 < one.correct[1] < 20
    with pytest.raises(FlopcastError, match="n_sub = 51 exceeds the 50 samples of problem 'c'"):
        data.subsample(51)


# --- the Pythia MATH file (Brown et al. 2024) --------------------------------------------------

#: Power-law fits to the full curves as shared/reasoning/README.md A1 lists them (a, b).
README_POWER_LAW = {"pythia-70m": (-7.767, -0.187), "pythia-410m": (-5.469, -0.282),
                    "pythia-2.8b": (-4.167, -0.336), "pythia-12b": (-4.059, -0.363)}

#: docs/reasoning.md, the held-out tables (n_sub = 100, seed 0): predicted coverage at k = 1000
#: and 10000 by the Beta mixture, the power law, the combined default and the model average,
#: and the full-data truth.
DOCUMENTED = {
    "pythia-12b": ((0.722, 0.857), (0.684, 0.841), (0.723, 0.875)),
    "pythia-2.8b": ((0.615, 0.759), (0.610, 0.783), (0.678, 0.812)),
    "pythia-410m": ((0.409, 0.573), (0.396, 0.598), (0.482, 0.656)),
    "pythia-70m": ((0.107, 0.169), (0.121, 0.242), (0.124, 0.266)),
}
DOCUMENTED_DEFAULT = {
    "pythia-12b": ((0.715, 0.864), (0.747, 0.887)),
    "pythia-2.8b": ((0.630, 0.798), (0.650, 0.813)),
    "pythia-410m": ((0.414, 0.610), (0.432, 0.623)),
    "pythia-70m": ((0.123, 0.235), (0.124, 0.229)),
}
#: docs/reasoning.md, "Against issue 9's extrapolation bar": seed-0 mean absolute error in
#: points over k = 300, 1000, 3000, 10000 at n = 100 (combined, model average, Beta mixture).
DOCUMENTED_BAR = {"pythia-12b": (1.3, 1.5, 1.0), "pythia-2.8b": (3.9, 2.1, 5.9),
                  "pythia-410m": (5.7, 4.2, 7.2), "pythia-70m": (1.3, 1.5, 4.2)}
BAR_K = [300, 1000, 3000, 10000]


def test_pythia_file_reads_and_estimator_is_exact_at_n(pythia):
    assert [m for m, _ in pythia] == ["pythia-12b", "pythia-2.8b", "pythia-410m", "pythia-70m"]
    for data in pythia.values():
        assert data.n_problems == 128 and set(data.samples.tolist()) == {10000}
        assert float(coverage(data.samples, data.correct, 10000)) == np.mean(data.correct > 0)
        a, b = README_POWER_LAW[data.model]
        fit = fit_power_law(data.samples, data.correct)
        assert fit.a == pytest.approx(a, rel=0.05) and fit.b == pytest.approx(b, abs=0.02)


def test_pythia_held_out_matches_documented_table(pythia):
    for (model, _), data in pythia.items():
        result = held_out(data, 100, [1000, 10000], reps=3)
        beta, power, truth = DOCUMENTED[model]
        assert result.truth == pytest.approx(truth, abs=5e-4)
        assert result.predictions["beta-mixture"].coverage == pytest.approx(beta, abs=5e-4)
        assert result.predictions["power-law"].coverage == pytest.approx(power, abs=5e-4)
        combined, average = DOCUMENTED_DEFAULT[model]
        assert result.predictions["combined"].coverage == pytest.approx(combined, abs=5e-4)
        assert result.predictions["model-average"].coverage == pytest.approx(average, abs=5e-4)
        assert result.preferred in cov_module.METHODS
        assert result.in_band("power-law").dtype == bool


def test_pythia_extrapolation_errors_match_documented_table(pythia):
    """The seed-0 errors of the bar's set-up as docs/reasoning.md lists them (to 0.05 points),
    and the default better than the old Beta-mixture default on average over the models."""
    errors = {}
    for (model, _), data in pythia.items():
        result = held_out(data, 100, BAR_K, reps=0)
        errors[model] = [100 * float(result.abs_error(m).mean())
                         for m in ("combined", "model-average", "beta-mixture")]
        assert errors[model] == pytest.approx(DOCUMENTED_BAR[model], abs=0.051)
    mean = np.mean(list(errors.values()), axis=0)
    assert mean[0] < mean[2] and mean[1] < mean[2]


@pytest.mark.xfail(strict=True, reason="issue 9's bar is not met on the public file's seed-0 "
                   "draw: Pythia-2.8B misses by 0.9 and 410M by 2.7 points (docs/reasoning.md, "
                   "'Against issue 9's extrapolation bar'); strict, so a pass is noticed")
def test_pythia_extrapolation_bar_at_100_samples(pythia):
    """Issue 9's acceptance: from 100 samples per problem (hypergeometric, seed 0), the default
    predicts coverage at k = 300-10,000 within 3 points of the full-data truth, per model."""
    for data in pythia.values():
        result = held_out(data, 100, BAR_K, reps=0)
        assert 100 * result.abs_error(cov_module.DEFAULT_METHOD).mean() <= 3.0, data.model


# --- the backtest inside the subsample (benchmarks/reasoning_extrapolation.py --backtest) -----

def _extrapolation_benchmark():
    """benchmarks/reasoning_extrapolation.py as a module (benchmarks/ is not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reasoning_extrapolation.py"
    spec = importlib.util.spec_from_file_location("reasoning_extrapolation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backtest_rules_follow_the_backtest():
    """Stacking and selection take the part the backtest found exact; held-out-likelihood
    weights are exp(score) normalised (Beta 2 nats ahead: e^2 / (1 + e^2)) in the default's
    place of the Akaike weights; with no usable fold every rule is the default."""
    bench = _extrapolation_benchmark()
    grid = bench._simplex(3, 0.05)
    assert grid.shape == (231, 3) and np.allclose(grid.sum(axis=1), 1.0) and grid.min() >= 0
    parts = np.array([[0.50, 0.60], [0.70, 0.80], [0.40, 0.45]])
    residuals = np.random.default_rng(0).normal(0.0, 0.05, size=(4, 3, 5))
    residuals[:, 1] = 0.0  # the Kumaraswamy predicted every held-out point exactly
    scores = np.array([[-10.0, -12.0]] * 4)
    rules = bench.backtest_rules(parts, (0.25, 0.75), residuals, scores)
    assert rules["default"] == pytest.approx(0.5 * (0.25 * parts[0] + 0.75 * parts[1])
                                             + 0.5 * parts[2])
    assert rules["stacked"] == pytest.approx(parts[1])
    assert rules["selected"] == pytest.approx(parts[1])
    w = math.exp(2.0) / (1.0 + math.exp(2.0))
    assert rules["held-out weights"] == pytest.approx(0.5 * (w * parts[0] + (1 - w) * parts[1])
                                                      + 0.5 * parts[2])
    empty = bench.backtest_rules(parts, (0.25, 0.75), np.empty((0, 3, 5)), np.empty((0, 2)))
    assert all(v == pytest.approx(rules["default"]) for v in empty.values())


def test_backtest_held_out_likelihood_and_folds():
    """The held-out score's building block is the beta-binomial's closed form (Beta family),
    and a subsample gives one fold per half of each split, residuals at k in (n/2, n]."""
    from scipy import special

    bench = _extrapolation_benchmark()
    n, c = _synthetic(40, 30, 0.2, 0.4, 3.0, seed=5)
    direct = cov_module.beta_binomial_log_pmf(n, c, 0.4, 3.0, special, choose=False).sum()
    assert bench._log_marginal("beta", np.log([0.4, 3.0]), n, c) == pytest.approx(direct)
    sub = SampleSet("m", "b", tuple(map(str, range(n.size))), n, c)
    residuals, scores = bench._backtest(sub)
    assert residuals.shape[:2] == (2 * bench.SPLITS, 3) and scores.shape == (2 * bench.SPLITS, 2)
    assert np.all(np.isfinite(residuals)) and np.all(np.isfinite(scores))
    assert np.all(np.abs(residuals) < 0.5)


def test_coverage_never_falls_where_the_exact_estimate_hands_over():
    """Beyond the samples drawn, a fitted curve starting below the exact estimate at
    k = min n_i is lifted to it: pass@k is non-decreasing in k (a user's report: 48.4 % at
    k = 100 then 45.4 % at k = 101 on a 100-sample subsample)."""
    import numpy as np

    from flopcast.workloads.reasoning.coverage import METHODS, coverage, extrapolate

    rng = np.random.default_rng(3)
    p = rng.beta(0.3, 2.0, 60)
    n = np.full(60, 100)
    c = rng.binomial(n, p)
    exact = float(coverage(n, c, 100))
    for method in METHODS:
        ext = extrapolate(n, c, [100, 101, 150, 1000], method, reps=0)
        assert np.all(ext.coverage >= exact - 1e-12), method
        assert np.all(np.diff(ext.coverage) >= -1e-12), method


def test_a_negative_seed_is_one_line_not_a_traceback(tmp_path, capsys):
    from flopcast.cli import main

    samples = tmp_path / "s.csv"
    samples.write_text("model,benchmark,problem,samples,correct\n"
                       + "".join(f"m,b,{i},100,{i % 7}\n" for i in range(20)))
    with pytest.raises(SystemExit) as exit_:
        main(["reason", "coverage", "--samples", str(samples), "--k", "100000",
              "--seed", "-1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "seed" in err
