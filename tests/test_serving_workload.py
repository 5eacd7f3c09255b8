"""Serving workload: seeded samplers, arrival laws, traces and the request-length datasets."""

import json
import math

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from flopcast.errors import FlopcastError, validation_message
from flopcast.workloads.serving.workload import (
    DATASET_DIR,
    ArrivalSpec,
    LengthSpec,
    Requests,
    arrival_times,
    dataset_ids,
    load_dataset,
    make_requests,
    read_trace,
    sample_lengths,
)

N = 20_000
SHAREGPT = LengthSpec(kind="dataset", dataset="sharegpt")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def within_sampling_error(values: np.ndarray, target: float, z: float = 5.0) -> bool:
    """|mean - target| within z standard errors (plus half a token of rounding)."""
    se = values.std() / math.sqrt(values.size)
    return abs(values.mean() - target) <= z * se + 0.5


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_arrays_and_different_seed_differs():
    args = (SHAREGPT, ArrivalSpec(kind="gamma", rate=5, cv=2), 500)
    a, b, c = make_requests(*args, seed=7), make_requests(*args, seed=7), make_requests(*args)
    for field in ("arrival_s", "input_len", "output_len", "prefix_id", "prefix_len"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.input_len, c.input_len)
    assert a.arrival_s.dtype == np.float64 and a.input_len.dtype == np.int64


def test_lengths_do_not_depend_on_the_arrival_law():
    p = make_requests(SHAREGPT, ArrivalSpec(kind="poisson", rate=2), 300, seed=3)
    o = make_requests(SHAREGPT, ArrivalSpec(kind="offline"), 300, seed=3)
    assert np.array_equal(np.sort(p.input_len), np.sort(o.input_len))


def test_requests_are_sorted_read_only_and_sized():
    r = make_requests(SHAREGPT, ArrivalSpec(kind="poisson", rate=10), 1000, seed=1)
    assert len(r) == 1000 and np.all(np.diff(r.arrival_s) >= 0)
    with pytest.raises(ValueError):
        r.input_len[0] = 5
    shuffled = Requests(r.arrival_s[::-1], r.input_len[::-1], r.output_len[::-1])
    assert np.array_equal(shuffled.sorted().arrival_s, r.arrival_s)


# --------------------------------------------------------------------------- lengths


@pytest.mark.parametrize("spec, mean_in, mean_out", [
    (LengthSpec(kind="fixed", input_len=128, output_len=32), 128, 32),
    (LengthSpec(kind="uniform", input_len=1000, output_len=200, range_ratio=0.15), 1000, 200),
    (LengthSpec(kind="random", input_len=1024, output_len=512, range_ratio=0.0), 512.5, 256.5),
    (LengthSpec(kind="random", input_len=1000, output_len=100, range_ratio=0.5), 750, 75),
    (LengthSpec(kind="normal", input_len=256, output_len=128, input_std=40, output_std=20),
     256, 128),
    (LengthSpec(kind="lognormal", input_len=300, output_len=150, input_sigma=1.2,
                output_sigma=0.8, input_max=4096, output_max=2048), 300, 150),
])
def test_sampler_means_within_sampling_error(spec, mean_in, mean_out):
    x, y = sample_lengths(spec, N, rng())
    assert x.dtype == y.dtype == np.int64 and x.min() >= 1 and y.min() >= 1
    assert within_sampling_error(x, mean_in) and within_sampling_error(y, mean_out)


def test_random_ratio_zero_spans_one_to_l_and_uniform_spans_the_band():
    x, _ = sample_lengths(LengthSpec(kind="random", input_len=64, output_len=8), N, rng())
    assert x.min() == 1 and x.max() == 64
    x, _ = sample_lengths(LengthSpec(kind="uniform", input_len=100, output_len=8,
                                     range_ratio=0.1), N, rng())
    assert x.min() == 90 and x.max() == 110


