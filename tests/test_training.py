import numpy as np
import pytest
from pydantic import ValidationError

from flopcast import estimate_training
from flopcast.catalog import load_gpu, load_model
from flopcast.specs import Parallelism, System, TrainingJob
from flopcast.workloads.training import Layout, training_step


def job(model="llama-3.1-8b", gpu="h100-sxm", gpus=8, seq_len=4096, precision="bf16", **par):
    return TrainingJob(model=load_model(model), system=System(gpu=load_gpu(gpu), num_gpus=gpus),
                       parallelism=Parallelism(**par), seq_len=seq_len, precision=precision)


def test_estimate_is_physical():
    est = estimate_training(job(global_batch=64))
    assert 0 < est.mfu < 1 and est.hfu >= est.mfu
    assert est.fits
    assert sum(v for k, v in est.breakdown_s.items() if k != "recompute_s") == pytest.approx(
        est.step_time_s)
    assert est.tokens_per_s == pytest.approx(64 * 4096 / est.step_time_s)


def test_full_recompute_costs_time_and_saves_memory():
    base = estimate_training(job(global_batch=64, micro_batch=2))
    full = estimate_training(job(global_batch=64, micro_batch=2, recompute="full"))
    assert full.step_time_s > base.step_time_s
    assert full.memory["activations"] < base.memory["activations"] / 4
    assert full.hfu > full.mfu


def test_memory_by_stage():
    est = estimate_training(job("llama-3.1-70b", gpus=64, tp=8, pp=4, global_batch=64))
    first, last = est.memory_by_stage["first"], est.memory_by_stage["last"]
    # 1F1B: the first stage holds pp micro-batches in flight, the last one
    assert first["activations"] > 2 * last["activations"]
    assert est.memory["total"] == pytest.approx(max(first["total"], last["total"]))


def test_405b_does_not_fit_on_8_gpus():
    est = estimate_training(job("llama-3.1-405b", gpus=8, tp=8))
    assert not est.fits


def test_array_evaluation_equals_one_by_one():
    """One implementation: a batch of configurations gives what each alone gives."""
    j = job(gpus=64, global_batch=256)
    m, system = j.model, j.system
    configs = [dict(tp=1, pp=1, dp=64), dict(tp=2, pp=2, dp=16), dict(tp=8, pp=1, dp=8),
               dict(tp=4, pp=4, dp=4)]
    lay = Layout(
        tp=np.array([c["tp"] for c in configs]), pp=np.array([c["pp"] for c in configs]),
        vp=np.ones(4), cp=np.ones(4), ep=np.ones(4), dp=np.array([c["dp"] for c in configs]),
        micro_batch=np.ones(4), num_micro_batches=np.array([256 / c["dp"] for c in configs]),
        sp=np.array([c["tp"] > 1 for c in configs]), zero=np.ones(4, dtype=int),
        recompute=np.zeros(4, dtype=int), schedule=np.zeros(4, dtype=int),
        tp_overlap=np.array([c["tp"] > 1 for c in configs]), dp_overlap=np.ones(4, dtype=bool),
        offload=np.zeros(4, dtype=bool),
    )
    batch = training_step(m, system, j.precision, 4096, lay)
    for i, c in enumerate(configs):
        single = estimate_training(job(gpus=64, global_batch=256, **c))
        assert batch["step_time_s"][i] == pytest.approx(single.step_time_s, rel=1e-12)
        assert batch["memory_total_bytes"][i] == pytest.approx(single.memory["total"], rel=1e-12)


def test_budget_gives_days_cost_energy():
    j = job(global_batch=64).model_copy(update={"tokens": 1e12})
    est = estimate_training(j)
    assert est.time_to_train_days == pytest.approx(1e12 / est.tokens_per_s / 86400)
    assert est.cost_usd == pytest.approx(est.gpu_hours * 2.99)
    assert est.energy_mwh > 0


def test_fp8_is_faster_than_bf16_on_hopper():
    bf16 = estimate_training(job(global_batch=64))
    fp8 = estimate_training(job(global_batch=64, precision="fp8"))
    assert fp8.step_time_s < bf16.step_time_s


def test_moe_model_estimates():
    est = estimate_training(job("mixtral-8x7b", gpus=64, tp=2, pp=2, ep=8, global_batch=256))
    assert 0 < est.mfu < 1
    assert est.breakdown_s["ep_comm_s"] > 0


@pytest.mark.parametrize("bad, message", [
    (dict(tp=3), "tp \\(3\\) must divide num_attention_heads"),
    (dict(tp=2, pp=2, dp=3), "dp \\(3\\) must equal"),
    (dict(global_batch=12), "global_batch \\(12\\) must be a multiple"),
    (dict(pp=8, vp=8), "pp·vp \\(64\\) must be at most num_layers"),
    (dict(ep=2), "mixture-of-experts"),
    (dict(cp=3), "must divide the GPU count"),
])
def test_invalid_jobs_name_the_field(bad, message):
    with pytest.raises(ValidationError, match=message):
        job(**bad)


@pytest.mark.parametrize("recipe", ["mxfp8", "nvfp4"])
def test_block_scaled_recipes_need_blackwell_tensor_cores(recipe):
    """MX/NVFP4 block scales are applied by Blackwell's tensor cores; Hopper has fp8 tensor
    cores but no block scaling, so MXFP8 is refused there as NVFP4 is."""
    with pytest.raises(ValidationError, match="block scales"):
        job(precision=recipe)
    assert job(gpu="b200", precision=recipe).precision.name == recipe
