"""flopcast command line: train, validate, calibrate, catalog.

Every user error ends as one line on stderr naming the option and what is allowed, with exit
status 2 and no traceback.
"""

from __future__ import annotations

import json
import re
import sys
from enum import Enum
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from flopcast.errors import FlopcastError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Predict LLM training time, memory, cost and energy; check the predictions against "
         "published measurements.",
)
console = Console()

GIB = 2**30


class RecomputeChoice(str, Enum):
    none = "none"
    selective = "selective"
    full = "full"


class ScheduleChoice(str, Enum):
    one_f_one_b = "1f1b"
    interleaved = "interleaved"
    gpipe = "gpipe"


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"
    fp8 = "fp8"
    mxfp8 = "mxfp8"
    nvfp4 = "nvfp4"


_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str) -> float:
    """'15T' → 1.5e13, '300B' → 3e11, '1e12' → 1e12."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([kmbgtKMBGT]?)\s*", text)
    if not m:
        raise FlopcastError(f"tokens: expected a number such as 15T, 300B or 1e12; got {text!r}")
    return float(m.group(1)) * _SUFFIX.get(m.group(2).lower(), 1.0)


def _model(model: str | None, layers, hidden, heads, kv_heads, ffn_hidden, vocab, swiglu):
    from flopcast.catalog import resolve_model
    from flopcast.specs import Model

    shape = [layers, hidden, heads]
    if any(v is not None for v in shape):
        if any(v is None for v in shape):
            raise FlopcastError("shape flags: --layers, --hidden and --heads go together")
        if model is not None:
            raise FlopcastError("model: give --model or shape flags, not both")
        gated = swiglu if swiglu is not None else kv_heads is not None
        return Model(
            name=f"custom-{layers}x{hidden}", num_layers=layers, hidden_size=hidden,
            num_attention_heads=heads, num_kv_heads=kv_heads, ffn_hidden_size=ffn_hidden,
            vocab_size=vocab or 50257, mlp="swiglu" if gated else "gelu",
            norm="rmsnorm" if gated else "layernorm",
            position_embedding="rotary" if gated else "learned",
        )
    if model is None:
        raise FlopcastError("model: give --model (catalog id or config path) or shape flags")
    return resolve_model(model)


# Options shared by `train` and `plan train` (one declaration each).
MODEL_OPT = typer.Option(
    None, "--model", "-m", help="Catalog id (see `flopcast catalog models`), a HF config.json / "
    "model directory, or a flopcast model YAML.")
LAYERS_OPT = typer.Option(None, "--layers", "--num-layers",
                          help="Ad-hoc model: transformer layers.")
HIDDEN_OPT = typer.Option(None, "--hidden", "--hidden-size", help="Ad-hoc model: hidden size.")
HEADS_OPT = typer.Option(None, "--heads", "--num-attention-heads",
                         help="Ad-hoc model: attention heads.")
KV_HEADS_OPT = typer.Option(None, "--kv-heads", "--num-query-groups",
                            help="Ad-hoc model: KV heads (GQA) (default: heads).")
FFN_OPT = typer.Option(None, "--ffn-hidden", "--ffn-hidden-size",
                       help="Ad-hoc model: MLP width (default: 4·hidden).")
VOCAB_OPT = typer.Option(None, "--vocab", "--vocab-size",
                         help="Ad-hoc model: vocabulary (default: 50257).")
SWIGLU_OPT = typer.Option(None, "--swiglu/--gelu", help="Ad-hoc model: gated MLP (default: "
                          "SwiGLU when --kv-heads is given).")
SEQ_OPT = typer.Option(4096, "--seq-len", "--seq-length", help="Tokens per sequence.")
PRECISION_OPT = typer.Option(PrecisionChoice.bf16, "--precision", help="Training number format.")
TOKENS_OPT = typer.Option(None, "--tokens", help="Training budget in tokens, e.g. 15T, 300B, "
                          "1e12 (adds days, GPU-hours, $ and energy).")
CALIBRATION_OPT = typer.Option(None, "--calibration", help="Calibration YAML from `flopcast "
                               "calibrate` (default: the shipped one).")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")


@app.command()
def train(
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help="GPU catalog id (`flopcast catalog gpus`)."),
    gpus: int = typer.Option(8, "--gpus", help="Number of GPUs in the job."),
    gpus_per_node: int | None = typer.Option(
        None, "--gpus-per-node", help="GPUs per NVLink domain (default: the GPU entry's, "
        "8 for HGX, 72 for NVL72)."),
    network_gbps: float | None = typer.Option(
        None, "--network-gbps", help="Inter-node bandwidth per GPU per direction, Gb/s "
        "(default: the GPU entry's NIC, e.g. 400)."),
    tp: int = typer.Option(1, "--tp", "--tensor-model-parallel-size", help="Tensor parallel size."),
    pp: int = typer.Option(1, "--pp", "--pipeline-model-parallel-size",
                           help="Pipeline parallel size."),
    vp: int = typer.Option(1, "--vp", "--virtual-pipeline-model-parallel-size",
                           help="Model chunks per pipeline rank (interleaved 1F1B when > 1)."),
    cp: int = typer.Option(1, "--cp", "--context-parallel-size", help="Context parallel size."),
    ep: int = typer.Option(1, "--ep", "--expert-model-parallel-size",
                           help="Expert parallel size (MoE models)."),
    dp: int | None = typer.Option(None, "--dp", help="Data parallel size (default: "
                                  "gpus / (tp·pp·cp))."),
    sp: bool | None = typer.Option(None, "--sp/--no-sp", "--sequence-parallel",
                                   help="Megatron sequence parallelism (default: on when tp > 1)."),
    micro_batch: int = typer.Option(1, "--micro-batch", "--micro-batch-size",
                                    help="Sequences per micro-batch."),
    global_batch: int | None = typer.Option(
        None, "--global-batch", "--global-batch-size", help="Sequences per optimizer step "
        "(default: micro-batch · dp)."),
    seq_len: int = SEQ_OPT,
    zero: int = typer.Option(1, "--zero", help="ZeRO stage: 0 DDP, 1 sharded optimizer "
                             "(Megatron distributed optimizer), 2 + gradients, 3 + weights "
                             "(FSDP)."),
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
                                     help="Keep optimizer states on the host (ZeRO-Offload)."),
    tokens: str | None = TOKENS_OPT,
    price: float | None = typer.Option(None, "--price", help="$ per GPU-hour (default: "
                                       "the GPU entry's indicative price)."),
    calibration: Path | None = CALIBRATION_OPT,
    layers: int | None = LAYERS_OPT,
    hidden: int | None = HIDDEN_OPT,
    heads: int | None = HEADS_OPT,
    kv_heads: int | None = KV_HEADS_OPT,
    ffn_hidden: int | None = FFN_OPT,
    vocab: int | None = VOCAB_OPT,
    swiglu: bool | None = SWIGLU_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Estimate one training configuration: memory per GPU, step time, throughput, MFU, cost.

    Units: times in seconds, memory in GiB (bytes in --json), energy in MWh.
    """
    from flopcast.catalog import load_gpu
    from flopcast.specs import Parallelism, System, TrainingJob
    from flopcast.workloads.training import estimate_training

    the_model = _model(model, layers, hidden, heads, kv_heads, ffn_hidden, vocab, swiglu)
    the_gpu = load_gpu(gpu, calibration)
    if price is not None:
        the_gpu = the_gpu.model_copy(update={"price_per_gpu_hour_usd": price})
    system = System(gpu=the_gpu, num_gpus=gpus, gpus_per_node=gpus_per_node,
                    network_bandwidth=None if network_gbps is None else network_gbps * 1e9 / 8)
    parallel = Parallelism(
        tp=tp, pp=pp, vp=vp, cp=cp, ep=ep, dp=dp, sp=sp, zero_stage=zero,
        micro_batch=micro_batch, global_batch=global_batch, recompute=recompute.value,
        schedule=schedule.value if schedule else None, tp_comm_overlap=tp_comm_overlap,
        dp_comm_overlap=dp_overlap, cpu_offload_optimizer=cpu_offload,
    )
    job = TrainingJob(model=the_model, system=system, parallelism=parallel, seq_len=seq_len,
                      precision=precision.value,
                      tokens=parse_count(tokens) if tokens else None)
    est = estimate_training(job)
    if as_json:
        print(json.dumps(est.to_dict(), indent=2))
        return
    _print_training(est)


