import json
import os
import subprocess
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import inference_efficiency, load_engine
from flopcast.errors import FlopcastError
from flopcast.physics.kv_cache import kv_bytes_per_token, sequence_kv_bytes
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.specs.quantization import weight_format
from flopcast.workloads.inference import estimate_inference, forward_step
from flopcast.workloads.inference.step import pipeline_paced, weight_bytes_per_gpu


def job(model="llama-3.1-8b", gpu="h100-sxm", gpus=1, engine="vllm", **kw):
    base = dict(model=load_model(model), system=System(gpu=load_gpu(gpu), num_gpus=gpus),
                engine=load_engine(engine), tp=gpus)
    return InferenceJob(**{**base, **kw})


@pytest.mark.parametrize("model_id, expected", [
    ("llama-2-7b", 32 * 2 * 32 * 128 * 2),       # MHA: 2 · heads · head_dim per layer
    ("llama-3.1-70b", 80 * 2 * 8 * 128 * 2),     # GQA: 8 KV heads
    ("deepseek-v3", 61 * (512 + 64) * 2),        # MLA: latent + rotary key
    ("qwen3-30b-a3b", 48 * 2 * 4 * 128 * 2),
])
def test_kv_bytes_per_token(model_id, expected):
    assert kv_bytes_per_token(load_model(model_id), 2) == expected


def test_paged_kv_rounds_to_blocks_and_window_caps():
    m = load_model("llama-3.1-8b")
    per_token = kv_bytes_per_token(m, 1)
    assert float(sequence_kv_bytes(m, 100, 1, block_tokens=64)) == 128 * per_token
    w = load_model("mistral-7b")
    assert float(sequence_kv_bytes(w, 100_000, 2)) == kv_bytes_per_token(w, 2) * 4096


def test_engines_that_ignore_an_all_local_window_attend_over_the_whole_context():
    """TensorRT-LLM (and NIM) size the KV cache for the whole context unless the runtime's
    max_attention_window_size is set; vLLM reads Mistral 7B v0.1's 4,096 window. Interleaved
    patterns are architecture and stay."""
    kw = dict(input_len=20000, output_len=2000, mode="max_throughput", weights="fp8",
              kv_format="fp8")
    for engine, window in (("tensorrt-llm", None), ("nim", None), ("vllm", 4096)):
        j = job(model="mistral-7b", engine=engine, **kw)
        assert j.model.sliding_window == window
    trt = estimate_inference(job(model="mistral-7b", engine="tensorrt-llm", **kw))
    vllm = estimate_inference(job(model="mistral-7b", engine="vllm", **kw))
    assert trt.kv_bytes_per_sequence > 4 * vllm.kv_bytes_per_sequence
    gemma = job(model="gemma-2-9b", engine="tensorrt-llm", **kw).model
    assert gemma.sliding_window == load_model("gemma-2-9b").sliding_window


def test_decode_at_batch_one_is_memory_bound():
    j = job(input_len=512, output_len=256)
    est = estimate_inference(j)
    from flopcast.physics.params import embedding_params

    # a decode step streams every weight but the input embedding table (one row is looked up)
    streamed = weight_bytes_per_gpu(j) - embedding_params(j.model) * 2 / j.tp
    prof = j.system.gpu.kernels
    weight_time = streamed / (j.system.gpu.hbm_bandwidth * prof.gemm_stream_fraction)
    # weights dominate one decode step; KV, norms and each kernel's fixed cost (a dozen small
    # kernels per layer, ~8 µs each as measured on an H100) add the rest
    assert weight_time <= est.tpot_ms / 1e3 <= 1.6 * weight_time


def test_throughput_rises_then_saturates_with_batch():
    j = job(input_len=512, output_len=512, mode="concurrency")
    eff = inference_efficiency(j.system.gpu, j.engine)
    c = np.array([1, 2, 256, 512])
    from flopcast.workloads.inference.estimate import _steady_step

    tps = c / _steady_step(j, eff, c)["step_s"]
    assert tps[1] / tps[0] > 1.8            # memory-bound: twice the batch, ~twice the tokens
    assert tps[3] / tps[2] < 1.3            # compute-bound: little left to gain
    assert np.all(np.diff(tps) > 0)


