"""FlashInfer's CUDA-core decode kernel (SGLang's choice for small GQA groups): its products run
on the fp32 units, so its time grows with the group at equal KV bytes; which kernel SGLang picks
by group, KV format and release."""

from __future__ import annotations

import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.physics import kernels
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import attention_backends


def _decode_s(backend, q_heads, kv_heads, gpu="h100-sxm", seqs=64, kv_len=4096):
    g = load_gpu(gpu)
    flops_per_key = 2 * q_heads * (128 + 128)
    return kernels.decode_attention_time(seqs, kv_len, kv_heads * 2 * 128, q_heads, 2.0, g,
                                         backend, flops_per_key, "bf16", kv_heads)


def test_one_query_head_per_kv_head_is_bandwidth_bound_either_way():
    assert _decode_s("flashinfer-cuda-cores", 4, 4) == pytest.approx(
        _decode_s("flashinfer", 4, 4), rel=1e-9)


def test_cuda_core_time_grows_with_the_group_at_equal_bytes():
    times = [_decode_s("flashinfer-cuda-cores", 4 * g, 4) for g in (1, 2, 4, 8, 16)]
    assert all(b >= a for a, b in zip(times[:-1], times[1:], strict=True))
    assert times[-1] > 3 * times[0]
    tensor = [_decode_s("flashinfer", 4 * g, 4) for g in (1, 8, 16)]
    assert tensor[0] == pytest.approx(tensor[-1], rel=0.05)


def test_cuda_core_kernel_never_beats_its_bytes():
    g = load_gpu("h200")
    for q_heads, kv_heads in [(16, 2), (8, 1), (32, 8)]:
        t = _decode_s("flashinfer-cuda-cores", q_heads, kv_heads, gpu="h200")
        floor = 64 * 4096 * kv_heads * 2 * 128 * 2.0 / g.hbm_bandwidth
        assert t > floor


def test_group_eight_on_h100_reaches_about_half_the_hbm_bandwidth():
    """The FlashInfer blog's H100 SXM point the fraction is read from (32 query / 4 KV heads,
    batch 64, 4 K context: 49 % of HBM); a consistency check of the formula, not a fit."""
    g = load_gpu("h100-sxm")
    t = _decode_s("flashinfer-cuda-cores", 32, 4)
    achieved = 64 * 4096 * 4 * 2 * 128 * 2.0 / t / g.hbm_bandwidth
    assert 0.40 < achieved < 0.55


def _job(model, tp, version=None, kv="bf16"):
    engine = load_engine("sglang").at_version(version)
    return InferenceJob(model=load_model(model), engine=engine,
                        system=System(gpu=load_gpu("h200"), num_gpus=tp), tp=tp,
                        kv_format=kv, input_len=1024, output_len=1024, batch=8)


@pytest.mark.parametrize("model, tp, version, kernel", [
    ("llama-3.3-70b", 4, None, "flashinfer-cuda-cores"),    # group 8, flashinfer 0.1.x
    ("llama-3.1-405b", 8, None, "flashinfer"),              # group 16: tensor cores
    ("llama-3.3-70b", 4, "0.4.3", "flashinfer"),            # later releases: groups > 4
    ("llama-3.1-8b", 1, "0.4.5", "flashinfer-cuda-cores"),  # group 4 stays on CUDA cores
    ("llama-3.3-70b", 4, "0.3.0", "flashinfer-cuda-cores"),
])
def test_sglang_picks_the_decode_kernel_by_group_and_release(model, tp, version, kernel):
    assert attention_backends(_job(model, tp, version))[1] == kernel


def test_fp8_kv_follows_the_group_rule_until_0_4_3_and_mla_never_does():
    """0.4.1 asks flashinfer's compiled-groups helper before it looks at the KV dtype."""
    assert attention_backends(_job("llama-3.3-70b", 4, kv="fp8"))[1] == "flashinfer-cuda-cores"
    assert attention_backends(_job("llama-3.1-8b", 1, "0.4.3", kv="fp8"))[1] == "flashinfer"
    assert attention_backends(_job("deepseek-v3", 8))[1] == "flashinfer"


@pytest.mark.parametrize("version, group, kernel", [
    (None, 7, "flashinfer"), (None, 3, "flashinfer"), (None, 2, "flashinfer-cuda-cores"),
    ("0.4.3", 3, "flashinfer-cuda-cores"), ("0.4.3", 8, "flashinfer"),
])
def test_only_the_compiled_groups_take_cuda_cores(version, group, kernel):
    engine = load_engine("sglang").at_version(version)
    assert engine.decode_backend_for(group) == kernel