def _print_training(est) -> None:
    c = est.config
    console.print(
        f"[bold]{c['model']}[/] on {c['num_gpus']}× {c['gpu']} "
        f"({c['precision']}, seq {c['seq_len']}): "
        f"tp={c['tp']} pp={c['pp']} vp={c['vp']} cp={c['cp']} ep={c['ep']} dp={c['dp']} "
        f"sp={'on' if c['sp'] else 'off'} zero={c['zero_stage']} mb={c['micro_batch']} "
        f"gb={c['global_batch']} ({c['num_micro_batches']} micro-batches) "
        f"recompute={c['recompute']} schedule={c['schedule']}; "
        f"efficiency from {c['efficiency_source']}"
    )
    mem = Table(title=f"Memory per GPU, largest stage (stage {est.memory_largest_stage})")
    mem.add_column("kind")
    mem.add_column("GiB", justify="right")
    for k in ("weights", "gradients", "optimizer", "activations", "temporary", "total"):
        mem.add_row(k, f"{est.memory[k] / GIB:,.1f}")
    verdict = "[green]fits[/]" if est.fits else "[red]does not fit[/]"
    mem.add_row("capacity", f"{est.memory['capacity'] / GIB:,.1f} ({verdict})")
    console.print(mem)
    step = Table(title="Step time")
    step.add_column("part")
    step.add_column("s", justify="right")
    step.add_column("share", justify="right")
    for k, v in est.breakdown_s.items():
        if k == "recompute_s":
            continue
        step.add_row(k.removesuffix("_s"), f"{v:,.4f}", f"{100 * v / est.step_time_s:.1f}%")
    step.add_row("[bold]step[/]", f"[bold]{est.step_time_s:,.4f}[/]", "100%")
    console.print(step)
    thr = Table(title="Throughput")
    thr.add_column("metric")
    thr.add_column("value", justify="right")
    thr.add_row("tokens/s (job)", f"{est.tokens_per_s:,.0f}")
    thr.add_row("tokens/s per GPU", f"{est.tokens_per_s_per_gpu:,.1f}")
    thr.add_row("model TFLOP/s per GPU", f"{est.model_tflops_per_gpu:,.1f}")
    thr.add_row("MFU / HFU", f"{100 * est.mfu:.1f}% / {100 * est.hfu:.1f}%")
    if est.tokens:
        thr.add_row("tokens to train", f"{est.tokens:.3g}")
        thr.add_row("time to train", f"{est.time_to_train_days:,.1f} days")
        thr.add_row("GPU-hours", f"{est.gpu_hours:,.0f}")
        thr.add_row("cost", f"${est.cost_usd:,.0f}")
        thr.add_row("energy (GPUs only)", f"{est.energy_mwh:,.1f} MWh")
    console.print(thr)


