"""The engine's host time per scheduled sequence (Engine.host_s_per_sequence): hidden behind
the GPU's step under overlapped scheduling, added to it otherwise, never paid by a static
batch; the same rule in `infer`, the pipeline pacing and the serving simulator's tables."""

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import inference_efficiency, load_engine
from flopcast.physics import layer
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.estimate import estimate_inference
from flopcast.workloads.inference.step import (
    batch_step,
    forward_step,
    graph_efficiency,
    pipeline_paced,
    with_host_time,
)
from flopcast.workloads.serving.cost import StepCost

HOST_S = 1e-4  # a slow host, so that it binds at batches the GPU runs in a few ms


def _engine(host_s=HOST_S, overlap=True, pipeline_overlap=None):
    return load_engine("tensorrt-llm").model_copy(
        update={"host_s_per_sequence": host_s, "overlap_scheduling": overlap,
                "pipeline_overlap_scheduling": pipeline_overlap})


def _job(engine, model="llama-3.1-8b", gpus=1, pp=1, **kw):
    base = dict(model=load_model(model), engine=engine, tp=gpus // pp, pp=pp,
                system=System(gpu=load_gpu("h100-sxm"), num_gpus=gpus), weights="fp8",
                input_len=128, output_len=128)
    return InferenceJob(**{**base, **kw})


def _decode(job, seqs, **kw):
    eff = inference_efficiency(job.system.gpu, job.engine)
    return batch_step(job, eff, layer.Batch(decode_seqs=seqs, decode_context=500.0),
                      logit_rows=seqs, **kw)


@pytest.mark.parametrize("pp", [1, 2])
def test_host_bound_replica_makes_one_token_per_sequence_time(pp):
    """Where the host binds, a replica's output tokens/s is 1/host_s_per_sequence whatever
    its batch, also when pp stages each schedule a C/pp micro-batch per slot (pp slots of
    host·C/pp per token); without host time the GPUs alone are more than twice as fast."""
    kw = dict(gpus=pp, pp=pp, mode="max_throughput", batch=1)
    bound = estimate_inference(_job(_engine(), **kw))
    free = estimate_inference(_job(_engine(0.0), **kw))
    assert free.output_tokens_per_s > 2 / HOST_S
    assert bound.output_tokens_per_s == pytest.approx(1 / HOST_S, rel=0.02)
    assert bound.decode_breakdown_s["host_s"] > 0
    assert free.decode_breakdown_s["host_s"] == 0


@pytest.mark.parametrize("seqs", [1, 16, 256, 2048])
def test_overlap_hides_host_time_up_to_the_gpu_step(seqs):
    """Overlapped: step = max(GPU, host); synchronous: GPU + host."""
    gpu = float(_decode(_job(_engine(0.0)), seqs)["step_s"])
    host = HOST_S * seqs
    over = _decode(_job(_engine()), seqs)
    sync = _decode(_job(_engine(overlap=False)), seqs)
    assert float(over["step_s"]) == pytest.approx(max(gpu, host), rel=1e-9)
    assert float(sync["step_s"]) == pytest.approx(gpu + host, rel=1e-9)
    assert float(over["host_s"]) == pytest.approx(max(host - gpu, 0.0), abs=1e-12)


def test_static_batch_pays_no_host_time():
    """A static batch runs in a session loop with no per-request scheduler."""
    kw = dict(mode="batch", batch=1024)
    assert estimate_inference(_job(_engine(), **kw)).tpot_ms == pytest.approx(
        estimate_inference(_job(_engine(0.0), **kw)).tpot_ms, rel=1e-12)
    unscheduled = _decode(_job(_engine()), 2048, scheduled=False)
    assert float(unscheduled["host_s"]) == 0


def test_pipeline_stages_pay_host_time_per_slot():
    """With pp stages, each stage's rank schedules the micro-batch once per slot: host-bound
    slots make the step pp × host time of the micro-batch."""
    job = _job(_engine(), model="llama-3.1-70b", gpus=4, pp=4)
    eff = inference_efficiency(job.system.gpu, job.engine)
    seqs = 512
    gpu = pipeline_paced(job, forward_step(job, eff, decode_seqs=seqs, decode_context=500.0,
                                           logit_rows=seqs, scheduled=False))
    assert float(gpu["host_s"]) == 0
    slot_gpu = float(gpu["step_s"]) / 4
    assert HOST_S * seqs > slot_gpu  # the host binds each slot
    paced = with_host_time(job, gpu, seqs, slots=4)
    assert float(paced["step_s"]) == pytest.approx(4 * HOST_S * seqs, rel=1e-9)
    assert float(paced["host_s"]) == pytest.approx(4 * (HOST_S * seqs - slot_gpu), rel=1e-9)


