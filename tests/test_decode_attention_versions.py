"""TensorRT-LLM's generation attention by release: the masked multi-head attention kernel
before XQA streams a grouped KV head once per query head; XQA once per group."""

from __future__ import annotations

import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.physics import kernels
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.estimate import estimate_inference


def test_releases_before_xqa_use_the_masked_mha_kernel():
    trt = load_engine("tensorrt-llm")
    assert trt.decode_attention_backend == "trtllm-xqa"
    assert trt.at_version(None).decode_attention_backend == "trtllm-xqa"
    assert trt.at_version("0.7a").decode_attention_backend == "trtllm-xqa"
    assert trt.at_version("0.16.0").decode_attention_backend == "trtllm-xqa"
    assert trt.at_version("0.5.0 (TensorRT 9.1)").decode_attention_backend == "trtllm-mmha"


@pytest.mark.parametrize("q_heads, kv_heads", [(16, 2), (8, 8), (64, 1)])
def test_kv_bytes_scale_with_the_group_when_heads_are_not_shared(q_heads, kv_heads):
    """Many long sequences (the GPU is full either way): the unshared kernel reads
    q_heads / kv_heads times the bytes; with one query head per KV head it changes nothing."""
    gpu = load_gpu("h100-sxm")
    args = (512, 4096, kv_heads * 2 * 128, q_heads, 2.0, gpu)
    shared = kernels.decode_attention_time(*args, backend="trtllm-xqa", kv_heads=kv_heads)
    unshared = kernels.decode_attention_time(*args, backend="trtllm-mmha", kv_heads=kv_heads)
    launch = gpu.kernels.launch_s
    ratio = (unshared - launch) / (shared - 2 * launch)
    assert ratio == pytest.approx(q_heads / kv_heads, rel=1e-6)
    floor = 512 * 4096 * kv_heads * 2 * 128 * 2.0 / gpu.hbm_bandwidth
    assert unshared > floor and shared > floor


def test_old_release_decodes_a_gqa_model_slower_and_an_mha_model_alike():
    def tpot(model, version):
        job = InferenceJob(model=load_model(model),
                           engine=load_engine("tensorrt-llm").at_version(version),
                           system=System(gpu=load_gpu("h200"), num_gpus=1), weights="fp8",
                           input_len=128, output_len=2048, batch=64)
        return estimate_inference(job).tpot_ms

    assert tpot("llama-2-70b", "0.5.0") > 1.2 * tpot("llama-2-70b", "0.7")
    # no graphs before 0.12 either way: compare two pre-graph releases, one each side of XQA
    assert tpot("llama-2-13b", "0.5.0") == pytest.approx(tpot("llama-2-13b", "0.7"), rel=0.03)