plan_app = typer.Typer(no_args_is_help=True, help="Search configurations and clusters.")
app.add_typer(plan_app, name="plan")


class ObjectiveChoice(str, Enum):
    time = "time"
    cost = "cost"
    energy = "energy"


def parse_gpu_counts(text: str) -> list[int]:
    """'512' → [512]; '64..2048' → powers of two from 64 to 2048; '64,96,128' → that list."""
    text = text.strip()
    try:
        if ".." in text:
            lo, hi = (int(x) for x in text.split(".."))
            if not 1 <= lo <= hi:
                raise ValueError
            counts, n = [], lo
            while n <= hi:
                counts.append(n)
                n *= 2
            if counts[-1] != hi:
                counts.append(hi)
            return counts
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise FlopcastError(
            f"gpus: expected a count (512), a range (64..2048) or a list (64,128); got {text!r}"
        ) from None


def _int_list(text: str | None, name: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise FlopcastError(
            f"{name}: expected integers separated by commas; got {text!r}"
        ) from None


@plan_app.command("train")
def plan_train(
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help="GPU catalog id, or several separated by "
                            "commas to compare GPU types."),
    gpus: str = typer.Option("8", "--gpus", help="GPU count: 512, a range 64..2048 (powers of "
                             "two) or a list 64,128,256."),
    seq_len: int = SEQ_OPT,
    seq_lens: str | None = typer.Option(
        None, "--seq-lens", help="Sweep several sequence lengths, e.g. 4096,8192 (overrides "
        "--seq-len); with several models or lengths --json prints {\"sweep\": [...]}."),
    global_batch: int | None = typer.Option(
        None, "--global-batch", "--global-batch-size", help="Sequences per optimizer step "
        "(default: about 4M tokens)."),
    precision: PrecisionChoice = PRECISION_OPT,
    tokens: str | None = TOKENS_OPT,
    objective: ObjectiveChoice = typer.Option(ObjectiveChoice.time, "--objective",
                                              help="Rank by time, cost ($) or energy per token."),
    top: int = typer.Option(5, "--top", help="How many configurations to show."),
    deadline_days: float | None = typer.Option(
        None, "--deadline-days", help="With --tokens: report the cheapest cluster that trains "
        "within this many days."),
    tp: str | None = typer.Option(None, "--tp", help="Only these tp values, e.g. 4,8."),
    pp: str | None = typer.Option(None, "--pp", help="Only these pp values."),
    cp: str | None = typer.Option(None, "--cp", help="Only these cp values."),
    ep: str | None = typer.Option(None, "--ep", help="Only these ep values."),
    micro_batch: str | None = typer.Option(None, "--micro-batch",
                                           help="Only these micro-batch sizes."),
    zero: str | None = typer.Option(None, "--zero", help="Only these ZeRO stages."),
    calibration: Path | None = CALIBRATION_OPT,
    layers: int | None = LAYERS_OPT,
    hidden: int | None = HIDDEN_OPT,
    heads: int | None = HEADS_OPT,
    kv_heads: int | None = KV_HEADS_OPT,
    ffn_hidden: int | None = FFN_OPT,
    vocab: int | None = VOCAB_OPT,
    swiglu: bool | None = SWIGLU_OPT,
    progress: bool = typer.Option(False, "--progress", help="Show a progress bar."),
    use_ray: bool = typer.Option(False, "--ray", help="Spread clusters over Ray tasks "
                                 "(pip install 'flopcast[ray]')."),
    plot: Path | None = typer.Option(None, "--plot", help="Save the Pareto front and the best "
                                     "configuration's memory per stage to a PNG/SVG "
                                     "(pip install 'flopcast[plot]')."),
    as_json: bool = JSON_OPT,
) -> None:
    """Search every parallel configuration (and cluster) for the best way to train a model.

    Every valid (tp, pp, vp, cp, ep, dp, micro-batch, ZeRO stage, recompute, schedule,
    sequence parallelism, optimizer offload) is evaluated by the same model as `flopcast
    train`; invalid ones are counted per reason.
    """
    from flopcast.specs.plan import PlanRequest
    from flopcast.workloads.training.distributed import plan_sweep
    from flopcast.workloads.training.plan import plan_training

    options = {k: v for k, v in dict(
        tp=_int_list(tp, "tp"), pp=_int_list(pp, "pp"), cp=_int_list(cp, "cp"),
        ep=_int_list(ep, "ep"), micro_batch=_int_list(micro_batch, "micro-batch"),
        zero=_int_list(zero, "zero")).items() if v is not None}
    refs = [m.strip() for m in model.split(",")] if model else [None]
    models = [_model(ref, layers, hidden, heads, kv_heads, ffn_hidden, vocab, swiglu)
              for ref in refs]
    lengths = _int_list(seq_lens, "seq-lens") or [seq_len]
    requests = [PlanRequest(
        model=m, gpus=[g.strip() for g in gpu.split(",")], gpu_counts=parse_gpu_counts(gpus),
        seq_len=s, global_batch=global_batch, precision=precision.value,
        tokens=parse_count(tokens) if tokens else None, objective=objective.value, top=top,
        deadline_days=deadline_days, options=options,
    ) for m in models for s in lengths]
    request = requests[0]
    for g in request.gpus:
        from flopcast.catalog import load_gpu

        load_gpu(g, calibration)  # refuse an unknown GPU before searching
    cal = str(calibration) if calibration else None
    if len(requests) > 1:
        answers = plan_sweep(requests, cal, use_ray=use_ray)
        if as_json:
            print(json.dumps({"sweep": [
                {"model": r.model.name, "seq_len": r.seq_len, **a}
                for r, a in zip(requests, answers, strict=True)]}, indent=2))
            return
        for r, a in zip(requests, answers, strict=True):
            _print_plan(a, r)
        return
    if progress and not as_json:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("searching", total=None)

            def hook(k, n_clusters, done, total):
                bar.update(task, description=f"cluster {k + 1}/{n_clusters}", completed=done,
                           total=total)

            answer = plan_training(request, cal, use_ray=use_ray, progress=hook)
    else:
        answer = plan_training(request, cal, use_ray=use_ray)
    if plot is not None:
        from flopcast.report.plots import plot_plan

        plot_plan(answer, plot)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    _print_plan(answer, request)


