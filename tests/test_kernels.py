"""Kernel model invariants and the one layer-cost model shared by training and inference."""

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.physics import kernels as K
from flopcast.physics import layer
from flopcast.physics.flops import attention_context
from flopcast.specs import System, precision
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import forward_step, inference_numerics
from flopcast.workloads.training.step import training_numerics

GPUS = ["h100-sxm", "a100-80gb", "b200", "l40s", "mi300x"]


@pytest.mark.parametrize("gpu_id", GPUS)
@pytest.mark.parametrize("dtype", ["bf16", "fp8"])
def test_gemm_time_rises_with_every_dimension(gpu_id, dtype):
    gpu = load_gpu(gpu_id)
    if dtype not in gpu.peak_flops:
        pytest.skip(f"{gpu_id} has no {dtype} tensor cores")
    base = np.array([1, 16, 256, 1024, 4096, 16384], dtype=float)
    for axis in range(3):
        shapes = [np.full_like(base, 4096.0) for _ in range(3)]
        shapes[axis] = base
        t = K.gemm_time(*shapes, gpu, dtype, act_bytes=1.0 if dtype == "fp8" else 2.0)
        assert np.all(np.diff(t) >= -1e-12), (axis, t)


@pytest.mark.parametrize("gpu_id", GPUS)
def test_small_m_gemms_are_bandwidth_bound_and_never_beat_their_bytes(gpu_id):
    gpu = load_gpu(gpu_id)
    for n, k in [(4096, 4096), (14336, 4096), (128256, 4096), (8192, 8192)]:
        for m in (1, 4, 16, 64):
            t = float(K.gemm_time(m, n, k, gpu, "bf16"))
            weight_bytes = 2.0 * n * k
            # never faster than streaming the weights at the measured copy bandwidth
            assert t >= weight_bytes / (gpu.hbm_bandwidth * gpu.kernels.copy_fraction)
            # and at small m the weights, not the FLOPs, set the time
            flops_time = 2.0 * m * n * k / gpu.peak("bf16")
            assert flops_time < 0.5 * t


@pytest.mark.parametrize("gpu_id", ["a100-80gb", "l40s", "rtx-3090", "h100-sxm"])
def test_weight_only_decode_gemms_stream_their_weights(gpu_id):
    """A one-row W4A16 GEMM pads its math to MARLIN's 16-row block, not a 64-row tile: it
    stays bound by its weight bytes, so 4-bit weights beat 8-bit ones and 8-bit beat 16-bit
    (a 64-row tile made A100 int4 decode compute-bound and no faster than int8)."""
    gpu = load_gpu(gpu_id)
    n, k = 14336, 4096
    t = {bits: float(K.gemm_time(1, n, k, gpu, "bf16", act_bytes=2.0,
                                 weight_bytes=bits / 8, weight_only=bits < 16))
         for bits in (4, 8, 16)}
    assert t[4] < t[8] < t[16], t
    if gpu_id == "rtx-3090":  # 76 FLOP per HBM byte: 16 rows of math at 4 bits nearly bind
        return
    stream = gpu.kernels.gemm_stream_fraction_by_dtype.get("bf16") or \
        gpu.kernels.gemm_stream_fraction
    weight_bound = gpu.kernels.launch_s + 0.5 * n * k / (gpu.hbm_bandwidth * stream)
    assert t[4] == pytest.approx(weight_bound, rel=0.05), (t[4], weight_bound)


@pytest.mark.parametrize("backend", ["flash-attention-2", "cudnn"])
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_attention_efficiency_rises_with_sequence_length(backend, direction):
    gpu = load_gpu("h100-sxm")
    seq = np.array([512, 1024, 2048, 4096, 8192, 16384, 32768], dtype=float)
    eff = K.attention_efficiency((seq + 1) / 2, 128, gpu, backend, direction)
    assert np.all(np.diff(eff) > 0)
    assert np.all(eff < 1)


def test_decode_attention_without_split_kv_idles_sms_at_small_batch():
    gpu = load_gpu("h100-sxm")
    elements = 8 * 2 * 128
    split = K.decode_attention_time(1, 32768, elements, 8, 2.0, gpu, "flash-attention-2")
    plain = K.decode_attention_time(1, 32768, elements, 8, 2.0, gpu, "mem-efficient")
    assert plain > 5 * split  # 8 blocks on 132 SMs vs a filled GPU
    big_split = K.decode_attention_time(64, 8192, elements, 8, 2.0, gpu, "flash-attention-2")
    big_plain = K.decode_attention_time(64, 8192, elements, 8, 2.0, gpu, "mem-efficient")
    assert big_plain == pytest.approx(big_split, rel=0.35)


