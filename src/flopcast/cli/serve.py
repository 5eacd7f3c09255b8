"""`flopcast serve`: simulate a request stream on a deployment; latency percentiles,
throughput, goodput; the highest rate that meets a p99 SLO."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from flopcast.cli.common import (
    CALIBRATION_OPT,
    ENGINE_VERSION_OPT,
    EXPERT_DISPATCH_OPT,
    GPU_HELP,
    JSON_OPT,
    KV_PRECISION_OPT,
    MODEL_OPT,
    app,
    check_outputs,
    console,
    expected_error_lines,
    float_option,
    int_option,
    model_flags,
    plural,
    print_table,
    release_of,
    request_from,
    warn,
)
from flopcast.workloads.serving.draw_counts import MAX_DRAWS, REQUESTS_OVER_DRAWS

serve_app = typer.Typer(no_args_is_help=False)

# Options `serve` and `serve plan` share (one declaration each).
PRECISION_OPT = typer.Option("bf16", "--precision", help="Weights/GEMMs (as `infer`).")
ENGINE_OPT = typer.Option("vllm", "--engine", help="tensorrt-llm, vllm, sglang, nim, generic: "
                          "limits, scheduler and KV paging defaults.")
DATASET_OPT = typer.Option(None, "--dataset", help="Length distribution from the catalog "
                           "(e.g. sharegpt).")
INPUT_LEN_OPT = int_option(None, "--input-len", help="Prompt tokens (mean).")
OUTPUT_LEN_OPT = int_option(None, "--output-len", help="Output tokens (mean).")
LENGTH_DIST_OPT = typer.Option("fixed", "--length-dist", help="fixed, uniform, normal, "
                               "lognormal, random (sglang random: up to the length).")
SEED_OPT = int_option(0, "--seed", help="Random seed (same seed, same output).")
SLO_TPOT_OPT = float_option(None, "--slo-tpot-p99", help="p99 TPOT bound, ms.")
app.add_typer(serve_app, name="serve")


@serve_app.callback(invoke_without_command=True)
@model_flags
def serve(
    ctx: typer.Context,
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help=GPU_HELP),
    gpus: int = int_option(1, "--gpus", help="GPUs in all; beyond tp·pp they are "
                             "data-parallel replicas."),
    tp: int | None = int_option(None, "--tp", help="Tensor parallel size (default: gpus/pp)."),
    pp: int = int_option(1, "--pp", help="Pipeline parallel size."),
    ep: int = int_option(1, "--ep", help="Expert parallel size (MoE)."),
    precision: str = PRECISION_OPT,
    kv_precision: str | None = KV_PRECISION_OPT,
    engine: str = ENGINE_OPT,
    engine_version: str | None = ENGINE_VERSION_OPT,
    expert_dispatch: str | None = EXPERT_DISPATCH_OPT,
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="vllm (continuous, chunked prefill), sarathi (stall-free, "
        "small token budget), trtllm-inflight, trtllm-no-evict, sglang, prefill-first (vLLM "
        "V0), static (default: the engine's)."),
    max_num_seqs: int | None = int_option(None, "--max-num-seqs", help="Sequences in flight "
                                            "per replica (default: the engine's; SGLang's "
                                            "follows its KV cache, as "
                                            "--max-running-requests does)."),
    max_num_tokens: int | None = int_option(None, "--max-num-tokens", help="Tokens per "
                                              "iteration (default: the engine's)."),
    chunk_tokens: int | None = int_option(None, "--chunk-tokens", help="Prefill chunk; 0 = "
                                            "whole prompts (default: the engine's)."),
    batch_size: int | None = int_option(None, "--batch-size", help="Static batch size "
                                          "(--scheduler static)."),
    prefix_caching: bool | None = typer.Option(None, "--prefix-caching/--no-prefix-caching",
                                               help="Reuse cached shared prefixes."),
    router: str = typer.Option("round-robin", "--router", help="round-robin, "
                               "least-outstanding-tokens, prefix-affinity."),
    request_rate: float | None = float_option(None, "--request-rate", help="Poisson arrivals, "
                                              "requests/s."),
    burstiness: float = float_option(1.0, "--burstiness", help="Coefficient of variation of "
                                     "inter-arrival gaps (gamma; 1 = Poisson)."),
    concurrency: int | None = int_option(None, "--concurrency", help="Closed loop: requests "
                                           "kept in flight."),
    offline: bool = typer.Option(False, "--offline", help="All requests at once."),
    dataset: str | None = DATASET_OPT,
    input_len: int | None = INPUT_LEN_OPT,
    output_len: int | None = OUTPUT_LEN_OPT,
    length_dist: str = LENGTH_DIST_OPT,
    range_ratio: float | None = float_option(
        None, "--range-ratio", help="random: lowest length as a share of the given one (sglang "
        "--random-range-ratio); uniform: ± share around it (vLLM)."),
    spread: float | None = float_option(
        None, "--spread", help="lognormal: σ of log-length (default 1.0); normal: std as a "
        "share of the mean (default 0.2)."),
    trace: Path | None = typer.Option(None, "--trace", help="CSV/JSONL trace: arrival_s, "
                                      "input_len, output_len[, prefix_id, prefix_len]."),
    num_requests: int | None = int_option(
        None, "--num-requests", help="Requests to simulate (default 1000; a --trace has "
        "its own)."),
    seed: int = SEED_OPT,
    draws: int | None = int_option(
        None, "--draws", help="Independent draws of a random workload (seeds seed, seed+1, "
        "…); statistics are their medians, with the range over the draws. Default: enough "
        f"draws to simulate {REQUESTS_OVER_DRAWS:,} requests (an odd count, at most "
        f"{MAX_DRAWS}); 1 when lengths and arrivals are fixed."),
    shared_prefix_len: int = int_option(0, "--shared-prefix-len", help="Tokens of a shared "
                                          "system prompt."),
    num_prefixes: int = int_option(0, "--num-prefixes", help="Distinct shared prefixes."),
    slo_ttft_p99: float | None = float_option(None, "--slo-ttft-p99", help="p99 TTFT bound, "
                                              "ms (without --request-rate: find the highest "
                                              "rate meeting the SLO)."),
    slo_tpot_p99: float | None = SLO_TPOT_OPT,
    slo_itl_p99: float | None = float_option(None, "--slo-itl-p99", help="p99 inter-token gap "
                                             "bound, ms (Sarathi-Serve's TBT SLO; judged on "
                                             "all token gaps, so goodput, counted per request, "
                                             "uses TTFT and TPOT only)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write latency CDFs and the batch/KV "
                                     "timeline to this PNG (needs matplotlib; the first "
                                     "draw)."),
    chrome_trace: Path | None = typer.Option(None, "--chrome-trace", help="Write iterations "
                                             "as a Chrome trace (JSON; the first draw)."),
    calibration: Path | None = CALIBRATION_OPT,
    as_json: bool = JSON_OPT,
    **shape,
) -> None:
    """Simulate serving a request stream: TTFT, TPOT, ITL and end-to-end percentiles,
    throughput and goodput; with an SLO and no rate, the highest Poisson rate meeting it.
    `flopcast serve plan` finds the cheapest fleet meeting an SLO.

    Example: flopcast serve -m llama-3.1-8b --gpu h100-sxm --request-rate 20 --dataset sharegpt
    --num-requests 2000
    """
    if ctx.invoked_subcommand is not None:
        return
    from flopcast.api.common import json_of
    from flopcast.api.serve import ServeRequest, run_serve

    request = request_from(ServeRequest, locals() | shape)
    check_outputs(plot, chrome_trace)
    result = run_serve(request, warn, _writer(plot, chrome_trace) if plot or chrome_trace
                       else None)
    if as_json:
        print(json.dumps(json_of(result), indent=2, sort_keys=True))
        return
    _print_summary(json_of(result))


def _writer(plot: Path | None, chrome_trace: Path | None):
    """What --plot and --chrome-trace write from a simulation (with its trace)."""

    def write(res) -> None:
        if plot:
            from flopcast.report.serving import plot_serving

            plot_serving(res, plot)
        if chrome_trace:
            from flopcast.report.serving import write_chrome_trace

            write_chrome_trace(res, chrome_trace)

    return write


@serve_app.command("plan")
@model_flags
def serve_plan(
    model: str | None = MODEL_OPT,
    request_rate: float = float_option(..., "--request-rate", help="Poisson requests/s the "
                                       "fleet must take."),
    gpu_types: str = typer.Option("h100-sxm,h200,a100-80gb,l40s", "--gpu-types",
                                  help="Comma-separated GPU catalog ids to consider."),
    max_tp: int = int_option(8, "--max-tp", help="Largest tensor-parallel size per replica."),
    precision: str = PRECISION_OPT,
    engine: str = ENGINE_OPT,
    engine_version: str | None = ENGINE_VERSION_OPT,
    expert_dispatch: str | None = EXPERT_DISPATCH_OPT,
    dataset: str | None = DATASET_OPT,
    input_len: int | None = INPUT_LEN_OPT,
    output_len: int | None = OUTPUT_LEN_OPT,
    length_dist: str = LENGTH_DIST_OPT,
    num_requests: int = int_option(400, "--num-requests", help="Requests per simulation."),
    seed: int = SEED_OPT,
    slo_ttft_p99: float | None = float_option(None, "--slo-ttft-p99", help="p99 TTFT, ms."),
    slo_tpot_p99: float | None = SLO_TPOT_OPT,
    mixed: bool = typer.Option(True, "--mixed/--single-type", help="Allow two GPU types in "
                               "one fleet (Mélange)."),
    by_size: bool = typer.Option(False, "--by-size", help="Also measure each replica type "
                                 "on request-size buckets and consider fleets that route "
                                 "requests to a type by size (Mélange's allocation; one "
                                 "more capacity search per bucket and type)."),
    calibration: Path | None = CALIBRATION_OPT,
    as_json: bool = JSON_OPT,
    **shape,
) -> None:
    """The cheapest fleet (GPU types × tp × replicas) meeting p99 SLOs at a request rate,
    and each GPU type's cost/latency alone.

    Example: flopcast serve plan -m llama-3.1-8b --request-rate 40 --dataset sharegpt
    --slo-ttft-p99 1000 --slo-tpot-p99 50
    """
    from flopcast.api.common import json_of
    from flopcast.api.serve import ServePlanRequest, run_serve_plan

    request = request_from(ServePlanRequest, locals() | shape)
    with console.status("measuring replica capacities") as status:
        result = run_serve_plan(request, warn, lambda name: status.update(
            f"capacity of one {name} replica"))
    answer = json_of(result)
    if as_json:
        print(json.dumps(answer, indent=2, sort_keys=True, default=str))
        return
    best, alone, left_out = answer["best"], answer["front"], answer["left_out"]
    fleet = " + ".join(f"{f['count']}× {f['replica']}" + (
        " (sizes " + ", ".join(f"{lo}-{hi - 1}" + ("" if share == 1 else f" ×{share:.2f}")
                               for lo, hi, share in f["sizes"]) + ")" if f.get("sizes") else "")
        for f in best["fleet"])
    s = best["summary"]
    console.print(f"cheapest fleet for {request_rate:g} req/s: [bold]{fleet}[/] at "
                  f"${best['usd_per_hour']:,.2f}/h; simulated p99 TTFT "
                  f"{s['ttft_ms']['p99']:,.0f} ms, p99 TPOT {s['tpot_ms']['p99']:,.1f} ms")
    print_table("One GPU type alone", ("replica", "req/s each", "replicas", "$/h",
                                       "p99 TTFT ms", "p99 TPOT ms"),
                [(r["replica"], f"{r['capacity_rps']:,.2f}", str(r["count"]),
                  f"{r['usd_per_hour']:,.2f}", f"{r['ttft_p99_ms']:,.0f}",
                  f"{r['tpot_p99_ms']:,.1f}") for r in alone])
    for reason in left_out:
        console.print(f"left out: {reason}")
    expected_error_lines(answer["expected_error"])


def _print_summary(s: dict) -> None:
    c = s["config"]
    console.print(
        f"[bold]{c['model']}[/] on {c['num_gpus']}× {c['gpu']} with {c['engine']}{release_of(c)} "
        f"({c['scheduler']} scheduler): tp={c['tp']} pp={c['pp']} ep={c['ep']}, "
        f"{plural(c['replicas'], 'replica')}, {c['precision']} weights, "
        f"{c['kv_precision']} KV; "
        f"{plural(s['num_requests'], 'request')}, mean {s['mean_input_len']:.0f} in / "
        f"{s['mean_output_len']:.0f} out")
    if s.get("draws", 1) > 1:
        lo, hi = s["draw_range"]["requests_per_s"]
        console.print(f"medians of {s['draws']} draws of the workload (--draws); requests/s "
                      f"ranged {lo:,.2f}–{hi:,.2f} over them")
    if "max_request_rate_under_slo" in s:
        why = (" (the replica's saturated throughput: the SLO still holds there, and a "
               "faster stream queues without bound)"
               if s.get("slo_rate_limited_by") == "saturation" else "")
        console.print(f"highest Poisson rate meeting the SLO: "
                      f"[bold]{s['max_request_rate_under_slo']:.2f} req/s[/]{why}")
    rows = [(name, *("—" if s[key][k] is None else f"{s[key][k]:,.1f}"
                     for k in ("mean", "p50", "p90", "p99")))
            for name, key in (("TTFT", "ttft_ms"), ("TPOT", "tpot_ms"), ("ITL", "itl_ms"),
                              ("end-to-end", "e2e_latency_ms"))]
    print_table("Latency (ms)", ("metric", "mean", "p50", "p90", "p99"), rows)
    print_table("Throughput", ("metric", "value"), [
        ("requests/s", f"{s['requests_per_s']:,.2f}"),
        ("output tokens/s", f"{s['output_tokens_per_s']:,.0f}"),
        ("output tokens/s per GPU", f"{s['output_tokens_per_s_per_gpu']:,.0f}"),
        ("total tokens/s", f"{s['total_tokens_per_s']:,.0f}"),
        ("goodput (requests/s in SLO)", f"{s['goodput_requests_per_s']:,.2f}"),
        *([("p99 SLO met", "yes" if s["slo_p99_met"] else "no")]
          if s.get("slo_p99_met") is not None else []),
        ("preemptions", f"{s['preemptions']:,}"),
        ("KV cache in use, mean / peak", f"{100 * s['kv_utilization_mean']:.0f} % / "
                                         f"{100 * s['kv_utilization_peak']:.0f} %"),
        ("queued requests, mean / peak", f"{s['queue_length_mean']:.1f} / "
                                         f"{s['queue_length_peak']}"),
        ("simulated duration", f"{s['duration_s']:,.1f} s"),
    ])
    expected_error_lines(s["expected_error"])
