"""An inference engine's tensor-parallel all-reduce: its measured custom kernels inside an
NVLink domain (kernels.engine_all_reduce), NCCL's ring where the engine runs that instead."""

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.physics import comm, layer
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.estimate import estimate_inference
from flopcast.workloads.inference.step import engine_all_reduce

SIZES = np.logspace(10, 30, 41, base=2.0)  # 1 KiB .. 1 GiB


@pytest.mark.parametrize("gpu_id", ["h100-sxm", "b200"])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_the_engine_all_reduce_is_the_fastest_algorithm_and_grows_with_the_message(gpu_id, n):
    gpu = load_gpu(gpu_id)
    ar = gpu.kernels.engine_all_reduce
    t = layer.engine_all_reduce_time(SIZES, n, gpu.scale_up_bandwidth, ar)
    assert np.all(np.diff(t) >= 0)
    # never faster than its fixed time, nor than the ring volume at the link's full speed
    ring_volume = 2 * (n - 1) / n * SIZES
    assert np.all(t >= min(ar.one_shot_s, ar.two_shot_s, ar.large_s))
    assert np.all(t >= ring_volume / (gpu.scale_up_bandwidth * max(
        ar.custom_bus_fraction, ar.large_bus_fraction)))
    # small messages pay the one-shot kernel's fixed time, large ones the library's bandwidth
    assert t[0] == pytest.approx(ar.one_shot_s, rel=0.2)
    large = ring_volume[-1] / (gpu.scale_up_bandwidth * ar.large_bus_fraction) + ar.large_s
    assert t[-1] == pytest.approx(large)
    assert float(layer.engine_all_reduce_time(1e6, 1, gpu.scale_up_bandwidth, ar)) == 0.0


def _job(engine, gpu="h200", version=None):
    return InferenceJob(model=load_model("llama-3.3-70b"),
                        engine=load_engine(engine).at_version(version),
                        system=System(gpu=load_gpu(gpu), num_gpus=8), tp=8, weights="fp8",
                        input_len=2048, output_len=128, batch=64)


def test_engines_without_custom_all_reduce_run_the_ring():
    assert engine_all_reduce(_job("tensorrt-llm")) is not None
    assert engine_all_reduce(_job("tensorrt-llm", version="0.11.0")) is None  # NCCL then
    assert engine_all_reduce(_job("vllm", version="0.4.0")) is None
    assert engine_all_reduce(_job("sglang")) is not None
    # no NVLink on the RTX PRO 6000: its family's NVLink measurement does not apply
    assert engine_all_reduce(_job("tensorrt-llm", gpu="rtx-pro-6000")) is None
    no_link = _job("tensorrt-llm")  # e.g. a `flopcast profile` entry: no NVLink recorded
    gpu = no_link.system.gpu.model_copy(update={"nvlink_bandwidth": 0.0})
    no_link = no_link.model_copy(update={"system": no_link.system.model_copy(
        update={"gpu": gpu})})
    assert engine_all_reduce(no_link) is None


def test_a_tensor_parallel_prefill_pays_the_engine_all_reduce_not_the_ring():
    new, old = _job("tensorrt-llm"), _job("tensorrt-llm", version="0.11.0")
    est_new, est_old = estimate_inference(new), estimate_inference(old)
    rows = 2048 * 64
    gpu = new.system.gpu
    message = min(rows, new.engine.max_num_tokens) * new.model.hidden_size * 2
    custom = layer.engine_all_reduce_time(message, 8, gpu.scale_up_bandwidth,
                                          gpu.kernels.engine_all_reduce)
    ring = comm.all_reduce_time(message, 8, gpu.scale_up_bandwidth
                                * gpu.efficiency.nvlink_fraction, 0.0)
    assert custom < ring  # NVLS-class bandwidth beats the training ring's achieved share
    assert est_new.prefill_breakdown_s["tp_comm_s"] < est_old.prefill_breakdown_s["tp_comm_s"]