def test_int4_weight_only_wins_at_batch_one_and_loses_its_edge_at_large_batch():
    def tpot(precision, batch, part="step_s"):
        j = job(weights=precision, kv_format="bf16", input_len=256, output_len=64, batch=batch)
        eff = inference_efficiency(j.system.gpu, j.engine)
        return float(forward_step(j, eff, decode_seqs=batch, decode_context=288,
                                  logit_rows=batch)[part][()])

    # MARLIN (Frantar et al. 2024 Fig. 1): ~3.5-4x on large weight GEMMs at batch 1; an 8B
    # model's 4096-wide GEMMs keep their ~8 µs fixed cost, and the whole step gains less still
    # because attention and norms do not shrink
    assert tpot("bf16", 1, "gemm_s") / tpot("w4a16", 1, "gemm_s") > 2.2
    assert tpot("bf16", 1) / tpot("w4a16", 1) > 1.5
    assert tpot("bf16", 2048) / tpot("w4a16", 2048) < 1.05


def test_pipeline_stages_add_throughput_only_when_compute_bound():
    def tps(pp, concurrency):
        j = job("llama-3.1-70b", gpus=4 * pp, tp=4, pp=pp, input_len=512, output_len=512,
                mode="concurrency", batch=concurrency)
        return estimate_inference(j).output_tokens_per_s

    assert tps(2, 512) / tps(1, 512) > 1.6   # compute-bound: two stages, ~twice the tokens
    assert tps(2, 2) / tps(1, 2) < 1.2       # memory-bound: each stage re-reads its weights


@pytest.mark.parametrize("pp", [1, 3, 8])
def test_pipelined_step_is_paced_by_the_most_loaded_stage(pp):
    """pp micro-batches in flight: a micro-batch advances every pp slots of the slowest stage,
    which holds ⌈80/pp⌉ layers, the LM head, one hop and the step overhead; one micro-batch
    alone just crosses the stages."""
    j = job("llama-3.1-70b", gpus=2 * pp, tp=2, pp=pp)
    eff = inference_efficiency(j.system.gpu, j.engine)
    seq = forward_step(j, eff, decode_seqs=64, decode_context=1000, logit_rows=64)
    paced = pipeline_paced(j, seq)
    if pp == 1:
        assert paced is seq
        return
    per_stage = int(np.ceil(80 / pp))
    layers = sum(float(seq[k]) for k in ("gemm_s", "attention_s", "elementwise_s", "tp_comm_s"))
    assert float(seq["tp_comm_s"]) > 0
    slot = (per_stage / 80 * layers + float(seq["lm_head_s"]) + float(seq["pp_comm_s"]) / (pp - 1)
            + float(seq["overhead_s"]))
    assert float(paced["step_s"]) == pytest.approx(pp * slot, rel=1e-9)
    assert float(paced["step_s"]) > float(seq["step_s"])
    alone = pipeline_paced(j, seq, in_flight=1)
    assert float(alone["step_s"]) == pytest.approx(float(seq["step_s"]), rel=1e-12)
    with pytest.raises(ValueError, match="no pacing rule"):   # a new part must say how it paces
        pipeline_paced(j, {**seq, "new_part_s": seq["gemm_s"]})


def test_steady_state_pipeline_pays_the_slowest_stage():
    """infer --concurrency with pp = 3 prices each C/3 micro-batch at 3 slots of the slowest
    stage; at concurrency 1 the request crosses the stages alone (no pacing)."""
    j = job("llama-3.1-70b", gpus=6, tp=2, pp=3, input_len=512, output_len=256,
            mode="concurrency", batch=192)
    eff = inference_efficiency(j.system.gpu, j.engine)

    def step(c, in_flight=None):
        """Whole 512-token prompts arrive c/256 per step: that share of the steps carries
        one (estimate._mixed_steps), the rest decode only."""
        share = c / 256
        times = []
        for pieces in (0, 1):
            s = forward_step(j, eff, prefill_tokens=pieces * 512, prefill_len=512,
                             decode_seqs=c, decode_context=512 + 128, logit_rows=c)
            times.append((float(s["step_s"]),
                          float(pipeline_paced(j, s, in_flight)["step_s"])))
        return tuple((1 - share) * a + share * b for a, b in zip(*times, strict=True))

    crossing, paced = step(64)
    assert estimate_inference(j).tpot_ms == pytest.approx(1e3 * paced, rel=1e-9)
    assert paced > crossing
    # one request is one whole sequence crossing the stages, not a third of one per stage
    one = estimate_inference(j.model_copy(update={"batch": 1}))
    assert one.tpot_ms == pytest.approx(1e3 * step(1)[0], rel=1e-9)


