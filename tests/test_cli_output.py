"""What a newcomer reads (issue 12): ids never cut at 80 columns, readable tables, an
expected-error statement on every result, counts that add up, one-line errors for bad values,
and no NaN or Infinity anywhere."""

import importlib.metadata
import json
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from flopcast.cli import main

BIG = "9" * 309


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_.value.code or 0, out, err


def at_80_columns(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process whose terminal is 80 columns wide."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (Python's json accepts them)."""
    def refuse(constant):
        raise ValueError(f"non-finite number in JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def catalog_ids(kind: str) -> list[str]:
    from flopcast.catalog import gpu_ids, model_ids
    from flopcast.catalog.loader import engine_ids

    return list({"gpus": gpu_ids, "models": model_ids, "engines": engine_ids}[kind]())


@pytest.mark.parametrize("kind", ["gpus", "models", "engines"])
def test_catalog_shows_every_id_whole_at_80_columns(kind):
    p = at_80_columns("catalog", kind)
    assert p.returncode == 0, p.stderr
    assert "…" not in p.stdout
    for line in p.stdout.splitlines():
        assert len(line) <= 80
    for id_ in catalog_ids(kind):
        assert re.search(rf"│ {re.escape(id_)} +│", p.stdout), f"{id_} cut or missing"


def test_help_keeps_brackets_and_long_option_names():
    p = at_80_columns("plan", "train", "--help")
    assert p.returncode == 0
    assert "flopcast[ray]" in p.stdout and "flopcast[plot]" in p.stdout
    p = at_80_columns("train", "--help")
    assert "--tp, --tensor-model-parallel-size" in p.stdout


def test_version(capsys):
    code, out, _ = cli(capsys, "--version")
    assert code == 0
    assert out.strip() == f"flopcast {importlib.metadata.version('flopcast')}"


@pytest.mark.parametrize("group", ["plan", "reason"])
def test_group_alone_prints_its_help_not_an_empty_error(capsys, group):
    code, out, err = cli(capsys, group)
    assert code == 0 and "error" not in err
    assert "Usage:" in out and "Commands:" in out


def test_plan_counts_add_up(capsys):
    code, out, _ = cli(capsys, "plan", "train", "--model", "llama-3.1-8b", "--gpus", "8,16",
                       "--json")
    assert code == 0
    d = strict_json(out)
    n = d["counts"]
    assert n["enumerated"] == sum(n["rejected_by_rule"].values()) + n["evaluated"]
    assert n["evaluated"] == n["fit"] + n["do_not_fit"]
    assert n["fit"] == sum(c["feasible"] for c in d["clusters"]) > 0
    assert sum(d["rejected"].values()) == sum(n["rejected_by_rule"].values()) + n["do_not_fit"]
    code, out, _ = cli(capsys, "plan", "train", "--model", "llama-3.1-8b", "--gpus", "8")
    text = " ".join(out.split())
    assert re.search(r"[\d,]+ configurations enumerated, [\d,]+ evaluated, [\d,]+ fit", text)


@pytest.mark.parametrize("args, option", [
    (["train", "-m", "llama-3.1-8b", "--price", "nan"], "--price"),
    (["train", "-m", "llama-3.1-8b", "--price", "inf"], "--price"),
    (["train", "-m", "llama-3.1-8b", "--price", "1e400"], "--price"),
    (["train", "-m", "llama-3.1-8b", "--price", "-1"], "--price"),
    (["train", "-m", "llama-3.1-8b", "--tokens", "1e400"], "--tokens"),
    (["train", "-m", "llama-3.1-8b", "--tokens", "0"], "--tokens"),
    (["train", "-m", "llama-3.1-8b", "--gpus", "0"], "--gpus"),
    (["train", "-m", "llama-3.1-8b", "--gpus", "-1"], "--gpus"),
    (["train", "-m", "llama-3.1-8b", "--gpus", "99999999999999999999"], "--gpus"),
    (["train", "-m", "llama-3.1-8b", "--gpus", BIG], "--gpus"),
    (["train", "-m", "llama-3.1-8b", "--seq-len", BIG], "--seq-len"),
    (["train", "-m", "llama-3.1-8b", "--pp", "0"], "--pp"),
    (["train", "-m", "llama-3.1-8b", "--zero", "4"], "--zero"),
    (["train", "-m", "llama-3.1-8b", "--network-gbps", "inf"], "--network-gbps"),
    (["train", "-m", "llama-3.1-8b", "--network-gbps", "0"], "--network-gbps"),
    (["train", "-m", "llama-3.1-8b", "--schedule", "interleaved", "--pp", "1"], "interleaved"),
    (["train", "--layers", "2", "--hidden", "64", "--heads", "2", "--vocab", "0"], "--vocab"),
    (["infer", "-m", "llama-3.1-8b", "--pp", "0"], "--pp"),
    (["infer", "-m", "llama-3.1-8b", "--batch", "0"], "--batch"),
    (["infer", "-m", "llama-3.1-8b", "--concurrency", "-1"], "--concurrency"),
    (["infer", "-m", "llama-3.1-8b", "--gpus", BIG], "--gpus"),
    (["infer", "-m", "llama-3.1-8b", "--input-len", "0"], "--input-len"),
    (["plan", "train", "-m", "llama-3.1-8b", "--tp", "0"], "--tp"),
    (["plan", "train", "-m", "llama-3.1-8b", "--gpus", BIG], "--gpus"),
    (["plan", "train", "-m", "llama-3.1-8b", "--gpus", "99999999999999999999"], "--gpus"),
    (["plan", "train", "-m", "llama-3.1-8b", "--seq-len", "0"], "--seq-len"),
    (["plan", "train", "-m", "llama-3.1-8b", "--zero", "5"], "--zero"),
    (["plan", "train", "-m", "llama-3.1-8b", "--deadline-days", "5"], "--tokens"),
    (["plan", "train", "-m", "llama-3.1-8b", "--tokens", "1T", "--deadline-days", "nan"],
     "--deadline-days"),
    (["serve", "-m", "llama-3.1-8b", "--request-rate", "inf", "--input-len", "10",
      "--output-len", "10"], "--request-rate"),
])
def test_bad_value_is_one_line_naming_the_option(capsys, args, option):
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert option in lines[0]
    value = args[args.index(option) + 1] if option in args else None
    if value is not None and len(value) < 24:
        assert value.lstrip("-").split("e")[0] in lines[0]  # the value given is repeated
    assert len(lines[0]) < 300                              # a 309-digit value is shortened


def test_seq_len_beyond_context_warns_and_still_estimates(capsys):
    code, out, err = cli(capsys, "train", "-m", "llama-3.1-8b", "--seq-len", "262144",
                         "--global-batch", "8", "--json")
    assert code == 0 and strict_json(out)["config"]["seq_len"] == 262144
    assert err.startswith("warning: --seq-len 262,144 exceeds llama-3.1-8b's context")


def test_train_tables_read_as_words_and_skip_zero_rows(capsys):
    args = ("train", "-m", "llama-3.1-8b", "--gpus", "8", "--global-batch", "8", "--tokens",
            "1T")
    code, out, _ = cli(capsys, *args)
    assert code == 0
    assert "DP communication (exposed)" in out and "dp_comm_exposed" not in out
    assert "TP communication" not in out and "pipeline bubble" not in out   # zero at tp=pp=1
    assert "(1 micro-batch)" in out
    assert re.search(r"\$[\d,]+ at \$[\d.]+/GPU-hour", out)
    assert re.search(r"MWh at [\d,]+ W per GPU", out)
    assert "expected error (step time): ±" in out and "hopper" in out
    code, out, _ = cli(capsys, *args, "--json")
    d = strict_json(out)
    assert {"tp_comm_s", "bubble_s", "dp_comm_exposed_s"} <= set(d["breakdown_s"])
    assert d["price_per_gpu_hour_usd"] > 0
    e = d["expected_error"]
    assert e["kind"] == "training" and e["overall"]["rows"] > 0 and e["text"]
    assert e["gpu_families"]["hopper"]["median_ape_pct"] > 0


def test_unvalidated_gpu_family_says_so(capsys):
    code, out, _ = cli(capsys, "train", "-m", "llama-3.1-8b", "--gpu", "b200", "--json")
    assert code == 0
    e = strict_json(out)["expected_error"]
    assert e["gpu_families"] == {"blackwell": None}
    assert "unvalidated for blackwell GPUs" in e["text"]


@pytest.mark.parametrize("args, kind", [
    (["infer", "-m", "llama-3.1-8b"], "inference"),
    (["plan", "train", "-m", "llama-3.1-8b", "--gpus", "8", "--tokens", "1T"], "training"),
    (["serve", "-m", "llama-3.1-8b", "--request-rate", "2", "--input-len", "100",
      "--output-len", "20", "--num-requests", "20"], "serving"),
])
def test_results_carry_the_expected_error_and_strict_json(capsys, args, kind):
    code, out, _ = cli(capsys, *args)
    assert code == 0
    assert "expected error (" in out and "flopcast validate" in " ".join(out.split())
    code, out, _ = cli(capsys, *args, "--json")
    d = strict_json(out)
    assert d["expected_error"]["kind"] == kind


def test_catalog_json_is_strict(capsys):
    for kind in ("gpus", "models", "engines"):
        code, out, _ = cli(capsys, "catalog", kind, "--json")
        assert code == 0 and strict_json(out)


def test_validate_rows_readable_at_80_columns():
    from flopcast.report.validation import validation_tables

    reason = "metric 'peak_memory_gib' is not a training metric (a long reason " + "x" * 60 + ")"
    rows = [{"id": f"SOME_LONG_SOURCE_NAME_2026_11:{i}:tokens_per_s_per_gpu",
             "metric": "tokens_per_s_per_gpu", "measured": 1000.0 + i,
             "predicted": None if i % 2 else 1100.0, "skipped": reason if i % 2 else None}
            for i in range(6)]
    console = Console(width=80, record=True)
    for r in validation_tables({"kind": "training", "rows": rows}, "x.csv", 80):
        console.print(r)
    text = console.export_text()
    assert all(len(line) <= 80 for line in text.splitlines())
    for i in range(6):
        assert re.search(rf"│ SOME_LONG_SOURCE_NAME_2026_11:{i} +│", text)
    assert " ".join(text.split()).count(reason) == 1 and text.count("skipped [1]") == 3
    assert len([ln for ln in text.splitlines() if ln.startswith("│")]) == 6  # a line a row
