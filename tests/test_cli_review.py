"""What a user's review of the CLI found (2026-11-24): each refusal is one line with exit 2
and names the real cause; results say what bounds them. API calls where the CLI adds
nothing, the command line where the message or exit status is the point."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flopcast.api.reason import ReasonCoverageRequest, run_reason_coverage
from flopcast.api.serve import ServePlanRequest, ServeRequest, run_serve, run_serve_plan
from flopcast.errors import FlopcastError

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reasoning" / "pythia-math-samples.csv"
LOAD = dict(model="llama-3.1-8b", input_len=100, output_len=20, num_requests=40)


def run(*args):
    env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def one_line_exit_2(p) -> str:
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    return p.stderr


def test_serve_with_a_rate_says_whether_each_p99_bound_holds():
    loose = run_serve(ServeRequest(**LOAD, request_rate=2, slo_tpot_p99=1e4, slo_itl_p99=1e4))
    tight = run_serve(ServeRequest(**LOAD, request_rate=2, slo_itl_p99=0.001))
    assert loose.slo_p99_met is True and tight.slo_p99_met is False
    assert run_serve(ServeRequest(**LOAD, request_rate=2)).slo_p99_met is None
    # a one-token output has no token gap: an ITL bound cannot be broken by it
    single = run_serve(ServeRequest(**{**LOAD, "output_len": 1}, request_rate=2,
                                    slo_itl_p99=0.001))
    assert single.slo_p99_met is True


@pytest.mark.parametrize("bound", ["0", "-5"])
def test_slo_bounds_must_be_positive(bound):
    err = one_line_exit_2(run("serve", "--model", "llama-3.1-8b", "--request-rate", "5",
                              "--slo-tpot-p99", bound))
    assert "--slo-tpot-p99" in err and "greater than 0" in err


def test_serve_plan_names_the_real_error():
    plan = dict(request_rate=1, input_len=10, output_len=10, slo_tpot_p99=50)
    with pytest.raises(FlopcastError, match="unknown id 'nosuch'"):
        run_serve_plan(ServePlanRequest(model="llama-3.1-8b", gpu_types="nosuch", **plan))
    with pytest.raises(FlopcastError, match="^model: give --model"):
        run_serve_plan(ServePlanRequest(**plan))
    with pytest.raises(FlopcastError, match="leaves no memory for KV cache.*and 3 more"):
        run_serve_plan(ServePlanRequest(model="llama-3.1-405b", gpu_types="l40s", **plan))


def test_coverage_without_a_bootstrap_has_null_bands_and_valid_json():
    if not SAMPLES.exists():
        pytest.skip(f"samples not found at {SAMPLES}")
    result = run_reason_coverage(ReasonCoverageRequest(samples=str(SAMPLES), k="10,100000",
                                                       reps=0))
    curve = result.curves[0]
    assert curve.low == [curve.coverage[0], None] and curve.high[1] is None
    json.loads(result.model_dump_json())  # NaN would not be JSON


def test_reason_cost_says_the_weights_do_not_fit():
    err = one_line_exit_2(run("reason", "cost", "-m", "llama-3.1-70b", "--gpus", "1"))
    assert "weights and workspace take" in err and "KV cache" in err


def test_profile_output_is_checked_before_measuring(tmp_path):
    missing = tmp_path / "no" / "x.yaml"
    assert "does not exist" in one_line_exit_2(
        run("profile", "--device", "cpu", "--quick", "-o", str(missing)))
    assert not missing.parent.exists()
    assert ".yaml" in one_line_exit_2(
        run("profile", "--device", "cpu", "--quick", "-o", str(tmp_path / "x.txt")))


def test_web_refuses_an_address_in_use():
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err = one_line_exit_2(run("web", "--port", str(port)))
    assert "--port" in err and "http://" not in err


def test_engine_version_is_reported_and_warned_about_where_it_changes_nothing():
    p = run("infer", "-m", "llama-3.1-8b", "--engine", "sglang", "--engine-version", "0.3.0",
            "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["config"]["engine_release"] == "0.3.0"
    assert "with sglang 0.3.0" in run("infer", "-m", "llama-3.1-8b", "--engine", "sglang",
                                      "--engine-version", "0.3.0").stdout
    generic = run("infer", "-m", "llama-3.1-8b", "--engine", "generic", "--engine-version",
                  "0.6.0")
    assert generic.returncode == 0 and "no release-dependent values" in generic.stderr


def test_a_target_accuracy_of_one_is_refused():
    """A fitted difficulty model reaches accuracy 1 only as k grows without bound; a target
    of 1 picked whichever k first rounded to it."""
    if not SAMPLES.exists():
        pytest.skip(f"samples not found at {SAMPLES}")
    err = one_line_exit_2(run("reason", "plan", "--samples", str(SAMPLES),
                              "--target-accuracy", "1"))
    assert "(0, 1)" in err


@pytest.mark.parametrize("flags, says", [
    (("--pp", "2", "--vp", "2", "--schedule", "1f1b"), "runs the interleaved schedule"),
    (("--pp", "2", "--schedule", "interleaved"), "vp > 1"),
    (("--tp", "2", "--no-sp", "--tp-comm-overlap"), "needs sequence parallelism"),
    (("--cpu-offload", "--offload", "optimizer=gpu"), "give one of them"),
    (("--offload", "optimizer=cpu,optimizer=nvme"), "given twice"),
])
def test_train_refuses_contradictory_layouts(flags, says):
    """Flags Megatron-LM refuses, or that contradict each other, are refused in one line
    instead of one silently winning."""
    assert says in one_line_exit_2(run("train", "-m", "llama-3.1-8b", *flags))


# Second review (2026-11-24, seventeenth session): crashes and silently changed inputs.

def test_lognormal_spread_beyond_its_bound_is_refused_not_a_traceback():
    p = run("serve", "-m", "llama-3.1-8b", "--request-rate", "5", "--input-len", "100",
            "--output-len", "20", "--length-dist", "lognormal", "--spread", "50")
    assert "(0, 4]" in one_line_exit_2(p)


def test_normal_spread_zero_means_fixed_lengths():
    r = run_serve(ServeRequest(**LOAD, length_dist="normal", spread=0, request_rate=5))
    assert (r.mean_input_len, r.mean_output_len) == (100, 20)


def test_a_gpu_entry_with_a_zero_peak_is_refused(tmp_path):
    src = Path(__file__).resolve().parents[1] / "src/flopcast/catalog/gpus/h100-sxm.yaml"
    bad = tmp_path / "zero.yaml"
    bad.write_text(src.read_text().replace("  bf16: 989.4", "  bf16: 0"))
    assert "peak_flops.bf16" in one_line_exit_2(
        run("train", "-m", "llama-3.1-8b", "--gpu", str(bad)))


@pytest.mark.parametrize("ks", ["1.5", "1,2.9,3", "nan"])
def test_fractional_k_is_refused_not_truncated(ks):
    if not SAMPLES.exists():
        pytest.skip(f"samples not found at {SAMPLES}")
    with pytest.raises(FlopcastError, match="whole numbers"):
        run_reason_coverage(ReasonCoverageRequest(samples=str(SAMPLES), k=ks))


def test_a_trace_saved_with_a_bom_is_read(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_bytes(b"\xef\xbb\xbfarrival_s,input_len,output_len\n0,100,20\n0.5,100,20\n")
    r = run_serve(ServeRequest(model="llama-3.1-8b", trace=str(trace)))
    assert r.num_requests == 2


def test_a_jsonl_trace_saved_with_a_bom_is_read(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(b'\xef\xbb\xbf{"arrival_s": 0, "input_len": 100, "output_len": 20}\n')
    assert run_serve(ServeRequest(model="llama-3.1-8b", trace=str(trace))).num_requests == 1



# Third review (2026-11-25, eighteenth session): options silently ignored, inconsistent
# refusals, messages naming the wrong option.

def _warnings(call, request) -> list[str]:
    said: list[str] = []
    call(request, said.append)
    return said


@pytest.mark.parametrize("options, says", [
    (dict(etp=2), "--etp 2: ignored; llama-3.1-8b has no experts"),
    (dict(sp=True), "--sp: ignored with --tp 1"),
    (dict(tp_comm_overlap=True), "--tp-comm-overlap: ignored with --tp 1"),
    (dict(lora_targets="qkv,out"), "--lora-targets qkv,out: ignored"),
    (dict(nvme_tb=3.0), "--nvme-tb: ignored; nothing is offloaded to NVMe"),
    (dict(gpus=12), "--gpus 12: 1 full node(s) of 8 and one of 4"),
])
def test_train_names_options_it_does_not_use(options, says):
    from flopcast.api.train import TrainRequest, run_train

    said = _warnings(run_train, TrainRequest(model="llama-3.1-8b", **options))
    assert any(says in s for s in said), said


def test_train_uses_what_it_is_given_without_a_warning():
    from flopcast.api.train import TrainRequest, run_train

    used = TrainRequest(model="llama-3.1-8b", gpus=16, tp=2, sp=True, lora_rank=8,
                        lora_targets="qkv,out", offload="params=nvme", nvme_tb=3.0)
    assert _warnings(run_train, used) == []


def test_plan_train_warns_of_a_partial_last_node_as_train_does():
    from flopcast.api.plan import PlanTrainRequest, partial_nodes, run_plan_train
    from flopcast.catalog import load_gpu

    said = _warnings(run_plan_train, PlanTrainRequest(
        model="llama-3.1-8b", gpu="h100-sxm,h100-sxm", gpus="8,12", seq_len=2048,
        global_batch=96, top=1))
    assert said == [
        "--gpus 12 on h100-sxm: 1 full node(s) of 8 and one of 4; communication is priced "
        "as if every node were full"]
    assert partial_nodes([load_gpu("h100-sxm")], [1, 4, 8, 64]) == []


def test_an_explicit_node_size_is_treated_like_the_default_one():
    """12 GPUs on nodes of 8 were accepted with the catalog's node size and refused with an
    explicit --gpus-per-node 8: both now run, with the same warning."""
    from flopcast.api.train import TrainRequest, run_train

    implicit = run_train(TrainRequest(model="llama-3.1-8b", gpus=12))
    explicit = run_train(TrainRequest(model="llama-3.1-8b", gpus=12, gpus_per_node=8))
    assert implicit.step_time_s == explicit.step_time_s


def test_serve_names_load_options_it_does_not_use(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_len,output_len\n0,100,20\n0.1,200,30\n")
    said = _warnings(run_serve, ServeRequest(model="llama-3.1-8b", trace=str(trace),
                                             num_requests=5))
    assert any("--num-requests 5: ignored" in s for s in said)
    said = _warnings(run_serve, ServeRequest(**LOAD, request_rate=2, batch_size=4,
                                             shared_prefix_len=200, num_prefixes=2))
    assert any("--batch-size 4: ignored by the vllm scheduler" in s for s in said)
    assert any("--shared-prefix-len 200: not shorter than --input-len 100" in s for s in said)
    assert _warnings(run_serve, ServeRequest(**LOAD, request_rate=2, batch_size=4,
                                             scheduler="static")) == []


def test_serve_says_the_weights_leave_no_kv_memory():
    with pytest.raises(FlopcastError, match="leaves no memory for KV cache.*756.0 GiB"):
        run_serve(ServeRequest(**{**LOAD, "model": "llama-3.1-405b"}, request_rate=1))


def test_a_concurrency_too_large_is_named_as_a_concurrency():
    err = one_line_exit_2(run("infer", "-m", "llama-3.1-8b", "--gpus", "8", "--tp", "1",
                              "--concurrency", "100000"))
    assert err.startswith("error: concurrency: 100000 over 8 replicas is 12500 sequences")


def test_repeated_gpu_counts_are_one_cluster():
    from flopcast.api.plan import parse_gpu_counts

    assert parse_gpu_counts("8,8,16") == [8, 16]


@pytest.mark.parametrize("field, value", [("gpus", True), ("tp", False), ("price", True)])
def test_booleans_are_not_numbers(field, value):
    from pydantic import ValidationError

    from flopcast.api.plan import PlanTrainRequest
    from flopcast.api.train import TrainRequest

    with pytest.raises(ValidationError, match="expected a number"):
        TrainRequest(model="llama-3.1-8b", **{field: value})
    if field != "price":
        with pytest.raises(ValidationError, match="expected a number"):
            PlanTrainRequest(model="llama-3.1-8b", **{field: value})


@pytest.mark.parametrize("flags, says", [
    (("--price", "1e300"), "--price"),
    (("--tokens", ""), "--tokens"),
])
def test_train_refuses_an_absurd_price_and_an_empty_budget(flags, says):
    assert says in one_line_exit_2(run("train", "-m", "llama-3.1-8b", *flags))


def test_tensorrt_llm_is_refused_on_amd_gpus():
    err = one_line_exit_2(run("infer", "-m", "llama-3.1-8b", "--gpu", "mi300x",
                              "--engine", "trtllm"))
    assert "runs on nvidia GPUs only" in err


def test_plot_and_trace_paths_are_checked_before_simulating(tmp_path):
    serve = ("serve", "-m", "llama-3.1-8b", "--request-rate", "1", "--input-len", "100",
             "--output-len", "10")
    err = one_line_exit_2(run(*serve, "--chrome-trace", str(tmp_path / "no" / "t.json")))
    assert err.startswith("error: --chrome-trace") and "does not exist" in err
    assert "--plot" in one_line_exit_2(run(*serve, "--plot", str(tmp_path / "x.jpg")))


def test_tree_search_errors_name_tree_search_and_best_of_n_needs_no_answers(tmp_path):
    from flopcast.api.reason import ReasonPlanRequest, run_reason_plan

    samples = tmp_path / "s.csv"
    samples.write_text("model,benchmark,problem,samples,correct\n" + "".join(
        f"pythia-1b,MATH,p{i},100,{i % 7}\n" for i in range(60)))
    plan = dict(samples=[str(samples)], gpu="h100-sxm", target_accuracy=0.2,
                strategies="tree-search")
    with pytest.raises(FlopcastError, match="^tree-search \\(rebase-mistral-7b-math selects"):
        run_reason_plan(ReasonPlanRequest(**plan, tree_search="rebase-mistral-7b-math"))
    result = run_reason_plan(ReasonPlanRequest(**plan, tree_search="beam-snell"))
    assert result.model_dump()


def test_a_bad_samples_row_names_its_problem(tmp_path):
    samples = tmp_path / "s.csv"
    samples.write_text("model,benchmark,problem,samples,correct\nm,b,p1,10,3\nm,b,p7,10,12\n")
    err = one_line_exit_2(run("reason", "coverage", "--samples", str(samples), "--k", "1"))
    assert "row 2 (line 3, problem 'p7'), column correct" in err


def test_a_tiny_negative_error_is_not_printed_as_minus_zero():
    from flopcast.report.validation import _error_cell

    assert _error_cell({"predicted": 0.9996, "measured": 1.0}, {}) == "+0.0%"
    assert _error_cell({"predicted": 0.95, "measured": 1.0}, {}) == "-5.0%"


def test_serve_refuses_before_it_warns(tmp_path):
    """A refused request gets its one error line and no warnings before it (fuzzing found
    --num-requests's 'ignored' warning printed ahead of the trace's refusal)."""
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_len,output_len\n0,100,20\n")
    said = []
    with pytest.raises(FlopcastError, match="a trace fixes arrivals"):
        run_serve(ServeRequest(model="llama-3.1-8b", trace=str(trace), num_requests=5,
                               request_rate=2), warn=said.append)
    assert said == []


@pytest.mark.parametrize("rate", [1e-30, 0.0, 2e6])
def test_serve_refuses_request_rates_the_clock_cannot_hold(rate):
    """Below MIN_REQUEST_RATE the float64 clock rounded every TPOT to 0 (a 500 in the web
    API); such rates are refused at the edge with the allowed range."""
    with pytest.raises((FlopcastError, ValueError), match=r"\[1e-06, 1e\+06\]"):
        run_serve(ServeRequest(**LOAD, request_rate=rate))


def test_serve_plan_refuses_before_it_warns():
    """As serve: the engine-version note waits until the plan's inputs are known to be valid
    (the second reader found it printed ahead of a refused rate)."""
    from flopcast.api.serve import ServePlanRequest, run_serve_plan

    said = []
    with pytest.raises((FlopcastError, ValueError), match=r"1e-06"):
        run_serve_plan(ServePlanRequest(model="llama-3.1-8b", request_rate=1e-7, input_len=100,
                                        output_len=20, slo_ttft_p99=1000, gpu_types="l4",
                                        engine="generic", engine_version="0.1"),
                       warn=said.append)
    assert said == []


@pytest.mark.parametrize("flag, value", [("--request-rate", "1e-30"), ("--burstiness", "-1")])
def test_a_refused_load_names_its_option_and_the_value_once(flag, value):
    """The message names the flag (not only the spec field) and shows the value once (its
    validator already leads with it; the edge used to append '; got …' again)."""
    args = ["serve", "--model", "llama-3.1-8b", "--dataset", "sharegpt", "--num-requests",
            "10", "--request-rate", "5", flag, value]
    err = one_line_exit_2(run(*args))
    assert err.count(str(float(value))) == 1 and flag in err