def test_max_throughput_holds_every_sequence_at_full_length():
    """An offline run of identical requests advances in lock step: the KV cache must hold each
    running sequence's input + output tokens at once, while a staggered steady state holds
    input + output/2 on average; a KV-limited max-throughput batch fits at full length."""
    kw = dict(model="llama-3.1-70b", gpu="h200", engine="tensorrt-llm", input_len=128,
              output_len=4096, weights=weight_format("fp8"))
    offline = estimate_inference(job(**kw, mode="max_throughput"))
    staggered = estimate_inference(job(**kw, mode="concurrency", batch=8))
    assert offline.kv_bytes_per_sequence / staggered.kv_bytes_per_sequence == pytest.approx(
        (128 + 4096) / (128 + 2048), rel=0.02)
    assert offline.limited_by == "KV-cache memory"
    assert offline.batch * offline.kv_bytes_per_sequence <= offline.memory["kv_cache_budget"]


def test_data_parallel_replicas_multiply_system_throughput():
    one = estimate_inference(job(input_len=512, output_len=128, mode="concurrency", batch=64))
    two = estimate_inference(job(gpus=2, tp=1, input_len=512, output_len=128,
                                 mode="concurrency", batch=128))
    assert two.config["replicas"] == 2 and two.batch == 64
    assert two.output_tokens_per_s == pytest.approx(2 * one.output_tokens_per_s)
    assert two.output_tokens_per_s_per_gpu == pytest.approx(one.output_tokens_per_s_per_gpu)


def test_mxfp4_runs_weight_only_where_there_are_no_fp4_tensor_cores():
    hopper = job("gpt-oss-120b", weights="mxfp4", input_len=1000, output_len=200)
    assert hopper.weights.weight_only and hopper.weights.gemm_dtype == "bf16"
    assert estimate_inference(hopper).fits
    blackwell = job("gpt-oss-120b", gpu="b200", weights="mxfp4")
    assert blackwell.weights.gemm_dtype == "fp4" and not blackwell.weights.weight_only


def test_fp8_weights_halve_weight_bytes():
    assert weight_bytes_per_gpu(job(weights="fp8")) < 0.6 * weight_bytes_per_gpu(job())


def test_model_that_does_not_fit_is_refused():
    with pytest.raises(FlopcastError, match="does not fit"):
        estimate_inference(job("llama-3.1-405b"))


def test_batch_beyond_kv_capacity_is_refused():
    with pytest.raises(FlopcastError, match="KV cache"):
        estimate_inference(job(input_len=32000, output_len=1000, batch=512))


def test_max_throughput_respects_limits():
    j = job(input_len=2000, output_len=200, mode="max_throughput")
    est = estimate_inference(j)
    assert est.batch <= est.max_concurrent_sequences
    # the job's engine carries its GPU's limits (Engine.limits_by_gpu)
    assert est.batch * (1 + 2000 / 200) <= j.engine.max_num_tokens + 11


