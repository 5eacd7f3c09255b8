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
from flopcast.workloads.inference.step import batch_step, forward_step, pipeline_paced
from flopcast.workloads.serving.cost import StepCost

HOST_S = 1e-4  # a slow host, so that it binds at batches the GPU runs in a few ms


def _engine(host_s=HOST_S, overlap=True):
    return load_engine("tensorrt-llm").model_copy(
        update={"host_s_per_sequence": host_s, "overlap_scheduling": overlap})


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
    step = forward_step(job, eff, decode_seqs=seqs, decode_context=500.0, logit_rows=seqs)
    paced = pipeline_paced(job, step, sequences=seqs)
    free_job = job.model_copy(update={"engine": _engine(0.0)})
    free = pipeline_paced(free_job, forward_step(free_job, eff, decode_seqs=seqs,
                                                 decode_context=500.0, logit_rows=seqs),
                          sequences=seqs)
    slot_gpu = float(free["step_s"]) / 4
    assert HOST_S * seqs > slot_gpu  # the host binds each slot
    assert float(paced["step_s"]) == pytest.approx(4 * HOST_S * seqs, rel=1e-9)
    assert float(paced["host_s"]) == pytest.approx(4 * (HOST_S * seqs - slot_gpu), rel=1e-9)


@pytest.mark.parametrize("overlap", [True, False])
def test_serving_tables_expose_host_time_as_batch_step(overlap):
    """The simulator's iteration price includes the same host rule (decode-only and mixed)."""
    job = _job(_engine(overlap=overlap))
    eff = inference_efficiency(job.system.gpu, job.engine)
    cost = StepCost(job, eff, 3000, 2048, 4096)
    for seqs in (8, 300, 2000):
        exact = _decode(job, seqs)["step_s"]
        assert cost.step_s(0, 0.0, 0, seqs, seqs * 500.0, seqs) == pytest.approx(
            float(exact), rel=0.01)
    mixed = batch_step(job, eff, layer.Batch(
        prefill_tokens=512, prefill_context=256.5, prefill_sequences=4, decode_seqs=1500,
        decode_context=500.0), logit_rows=1504)["step_s"]
    assert cost.step_s(512, 512 * 256.5, 4, 1500, 1500 * 500.0, 1504) == pytest.approx(
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
