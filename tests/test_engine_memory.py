"""How each engine sizes its KV cache (Engine.memory_fraction_of): TensorRT-LLM takes a share
of the memory left after loading, vLLM a share of all memory less weights and activations,
SGLang a static share of all memory for weights and KV whose default falls with the GPU
count."""

from __future__ import annotations

import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.specs import System
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.inference.step import memory_plan

GIB = 2**30


def _plan(engine: str, model: str, gpus: int, **update):
    e = load_engine(engine).model_copy(update=update)
    job = InferenceJob(model=load_model(model), engine=e,
                       system=System(gpu=load_gpu("h200"), num_gpus=gpus), tp=gpus)
    return job, memory_plan(job, Efficiency(), 1000)


@pytest.mark.parametrize("gpus, share", [(1, 0.88), (2, 0.87), (4, 0.85), (8, 0.81),
                                         (16, 0.79), (32, 0.79)])
def test_sglang_default_share_falls_with_the_gpu_count(gpus, share):
    assert load_engine("sglang").memory_share(gpus) == share
    assert load_engine("vllm").memory_share(gpus) == 0.9  # no table: one value


def test_each_mode_subtracts_what_the_engine_keeps_outside_the_kv_cache():
    job, plan = _plan("sglang", "llama-3.1-405b", 8)
    total, w = job.system.gpu.hbm_bytes, float(plan["weights_bytes"])
    reserved, ws = float(plan["reserved_bytes"]), float(plan["workspace_bytes"])
    assert float(plan["kv_budget_bytes"]) == pytest.approx(0.81 * total - w - reserved)
    _, vllm = _plan("vllm", "llama-3.1-405b", 8)
    assert float(vllm["kv_budget_bytes"]) == pytest.approx(
        0.9 * total - w - reserved - float(vllm["workspace_bytes"]))
    _, trt = _plan("tensorrt-llm", "llama-3.1-405b", 8)
    assert float(trt["kv_budget_bytes"]) == pytest.approx(
        0.9 * (total - w - reserved - float(trt["workspace_bytes"])))
    assert ws > 0


def test_a_share_below_the_weights_leaves_no_kv_cache():
    _, plan = _plan("sglang", "llama-3.1-405b", 8, memory_fraction_by_tp={1: 0.5})
    assert float(plan["kv_budget_bytes"]) == 0.0
    assert float(plan["max_sequences"]) == 0.0


@pytest.mark.parametrize("gpu, seqs, tokens", [("h100-sxm", 1024, 8192), ("h200", 1024, 8192),
                                               ("a100-80gb", 256, 2048), ("l40s", 256, 2048)])
def test_vllm_limits_follow_the_gpu(gpu, seqs, tokens):
    """vLLM V1 (EngineArgs.get_batch_defaults): large-memory GPUs other than A100 batch more;
    the job carries the limits of its GPU, and the serving deployment takes them."""
    from flopcast.workloads.serving.run import deployment_for

    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                       system=System(gpu=load_gpu(gpu), num_gpus=1))
    assert (job.engine.max_batch_size, job.engine.max_num_tokens) == (seqs, tokens)
    limits = deployment_for(job).limits
    assert (limits.max_seqs, limits.max_tokens) == (seqs, tokens)
    trt = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("tensorrt-llm"),
                       system=System(gpu=load_gpu(gpu), num_gpus=1))
    assert trt.engine == load_engine("tensorrt-llm")


def test_limits_follow_a_job_moved_to_another_gpu():
    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                       system=System(gpu=load_gpu("h100-sxm"), num_gpus=1))
    moved = job.model_copy(update={"system": System(gpu=load_gpu("l40s"), num_gpus=1)})
    assert (moved.engine.max_batch_size, moved.engine.max_num_tokens) == (256, 2048)
    back = moved.model_copy(update={"system": job.system})
    assert (back.engine.max_batch_size, back.engine.max_num_tokens) == (1024, 8192)


@pytest.mark.parametrize("gpu, chunk", [("rtx-4090", 2048), ("h100-sxm", 8192)])
def test_sglang_chunks_prefill_smaller_on_small_gpus(gpu, chunk):
    """SGLang's chunked_prefill_size: 2,048 below 25,000 MiB, else 8,192 (server_args.py);
    its token limit stays the entry's."""
    from flopcast.workloads.serving.run import deployment_for

    job = InferenceJob(model=load_model("pythia-1b"), engine=load_engine("sglang"),
                       system=System(gpu=load_gpu(gpu), num_gpus=1))
    assert job.engine.prefill_chunk_tokens == chunk
    assert job.engine.max_num_tokens == 16384
    assert deployment_for(job).limits.chunk_tokens == chunk


