"""MoE parallel folding (Megatron-Core --expert-tensor-parallel-size; Liu et al. 2025)."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from flopcast import estimate_training
from flopcast.catalog import load_gpu, load_model
from flopcast.physics import memory
from flopcast.specs import Parallelism, System, TrainingJob
from flopcast.validate import validate_file
from flopcast.workloads.training import Layout


def run(*args):
    env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def job(model="deepseek-v3", gpus=32, **par):
    return TrainingJob(model=load_model(model), system=System(gpu=load_gpu("h100-sxm"),
                       num_gpus=gpus), parallelism=Parallelism(**par), seq_len=4096)


def test_ep32_with_tp2_dp16_folds_with_etp1():
    j = job(tp=2, ep=32, etp=1, global_batch=64)
    assert (j.parallelism.etp, j.parallelism.dp) == (1, 16)
    assert Layout.from_job(j).etp.tolist() == [1]
    assert estimate_training(j).config["etp"] == 1


def test_etp_defaults_to_tp_and_keeps_old_answers():
    implicit = estimate_training(job("mixtral-8x7b", gpus=64, tp=2, pp=2, ep=8, global_batch=256))
    explicit = estimate_training(job("mixtral-8x7b", gpus=64, tp=2, pp=2, ep=8, etp=2,
                                     global_batch=256))
    assert implicit.config["etp"] == 2
    assert implicit.step_time_s == explicit.step_time_s
    assert implicit.memory == explicit.memory


def test_expert_params_divide_by_etp_times_ep():
    m = load_model("deepseek-v3")
    _, _, legacy = memory.stage_param_counts(m, 2, 1, 16)
    _, _, folded = memory.stage_param_counts(m, 2, 1, 16, etp=1)
    assert float(folded) == pytest.approx(2 * float(legacy))
    _, expert = memory.layer_param_counts(m)
    assert float(folded) == pytest.approx(m.num_layers * expert / 16)


def test_expert_optimizer_shards_over_edp():
    # 32 GPUs, tp 2, ep 16: etp 1 gives edp = 32/16 = 2, etp 2 gives edp = 1 (dp·cp/ep = 1)
    def expert_optimizer(etp):
        est = estimate_training(job(tp=2, ep=16, etp=etp, global_batch=64))
        return est.memory["optimizer"]
    # etp 1: twice the expert parameters per GPU, sharded over twice the ranks: equal states
    assert expert_optimizer(1) == pytest.approx(expert_optimizer(2), rel=1e-9)


@pytest.mark.parametrize("bad, message", [
    (dict(ep=3, gpus=24), "ep \\(3\\) must divide num_experts \\(256\\)"),
    (dict(tp=2, ep=32), "etp·ep \\(2·32 = 64\\) must divide tp·cp·dp \\(2·1·16 = 32\\)"),
    (dict(tp=2, ep=16, etp=3, gpus=48), "etp \\(3\\) must divide the expert FFN width"),
])
def test_folding_rules_name_the_option(bad, message):
    with pytest.raises(ValidationError, match=message):
        job(**bad)


def test_etp_column_in_training_csv(tmp_path):
    columns = ["id", "model", "seq_len", "gpu", "num_gpus", "precision", "tp", "ep", "etp",
               "global_batch", "metric", "value"]
    base = dict(model="deepseek-v3", seq_len=4096, gpu="h100-sxm", num_gpus=32,
                precision="bf16", tp=2, ep=32, global_batch=64, metric="tokens_per_s_per_gpu",
                value=100)
    rows = [dict(base, id="F:1", etp=1), dict(base, id="F:2", etp="")]
    path = tmp_path / "f.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    out = {r["id"]: r for r in validate_file(path)["rows"]}
    assert out["F:1"]["predicted"] > 0
    assert "etp·ep (2·32 = 64) must divide" in out["F:2"]["skipped"]


def test_cli_etp_option():
    p = run("train", "--model", "deepseek-v3", "--gpus", "32", "--tp", "2", "--ep", "32",
            "--expert-tensor-parallel-size", "1", "--global-batch", "64", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["config"]["etp"] == 1
    bad = run("train", "--model", "deepseek-v3", "--gpus", "32", "--tp", "2", "--ep", "32")
    assert bad.returncode == 2 and "etp·ep" in bad.stderr


def test_layout_arrays_fill_etp_from_tp():
    lay = Layout(**{f: np.ones(2) for f in Layout.__dataclass_fields__ if f != "etp"})
    assert lay.etp is lay.tp