def test_bounds_clamp_and_truncate_and_max_total_is_kept():
    spec = LengthSpec(kind="normal", input_len=10, output_len=10, input_std=30, output_std=1)
    x, _ = sample_lengths(spec, N, rng())
    assert x.min() == 1  # clamped like AIPerf
    spec = LengthSpec(kind="lognormal", input_len=500, output_len=500, input_sigma=1.5,
                      output_sigma=1.5, input_min=10, input_max=2000, max_total_len=2500)
    x, y = sample_lengths(spec, N, rng())
    assert x.min() >= 10 and x.max() <= 2000 and (x + y).max() <= 2500
    assert within_sampling_error(x, 500) and within_sampling_error(y, 500)


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "fixed", "input_len": -5, "output_len": 10}, "input_len"),
    ({"kind": "fixed", "input_len": 5, "output_len": 0}, "output_len"),
    ({"kind": "fixed", "input_len": 5, "output_len": math.inf}, "output_len"),
    ({"kind": "uniform", "input_len": 5, "output_len": 5, "range_ratio": 1.5}, "range_ratio"),
    ({"kind": "uniform", "input_len": 5, "output_len": 5, "range_ratio": 1.0}, "range_ratio"),
    ({"kind": "normal", "input_len": 5, "output_len": 5, "input_std": -1, "output_std": 1},
     "input_std"),
    ({"kind": "lognormal", "input_len": 5, "output_len": 5, "input_sigma": 0,
      "output_sigma": 1}, "input_sigma"),
    ({"kind": "lognormal", "input_len": 5, "output_len": 5}, "input_sigma"),
    ({"kind": "fixed", "input_len": 5}, "output_len"),
    ({"kind": "fixed", "input_len": 5, "output_len": 5, "input_sigma": 1}, "input_sigma"),
    ({"kind": "fixed", "input_len": 5, "output_len": 5, "input_max": 4}, "input_len"),
    ({"kind": "fixed", "input_len": 5, "output_len": 5, "output_min": 0}, "output_min"),
    ({"kind": "dataset"}, "dataset"),
    ({"kind": "dataset", "dataset": "no-such-set"}, "no-such-set"),
    ({"kind": "fixed", "input_len": 5, "output_len": 5, "speed": 3}, "speed"),
])
def test_length_spec_refusals_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as e:
        LengthSpec(**kwargs)
    message = validation_message(e.value)
    assert field in message and "\n" not in message


def test_negative_length_message_gives_value_and_what_is_allowed():
    with pytest.raises(ValidationError) as e:
        LengthSpec(kind="fixed", input_len=-5, output_len=10)
    assert validation_message(e.value) == (
        "input_len: -5.0 is not allowed: a length is a number of tokens in (0, 1,073,741,824]")


# --------------------------------------------------------------------------- arrivals


def test_poisson_rate_recovered_and_exponential_gaps():
    t = arrival_times(ArrivalSpec(kind="poisson", rate=8.0), N, rng())
    gaps = np.diff(np.concatenate([[0.0], t]))
    assert t[0] > 0 and np.all(gaps >= 0)
    assert abs(N / t[-1] - 8.0) < 5 * 8.0 / math.sqrt(N)
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.05  # cv of exponential gaps is 1


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_cv_and_rate_recovered(cv):
    spec = ArrivalSpec(kind="gamma", rate=4.0, cv=cv)
    gaps = np.diff(np.concatenate([[0.0], arrival_times(spec, 4 * N, rng())]))
    assert abs(gaps.mean() - 0.25) < 5 * 0.25 * cv / math.sqrt(4 * N)
    assert abs(gaps.std() / gaps.mean() - cv) < 0.06 * cv
    assert spec.burstiness == pytest.approx(1 / cv**2)


def test_fixed_offline_concurrency_and_infinite_rate():
    assert np.allclose(arrival_times(ArrivalSpec(kind="fixed", rate=2), 4, rng()),
                       [0, 0.5, 1.0, 1.5])
    for spec in (ArrivalSpec(kind="offline"), ArrivalSpec(kind="concurrency", concurrency=8),
                 ArrivalSpec(kind="poisson", rate=math.inf)):
        assert np.array_equal(arrival_times(spec, 5, rng()), np.zeros(5))


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "poisson"}, "rate"),
    ({"kind": "poisson", "rate": 0}, "rate"),
    ({"kind": "poisson", "rate": -2}, "rate"),
    ({"kind": "offline", "rate": 2}, "rate"),
    ({"kind": "gamma", "rate": 2, "cv": 0}, "cv"),
    ({"kind": "poisson", "rate": 2, "cv": 2}, "cv"),
    ({"kind": "concurrency"}, "concurrency"),
    ({"kind": "concurrency", "concurrency": 0}, "concurrency"),
])
def test_arrival_spec_refusals_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as e:
        ArrivalSpec(**kwargs)
    assert field in validation_message(e.value)


# --------------------------------------------------------------------------- prefixes