def _print_plan(answer: dict, request) -> None:
    console.print(f"[bold]{request.model.name}[/], seq {request.seq_len}, global batch "
                  f"{request.batch} sequences, {request.precision.name}: evaluated "
                  f"{answer['evaluated']:,} configurations")
    rej = Table(title="Rejected")
    rej.add_column("reason")
    rej.add_column("configurations", justify="right")
    for reason, count in answer["rejected"].items():
        rej.add_row(reason, f"{count:,}")
    console.print(rej)
    top = Table(title=f"Top {len(answer['top'])} by {request.objective}")
    for col in ("#", "configuration", "tok/s/GPU", "MFU", "GiB", "step s"):
        top.add_column(col, justify="left" if col == "configuration" else "right")
    for k, e in enumerate(answer["top"], 1):
        top.add_row(str(k), _config_text(e["config"], with_cluster=True),
                    f"{e['tokens_per_s_per_gpu']:,.0f}", f"{100 * e['mfu']:.1f}%",
                    f"{e['memory']['total'] / GIB:.1f}", f"{e['step_time_s']:.3f}")
    console.print(top)
    if len(answer["clusters"]) > 1:
        cl = Table(title="Clusters (best configuration of each)")
        for col in ("cluster", "tokens/s", "$/M tokens", "days", "cost $", "MWh", "fits"):
            cl.add_column(col, justify="right")
        for c in answer["clusters"]:
            cl.add_row(f"{c['num_gpus']}×{c['gpu']}",
                       *(("—",) * 5 if not c["fits"] else (
                           f"{c['tokens_per_s']:,.0f}", f"{c['usd_per_million_tokens']:.3f}",
                           _opt(c["time_to_train_days"], "{:,.1f}"),
                           _opt(c["cost_usd"], "{:,.0f}"), _opt(c["energy_mwh"], "{:,.1f}"))),
                       "yes" if c["fits"] else "no")
        console.print(cl)
        if "cheapest_within_deadline" in answer:
            best = answer["cheapest_within_deadline"]
            console.print("cheapest within the deadline: " + (
                f"{best['num_gpus']}× {best['gpu']}, {best['time_to_train_days']:,.1f} days, "
                f"${best['cost_usd']:,.0f}" if best else "none of these clusters"))
    front = answer["pareto"]
    if front and len(answer["clusters"]) == 1:
        pt = Table(title="Pareto front: tokens/s vs memory headroom")
        for col in ("tokens/s", "headroom GiB", "configuration"):
            pt.add_column(col, justify="left" if col == "configuration" else "right")
        for p in front[:12]:
            pt.add_row(f"{p['tokens_per_s']:,.0f}", f"{p['memory_headroom_gib']:.1f}",
                       _config_text(p["config"]))
        console.print(pt)


