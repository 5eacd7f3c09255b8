"""LoRA fine-tuning (Hu et al. 2021): frozen weights run no weight-gradient GEMMs and hold no
gradients or optimizer states; only the adapters are trained."""
import subprocess
import sys

import pytest
from pydantic import ValidationError

from flopcast import estimate_training
from flopcast.catalog import load_gpu, load_model
from flopcast.physics import flops as F
from flopcast.specs import Parallelism, System, TrainingJob
from flopcast.validate.training import lora_of_row


def job(model="llama-2-7b", gpus=8, **extra):
    return TrainingJob(model=load_model(model), system=System(gpu=load_gpu("h100-sxm"),
                                                              num_gpus=gpus),
                       parallelism=Parallelism(micro_batch=1, global_batch=32), seq_len=4096,
                       **extra)


def test_lora_step_runs_forward_and_activation_gradients_only():
    full = estimate_training(job())
    lora = estimate_training(job(lora_rank=32))
    # Backward keeps its activation-gradient half: slower than 2/3 of the full step (no
    # attention or element-wise work is saved), faster than the full step.
    assert 2 / 3 * full.step_time_s < lora.step_time_s < 0.8 * full.step_time_s


def test_lora_holds_gradients_and_optimizer_states_of_the_adapters_only():
    full = estimate_training(job())
    lora = estimate_training(job(lora_rank=32, lora_targets=("qkv", "out")))
    m = load_model("llama-2-7b")
    adapters = m.num_layers * float(F.lora_params_per_layer(m, 32, ("qkv", "out")))
    assert adapters < 0.01 * m.num_parameters()
    assert lora.memory["gradients"] < 0.01 * full.memory["gradients"]
    assert lora.memory["optimizer"] < 0.01 * full.memory["optimizer"]
    assert lora.memory["weights"] == pytest.approx(full.memory["weights"], rel=0.01)


def test_lora_flops_drop_the_weight_gradients():
    m = load_model("llama-2-7b")
    full = float(F.training_flops_per_token(m, 4096))
    lora = float(F.training_flops_per_token(m, 4096, lora_rank=8, lora_targets=("qkv",)))
    wgrad = F.weight_gradient_flops_per_token(m)
    # qkv adapters of rank 8: A (h→8) and B (8→q+2kv) per layer, 2 FLOPs per weight, ×3.
    qkv_out = m.num_attention_heads * m.head_dim_qk + 2 * m.kv_heads * m.head_dim_qk
    adapters = m.num_layers * 3 * 2 * 8 * (m.hidden_size + qkv_out)
    assert lora == pytest.approx(full - wgrad + adapters)
    # Each weight's gradient GEMM has its forward GEMM's FLOPs (Narayanan et al. §5.1).
    assert wgrad == pytest.approx(F.layer_linear_flops_per_token(m)
                                  + F.lm_head_flops_per_token(m))


def test_lora_targets_must_be_weight_gemms():
    with pytest.raises(ValidationError, match="lora_targets mlp: not a weight GEMM"):
        job(lora_rank=16, lora_targets=("mlp",))
    with pytest.raises(ValidationError, match="lora_rank"):
        job(lora_rank=0)


def test_cli_refuses_unknown_lora_target_in_one_line():
    r = subprocess.run([sys.executable, "-m", "flopcast.cli", "train", "-m", "llama-2-7b",
                        "--lora-rank", "16", "--lora-targets", "qkv,ffn"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "lora_targets ffn" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_rows_naming_a_lora_finetune_train_nemo_default_adapters():
    assert lora_of_row({"model": "LLAMA2-7B (LoRA finetune)"}) == dict(
        lora_rank=32, lora_targets=("qkv",))
    assert lora_of_row({"model": "LLAMA2-7B (SFT finetune)"}) == {}
    assert lora_of_row({"model": "Florafoo-7B"}) == {}


def test_moe_lora_freezes_the_experts_and_targets_only_shared_weights():
    def moe(**extra):
        return TrainingJob(model=load_model("mixtral-8x7b"),
                           system=System(gpu=load_gpu("h100-sxm"), num_gpus=8),
                           parallelism=Parallelism(ep=8, micro_batch=1, global_batch=8),
                           seq_len=4096, **extra)
    full = estimate_training(moe())
    lora = estimate_training(moe(lora_rank=16, lora_targets=("qkv", "router")))
    assert lora.step_time_s < 0.8 * full.step_time_s
    assert 0 < lora.memory["optimizer"] < 0.01 * full.memory["optimizer"]
    with pytest.raises(ValidationError, match="lora_targets mlp_up.*allowed: qkv, out, router"):
        moe(lora_rank=16, lora_targets=("mlp_up",))
    # The adapters' FLOPs and their parameters count the same layers (3 passes of 2 FLOPs per
    # weight): a target only MoE layers have (the router) is in both.
    m = load_model("mixtral-8x7b")
    adapters = m.num_layers * float(F.lora_params_per_layer(m, 16, ("router",)))
    assert adapters > 0
    assert float(F.training_flops_per_token(m, 4096, lora_rank=16, lora_targets=("router",))) \
        == pytest.approx(float(F.training_flops_per_token(m, 4096))
                         - F.weight_gradient_flops_per_token(m) + 6 * adapters)


def test_planner_searches_a_lora_fine_tune():
    from flopcast.specs.plan import PlanRequest
    from flopcast.workloads.training.plan import plan_training

    def plan(**extra):
        return plan_training(PlanRequest(model=load_model("llama-2-7b"), gpus=["h100-sxm"],
                                         gpu_counts=[8], seq_len=4096, global_batch=64,
                                         top=1, **extra))
    full, lora = plan(), plan(lora_rank=16, lora_targets=("qkv", "out"))
    best_full, best_lora = full["top"][0], lora["top"][0]
    assert best_lora["config"]["lora_rank"] == 16
    assert best_lora["step_time_s"] < best_full["step_time_s"]
    # Frozen weights free their gradients and optimizer states: more layouts fit.
    assert lora["evaluated"] == full["evaluated"]
    assert sum(lora["rejected"].values()) < sum(full["rejected"].values())
    with pytest.raises(ValidationError, match="lora_targets ffn"):
        plan(lora_rank=16, lora_targets=("ffn",))


def test_web_api_takes_lora_and_refuses_bad_targets_with_422():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from flopcast.web.app import create_app

    client = TestClient(create_app())
    ok = client.post("/api/train", json={"model": "llama-2-7b", "gpus": 8, "lora_rank": 16})
    assert ok.status_code == 200 and ok.json()["config"]["lora_rank"] == 16
    bad = client.post("/api/train", json={"model": "llama-2-7b", "gpus": 8, "lora_rank": 16,
                                          "lora_targets": "zz"})
    assert bad.status_code == 422 and "lora_targets zz" in bad.json()["detail"]
