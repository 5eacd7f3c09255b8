"""Several draws of a random workload, summarised by their median (serving.draws)."""

import numpy as np
import pytest

from flopcast.api.serve import ServeRequest, run_serve
from flopcast.errors import FlopcastError
from flopcast.workloads.serving.draw_counts import MAX_DRAWS, draws_needed
from flopcast.workloads.serving.draws import median_summary, serve_draws
from flopcast.workloads.serving.workload import (
    ArrivalSpec,
    LengthSpec,
    make_requests,
)


def test_draws_needed():
    assert draws_needed(200, seed_matters=False) == 1
    assert draws_needed(200, seed_matters=True) == MAX_DRAWS  # 10 wanted, capped
    assert draws_needed(1200, seed_matters=True) == 3          # odd: a median is one draw's
    assert draws_needed(500, seed_matters=True) == 5
    assert draws_needed(2000, seed_matters=True) == 1
    assert draws_needed(50_000, seed_matters=True) == 1


def test_median_summary_entry_by_entry():
    runs = [{"requests_per_s": x, "preemptions": p, "ttft_ms": {"p50": t, "p99": None},
             "cdf": {"ttft_ms": {"quantiles": [0.0, 1.0], "values": [t, 2 * t]}},
             "config": {"gpu": g}}
            for x, p, t, g in ((3.0, 1, 10.0, "a"), (1.0, 4, 30.0, "b"), (2.0, 2, 20.0, "c"))]
    s = median_summary(runs)
    assert s["requests_per_s"] == 2.0 and s["preemptions"] == 2
    assert isinstance(s["preemptions"], int)
    assert s["ttft_ms"] == {"p50": 20.0, "p99": None}          # undefined in every draw
    assert s["cdf"]["ttft_ms"] == {"quantiles": [0.0, 1.0], "values": [20.0, 40.0]}
    assert s["config"] == {"gpu": "a"}                           # not a number: first draw
    assert s["draws"] == 3
    assert s["draw_range"]["requests_per_s"] == [1.0, 3.0]
    assert s["draw_range"]["ttft_ms"] == {"p50": [10.0, 30.0], "p99": None}
    with pytest.raises(FlopcastError):
        median_summary([])


def _fake_simulate(reqs, first):
    return {"requests_per_s": float(reqs.output_len.max())}, "raw" if first else None


def test_serve_draws_one_draw_when_the_seed_does_not_matter():
    fixed = LengthSpec(kind="fixed", input_len=100, output_len=50)
    off = ArrivalSpec(kind="offline")
    s, raw = serve_draws(_fake_simulate, lambda seed: make_requests(fixed, off, 10, seed=seed))
    assert s["draws"] == 1 and raw == "raw"


def test_serve_draws_median_of_the_seeds():
    """Ten requests of a lognormal law: the median of MAX_DRAWS seeds' values, not seed 0's."""
    spec = LengthSpec(kind="lognormal", input_len=100, output_len=200,
                      input_sigma=1.0, output_sigma=1.0)
    off = ArrivalSpec(kind="offline")
    s, raw = serve_draws(_fake_simulate, lambda seed: make_requests(spec, off, 10, seed=seed),
                         seed=5)
    each = [make_requests(spec, off, 10, seed=5 + i).output_len.max() for i in range(MAX_DRAWS)]
    assert s["draws"] == MAX_DRAWS and raw == "raw"
    assert s["requests_per_s"] == float(np.median(each))
    assert s["draw_range"]["requests_per_s"] == [min(each), max(each)]
    assert serve_draws(_fake_simulate, lambda seed: make_requests(spec, off, 10, seed=seed),
                       seed=5, draws=1)[0]["requests_per_s"] == each[0]


def test_run_serve_reports_the_median_over_draws():
    """A short offline ShareGPT run: its throughput is the median of the single-seed runs
    (a finite run's length is its longest request's, which one seed alone sets)."""
    base = dict(model="llama-3.1-8b", gpu="h100-sxm", dataset="sharegpt", offline=True,
                num_requests=60)
    res = run_serve(ServeRequest(**base))
    single = [run_serve(ServeRequest(**base, seed=s, draws=1)).requests_per_s
              for s in range(res.draws)]
    assert res.draws == MAX_DRAWS
    assert res.requests_per_s == pytest.approx(float(np.median(single)), rel=1e-12)
    assert res.draw_range["requests_per_s"] == pytest.approx([min(single), max(single)])
    assert min(single) < max(single)            # the draws differ: the median is not one seed's
    fixed = run_serve(ServeRequest(model="llama-3.1-8b", gpu="h100-sxm", offline=True,
                                   input_len=100, output_len=20, num_requests=60))
    assert fixed.draws == 1


def test_bad_draws_refused():
    with pytest.raises(FlopcastError, match="draws: must be between 1 and"):
        run_serve(ServeRequest(model="llama-3.1-8b", offline=True, input_len=10,
                               output_len=10, num_requests=5, draws=0))


def test_median_of_distributions_some_draws_lack():
    """TPOT's distribution is empty in a draw whose outputs are all one token: the median is
    over the draws that have it, and empty only when none has it."""
    runs = [{"cdf": {"tpot_ms": {"quantiles": [0.5], "values": v}}} for v in
            ([], [2.0], [4.0], [], [3.0])]
    assert median_summary(runs)["cdf"]["tpot_ms"]["values"] == [3.0]
    none = [{"cdf": {"tpot_ms": {"quantiles": [0.5], "values": []}}}] * 3
    assert median_summary(none)["cdf"]["tpot_ms"]["values"] == []


def test_tiny_runs_with_one_token_outputs_in_some_draws():
    """Random one- to three-token outputs: some draws have no TPOT; the answer has one."""
    res = run_serve(ServeRequest(model="llama-3.1-8b", input_len=100, output_len=2,
                                 length_dist="uniform", range_ratio=0.5, num_requests=1,
                                 request_rate=5, seed=1))
    assert res.draws == MAX_DRAWS and res.tpot_ms["p50"] is not None
    assert res.cdf["tpot_ms"].values[res.cdf["tpot_ms"].quantiles.index(0.5)] == \
        pytest.approx(res.tpot_ms["p50"])


def test_asked_draws_of_a_fixed_workload_run_once():
    warnings = []
    res = run_serve(ServeRequest(model="llama-3.1-8b", offline=True, input_len=100,
                                 output_len=20, num_requests=10, draws=5), warnings.append)
    assert res.draws == 1 and any("does not depend on the seed" in w for w in warnings)
