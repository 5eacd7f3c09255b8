import json
import os
import subprocess
import sys

import pytest


def run(*args):
    env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def test_train_json_has_documented_keys():
    p = run("train", "--model", "llama-3.1-70b", "--gpus", "64", "--tp", "8", "--pp", "2",
            "--global-batch", "256", "--seq-len", "8192", "--tokens", "15T", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("tokens_per_s", "tokens_per_s_per_gpu", "step_time_s", "mfu", "memory", "fits"):
        assert key in d
    assert set(d["memory"]) >= {"weights", "gradients", "optimizer", "activations", "total"}
    assert d["cost_usd"] > 0 and d["time_to_train_days"] > 0


def test_megatron_long_names_and_shape_flags():
    p = run("train", "--num-layers", "24", "--hidden-size", "2048", "--num-attention-heads", "16",
            "--tensor-model-parallel-size", "2", "--micro-batch-size", "2",
            "--global-batch-size", "64", "--seq-length", "2048", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["config"]["tp"] == 2


def test_train_reads_hf_config(tmp_path):
    cfg = {"model_type": "llama", "num_hidden_layers": 4, "hidden_size": 512,
           "num_attention_heads": 8, "intermediate_size": 1024, "vocab_size": 1000}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    p = run("train", "--model", str(tmp_path / "config.json"), "--json")
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("args, fragment", [
    (["train", "--model", "llama-3.1-70b", "--gpus", "64", "--tp", "3"], "tp (3) must divide"),
    (["train", "--model", "nope"], "unknown id 'nope'"),
    (["train", "--model", "llama-3.1-8b", "--gpu", "h1000"], "unknown id 'h1000'"),
    (["train", "--model", "llama-3.1-8b", "--tp", "abc"], "--tp"),
    (["train", "--model", "llama-3.1-8b", "--gpus", "0"], "num_gpus"),
    (["train", "--model", "llama-3.1-8b", "--tokens", "lots"], "tokens"),
    (["train", "--model", "llama-3.1-8b", "--gpu", "a100-80gb", "--precision", "fp8"], "no fp8"),
    (["train", "--layers", "4"], "--layers, --hidden and --heads go together"),
    (["validate", "/no/such/file.csv"], "file not found"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    p = run(*args)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_train_help_documents_units_and_defaults():
    p = run("train", "--help")
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    for option in ("--tp", "--pp", "--vp", "--cp", "--ep", "--dp", "--micro-batch",
                   "--global-batch", "--seq-len", "--zero", "--recompute", "--precision",
                   "--gpu", "--gpus", "--tokens", "--tensor-model-parallel-size"):
        assert option in text
    assert "default" in text and "Gb/s" in text


@pytest.mark.parametrize("kind", ["gpus", "models", "engines"])
def test_catalog_lists(kind):
    p = run("catalog", kind, "--json")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)) >= 4


def test_validate_json_shape(training_csv):
    p = run("validate", str(training_csv), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["kind"] == "training"
    assert set(d["summary"]) >= {"rows", "predicted", "median_ape_pct", "p90_ape_pct"}
    assert {"by_source", "by_metric", "by_gpu"} <= set(d)
    assert sum(g["rows"] for g in d["by_gpu"].values()) == d["summary"]["rows"]


def test_serve_json_keys_and_bad_inputs(tmp_path):
    p = run("serve", "--model", "llama-3.1-8b", "--request-rate", "5", "--dataset", "sharegpt",
            "--num-requests", "200", "--seed", "3", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_latency_ms"):
        assert set(d[key]) == {"mean", "p50", "p90", "p99"}
        cdf = d["cdf"][key]                              # the distribution at a fixed grid
        assert set(cdf) == {"quantiles", "values"} and len(cdf["values"]) == len(
            cdf["quantiles"]) >= 20
        assert all(a <= b for a, b in zip(cdf["values"], cdf["values"][1:], strict=False))
        assert cdf["values"][cdf["quantiles"].index(0.5)] == pytest.approx(d[key]["p50"])
    assert d["num_requests"] == 200 and d["requests_per_s"] > 0 and d["output_tokens_per_s"] > 0
    again = run("serve", "--model", "llama-3.1-8b", "--request-rate", "5", "--dataset",
                "sharegpt", "--num-requests", "200", "--seed", "3", "--json")
    assert again.stdout == p.stdout                      # same seed, byte-identical JSON
    (tmp_path / "empty.csv").write_text("arrival_s,input_len,output_len\n")
    for bad in (["--request-rate", "0", "--input-len", "10", "--output-len", "10"],
                ["--concurrency", "4", "--input-len", "-3", "--output-len", "10"],
                ["--trace", str(tmp_path / "empty.csv")],
                ["--input-len", "100", "--output-len", "100", "--slo-ttft-p99", "0.001"]):
        p = run("serve", "--model", "llama-3.1-8b", *bad)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, (bad, p.stderr)


def test_reason_coverage_json_and_bad_files(tmp_path):
    good = tmp_path / "s.csv"
    good.write_text("model,benchmark,problem,samples,correct\n"
                    + "".join(f"m,b,{i},20,{i % 7}\n" for i in range(30)))
    p = run("reason", "coverage", "--samples", str(good), "--k", "1,10,100", "--reps", "20",
            "--json")
    assert p.returncode == 0, p.stderr
    (curve,) = json.loads(p.stdout)["curves"]
    assert curve["k"] == [1, 10, 100] and curve["extrapolated"] == [False, False, True]
    assert curve["coverage"] == sorted(curve["coverage"]) and curve["low"][2] <= curve["high"][2]
    for body in ("model,benchmark,problem,samples,correct\nm,b,1,10,12\n",
                 "model,benchmark,problem,samples,correct\nm,b,1,10,-1\n",
                 "model,benchmark,problem,samples,correct\n",
                 "model,benchmark,problem,samples,correct,zzz\nm,b,1,10,2,3\n"):
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        p = run("reason", "coverage", "--samples", str(bad))
        assert p.returncode == 2 and p.stderr.count("\n") == 1, (body, p.stderr)


def test_reason_cost_json():
    p = run("reason", "cost", "--model", "llama-3.1-8b", "--trials", "1,16", "--out-len", "2000",
            "--json")
    assert p.returncode == 0, p.stderr
    one, many = json.loads(p.stdout)["costs"]
    assert many["flops"] == 16 * one["flops"]          # FLOPs: linear in trials (Wu et al.)
    assert many["seconds"] < 4 * one["seconds"]         # hardware: trials batch together
    assert run("reason", "cost", "--model", "llama-3.1-8b", "--trials", "0").returncode == 2


def test_serve_one_token_outputs_and_serve_plan_without_slo():
    """One-token outputs have no TPOT or ITL: null in --json and '—' in the table, not a
    refusal; serve plan without any SLO says it needs one instead of blaming the GPUs."""
    base = ("serve", "--model", "llama-3.1-8b", "--input-len", "500", "--output-len", "1",
            "--num-requests", "30", "--request-rate", "5")
    p = run(*base, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out["tpot_ms"].values()) == {None} and set(out["itl_ms"].values()) == {None}
    assert out["ttft_ms"]["p50"] > 0 and out["output_tokens_per_s_per_user"] is None
    assert "—" in run(*base).stdout
    by_size = run(*base, "--router", "by-size")  # needs the size ranges serve plan sets up
    assert by_size.returncode == 2 and "serve plan --by-size" in by_size.stderr
    plan = run("serve", "plan", "--model", "llama-3.1-8b", "--input-len", "500",
               "--output-len", "100", "--request-rate", "5", "--num-requests", "50")
    assert plan.returncode == 2 and "--slo-ttft-p99" in plan.stderr
    assert plan.stderr.count("\n") == 1
    # an SLO no fleet meets is reported as such, not as a number
    p = run("serve", "plan", "--model", "llama-3.1-8b", "--input-len", "500", "--output-len",
            "100", "--request-rate", "5", "--num-requests", "50", "--slo-ttft-p99", "0.01")
    assert p.returncode == 2 and "meets the SLO" in p.stderr and p.stderr.count("\n") == 1
    for bad, option in ((("--gpu-types", ","), "gpu-types"), (("--max-tp", "0"), "max-tp"),
                        (("--by-size", "--single-type"), "--single-type"),
                        (("--by-size", "--gpu-types", "l4"), "--gpu-types l4")):
        p = run("serve", "plan", "--model", "llama-3.1-8b", "--input-len", "500",
                "--output-len", "100", "--request-rate", "5", "--slo-ttft-p99", "1000", *bad)
        assert p.returncode == 2 and option in p.stderr and p.stderr.count("\n") == 1