def test_shared_prefixes():
    spec = LengthSpec(kind="random", input_len=400, output_len=20)
    r = make_requests(spec, ArrivalSpec(kind="offline"), N, seed=2, shared_prefix_len=300,
                      num_prefixes=4)
    assert set(np.unique(r.prefix_id)) <= {-1, 0, 1, 2, 3}
    assert np.array_equal(r.prefix_len, np.minimum(300, r.input_len - 1))
    assert np.all((r.prefix_id == -1) == (r.prefix_len == 0))
    counts = np.bincount(r.prefix_id[r.prefix_id >= 0])
    assert counts.min() > 0.9 * counts.mean()
    plain = make_requests(spec, ArrivalSpec(kind="offline"), 10)
    assert np.all(plain.prefix_id == -1) and np.all(plain.prefix_len == 0)
    with pytest.raises(FlopcastError, match="num_prefixes"):
        make_requests(spec, ArrivalSpec(kind="offline"), 10, shared_prefix_len=100)
    with pytest.raises(FlopcastError, match="num_requests = 0"):
        make_requests(spec, ArrivalSpec(kind="offline"), 0)


# --------------------------------------------------------------------------- traces


def test_trace_round_trip_csv_and_jsonl(tmp_path):
    r = make_requests(SHAREGPT, ArrivalSpec(kind="poisson", rate=3), 200, seed=5,
                      shared_prefix_len=64, num_prefixes=3)
    cols = ("arrival_s", "input_len", "output_len", "prefix_id", "prefix_len")
    csv_path = tmp_path / "trace.csv"
    lines = [",".join(cols)] + [",".join(repr(float(r.arrival_s[i])) if c == "arrival_s" else
                                         str(getattr(r, c)[i]) for c in cols)
                                for i in range(len(r))]
    csv_path.write_text("\n".join(lines) + "\n")
    jsonl_path = tmp_path / "trace.jsonl"
    jsonl_path.write_text("".join(json.dumps({c: getattr(r, c)[i].item() for c in cols}) + "\n"
                                  for i in range(len(r))))
    for path in (csv_path, jsonl_path):
        back = read_trace(path)
        for c in cols:
            assert np.array_equal(getattr(back, c), getattr(r, c)), (path.suffix, c)


def test_trace_aliases_defaults_and_sorting(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("timestamp,input_len,output_len\n2.5,10,5\n0.5,20,6\n\n1.0,30,7\n")
    r = read_trace(path)
    assert np.array_equal(r.arrival_s, [0.5, 1.0, 2.5])
    assert np.array_equal(r.input_len, [20, 30, 10])
    assert np.all(r.prefix_id == -1) and np.all(r.prefix_len == 0)
    path = tmp_path / "t.jsonl"
    path.write_text('{"arrival": 1, "input_len": 3, "output_len": 4, "prefix_id": 0}\n')
    assert read_trace(path).prefix_id.tolist() == [0]


BAD_TRACES = [
    ("t.csv", "arrival_s,input_len,output_len\n0,10,5\n1,0,5\n", "input_len", "'0'"),
    ("t.csv", "arrival_s,input_len,output_len\n0,-3,5\n", "input_len", "'-3'"),
    ("t.csv", "arrival_s,input_len,output_len\n0,10,abc\n", "output_len", "'abc'"),
    ("t.csv", "arrival_s,input_len,output_len\n-1,10,5\n", "arrival_s", "'-1'"),
    ("t.csv", "arrival_s,input_len,output_len\n0,10.5,5\n", "input_len", "'10.5'"),
    ("t.csv", "arrival_s,input_len,output_len\n0,10,\n", "output_len", "required"),
    ("t.csv", "arrival_s,input_len\n0,10\n", "output_len", "missing column"),
    ("t.csv", "input_len,output_len\n10,5\n", "arrival_s", "missing column"),
    ("t.csv", "arrival_s,input_len,output_len\n", "empty", "no requests"),
    ("t.csv", "", "empty", "no requests"),
    ("t.csv", "arrival_s,input_len,output_len,prefix_len\n0,10,5,11\n", "prefix_len",
     "exceeds input_len"),
    ("t.jsonl", '{"arrival_s": 0, "input_len": 10, "output_len": 5}\n'
                '{"arrival_s": 1, "input_len": "x", "output_len": 5}\n', "input_len", "line 2"),
    ("t.jsonl", '{"arrival_s": 0, "input_len": 10}\n{"arrival_s": 1, "input_len": 3, '
                '"output_len": 5}\n', "output_len", "line 1"),
    ("t.jsonl", '{"arrival_s": 0, "input_len": 10, "output_len": 0}\n', "output_len", "0"),
    ("t.jsonl", '{"arrival_s": 0, \n', "line 1", "not JSON"),
    ("t.jsonl", "[1, 2, 3]\n", "line 1", "JSON object"),
    ("t.txt", "arrival_s,input_len,output_len\n0,1,1\n", "unknown format", ".csv"),
]


@pytest.mark.parametrize("name, text, field, detail", BAD_TRACES)
def test_bad_traces_refused_with_one_line_naming_the_field(tmp_path, name, text, field,
                                                           detail):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FlopcastError) as e:
        read_trace(path)
    message = str(e.value)
    assert str(path) in message and field in message and detail in message
    assert "\n" not in message