@pytest.mark.parametrize("pp", [2, 4])
def test_a_blocking_pipeline_loop_adds_host_time_to_every_slot(pp):
    """TensorRT-LLM's pipeline loop waits on the last rank (pipeline_overlap_scheduling
    false): each slot pays its micro-batch's host time beside the GPU, even where the GPU
    slot is longer; unpipelined, the same engine hides it."""
    trt = load_engine("tensorrt-llm")
    assert trt.pipeline_overlap_scheduling is False and trt.overlap_scheduling
    assert not trt.hides_host_time_at(pp) and trt.hides_host_time_at(1)
    job = _job(_engine(pipeline_overlap=False), model="llama-3.1-70b", gpus=pp, pp=pp)
    eff = inference_efficiency(job.system.gpu, job.engine)
    seqs = 8  # a few sequences: the GPU slot is far longer than their host time
    gpu = pipeline_paced(job, forward_step(job, eff, decode_seqs=seqs, decode_context=500.0,
                                           logit_rows=seqs, scheduled=False))
    assert float(gpu["step_s"]) / pp > HOST_S * seqs
    paced = with_host_time(job, gpu, seqs, slots=pp)
    assert float(paced["step_s"]) == pytest.approx(float(gpu["step_s"]) + pp * HOST_S * seqs,
                                                   rel=1e-9)
    flat = _job(_engine(pipeline_overlap=False), model="llama-3.1-70b", gpus=4, pp=1, tp=4)
    assert float(_decode(flat, seqs)["host_s"]) == 0


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("concurrency", [64, 192, 256, 384, 768])
def test_steady_state_adds_host_time_once_to_the_gpu_step(concurrency, overlap):
    """`infer --concurrency C`: the GPU's steady step (mixed step less what decode graphs
    save) and the host's time for the C sequences plus the step's new prompts combine once:
    max(GPU, host) overlapped, GPU + host synchronous."""
    kw = dict(mode="concurrency", batch=concurrency, input_len=1000, output_len=400)
    gpu = estimate_inference(_job(_engine(0.0, overlap), **kw)).tpot_ms / 1e3
    host = HOST_S * (concurrency + max(concurrency / 400, 1.0))
    tpot = estimate_inference(_job(_engine(overlap=overlap), **kw)).tpot_ms / 1e3
    expected = max(gpu, host) if overlap else gpu + host
    assert tpot == pytest.approx(expected, rel=1e-9)


def test_host_time_counts_decoding_sequences_and_prefilled_chunks():
    """A mixed iteration schedules every decoding sequence and every prefilled chunk."""
    job = _job(_engine(overlap=False))
    eff = inference_efficiency(job.system.gpu, job.engine)
    step = batch_step(job, eff, layer.Batch(
        prefill_tokens=2048, prefill_context=1024.5, prefill_sequences=4, decode_seqs=100,
        decode_context=500.0), logit_rows=104)
    assert float(step["host_s"]) == pytest.approx(HOST_S * 104, rel=1e-12)
    decode_only = _decode(job, 100)
    assert float(decode_only["host_s"]) == pytest.approx(HOST_S * 100, rel=1e-12)


def test_simulated_offline_run_is_capped_by_the_host():
    """The serving simulator's decode stretches pay the host time too: an offline run of a
    host-bound replica stays at 1/host_s_per_sequence tokens/s, as `infer` says."""
    from flopcast.workloads.serving.run import deployment_for, serve
    from flopcast.workloads.serving.workload import Requests

    job = _job(_engine(), mode="max_throughput", batch=1)
    n = 6000
    work = Requests(np.zeros(n), np.full(n, 128), np.full(n, 128))
    simulated = serve(deployment_for(job), work)[0]["output_tokens_per_s"]
    assert simulated <= 1.02 / HOST_S
    assert simulated == pytest.approx(estimate_inference(job).output_tokens_per_s, rel=0.15)


