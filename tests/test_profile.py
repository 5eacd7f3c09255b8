"""`flopcast profile` on the CPU (NumPy backend): measure, fit, write; the entry works as --gpu."""

import csv
import json
import os
import subprocess
import sys
import types

import pytest
import yaml
from typer.testing import CliRunner

from flopcast.catalog import load_gpu
from flopcast.cli import main
from flopcast.cli.common import app
from flopcast.profile import select_backend
from flopcast.profile.base import KERNEL_COLUMNS, kernel_row
from flopcast.profile.device_spec import catalog_id_for
from flopcast.profile.torch_backend import TorchBackend


def run(*args):
    env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """One quick CPU profile for the module: (entry path, rows CSV path, --json summary)."""
    out = tmp_path_factory.mktemp("tmp") / "cpu.yaml"
    result = CliRunner().invoke(app, ["profile", "--device", "cpu", "--quick", "--output",
                                      str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, out.with_name("cpu.kernels.csv"), json.loads(result.stdout)


def test_profile_writes_entry_and_rows(profiled):
    entry, rows_csv, summary = profiled
    assert entry.is_file() and rows_csv.is_file()
    assert summary["entry"] == str(entry) and summary["rows_csv"] == str(rows_csv)
    with rows_csv.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == KERNEL_COLUMNS
    assert {r["op"] for r in rows} == {"gemm", "attention", "decode_attention", "copy"}
    assert all(r["gpu"] == "cpu.yaml" and float(r["value"]) > 0 for r in rows)
    assert len({r["id"] for r in rows}) == len(rows) == summary["rows"]
    # how long it took is reported (a timed bound here failed under load: speed belongs in
    # benchmarks, not tests)
    assert 0 < summary["seconds"]["total"] < float("inf")
    assert "gemm_fraction.fp32" in summary["parameters_fitted"]


def test_entry_loads_as_gpu_with_fitted_profile(profiled):
    entry, _, summary = profiled
    gpu = load_gpu(str(entry))
    data = yaml.safe_load(entry.read_text())
    assert gpu.family == "cpu" and gpu.sm_count == os.cpu_count()
    assert gpu.peak("bf16") == gpu.peak("fp32") == gpu.peak("tf32") == gpu.peak("fp16") > 0
    assert gpu.kernels.default_attention == gpu.kernels.default_decode_attention == "numpy"
    assert gpu.kernels.gemm_fraction_for("bf16") == gpu.kernels.gemm_fraction_for("fp32")
    assert gpu.kernels_source == "entry"
    assert isinstance(data["kernels"]["gemm_tiles"][0], list)  # tuples written as lists
    text = " ".join(data["sources"])
    assert "in-sample median APE" in text and "not measured" in text and "numpy" in text
    assert f"{summary['in_sample']['median_ape_pct']:.1f}%" in text


def test_train_and_infer_take_the_entry(profiled):
    entry, _, _ = profiled
    p = run("train", "--gpu", str(entry), "--gpus", "1", "--layers", "2", "--hidden", "256",
            "--heads", "4", "--seq-len", "256")
    assert p.returncode == 0, p.stderr
    assert "Step time" in p.stdout and "step" in p.stdout
    p = run("train", "--gpu", str(entry), "--gpus", "1", "--model", "llama-3.1-8b",
            "--seq-len", "1024", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["step_time_s"] > 0  # 8B does not fit in RAM: still a time
    p = run("infer", "--gpu", str(entry), "--model", "llama-3.1-8b", "--json")
    assert p.returncode == 0, p.stderr


def test_plan_takes_entry_in_a_comma_list(profiled):
    entry, _, _ = profiled
    p = run("plan", "train", "--gpu", f"{entry},h100-sxm", "--gpus", "1,2", "--layers", "2",
            "--hidden", "256", "--heads", "4", "--seq-len", "256", "--json")
    assert p.returncode == 0, p.stderr
    assert {c["gpu"] for c in json.loads(p.stdout)["clusters"]} == {str(entry), "h100-sxm"}


def test_validate_predicts_every_row_of_the_profile(profiled, tmp_path, monkeypatch):
    _, rows_csv, summary = profiled
    monkeypatch.chdir(tmp_path)  # the CSV names its entry relative to its own folder
    p = run("validate", str(rows_csv), "--json")
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["kind"] == "kernel"
    assert all(r["predicted"] is not None for r in result["rows"]), [
        r["skipped"] for r in result["rows"] if r["skipped"]]
    assert {r["op"] for r in result["rows"]} >= {"gemm", "copy"}
    assert result["summary"]["median_ape_pct"] == pytest.approx(
        summary["in_sample"]["median_ape_pct"], abs=0.5)


def _cli_error(capsys, *args) -> str:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_cuda_without_torch_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    line = _cli_error(capsys, "profile", "--device", "cuda", "--quick")
    assert "device cuda" in line and "PyTorch" in line


def test_cuda_without_gpu_names_the_reason(monkeypatch):
    fake = types.SimpleNamespace(__version__="2.9.0",
                                 cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake)
    assert "sees no CUDA or ROCm GPU" in TorchBackend.unavailable()
    assert select_backend("auto", quick=True).name == "numpy"


def test_bad_device_and_missing_gpu_file_are_one_line(capsys, tmp_path):
    assert "--device" in _cli_error(capsys, "profile", "--device", "tpu")
    missing = tmp_path / "nope.yaml"
    assert "file not found" in _cli_error(capsys, "train", "--model", "llama-3.1-8b", "--gpu",
                                          str(missing))
    assert "file not found" in _cli_error(capsys, "plan", "train", "--model", "llama-3.1-8b",
                                          "--gpu", f"h100-sxm,{missing}")
    (tmp_path / "bad.yaml").write_text("id: x\nfamily: cpu\n")
    assert "missing field" in _cli_error(capsys, "infer", "--model", "llama-3.1-8b", "--gpu",
                                         str(tmp_path / "bad.yaml"))


def test_catalog_names_map_driver_names():
    assert catalog_id_for("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert catalog_id_for("NVIDIA H100 PCIe") == "h100-pcie"
    assert catalog_id_for("NVIDIA H200") == "h200"
    assert catalog_id_for("NVIDIA GH200 480GB") is None
    assert catalog_id_for("NVIDIA B200") == "b200" and catalog_id_for("NVIDIA GB200") == "gb200"
    assert catalog_id_for("AMD Instinct MI300X") == "mi300x"
    assert catalog_id_for("Some Future Accelerator") is None


def test_kernel_row_is_the_csv_schema():
    row = kernel_row("attention", 1.5, dtype="bf16", pass_="fwd_bwd", seq_len=512)
    assert tuple(row) == KERNEL_COLUMNS
    assert row["pass"] == "fwd_bwd" and row["value"] == "1.5" and row["m"] == ""
    with pytest.raises(ValueError):
        kernel_row("gemm", 1.0, bogus=1)
