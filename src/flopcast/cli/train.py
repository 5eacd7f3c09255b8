"""`flopcast train`: one training configuration."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from flopcast.cli.common import (
    ATTENTION_BACKEND_OPT,
    CALIBRATION_OPT,
    EP_OPT,
    ETP_OPT,
    FRAMEWORK_OPT,
    GIB,
    GPU_HELP,
    JSON_OPT,
    LORA_RANK_OPT,
    LORA_TARGETS_OPT,
    MODEL_OPT,
    PRECISION_OPT,
    SEQ_OPT,
    TOKENS_OPT,
    PrecisionChoice,
    RecomputeChoice,
    ScheduleChoice,
    app,
    console,
    expected_error_lines,
    float_option,
    int_option,
    lora_text,
    memory_name,
    model_flags,
    plural,
    print_table,
    request_from,
    step_name,
    warn,
)


@app.command()
@model_flags
def train(
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help=GPU_HELP),
    gpus: int = int_option(8, "--gpus", help="Number of GPUs in the job."),
    gpus_per_node: int | None = int_option(
        None, "--gpus-per-node", help="GPUs per NVLink domain (default: the GPU entry's, "
        "8 for HGX, 72 for NVL72)."),
    network_gbps: float | None = float_option(
        None, "--network-gbps", help="Inter-node bandwidth per GPU per direction, Gb/s "
        "(default: the GPU entry's NIC, e.g. 400)."),
    tp: int = int_option(1, "--tp", "--tensor-model-parallel-size", help="Tensor parallel size."),
    pp: int = int_option(1, "--pp", "--pipeline-model-parallel-size",
                           help="Pipeline parallel size."),
    vp: int = int_option(1, "--vp", "--virtual-pipeline-model-parallel-size",
                           help="Model chunks per pipeline rank (interleaved 1F1B when > 1)."),
    cp: int = int_option(1, "--cp", "--context-parallel-size", help="Context parallel size."),
    ep: int = EP_OPT,
    etp: int | None = ETP_OPT,
    embedding_loss_stages: bool | None = typer.Option(
        None, "--embedding-loss-stages/--no-embedding-loss-stages",
        help="Count the embedding and the loss as pipeline layers, as Megatron's "
        "--account-for-embedding/loss-in-pipeline-split do, so pp·vp may reach layers + 2 "
        "(default: on when pp·vp > layers)."),
    dp: int | None = int_option(None, "--dp", help="Data parallel size (default: "
                                  "gpus / (tp·pp·cp))."),
    sp: bool | None = typer.Option(None, "--sp/--no-sp", "--sequence-parallel",
                                   help="Megatron sequence parallelism (default: on when tp > 1)."),
    micro_batch: int = int_option(1, "--micro-batch", "--micro-batch-size",
                                    help="Sequences per micro-batch."),
    global_batch: int | None = int_option(
        None, "--global-batch", "--global-batch-size", help="Sequences per optimizer step "
        "(default: micro-batch · dp)."),
    seq_len: int = SEQ_OPT,
    zero: int | None = int_option(None, "--zero", help="ZeRO stage: 0 DDP, 1 sharded "
                                  "optimizer (Megatron distributed optimizer), 2 + gradients, "
                                  "3 + weights (FSDP) (default: the --framework's: 1 for "
                                  "megatron and deepspeed, 0 hf-transformers, 3 fsdp)."),
    recompute: RecomputeChoice = typer.Option(
        RecomputeChoice.none, "--recompute", "--recompute-granularity",
        help="Activation recomputation."),
    schedule: ScheduleChoice | None = typer.Option(
        None, "--schedule", help="Pipeline schedule (default: interleaved if vp > 1 else 1f1b)."),
    precision: PrecisionChoice = PRECISION_OPT,
    tp_comm_overlap: bool | None = typer.Option(
        None, "--tp-comm-overlap/--no-tp-comm-overlap",
        help="Overlap TP communication with GEMMs (default: on when sequence parallelism is)."),
    dp_overlap: bool = typer.Option(True, "--dp-overlap/--no-dp-overlap",
                                    help="Overlap DP gradient/parameter communication."),
    cpu_offload: bool = typer.Option(False, "--cpu-offload",
                                     help="Keep optimizer states on the host (ZeRO-Offload); "
                                     "the same as --offload optimizer=cpu."),
    offload: str | None = typer.Option(
        None, "--offload", help="Where states live off the GPU: comma-separated KIND=TIER, "
        "KIND one of optimizer, gradients, params, activations; TIER gpu, cpu or nvme "
        "(activations: gpu or cpu), e.g. optimizer=cpu,params=nvme (ZeRO-Offload, "
        "ZeRO-Infinity); optimizer=cpu-interleaved runs part of the host update on the GPU "
        "(Deep Optimizer States); window=K keeps K layers' parameters resident while "
        "offloaded ones stream (Superpipeline; default 2)."),
    host_memory_gib: float | None = float_option(
        None, "--host-memory-gib", help="Host memory per GPU for offloaded states, GiB "
        "(default 128)."),
    nvme_tb: float | None = float_option(
        None, "--nvme-tb", help="NVMe capacity per node, TB (default 15.36)."),
    nvme_gbps: float | None = float_option(
        None, "--nvme-gbps", help="NVMe bandwidth per node, GB/s (default 25)."),
    attention_backend: str | None = ATTENTION_BACKEND_OPT,
    framework: str = FRAMEWORK_OPT,
    lora_rank: int | None = LORA_RANK_OPT,
    lora_targets: str | None = LORA_TARGETS_OPT,
    tokens: str | None = TOKENS_OPT,
    price: float | None = float_option(None, "--price", help="$ per GPU-hour (default: "
                                       "the GPU entry's indicative price)."),
    calibration: Path | None = CALIBRATION_OPT,
    as_json: bool = JSON_OPT,
    **shape,
) -> None:
    """Estimate one training configuration: memory per GPU, step time, throughput, MFU, cost.

    Units: times in seconds, memory in GiB (bytes in --json), energy in MWh. Memory is the
    worst moment of the step (forward, backward or optimizer step) as the --framework lays
    it out; --json adds each phase and what it is made of (memory_phases).
    """
    from flopcast.api.common import json_of
    from flopcast.api.train import TrainRequest, run_train

    result = run_train(request_from(TrainRequest, locals() | shape), warn)
    if as_json:
        print(json.dumps(json_of(result), indent=2))
        return
    _print_training(result, result.model_dump())


def _print_training(est, out: dict) -> None:
    c = est.config
    console.print(
        f"[bold]{c['model']}[/] on {c['num_gpus']}× {c['gpu']} "
        f"({c['precision']}, seq {c['seq_len']}): "
        f"tp={c['tp']} pp={c['pp']} vp={c['vp']} cp={c['cp']} ep={c['ep']} etp={c['etp']} "
        f"dp={c['dp']} "
        f"sp={'on' if c['sp'] else 'off'} zero={c['zero_stage']} mb={c['micro_batch']} "
        f"gb={c['global_batch']} ({plural(c['num_micro_batches'], 'micro-batch')}) "
        f"recompute={c['recompute']} schedule={c['schedule']} framework={c['framework']}"
        f"{lora_text(c)}; "
        f"efficiency from {c['efficiency_source']}; kernels from {c['kernels_source']} "
        f"(attention: {c['attention_backend']})"
    )
    verdict = "[green]fits[/]" if est.fits else "[red]does not fit[/]"
    print_table(f"Memory per GPU, largest stage (stage {est.memory_largest_stage})",
                ("kind", "GiB"), [
        *((memory_name(k), f"{est.memory[k] / GIB:,.1f}") for k in (
            "weights", "gradients", "optimizer", "activations", "temporary")
          if est.memory[k] > 0),
        ("total", f"{est.memory['total'] / GIB:,.1f}"),
        ("of which allocated", f"{est.memory['allocated'] / GIB:,.1f} (peak at: "
                               f"{est.memory_peak_phase.replace('_', ' ')})"),
        ("capacity", f"{est.memory['capacity'] / GIB:,.1f} ({verdict})"),
    ])
    _print_phases(est)
    _print_offload(est.offload)
    # Parts that are zero for this layout (no TP, no pipeline, …) are left out here; --json
    # keeps every key. Recomputation is part of compute: shown under it.
    parts = list(est.breakdown_s)
    parts.remove("recompute_s")
    parts.insert(parts.index("compute_s") + 1, "recompute_s")
    print_table("Step time", ("part", "s", "share"), [
        *((step_name(k), f"{v:,.4f}", f"{100 * v / est.step_time_s:.1f}%")
          for k in parts if (v := est.breakdown_s[k]) > 0),
        ("[bold]step[/]", f"[bold]{est.step_time_s:,.4f}[/]", "100%"),
    ])
    print_table("Throughput", ("metric", "value"), _throughput_rows(est, out))
    expected_error_lines(out["expected_error"], out["expected_error_memory"])


def _print_offload(off: dict) -> None:
    """One line when states live off the GPU: where, and how full the host and NVMe are."""
    placed = [f"{k} {v}" for k, v in off.items() if isinstance(v, str) and v != "gpu"]
    if placed:
        console.print(
            f"offload: {', '.join(placed)}; host {off['host_bytes'] / GIB:,.1f} of "
            f"{off['host_capacity_bytes'] / GIB:,.0f} GiB per GPU, NVMe "
            f"{off['nvme_bytes'] / 1e12:,.2f} of {off['nvme_capacity_bytes'] / 1e12:,.2f} TB "
            "per node", highlight=False)


def _print_phases(est) -> None:
    """Memory of the largest stage at the worst moment of each phase, with its biggest parts."""
    rows = []
    for phase, parts in est.memory_phases.items():
        named = sorted(((k, v) for k, v in parts.items()
                        if k not in ("total", "allocated", "reserved") and v > 0),
                       key=lambda kv: -kv[1])[:3]
        rows.append((phase.replace("_", " "), f"{parts['total'] / GIB:,.1f}",
                     ", ".join(f"{memory_name(k)} {v / GIB:,.1f}" for k, v in named)))
    print_table("Memory by phase (largest stage)", ("phase", "GiB", "largest parts"), rows)


def _throughput_rows(est, out: dict) -> list[tuple[str, str]]:
    """Throughput, and with --tokens the time, cost (with the price it assumes) and energy
    (with the board power it assumes)."""
    rows = [
        ("tokens/s (job)", f"{est.tokens_per_s:,.0f}"),
        ("tokens/s per GPU", f"{est.tokens_per_s_per_gpu:,.1f}"),
        ("model TFLOP/s per GPU", f"{est.model_tflops_per_gpu:,.1f}"),
        ("MFU / HFU", f"{100 * est.mfu:.1f}% / {100 * est.hfu:.1f}%"),
    ]
    if est.tokens:
        rows += [
            ("tokens to train", f"{est.tokens:.3g}"),
            ("time to train", f"{est.time_to_train_days:,.1f} days"),
            ("GPU-hours", f"{est.gpu_hours:,.0f}"),
            ("cost", f"${est.cost_usd:,.0f} at ${out['price_per_gpu_hour_usd']:,.2f}/GPU-hour"),
            ("energy (GPUs only)", f"{est.energy_mwh:,.1f} MWh at {est.board_power_w:,.0f} W "
                                   "per GPU"),
        ]
    else:
        rows += [("price assumed", f"${out['price_per_gpu_hour_usd']:,.2f}/GPU-hour "
                                   "(--tokens adds cost)"),
                 ("average board power", f"{est.board_power_w:,.0f} W per GPU")]
    return rows