@pytest.mark.parametrize("overlap", [True, False])
def test_serving_tables_expose_host_time_as_batch_step(overlap):
    """The simulator's iteration price includes the same host rule (decode-only and mixed)."""
    job = _job(_engine(overlap=overlap))
    eff = inference_efficiency(job.system.gpu, job.engine)
    graphs = 1024  # decode-only steps up to this size replay graphs (their own table)
    cost = StepCost(job, eff, 3000, 2048, 4096, graphs)
    for seqs in (8, 300, 1000, 2000):
        step_eff = graph_efficiency(eff) if seqs <= graphs else eff
        exact = batch_step(job, step_eff, layer.Batch(decode_seqs=seqs, decode_context=500.0),
                           logit_rows=seqs)["step_s"]
        assert cost.step_s(0, 0.0, 0, seqs, seqs * 500.0, seqs) == pytest.approx(
            float(exact), rel=0.01)
    # many short prompts beside few decoders: the chunks are most of the host's work
    mixed = batch_step(job, eff, layer.Batch(
        prefill_tokens=2048, prefill_context=16.5, prefill_sequences=64, decode_seqs=10,
        decode_context=500.0), logit_rows=74)["step_s"]
    assert cost.step_s(2048, 2048 * 16.5, 64, 10, 10 * 500.0, 74) == pytest.approx(
        float(mixed), rel=0.01)


def test_only_the_pytorch_executor_prices_host_time():
    """TensorRT-LLM from 1.0 (PyTorch executor) carries a host time per sequence; its C++
    executor before 1.0 and engines without a measurement price none (0)."""
    trt = load_engine("tensorrt-llm")
    assert 1e-5 < trt.host_s_per_sequence < 1e-4
    assert trt.at_version("0.21.0").host_s_per_sequence == 0
    assert trt.at_version("1.0.0").host_s_per_sequence == trt.host_s_per_sequence
    for other in ("vllm", "sglang", "nim", "generic"):
        assert load_engine(other).host_s_per_sequence == 0
    assert np.isfinite(trt.host_s_per_sequence)


@pytest.mark.parametrize("pipeline_overlap", [False, None])
def test_simulated_pipeline_pays_host_time_as_infer_does(pipeline_overlap):
    """On a pipelined TensorRT-LLM replica, the host time costs a closed loop of C requests
    in the simulator the same share of its throughput as it costs `infer --concurrency C`,
    blocking loop or not (the simulator's iteration crosses all pp stages: pp slots' worth
    of host time). The two already differ without host time (the simulator does not pace
    by the slowest stage: docs/accuracy.md), so their ratios are compared."""
    from flopcast.workloads.serving.run import deployment_for, serve
    from flopcast.workloads.serving.workload import Requests

    n = 4 * 512
    work = Requests(np.zeros(n), np.full(n, 128), np.full(n, 128))
    kept = {}
    for host_s in (HOST_S, 0.0):
        job = _job(_engine(host_s, pipeline_overlap=pipeline_overlap), model="llama-3.1-70b",
                   gpus=4, pp=4, mode="concurrency", batch=512, input_len=128, output_len=128)
        kept[host_s] = (estimate_inference(job).output_tokens_per_s,
                        serve(deployment_for(job), work, concurrency=512)[0]
                        ["output_tokens_per_s"])
    infer_share = kept[HOST_S][0] / kept[0.0][0]
    serve_share = kept[HOST_S][1] / kept[0.0][1]
    assert infer_share < 0.85  # the host time matters here
    assert serve_share == pytest.approx(infer_share, abs=0.08)


def test_infer_says_when_the_host_binds():
    """`flopcast infer` names a host-bound decode step (TensorRT-LLM ≥ 1.0 at 2,048
    sequences of Llama-3.1-8B), and says nothing for an engine that prices no host time."""
    from typer.testing import CliRunner

    from flopcast.cli import app

    args = ["infer", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--precision", "fp8",
            "--input-len", "128", "--output-len", "128", "--max-throughput", "--engine"]
    bound = CliRunner().invoke(app, [*args, "tensorrt-llm"])
    assert bound.exit_code == 0, bound.output
    assert "host-bound" in bound.output
    free = CliRunner().invoke(app, [*args, "vllm"])
    assert free.exit_code == 0 and "host-bound" not in free.output
