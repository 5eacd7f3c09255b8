"""Decode steps replayed as CUDA graphs: which runs replay them, what they cost, and that the
serving tables and the inference estimate price them with the same layer model."""

from __future__ import annotations

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.physics import layer
from flopcast.specs import System
from flopcast.specs.engine import release_tuple
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.estimate import estimate_inference
from flopcast.workloads.inference.step import (
    batch_step,
    graph_efficiency,
    graph_max_decode_seqs,
    weight_bytes_per_gpu,
)
from flopcast.workloads.serving.cost import StepCost
from flopcast.workloads.serving.run import deployment_for


def _job(engine, model="llama-3.1-8b", gpus=1, **kw):
    return InferenceJob(model=load_model(model), engine=engine,
                        system=System(gpu=load_gpu("h100-sxm"), num_gpus=gpus), **kw)


@pytest.mark.parametrize("text, expected", [
    ("0.16.0", (0, 16)), ("0.16.1", (0, 16, 1)), ("0.5.0 (TensorRT 9.1)", (0, 5)),
    ("0.7a", (0, 7)), ("v1.0", (1,)), ("1", (1,)), ("0", (0,)), ("", ()), (None, ()),
    ("nightly", ())])
def test_release_tuple(text, expected):
    assert release_tuple(text) == expected


def test_only_releases_from_the_first_graph_release_replay_graphs():
    trt = load_engine("tensorrt-llm")
    assert trt.decode_cuda_graphs
    assert trt.at_version("0.16.0").decode_cuda_graphs
    assert trt.at_version(None).decode_cuda_graphs  # no version: the catalog's engine
    assert trt.at_version("unknown build").decode_cuda_graphs
    assert not trt.at_version("0.5.0 (TensorRT 9.1)").decode_cuda_graphs
    assert not trt.at_version("0.7a").decode_cuda_graphs
    eager = load_engine("vllm")
    old = eager.at_version("0.10.0")  # no change from 0.7 to 0.13; only the release is recorded
    assert old.model_copy(update={"priced_release": None}) == eager and old.release == "0.10.0"


def test_graph_decode_is_faster_but_never_below_its_bytes():
    """Batch-1 decode of a 70B model on 4 H100: graph replay removes most launch cost, the
    weights still stream at no more than HBM speed; prefill is priced eagerly either way."""
    trt = load_engine("tensorrt-llm")
    graph = estimate_inference(_job(trt, "llama-3.3-70b", 4, tp=4, input_len=2048,
                                    output_len=256))
    # 0.5.0 ran without graphs (and on NCCL's all-reduce, which the comparison leaves out)
    old = trt.at_version("0.5.0").model_copy(update={"custom_allreduce": True})
    eager = estimate_inference(_job(old, "llama-3.3-70b", 4, tp=4, input_len=2048,
                                    output_len=256))
    job = _job(trt, "llama-3.3-70b", 4, tp=4)
    floor_ms = 1e3 * weight_bytes_per_gpu(job) / job.system.gpu.hbm_bandwidth
    assert floor_ms < graph.tpot_ms < 0.85 * eager.tpot_ms
    assert graph.ttft_ms == pytest.approx(eager.ttft_ms)


def test_graph_batches_stop_at_the_engine_capture_limit():
    trt = load_engine("tensorrt-llm")
    capped = trt.model_copy(update={"cuda_graph_max_batch": 8})
    assert graph_max_decode_seqs(_job(capped)) == 8
    assert graph_max_decode_seqs(_job(trt)) == trt.max_batch_size
    assert graph_max_decode_seqs(_job(load_engine("generic"))) == 0
    small = estimate_inference(_job(capped, batch=8, input_len=128, output_len=64))
    large = estimate_inference(_job(capped, batch=9, input_len=128, output_len=64))
    # one more sequence costs far less than the launches the graph saved
    assert large.tpot_ms > small.tpot_ms * 1.05


def test_serving_tables_price_decode_only_steps_as_graphs_and_mixed_steps_eagerly():
    capped = load_engine("tensorrt-llm").model_copy(update={"cuda_graph_max_batch": 32})
    dep = deployment_for(_job(capped))
    cost = StepCost(dep.job, dep.eff, 600, 64, 4096, graph_max_decode_seqs(dep.job))
    geff = graph_efficiency(dep.eff)
    for seqs, ctx in [(1, 100.0), (17, 2000.0), (32, 700.0), (40, 1500.0)]:
        exact_eff = geff if seqs <= 32 else dep.eff
        exact = batch_step(dep.job, exact_eff, layer.Batch(decode_seqs=seqs,
                                                           decode_context=ctx),
                           logit_rows=seqs)["step_s"]
        assert cost.step_s(0, 0.0, 0, seqs, seqs * ctx, seqs) == pytest.approx(
            float(exact), rel=0.01)
    mixed = batch_step(dep.job, dep.eff, layer.Batch(
        prefill_tokens=100, prefill_context=50.5, prefill_sequences=1, decode_seqs=10,
        decode_context=500.0), logit_rows=11)["step_s"]
    keys = 100 * 50.5
    assert cost.step_s(100, keys, 1, 10, 5000.0, 11) == pytest.approx(float(mixed), rel=0.01)
    run = cost.decode_attention_run_s(10, np.array([5000.0, 6000.0]))
    assert run[0] == pytest.approx(cost.decode_attention_s(10, 5000.0, True))


@pytest.mark.parametrize("version, concurrency", [("0.16.0", 1), ("0.16.0", 32), ("0.5.0", 8)])
def test_steady_concurrency_prices_decode_as_the_simulator(version, concurrency):
    """`infer --concurrency C` (steady state) and `serve` in a closed loop of C requests
    price decode steps alike: graph replays where the engine replays them, eager otherwise;
    their TPOT agrees within 10 % (the steady model spreads prefill over the steps)."""
    from flopcast.workloads.serving.run import serve
    from flopcast.workloads.serving.workload import Requests

    engine = load_engine("tensorrt-llm").at_version(version)
    job = _job(engine, "llama-3.1-8b", 1, input_len=1000, output_len=400,
               mode="concurrency", batch=concurrency)
    steady = estimate_inference(job).tpot_ms
    n = 4 * concurrency
    work = Requests(np.zeros(n), np.full(n, 1000), np.full(n, 400))
    simulated = serve(deployment_for(job), work, concurrency=concurrency)[0]["tpot_ms"]["mean"]
    assert steady == pytest.approx(simulated, rel=0.10)
