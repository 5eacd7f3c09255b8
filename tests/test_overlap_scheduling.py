"""Overlapped scheduling (SGLang v0.4's zero-overhead scheduler, TensorRT-LLM's PyTorch
overlap scheduler): which releases overlap, and what it costs a request that arrives while
the replica is busy: exactly one more iteration before its prefill, nothing when idle."""

from __future__ import annotations

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.serving.run import deployment_for, serve
from flopcast.workloads.serving.workload import Requests


def _deployment(overlap: bool):
    engine = load_engine("sglang").model_copy(update={"overlap_scheduling": overlap})
    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=engine,
                       system=System(gpu=load_gpu("h100-sxm"), num_gpus=1))
    return deployment_for(job)


def _run(overlap: bool, arrival, prompt, output):
    work = Requests(np.asarray(arrival, float), np.asarray(prompt), np.asarray(output))
    return serve(_deployment(overlap), work)[1].requests


def test_releases_that_overlap():
    sglang = load_engine("sglang")
    assert sglang.overlap_scheduling
    assert sglang.at_version(None).overlap_scheduling  # no version: the catalog's engine
    assert sglang.at_version("0.4.1.post4").overlap_scheduling
    assert not sglang.at_version("0.3.0").overlap_scheduling
    assert not load_engine("tensorrt-llm").at_version("0.16.0").overlap_scheduling
    assert not load_engine("vllm").overlap_scheduling


def test_an_idle_replica_schedules_at_once():
    sync, overlap = (_run(o, [0.0], [500], [50]) for o in (False, True))
    assert overlap.first_token == sync.first_token
    assert overlap.finish == sync.finish


def test_a_busy_replica_schedules_one_iteration_later():
    """Request 1 arrives while request 0 decodes alone: a synchronous loop prefills it after
    the iteration in progress; an overlapped one has already formed the next iteration,
    so the prefill waits for that one too: TTFT grows by one batch-1 decode step."""
    arrival, prompt, output = [0.0, 0.5], [500, 500], [2000, 50]
    sync, overlap = (_run(o, arrival, prompt, output) for o in (False, True))
    step_s = (sync.finish[0] - sync.first_token[0]) / (output[0] - 1)  # ITL, roughly
    delay = overlap.first_token[1] - sync.first_token[1]
    assert delay == pytest.approx(step_s, rel=0.1)
    assert overlap.first_token[0] == sync.first_token[0]


@pytest.mark.parametrize("rate", [5.0, 40.0])
def test_overlap_never_lowers_ttft_and_shortcuts_change_nothing(rate, monkeypatch):
    import flopcast.workloads.serving.simulator as sim

    rng = np.random.default_rng(3)
    n = 200
    work = Requests(np.cumsum(rng.exponential(1 / rate, n)), rng.integers(50, 800, n),
                rng.integers(20, 300, n))
    sync = serve(_deployment(False), work)[0]
    fast = serve(_deployment(True), work)
    assert fast[0]["ttft_ms"]["p50"] >= sync["ttft_ms"]["p50"]
    monkeypatch.setattr(sim, "FAST_PATH", False)
    monkeypatch.setattr(sim, "LONG_STRETCH", 10**9)
    slow = serve(_deployment(True), work)[1].requests
    assert fast[1].requests.finish == pytest.approx(slow.finish, rel=1e-9)
    assert fast[1].requests.first_token == pytest.approx(slow.first_token, rel=1e-9)


def test_kv_handed_to_a_busy_decode_pool_waits_one_iteration():
    """Disaggregated pools: a request whose KV lands while the decode replica decodes another
    one joins an iteration later under overlap (compared at its landing, not its arrival)."""
    from dataclasses import replace

    arrival, prompt, output = [0.0, 0.5], [500, 500], [2000, 50]
    work = Requests(np.asarray(arrival, float), np.asarray(prompt), np.asarray(output))
    finish = {}
    for overlap in (False, True):
        dep = _deployment(overlap)
        pools = [replace(dep, role="prefill"), replace(dep, role="decode")]
        finish[overlap] = serve(pools, work)[1].requests.finish
    assert finish[True][1] > finish[False][1]
    assert finish[True][0] == pytest.approx(finish[False][0], rel=1e-3)


def test_steady_state_ttft_waits_the_formed_step_too():
    """`infer --concurrency`: a new request waits half a step on average, and under
    overlapped scheduling the step already formed as well (TPOT unchanged)."""
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.inference.estimate import estimate_inference

    est = {}
    for overlap in (False, True):
        job = _deployment(overlap).job.model_copy(update={
            "mode": "concurrency", "batch": 16, "input_len": 1000, "output_len": 400})
        est[overlap] = estimate_inference(InferenceJob.model_validate(dict(job)))
    assert est[True].tpot_ms == pytest.approx(est[False].tpot_ms)
    assert est[True].ttft_ms - est[False].ttft_ms == pytest.approx(est[False].tpot_ms)