def test_missing_trace_file(tmp_path):
    with pytest.raises(FlopcastError, match="file not found"):
        read_trace(tmp_path / "absent.csv")


def test_bad_row_names_row_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,input_len,output_len\n0,10,5\n\n1,10,-2\n")
    with pytest.raises(FlopcastError, match=r"row 2 \(line 4\), column output_len: '-2'"):
        read_trace(path)


# --------------------------------------------------------------------------- datasets

DATASETS = ["sharegpt", "mlperf-llama2-70b-openorca", "mlperf-llama3.1-405b",
            "mlperf-mixtral-8x7b", "mlperf-deepseek-r1", "mlperf-llama3.1-8b-cnndm"]


def test_all_dataset_yamls_load():
    assert sorted(dataset_ids()) == sorted(DATASETS)
    assert {p.stem for p in DATASET_DIR.glob("*.yaml")} == set(DATASETS)
    assert load_dataset("ShareGPT").id == "sharegpt"
    with pytest.raises(FlopcastError, match="unknown"):
        load_dataset("nope")


def test_stated_numbers_match_the_published_statistics():
    s = load_dataset("sharegpt")
    assert (s.input.mean, s.output.mean) == (224, 191)  # DataCrunch run totals
    assert (s.input.min, s.input.max, s.output.min, s.max_total_len) == (4, 1024, 4, 2048)
    stated = {"mlperf-llama2-70b-openorca": 294.45, "mlperf-llama3.1-405b": 684.68,
              "mlperf-mixtral-8x7b": 144.84, "mlperf-deepseek-r1": 3886.2274}
    for name, mean in stated.items():
        ds = load_dataset(name)
        assert ds.output.mean == mean and ds.input.kind == "unknown"
    for name in DATASETS:
        ds = load_dataset(name)
        for key, text in ds.sources.items():
            assert text.strip(), (name, key)
        assumed = [k for k, v in ds.sources.items() if v.lstrip().startswith("assumed")]
        assert "output.sigma" in assumed or ds.output.kind != "lognormal" or name == "sharegpt"


@pytest.mark.parametrize("name", DATASETS)
def test_sampled_dataset_means_match_stated(name):
    ds = load_dataset(name)
    spec = LengthSpec(kind="dataset", dataset=name,
                      input_len=None if ds.input.kind != "unknown" else 500)
    x, y = sample_lengths(spec, N, rng(11))
    if ds.input.kind != "unknown":
        assert within_sampling_error(x, ds.input.mean)
    assert within_sampling_error(y, ds.output.mean)
    assert x.min() >= ds.input.min and y.min() >= ds.output.min
    assert ds.output.max is None or y.max() <= ds.output.max
    if ds.max_total_len and spec.input_len is None:
        assert (x + y).max() <= ds.max_total_len


def test_unknown_input_needs_input_len():
    spec = LengthSpec(kind="dataset", dataset="mlperf-llama3.1-405b")
    with pytest.raises(FlopcastError, match="input-length distribution is not stated.*input_len"):
        sample_lengths(spec, 10, rng())
    with pytest.raises(FlopcastError, match="outside dataset"):
        sample_lengths(LengthSpec(kind="dataset", dataset="mlperf-deepseek-r1",
                                  input_len=4000), 10, rng())


def test_every_stated_number_needs_a_source():
    data = yaml.safe_load((DATASET_DIR / "sharegpt.yaml").read_text())
    del data["sources"]["output.sigma"]
    from flopcast.specs.dataset import LengthDataset

    with pytest.raises(ValidationError, match="output.sigma"):
        LengthDataset.model_validate(data)
