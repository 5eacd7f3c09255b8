"""Reasoning cost accounts: Wu et al.'s FLOPs, Kinetics' eFLOPs, time on hardware."""

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import inference_efficiency, load_engine
from flopcast.errors import FlopcastError
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.reasoning.cost import (
    Shape,
    kaplan_flops_per_token,
    kinetics_cost,
    problem_cost,
    sampling_flops,
)

#: Qwen3-4B and Qwen3-14B (Hugging Face config.json: layers, query/KV heads, head_dim 128)
QWEN3_4B = Shape(4.0e9, 36, 32, 8, 128)
QWEN3_14B = Shape(14.8e9, 40, 40, 8, 128)


def test_wu_sampling_is_k_times_greedy():
    """Wu et al. Table 4: 32 samples cost 32 × the greedy FLOPs (3.4e12 → ~109e12)."""
    greedy = sampling_flops(7.24e9, 235, 1)
    assert sampling_flops(7.24e9, 235, 32) == pytest.approx(32 * greedy)
    assert greedy == pytest.approx(3.4e12, rel=0.01)  # Mistral-7B, ~235 tokens per answer
    assert kaplan_flops_per_token(7.24e9, 32, 0, 4096) == pytest.approx(2 * 7.24e9)


def test_kinetics_code_form_equals_eq10():
    """dense_cost (their code) and App. D Eq. 10 (r = H_q/H_kv, D = 2·H_kv·d) agree."""
    n, lin, lout, i = 8, 300, 5000, 562.5
    s = QWEN3_4B
    d = s.head_dim * s.n_layers
    kv = 2 * s.kv_heads * d
    r = s.q_heads / s.kv_heads
    eq10 = (2 * n * s.active_params * lout + 2 * r * n * lin * kv * lout + r * n * kv * lout**2
            + 2 * i * lin * kv * lout + i * n * kv * lout**2)
    assert kinetics_cost(s, n, lin, lout, i)["eflops"] == pytest.approx(eq10)


def test_kinetics_14b_at_8k_costs_as_4b_at_9k():
    """Kinetics §3.2: under L²·D costing 14B@8K tokens costs the same as 4B@9K."""
    target = kinetics_cost(QWEN3_14B, 1, 0, 8192)["eflops"]
    lengths = np.arange(4000, 20000)
    match = lengths[np.argmin(np.abs(kinetics_cost(QWEN3_4B, 1, 0, lengths)["eflops"] - target))]
    assert match == pytest.approx(9000, rel=0.05)
    # FLOPs-only (2·P·L) would put the same budget at far more 4B tokens
    assert 2 * QWEN3_14B.active_params * 8192 / (2 * QWEN3_4B.active_params) > 2.5 * match


def test_problem_cost_on_hardware():
    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                       system=System(gpu=load_gpu("h100-sxm"), num_gpus=1))
    eff = inference_efficiency(job.system.gpu, job.engine)
    few, many = (problem_cost(job, eff, n, 500, 2000) for n in (8, 64))
    assert many["seconds"] > few["seconds"] and many["usd"] > few["usd"] > 0
    # 64 trials decode together: far less than 8x the time of 8
    assert many["seconds"] < 3 * few["seconds"]
    small = job.model_copy(update={"system": System(gpu=load_gpu("h100-sxm").model_copy(
        update={"hbm_bytes": 24 * 2**30}), num_gpus=1)})
    tight = problem_cost(small, eff, 256, 500, 16000)
    assert tight["waves"] > 1 and tight["parallel_trials"] < 256
    with pytest.raises(FlopcastError):
        problem_cost(job, eff, 0, 500, 100)