@pytest.mark.parametrize("model, gpu, gpus, expected", [
    ("llama-3.1-8b", "l4", 1, 2049),        # 30K KV tokens / 128K context · 512 < 2,048
    ("llama-3.1-70b", "h200", 4, 4097),     # over a million KV tokens: the 4,096 ceiling
    ("llama-3.1-8b", 20, 1, None),          # 20 GiB: about 1,200 KV tokens, half of them
])
def test_sglang_derives_running_requests_from_its_kv_cache(model, gpu, gpus, expected):
    """SGLang without --max-running-requests: min(KV tokens // 2, min(max(KV tokens /
    context_len · 512, 2048), 4096) + 1) (model_runner.py, tp_worker.py), the same for the
    simulator, `infer --max-throughput` and the reasoning cost."""
    from flopcast.workloads.inference.step import max_sequences_in_flight
    from flopcast.workloads.serving.cost import kv_blocks
    from flopcast.workloads.serving.run import deployment_for

    card = (load_gpu(gpu) if isinstance(gpu, str) else
            load_gpu("h100-sxm").model_copy(update={"hbm_bytes": gpu * 2**30}))
    job = InferenceJob(model=load_model(model), engine=load_engine("sglang"),
                       system=System(gpu=card, num_gpus=gpus), tp=gpus)
    dep = deployment_for(job)
    kv_tokens = kv_blocks(job, dep.eff)[0] * job.engine.kv_block_tokens
    assert dep.limits.max_seqs == (expected or kv_tokens // 2)
    assert max_sequences_in_flight(job, dep.eff) == dep.limits.max_seqs
    assert expected is None or kv_tokens // 2 > expected


@pytest.mark.parametrize("release, expected", [("0.3.0", 5119), ("0.3.1", 4096),
                                               ("0.3.2", 4097), (None, 4097)])
def test_sglang_0_3_0_pooled_5120_requests_and_kept_one_back(release, expected):
    """SGLang 0.3.0 capped its request pool at 5,120 and admitted its size - 1; 0.3.1 capped
    it at 4,096 and admitted its size; from 0.3.2 the pool has a spare slot, admitted too
    (+1). Llama-2-7B's 4K context on an H200 gives a pool far above either cap."""
    from flopcast.workloads.inference.step import max_sequences_in_flight
    from flopcast.workloads.serving.run import deployment_for

    engine = load_engine("sglang").at_version(release)
    job = InferenceJob(model=load_model("llama-2-7b"), engine=engine,
                       system=System(gpu=load_gpu("h200"), num_gpus=1))
    dep = deployment_for(job)
    assert dep.limits.max_seqs == expected == max_sequences_in_flight(job, dep.eff)


def test_a_derived_sequence_limit_needs_a_static_kv_pool_and_ordered_bounds():
    """The derived limit sizes the logits workspace, so it must come from a KV pool the
    workspace does not shrink; floor above ceiling is refused."""
    from pydantic import ValidationError

    sglang = load_engine("sglang").model_dump()
    rule = sglang["max_batch_from_kv"]
    with pytest.raises(ValidationError, match="memory_fraction_of static"):
        type(load_engine("sglang"))(**{**sglang, "memory_fraction_of": "free"})
    with pytest.raises(ValidationError, match="floor 5000 is above ceiling 4096"):
        type(load_engine("sglang"))(**{**sglang, "max_batch_from_kv": {**rule, "floor": 5000}})


def test_sglang_logits_workspace_is_sized_by_its_derived_limit():
    """Weights, workspace, runtime reserve and KV fit the card (an L4: 2,049 rows of fp32
    logits, not the 4,097 the entry allows at most)."""
    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("sglang"),
                       system=System(gpu=load_gpu("l4"), num_gpus=1))
    from flopcast.catalog.loader import inference_efficiency

    plan = memory_plan(job, inference_efficiency(job.system.gpu, job.engine), 2000)
    assert int(plan["engine_max_sequences"]) == 2049
    used = sum(float(plan[k]) for k in ("weights_bytes", "workspace_bytes", "reserved_bytes",
                                        "kv_budget_bytes"))
    assert used <= job.system.gpu.hbm_bytes