def test_a_finite_offline_run_passes_in_waves():
    """trtllm-bench submits num_requests at once: a run with fewer requests than the engine
    holds is bounded by them, and a part-full last wave lowers the run's throughput."""
    kw = dict(model="llama-3.1-70b", gpu="h200", gpus=8, engine="tensorrt-llm", tp=1, weights="fp8",
              input_len=128, output_len=2048, mode="max_throughput")
    unbounded = estimate_inference(job(**kw))
    c, replicas = unbounded.batch, 8
    whole = estimate_inference(job(**kw, num_requests=3 * c * replicas))
    assert whole.batch == c
    assert whole.output_tokens_per_s == pytest.approx(unbounded.output_tokens_per_s, rel=1e-9)
    # one more request per replica than three full waves: a fourth wave of one sequence,
    # shorter than a full one (less KV to read) but far from free (all the weights each step)
    ragged = estimate_inference(job(**kw, num_requests=3 * c * replicas + replicas))
    steady = unbounded.output_tokens_per_s
    assert 0.75 * steady < ragged.output_tokens_per_s < 0.9 * steady
    # fewer requests than the engine holds: they are the batch
    few = estimate_inference(job(**kw, num_requests=replicas * (c // 2)))
    assert (few.batch, few.limited_by) == (c // 2, "requests in the run")
    assert few.output_tokens_per_s < unbounded.output_tokens_per_s
    with pytest.raises(ValidationError, match="max_throughput mode only"):
        job(**{**kw, "mode": "concurrency"}, num_requests=10)


@pytest.mark.parametrize("bad, message", [
    (dict(tp=3, gpus=3), "must divide num_attention_heads"),
    (dict(ep=2, gpus=2), "mixture-of-experts"),
    (dict(weights="nvfp4"), "no fp4"),
])
def test_invalid_inference_jobs(bad, message):
    gpus = bad.pop("gpus", 1)
    with pytest.raises((ValidationError, FlopcastError), match=message):
        job(gpus=gpus, **{"tp": gpus, **bad})


def run(*args):
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def test_infer_cli_json():
    p = run("infer", "--model", "llama-3.3-70b", "--gpus", "2", "--precision", "fp8",
            "--input-len", "5000", "--output-len", "500", "--max-throughput", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    for key in ("ttft_ms", "tpot_ms", "e2e_latency_ms", "output_tokens_per_s", "requests_per_s",
                "max_concurrent_sequences", "batch"):
        assert key in d


@pytest.mark.parametrize("args, fragment", [
    (["--model", "llama-3.1-405b"], "does not fit"),
    (["--model", "llama-3.1-8b", "--precision", "w5a4"], "precision"),
    (["--model", "llama-3.1-8b", "--engine", "nope"], "engine"),
    (["--model", "llama-3.1-8b", "--batch", "2", "--concurrency", "2"], "mode"),
])
def test_infer_bad_input_one_line_exit_2(args, fragment):
    p = run("infer", *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in p.stderr


@pytest.mark.parametrize("model, gpu, gpus, input_len, output_len", [
    ("llama-3.1-8b", "h100-sxm", 1, 128, 128),      # engine batch limit
    ("llama-3.3-70b", "h200", 1, 128, 4096),        # KV memory
    ("llama-3.1-8b", "h200", 1, 2048, 64),          # tokens per step
])
def test_max_throughput_runs_the_engine_saturated(model, gpu, gpus, input_len, output_len):
    """An offline run keeps as many sequences in flight as the engine admits: the batch is
    the smallest of KV capacity, max_batch_size and max_num_tokens' share of decode rows,
    and `limited_by` names it."""
    j = job(model, gpu, gpus, engine="tensorrt-llm", weights="fp8", input_len=input_len,
            output_len=output_len, mode="max_throughput", batch=1)
    est = estimate_inference(j)
    limits = {"KV-cache memory": est.max_concurrent_sequences,
              "engine sequence limit": j.engine.max_batch_size,
              "engine max_num_tokens": int(j.engine.max_num_tokens
                                           // (1 + input_len / output_len))}
    assert est.batch == min(limits.values())
    assert limits[est.limited_by] == est.batch


def test_moe_prompts_touch_experts_once_per_prompt_not_every_step():
    """At concurrency 1 a new 1000-token prompt arrives once per 50 steps. Spread as 20 prompt
    tokens into every step it touched all 8 of Mixtral's experts in every step, and the
    per-token time came out 3x the static batch-1 decode (34.5 vs 11.2 ms on 2 A100s); whole
    prompts touch them once per prompt."""
    base = dict(gpus=2, tp=2, input_len=1000, output_len=50, batch=1)
    steady = estimate_inference(job("mixtral-8x7b", gpu="a100-80gb", mode="concurrency",
                                    **base))
    static = estimate_inference(job("mixtral-8x7b", gpu="a100-80gb", **base))
    assert steady.tpot_ms < 1.3 * static.tpot_ms, (steady.tpot_ms, static.tpot_ms)


@pytest.mark.parametrize("engine, precision, expected", [
    ("tensorrt-llm", "fp8", "fp8"),   # auto = the checkpoint's KV quantisation (ModelOpt FP8)
    ("tensorrt-llm", "nvfp4", "fp8"),
    ("nim", "fp8", "fp8"),
    ("vllm", "fp8", "bf16"),          # --kv-cache-dtype auto = the model's dtype
    ("sglang", "fp8", "bf16"),
    ("vllm", "bf16", "bf16"),
    ("tensorrt-llm", "bf16", "bf16"),
])
def test_default_kv_cache_format_is_the_engines(engine, precision, expected):
    """With no KV format given, TensorRT-LLM keeps the checkpoint's FP8 KV of a quantised
    model while vLLM and SGLang store the KV cache in the model's 16-bit dtype; a given
    format always stands."""
    gpu = "b200" if precision == "nvfp4" else "h100-sxm"
    default = job("llama-3.1-70b", gpu, 4, engine, weights=weight_format(precision))
    assert default.kv_format == expected
    given = job("llama-3.1-70b", gpu, 4, engine, weights=weight_format(precision),
                kv_format="fp8")
    assert given.kv_format == "fp8"
    assert given.kv_element_bytes == default.kv_element_bytes / (2 if expected == "bf16" else 1)


def test_vllm_takes_the_checkpoints_kv_from_0_13():
    """vLLM's PR 30785 (Dec 2025) made the default KV dtype follow the checkpoint."""
    engine = load_engine("vllm")
    for version, expected in (("0.6.0", "bf16"), ("0.13.0", "fp8")):
        j = InferenceJob(model=load_model("llama-3.1-70b"), tp=4,
                         system=System(gpu=load_gpu("h100-sxm"), num_gpus=4),
                         engine=engine.at_version(version), weights=weight_format("fp8"))
        assert j.kv_format == expected


def test_vllm_runs_fp8_dense_models_on_ampere_as_weight_only():
    """vLLM's FP8 Marlin (PR 5975): on an A100 an FP8 checkpoint keeps its 1-byte weights
    and multiplies in 16 bits, so decode (weight-bound) is faster than bf16 and prices as
    the other 8-bit weight-only format; TensorRT-LLM and MoE models are refused there."""
    from flopcast.workloads.inference.estimate import estimate_inference

    kw = dict(input_len=1000, output_len=200, mode="batch", batch=8)
    fp8 = job(gpu="a100-80gb", weights="fp8", **kw)
    assert (fp8.weights.weight_only, fp8.weights.gemm_dtype, fp8.weights.weight_bytes) == (
        True, "bf16", 1)
    tpot = {w: estimate_inference(job(gpu="a100-80gb", weights=w, **kw)).tpot_ms
            for w in ("bf16", "fp8", "w8a16")}
    assert tpot["fp8"] < 0.8 * tpot["bf16"]
    assert tpot["fp8"] == pytest.approx(tpot["w8a16"], rel=0.05)
    assert job(weights="fp8", **kw).weights.gemm_dtype == "fp8"  # H100: real FP8 GEMMs
    with pytest.raises(ValidationError, match="no fp8 tensor cores"):
        job(gpu="a100-80gb", engine="tensorrt-llm", weights="fp8", **kw)
    with pytest.raises(ValidationError, match="not mixture-of-experts"):
        job("mixtral-8x7b", gpu="a100-80gb", gpus=2, weights="fp8", **kw)


@pytest.mark.parametrize("gpu", ["v100-32gb", "mi250x"])
def test_vllm_fp8_fallback_needs_fp8_marlin(gpu):
    """FP8 Marlin is a CUDA kernel for compute capability >= 8.0 (7.5 later): a V100 (7.0)
    and a ROCm GPU without hardware FP8 (MI250X) still refuse FP8; so does vLLM before 0.5.1."""
    kw = dict(input_len=1000, output_len=200, mode="batch", batch=8)
    with pytest.raises(ValidationError, match="no fp8 tensor cores"):
        job(gpu=gpu, weights="fp8", **kw)
    with pytest.raises(ValidationError, match="no fp8 tensor cores"):
        InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm").at_version(
            "0.4.3"), system=System(gpu=load_gpu("a100-80gb"), num_gpus=1),
                     weights=weight_format("fp8"), **kw)