def _config_text(c: dict, with_cluster: bool = False) -> str:
    """One line: tp2 pp1 vp1 cp2 ep1 dp16 mb1 zero3 recompute=none 1f1b sp offload."""
    text = (f"tp{c['tp']} pp{c['pp']} vp{c['vp']} cp{c['cp']} ep{c['ep']} dp{c['dp']} "
            f"mb{c['micro_batch']} zero{c['zero_stage']} rc={c['recompute']} {c['schedule']}"
            + (" sp" if c["sp"] else "")
            + (" offload" if c.get("cpu_offload") or c.get("cpu_offload_optimizer") else ""))
    if with_cluster:
        text = f"{c['num_gpus']}×{c['gpu']} " + text
    return text


def _opt(v, fmt: str) -> str:
    return "—" if v is None else fmt.format(v)


@app.command()
def infer(
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help="GPU catalog id."),
    gpus: int = typer.Option(1, "--gpus", help="Number of GPUs serving one model replica."),
    tp: int | None = typer.Option(None, "--tp", help="Tensor parallel size (default: gpus/pp)."),
    pp: int = typer.Option(1, "--pp", help="Pipeline parallel size."),
    ep: int = typer.Option(1, "--ep", help="Expert parallel size inside the TP group (MoE)."),
    precision: str = typer.Option(
        "bf16", "--precision", help="Weights/GEMMs: bf16, fp16, fp8 (W8A8), int8 (W8A8), "
        "w8a16, w4a16 (GPTQ/AWQ weight-only), nvfp4, mxfp4, or w<bits>a16 (e.g. w3a16)."),
    kv_precision: str | None = typer.Option(
        None, "--kv-precision", help="KV cache: bf16, fp16, fp8, int8, int4 (default: fp8 with "
        "fp8/fp4 weights, else bf16)."),
    engine: str = typer.Option("vllm", "--engine", help="tensorrt-llm, vllm, sglang or generic "
                               "(batch limits, KV paging, memory share)."),
    input_len: int = typer.Option(1024, "--input-len", help="Prompt tokens per request."),
    output_len: int = typer.Option(128, "--output-len", help="Generated tokens per request."),
    batch: int | None = typer.Option(None, "--batch", help="Static batch: requests run "
                                     "together, prefill then decode."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", help="Continuous batching with this many requests in flight "
        "(steady state)."),
    max_throughput: bool = typer.Option(
        False, "--max-throughput", help="Find the concurrency with the most output tokens/s "
        "within KV memory and the engine's limits."),
    calibration: Path | None = CALIBRATION_OPT,
    layers: int | None = LAYERS_OPT,
    hidden: int | None = HIDDEN_OPT,
    heads: int | None = HEADS_OPT,
    kv_heads: int | None = KV_HEADS_OPT,
    ffn_hidden: int | None = FFN_OPT,
    vocab: int | None = VOCAB_OPT,
    swiglu: bool | None = SWIGLU_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Estimate serving: TTFT, time per output token, end-to-end latency, tokens/s, KV capacity.

    Default mode is a static batch of 1; give one of --batch, --concurrency, --max-throughput.
    Latencies in ms, memory in GiB (bytes in --json).
    """
    from flopcast.catalog import load_gpu
    from flopcast.catalog.loader import load_engine
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.inference import estimate_inference

    chosen = [x for x in (batch is not None, concurrency is not None, max_throughput) if x]
    if len(chosen) > 1:
        raise FlopcastError("mode: give at most one of --batch, --concurrency, --max-throughput")
    mode = ("max_throughput" if max_throughput else "concurrency" if concurrency is not None
            else "batch")
    job = InferenceJob(
        model=_model(model, layers, hidden, heads, kv_heads, ffn_hidden, vocab, swiglu),
        system=System(gpu=load_gpu(gpu, calibration), num_gpus=gpus),
        engine=load_engine(engine), tp=tp if tp is not None else max(gpus // pp, 1), pp=pp,
        ep=ep, weights=precision, kv_format=kv_precision, input_len=input_len,
        output_len=output_len, mode=mode, batch=concurrency or batch or 1,
    )
    est = estimate_inference(job)
    if as_json:
        print(json.dumps(est.to_dict(), indent=2))
        return
    c = est.config
    console.print(
        f"[bold]{c['model']}[/] on {c['num_gpus']}× {c['gpu']} with {c['engine']}: tp={c['tp']} "
        f"pp={c['pp']} ep={c['ep']}, {c['precision']} weights, {c['kv_precision']} KV cache; "
        f"{c['input_len']} in / {c['output_len']} out; {est.mode} = {est.batch} "
        f"({est.limited_by}); efficiency from {c['efficiency_source']}"
    )
    mem = Table(title="Memory per GPU")
    mem.add_column("kind")
    mem.add_column("GiB", justify="right")
    for k, v in est.memory.items():
        mem.add_row(k.replace("_", " "), f"{v / GIB:,.2f}")
    mem.add_row("KV per sequence", f"{est.kv_bytes_per_sequence / GIB:,.3f}")
    mem.add_row("max concurrent sequences", f"{est.max_concurrent_sequences:,}")
    console.print(mem)
    out = Table(title="Latency and throughput")
    out.add_column("metric")
    out.add_column("value", justify="right")
    out.add_row("TTFT", f"{est.ttft_ms:,.1f} ms")
    out.add_row("time per output token", f"{est.tpot_ms:,.2f} ms")
    out.add_row("end-to-end latency", f"{est.e2e_latency_ms:,.0f} ms")
    out.add_row("output tokens/s", f"{est.output_tokens_per_s:,.0f}")
    out.add_row("output tokens/s per GPU", f"{est.output_tokens_per_s_per_gpu:,.0f}")
    out.add_row("requests/s", f"{est.requests_per_s:,.2f}")
    console.print(out)
    parts = Table(title="Step time by part (ms)")
    parts.add_column("part")
    parts.add_column("prefill step", justify="right")
    parts.add_column("decode step", justify="right")
    for k in est.decode_breakdown_s:
        parts.add_row(k.removesuffix("_s"), f"{1e3 * est.prefill_breakdown_s[k]:,.3f}",
                      f"{1e3 * est.decode_breakdown_s[k]:,.3f}")
    console.print(parts)


@app.command()
def validate(
    file: Path = typer.Argument(..., help="Measurement CSV (schema: "
                                "../shared/measurements/README.md)."),
    calibration: Path | None = typer.Option(None, "--calibration",
                                               help="Calibration YAML (default: shipped)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Predict every row of a measurement CSV and report the error (APE) per row and overall."""
    from flopcast.validate import validate_file

    result = validate_file(file, str(calibration) if calibration else None)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"{file.name}: {result['kind']} rows")
    for col in ("id", "metric", "measured", "predicted", "error"):
        table.add_column(col, justify="left" if col in ("id", "metric") else "right")
    for r in result["rows"]:
        if r["predicted"] is None:
            table.add_row(r["id"], r["metric"], _fmt(r["measured"]), "—",
                          f"skipped: {r['skipped']}")
        else:
            signed = 100 * (r["predicted"] / r["measured"] - 1)
            table.add_row(r["id"], r["metric"], _fmt(r["measured"]), _fmt(r["predicted"]),
                          f"{signed:+.1f}%")
    console.print(table)
    for group in ("source", "metric", "gpu"):
        src = Table(title=f"By {group}")
        for col in (group, "rows", "predicted", "median APE", "p90 APE"):
            src.add_column(col, justify="left" if col == group else "right")
        for name, s in result[f"by_{group}"].items():
            src.add_row(name, str(s["rows"]), str(s["predicted"]), _pct(s["median_ape_pct"]),
                        _pct(s["p90_ape_pct"]))
        s = result["summary"]
        src.add_row("[bold]all[/]", str(s["rows"]), str(s["predicted"]),
                    _pct(s["median_ape_pct"]), _pct(s["p90_ape_pct"]))
        console.print(src)


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.4g}"


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1f}%"


