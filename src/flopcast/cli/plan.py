"""`flopcast plan train`: search configurations, clusters and sweeps."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from flopcast.cli.common import (
    CALIBRATION_OPT,
    FFN_OPT,
    GIB,
    GPU_HELP,
    HEADS_OPT,
    HIDDEN_OPT,
    JSON_OPT,
    KV_HEADS_OPT,
    LAYERS_OPT,
    MODEL_OPT,
    PRECISION_OPT,
    SEQ_OPT,
    SWIGLU_OPT,
    TOKENS_OPT,
    VOCAB_OPT,
    PrecisionChoice,
    _model,
    app,
    console,
    float_option,
    int_option,
    parse_count,
    print_table,
)
from flopcast.errors import FlopcastError

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


def gpu_refs(text: str) -> list[str]:
    """'h100-sxm,my.yaml' → ['h100-sxm', '/abs/my.yaml']: GPU entry files as absolute paths,
    so that Ray workers in another directory find them too."""
    from flopcast.catalog.loader import is_gpu_file

    refs = [g.strip() for g in text.split(",") if g.strip()]
    return [str(Path(g).expanduser().resolve()) if is_gpu_file(g) else g for g in refs]


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
    gpu: str = typer.Option("h100-sxm", "--gpu", help=GPU_HELP.removesuffix(".") + "; "
                            "several separated by commas compare GPU types."),
    gpus: str = typer.Option("8", "--gpus", help="GPU count: 512, a range 64..2048 (powers of "
                             "two) or a list 64,128,256."),
    seq_len: int = SEQ_OPT,
    seq_lens: str | None = typer.Option(
        None, "--seq-lens", help="Sweep several sequence lengths, e.g. 4096,8192 (overrides "
        "--seq-len); with several models or lengths --json prints {\"sweep\": [...]}."),
    global_batch: int | None = int_option(
        None, "--global-batch", "--global-batch-size", help="Sequences per optimizer step "
        "(default: about 4M tokens)."),
    precision: PrecisionChoice = PRECISION_OPT,
    tokens: str | None = TOKENS_OPT,
    objective: ObjectiveChoice = typer.Option(ObjectiveChoice.time, "--objective",
                                              help="Rank by time, cost ($) or energy per token."),
    top: int = int_option(5, "--top", help="How many configurations to show."),
    deadline_days: float | None = float_option(
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
        model=m, gpus=gpu_refs(gpu), gpu_counts=parse_gpu_counts(gpus),
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
    print_table("Rejected", ("reason", "configurations"),
                [(reason, f"{count:,}") for reason, count in answer["rejected"].items()])
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