def test_release_changes_are_validated():
    from pydantic import ValidationError

    from flopcast.specs.engine import ReleaseChange

    with pytest.raises(ValidationError, match="small_group_decode_mx"):
        ReleaseChange(since="0.5", values={"small_group_decode_mx": 4})
    with pytest.raises(ValidationError, match="release number"):
        ReleaseChange(since="", values={"decode_cuda_graphs": True})
    engine = load_engine("sglang").model_copy(update={"release_changes": [
        ReleaseChange(since="0.5", values={"decode_cuda_graphs": "nope"})]})
    with pytest.raises(ValidationError):
        engine.at_version("0.5.1")
    entry = load_engine("sglang").model_dump()
    with pytest.raises(ValidationError, match="not after describes_release"):
        type(engine).model_validate({**entry, "describes_release": "0.5"})
    with pytest.raises(ValidationError, match="is after describes_release"):
        type(engine).model_validate({**entry, "describes_release": "0.3"})
    with pytest.raises(ValidationError, match="exactly one of since and before"):
        ReleaseChange(since="0.5", before="0.6", values={"decode_cuda_graphs": True})
    with pytest.raises(ValidationError, match="exactly one of since and before"):
        ReleaseChange(values={"decode_cuda_graphs": True})


def test_before_changes_apply_to_older_releases_narrowest_last():
    """One mechanism for both directions: a run takes every change whose range holds its
    release, the narrowest ``before`` range winning, and an unversioned run none."""
    from flopcast.specs.engine import ReleaseChange

    engine = load_engine("tensorrt-llm").model_copy(update={"release_changes": [
        ReleaseChange(before="0.9", values={"max_batch_size": 64}),
        ReleaseChange(before="0.5", values={"max_batch_size": 8}),
        ReleaseChange(since="2.0", values={"max_batch_size": 4096}),
        ReleaseChange(before="0.8.5", values={"max_batch_size": 32}),
        ReleaseChange(before="0.8", values={"max_batch_size": 16}),  # a prefix of 0.8.5
    ]})
    assert engine.at_version("0.4").max_batch_size == 8
    assert engine.at_version("0.8.1").max_batch_size == 32
    assert engine.at_version("0.7").max_batch_size == 16
    assert engine.at_version("0.8.7").max_batch_size == 64
    assert engine.at_version("1.2").max_batch_size == engine.max_batch_size
    assert engine.at_version("2.1").max_batch_size == 4096
    assert engine.at_version(None).max_batch_size == engine.max_batch_size
    trt = load_engine("tensorrt-llm")
    assert trt.at_version("0.6.1").decode_attention_backend == "trtllm-mmha"
    assert trt.at_version("0.7").decode_attention_backend == "trtllm-xqa"
    graphs = [trt.at_version(v).decode_cuda_graphs for v in ("0.11", "0.12")]
    overlap = [trt.at_version(v).overlap_scheduling for v in ("0.12", "1.0")]
    assert graphs == [False, True] and overlap == [False, True]


def test_sglang_decode_graphs_from_the_overlap_scheduler_on():
    sglang = load_engine("sglang")
    assert sglang.at_version(None).decode_cuda_graphs
    assert sglang.at_version("0.4.1").decode_cuda_graphs
    assert not sglang.at_version("0.3.0").decode_cuda_graphs
    assert sglang.at_version("0.4.3").small_group_decode_groups == [1, 2, 3, 4]
    assert sglang.at_version("0.4.1").small_group_decode_groups == [1, 2, 4, 8]


def test_engine_version_reaches_infer_and_is_validated():
    """--engine-version prices that release: SGLang 0.3 decodes eagerly without overlap, 0.4.3
    puts group 8 on tensor cores; a version with no release number is refused by name."""
    from pydantic import ValidationError

    from flopcast.api.infer import InferRequest, run_infer

    def tpot(version):
        return run_infer(InferRequest(model="llama-3.3-70b", gpu="h200", gpus=4, engine="sglang",
                                      engine_version=version, concurrency=32, input_len=1024,
                                      output_len=512)).tpot_ms

    default, old, later = tpot(None), tpot("0.3.0"), tpot("0.4.3")
    assert old > 1.15 * default and later < default
    assert tpot("0.4.1") == pytest.approx(default, rel=1e-12)
    with pytest.raises(ValidationError, match="engine_version"):
        InferRequest(model="llama-3.1-8b", engine="sglang", engine_version="latest")