@app.command()
def calibrate(
    file: Path = typer.Argument(..., help="Training measurement CSV to fit."),
    out: Path = typer.Option(Path("calibration.yaml"), "--out", "-o",
                             help="Where to write the calibration YAML."),
    loso: bool = typer.Option(False, "--leave-one-source-out",
                              help="Also fit without each source and score it (slow)."),
) -> None:
    """Fit efficiency parameters to measurements; write a calibration YAML.

    A training file gives parameters per GPU family, an inference file per GPU family and
    engine. Later commands take the result with --calibration FILE. The shipped ones were made
    with `flopcast calibrate ../shared/measurements/training.csv -o
    src/flopcast/calibration/default.yaml` and `... inference.csv -o
    src/flopcast/calibration/inference.yaml`.
    """
    from flopcast.calibration import calibrate as fit
    from flopcast.calibration import leave_one_source_out
    from flopcast.validate.report import detect_kind
    from flopcast.validate.training import read_rows

    if detect_kind(read_rows(file)) == "inference":
        from flopcast.calibration.inference import (
            calibrate_inference,
            leave_one_source_out_inference,
        )

        fit, leave_one_source_out = calibrate_inference, leave_one_source_out_inference
    doc = fit(file, out)
    console.print(f"wrote {out}: {doc['parameters_fitted']} parameters fitted; in-sample "
                  f"median {_pct(doc['summary']['median_ape_pct'])}, p90 "
                  f"{_pct(doc['summary']['p90_ape_pct'])} over {doc['summary']['rows']} rows")
    table = Table(title="Fit (in-sample)")
    for col in ("family", "rows", "median APE", "p90 APE", "parameters"):
        table.add_column(col)
    for fam, f in doc["families"].items():
        groups = {"": f} if "efficiency" in f else {f" / {eng}": g for eng, g in f.items()}
        for suffix, g in groups.items():
            params = ", ".join(f"{k}={v:.4g}" for k, v in g["efficiency"].items())
            table.add_row(fam + suffix, str(g["fit"]["rows"]), _pct(g["fit"]["median_ape_pct"]),
                          _pct(g["fit"]["p90_ape_pct"]), params)
    console.print(table)
    if loso:
        held = Table(title="Leave one source out (fit without it, score it)")
        for col in ("source", "rows", "median APE", "p90 APE"):
            held.add_column(col)
        for source, s in leave_one_source_out(file).items():
            held.add_row(source, str(s["rows"]), _pct(s["median_ape_pct"]),
                         _pct(s["p90_ape_pct"]))
        console.print(held)