def test_board_power_orders_idle_memory_compute():
    gpu = load_gpu("h100-sxm")
    idle, mem, comp = (float(K.board_power_w(gpu, c, m)) for c, m in
                       ((0, 0), (0, 1), (1, 0)))
    assert idle < mem < comp <= 1.2 * gpu.tdp_watts


def test_training_and_inference_price_the_same_forward_pass_alike():
    """A bf16 forward over one full sequence: the training path (a micro-batch of one) and
    the inference path (a prefill of the same tokens) build the same layer cost."""
    model, gpu = load_model("llama-3.1-8b"), load_gpu("h100-sxm")
    system = System(gpu=gpu, num_gpus=1)
    seq = 4096
    job = InferenceJob(model=model, engine=load_engine("generic"), system=system, tp=1,
                       input_len=seq, output_len=1)
    assert inference_numerics(job) == training_numerics(precision("bf16"))
    eff = gpu.efficiency
    place = layer.Placement(tp=1)
    batch = layer.Batch(prefill_tokens=seq, prefill_context=attention_context(model, seq, True),
                        prefill_sequences=1)
    backend = gpu.kernels.default_attention
    training_side = layer.layer_cost(model, system, eff, place, training_numerics(
        precision("bf16")), batch, moe=False, backend=backend)
    inference_side = forward_step(job, eff.updated(kernel_fixed_cost_scale=1.0,
                                                   inference_step_overhead_s=0.0),
                                  prefill_tokens=seq, prefill_len=seq, logit_rows=0)
    layers = model.num_layers
    assert float(inference_side["gemm_s"]) == pytest.approx(layers * training_side["gemm"])
    assert float(inference_side["elementwise_s"]) == pytest.approx(
        layers * training_side["elementwise"])
    if job.engine.attention_backend in (None, backend):
        assert float(inference_side["attention_s"]) == pytest.approx(
            layers * training_side["attention"])


def test_chunked_prefill_context_respects_sliding_windows():
    from flopcast.workloads.inference.step import chunk_context

    dense, windowed = load_model("llama-3.1-8b"), load_model("gpt-oss-120b")
    # a whole prompt from offset 0 is the causal mean; a later chunk sees the prefix too
    assert float(chunk_context(dense, 0, 4096)) == pytest.approx(2048.5)
    assert float(chunk_context(dense, 30000, 2048)) == pytest.approx(30000 + 1024.5)
    # local layers never see more than their window, however long the prefix
    full = float(chunk_context(windowed, 30000, 2048))
    assert full < 30000 + 1024.5
    assert float(chunk_context(windowed, 60000, 2048)) < 60000 + 1024.5


def test_mla_decode_has_a_compute_floor():
    gpu, model = load_gpu("h100-sxm"), load_model("deepseek-v3")
    per_key = layer.decode_flops_per_key(model, 1)
    elements = layer.kv_elements_per_token_rank(model, 1)
    memory_only = K.decode_attention_time(64, 8192, elements, 128, 1.0, gpu)
    with_flops = K.decode_attention_time(64, 8192, elements, 128, 1.0, gpu, flops_per_key=per_key)
    assert with_flops > memory_only  # 128 heads per 576-element latent: compute-bound


@pytest.mark.parametrize("gpu_id", __import__("flopcast.catalog.loader", fromlist=["gpu_ids"])
                         .gpu_ids())
def test_every_gpu_prices_what_pytorch_sdpa_runs_on_it(gpu_id):
    """A kernels file measured with PyTorch on any catalog GPU names SDPA's backends:
    flash-attention-2 (NVIDIA sm80+, and ROCm's port) and cuDNN (NVIDIA sm80+) for
    attention, flash-attention-2 and mem-efficient for decode; Volta runs only the
    memory-efficient kernel. Each must have a profile (a prior where nothing is measured)."""
    gpu = load_gpu(gpu_id)
    prof = gpu.kernels
    if gpu.family == "volta":
        want, want_decode = {"mem-efficient"}, {"mem-efficient"}
    elif gpu.vendor == "amd":
        want, want_decode = {"flash-attention-2"}, {"flash-attention-2", "mem-efficient"}
    else:
        want, want_decode = {"flash-attention-2", "cudnn"}, {"flash-attention-2", "mem-efficient"}
    assert want <= set(prof.attention)
    assert want_decode <= set(prof.decode_attention)
