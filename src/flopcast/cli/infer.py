"""`flopcast infer`: serving latency, throughput and KV capacity."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from flopcast.cli.common import (
    CALIBRATION_OPT,
    ENGINE_VERSION_OPT,
    EXPERT_DISPATCH_OPT,
    GIB,
    GPU_HELP,
    JSON_OPT,
    KV_PRECISION_OPT,
    MODEL_OPT,
    app,
    console,
    expected_error_lines,
    int_option,
    memory_name,
    model_flags,
    print_table,
    release_of,
    request_from,
    step_name,
    warn,
)


@app.command()
@model_flags
def infer(
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help=GPU_HELP),
    gpus: int = int_option(1, "--gpus", help="GPUs in all: one replica takes tp·pp of them, "
                           "the rest run as data-parallel replicas (batch and memory figures "
                           "are per replica; --concurrency and throughput are system-wide)."),
    tp: int | None = int_option(None, "--tp", help="Tensor parallel size (default: gpus/pp)."),
    pp: int = int_option(1, "--pp", help="Pipeline parallel size."),
    ep: int = int_option(1, "--ep", help="Expert parallel size (MoE): a divisor of tp (inside "
                           "the TP group), or a multiple of tp spanning data-parallel attention "
                           "replicas (at most the GPU count / pp)."),
    precision: str = typer.Option(
        "bf16", "--precision", help="Weights/GEMMs: bf16, fp16, fp8 (W8A8; on vLLM without FP8 "
        "tensor cores, e.g. A100, weight-only W8A16 as its FP8 Marlin runs it), int8 (W8A8), "
        "w8a16, w4a16 (GPTQ/AWQ weight-only), nvfp4, mxfp4, or w<bits>a16 (e.g. w3a16)."),
    kv_precision: str | None = KV_PRECISION_OPT,
    engine: str = typer.Option("vllm", "--engine", help="tensorrt-llm, vllm, sglang, nim "
                               "(NVIDIA NIM) or generic (batch limits, KV paging, memory "
                               "share)."),
    engine_version: str | None = ENGINE_VERSION_OPT,
    expert_dispatch: str | None = EXPERT_DISPATCH_OPT,
    input_len: int = int_option(1024, "--input-len", help="Prompt tokens per request."),
    output_len: int = int_option(128, "--output-len", help="Generated tokens per request."),
    batch: int | None = int_option(None, "--batch", help="Static batch: requests run "
                                     "together, prefill then decode."),
    concurrency: int | None = int_option(
        None, "--concurrency", help="Continuous batching with this many requests in flight "
        "(steady state)."),
    max_throughput: bool = typer.Option(
        False, "--max-throughput", help="The engine saturated: an offline run of identical "
        "requests, as many in flight as KV memory and the engine's limits allow (each holds "
        "its full input + output KV at the end of its wave)."),
    num_requests: int | None = int_option(
        None, "--num-requests", help="With --max-throughput: requests in the offline run "
        "(trtllm-bench's --num-requests). A run holds at most that many, and they pass in "
        "waves, the last one possibly part-full (default: an endless run)."),
    calibration: Path | None = CALIBRATION_OPT,
    as_json: bool = JSON_OPT,
    **shape,
) -> None:
    """Estimate serving: TTFT, time per output token, end-to-end latency, tokens/s, KV capacity.

    Default mode is a static batch of 1; give one of --batch, --concurrency, --max-throughput.
    Latencies in ms, memory in GiB (bytes in --json).
    """
    from flopcast.api.common import json_of
    from flopcast.api.infer import InferRequest, run_infer

    result = run_infer(request_from(InferRequest, locals() | shape), warn)
    if as_json:
        print(json.dumps(json_of(result), indent=2))
        return
    _print_inference(result, result.model_dump())


def _print_inference(est, out: dict) -> None:
    c = est.config
    # a finite run's tokens/s include its part-full last wave (estimate._finite_run_tokens_per_s)
    finite = (f"; a run of {c['num_requests']:,} requests" if c.get("num_requests")
              and est.limited_by != "requests in the run" else "")
    console.print(
        f"[bold]{c['model']}[/] on {c['num_gpus']}× {c['gpu']} with {c['engine']}{release_of(c)}: "
        f"tp={c['tp']} pp={c['pp']} ep={c['ep']}, {c['precision']} weights, "
        f"{c['kv_precision']} KV cache; "
        f"{c['input_len']} in / {c['output_len']} out; {est.mode} = {est.batch} "
        f"({est.limited_by}{finite}); efficiency from {c['efficiency_source']}; kernels from "
        f"{c['kernels_source']} (attention: {', '.join(c['attention_backends'])})"
    )
    print_table("Memory per GPU", ("kind", "GiB"), [
        *((memory_name(k), f"{v / GIB:,.2f}") for k, v in est.memory.items()
          if v > 0 or k == "capacity"),
        ("KV per sequence", f"{est.kv_bytes_per_sequence / GIB:,.3f}"),
        ("max concurrent sequences", f"{est.max_concurrent_sequences:,}"),
    ])
    print_table("Latency and throughput", ("metric", "value"), [
        ("TTFT", f"{est.ttft_ms:,.1f} ms"),
        ("time per output token", f"{est.tpot_ms:,.2f} ms"),
        ("end-to-end latency", f"{est.e2e_latency_ms:,.0f} ms"),
        ("output tokens/s", f"{est.output_tokens_per_s:,.0f}"),
        ("output tokens/s per GPU", f"{est.output_tokens_per_s_per_gpu:,.0f}"),
        ("requests/s", f"{est.requests_per_s:,.2f}"),
    ])
    # Zero parts (no TP, no EP, …) left out; the total step last, as in `train`.
    prefill, decode = est.prefill_breakdown_s, est.decode_breakdown_s
    print_table("Step time by part (ms)", ("part", "prefill step", "decode step"), [
        *((step_name(k), f"{1e3 * prefill[k]:,.3f}", f"{1e3 * decode[k]:,.3f}")
          for k in decode if k != "step_s" and (prefill[k] > 0 or decode[k] > 0)),
        ("[bold]step[/]", f"[bold]{1e3 * prefill['step_s']:,.3f}[/]",
         f"[bold]{1e3 * decode['step_s']:,.3f}[/]"),
    ])
    if decode.get("host_s", 0.0) > 0:
        console.print(
            f"host-bound: the engine's per-sequence host work outlasts the GPU's decode step by "
            f"{1e3 * decode['host_s']:,.2f} ms (Engine.host_s_per_sequence; docs/accuracy.md)")
    expected_error_lines(out["expected_error"])