@app.command()
def catalog(
    kind: str = typer.Argument("gpus", help="gpus or models."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the built-in GPUs or models."""
    from flopcast.catalog import gpu_ids, load_gpu, load_model, model_ids

    if kind not in ("gpus", "models"):
        raise FlopcastError(f"catalog: kind must be 'gpus' or 'models'; got {kind!r}")
    if kind == "gpus":
        rows = [load_gpu(g) for g in gpu_ids()]
        data = [{"id": g.id, "name": g.name, "bf16_tflops": g.peak_flops.get("bf16", 0) / 1e12,
                 "fp8_tflops": g.peak_flops.get("fp8", 0) / 1e12,
                 "hbm_gib": g.hbm_bytes / GIB, "hbm_tb_s": g.hbm_bandwidth / 1e12,
                 "usd_per_hour": g.price_per_gpu_hour_usd} for g in rows]
    else:
        models = [load_model(m) for m in model_ids()]
        data = [{"id": m.name, "params_b": m.num_parameters() / 1e9,
                 "active_params_b": m.num_active_parameters() / 1e9, "layers": m.num_layers,
                 "hidden": m.hidden_size, "experts": m.num_experts} for m in models]
    if as_json:
        print(json.dumps(data, indent=2))
        return
    table = Table()
    for col in data[0]:
        table.add_column(col)
    for d in data:
        table.add_row(*(f"{v:,.4g}" if isinstance(v, float) else str(v) for v in d.values()))
    console.print(table)


def _is_usage_error(exc: BaseException) -> bool:
    """Click/typer usage errors (bad option value, unknown option) carry ``format_message``."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        return f"{loc}: {msg}" if loc else msg
    if _is_usage_error(exc):
        return " ".join(exc.format_message().split())
    return " ".join(str(exc).split())


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app, turns user errors into one line and exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]
    try:
        code = app(args=args, standalone_mode=False)
    except (FlopcastError, ValidationError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
