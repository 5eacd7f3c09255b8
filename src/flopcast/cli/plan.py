"""`flopcast plan train`: search configurations, clusters and sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from flopcast.api.common import ObjectiveChoice
from flopcast.cli.common import (
    ATTENTION_BACKEND_OPT,
    CALIBRATION_OPT,
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
    app,
    check_outputs,
    console,
    expected_error_lines,
    float_option,
    int_option,
    lora_text,
    model_flags,
    plural,
    print_table,
    request_from,
    warn,
)
from flopcast.specs.parallelism import OFFLOAD_KINDS

plan_app = typer.Typer(no_args_is_help=True, help="Search configurations and clusters.")
app.add_typer(plan_app, name="plan")


@plan_app.command("train")
@model_flags
def plan_train(
    model: str | None = MODEL_OPT,
    gpu: str = typer.Option("h100-sxm", "--gpu", help=GPU_HELP.removesuffix(".") + "; "
                            "several separated by commas compare GPU types."),
    gpus: str = typer.Option("8", "--gpus", help="GPU count: 512, a range 64..2048 (doubling "
                             "from the first: 64, 128, ..., 2048; the last is included when "
                             "the doubling misses it: 100..1000 is 100, 200, 400, 800, 1000) "
                             "or a list 64,96,128."),
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
    framework: str = FRAMEWORK_OPT,
    attention_backend: str | None = ATTENTION_BACKEND_OPT,
    lora_rank: int | None = LORA_RANK_OPT,
    lora_targets: str | None = LORA_TARGETS_OPT,
    calibration: Path | None = CALIBRATION_OPT,
    progress: bool = typer.Option(False, "--progress", help="Show a progress bar."),
    use_ray: bool = typer.Option(False, "--ray", help="Spread clusters over Ray tasks "
                                 "(pip install 'flopcast[ray]')."),
    plot: Path | None = typer.Option(None, "--plot", help="Save the Pareto front and the best "
                                     "configuration's memory per stage to a PNG/SVG "
                                     "(pip install 'flopcast[plot]')."),
    as_json: bool = JSON_OPT,
    **shape,
) -> None:
    """Search every parallel configuration (and cluster) for the best way to train a model.

    Every valid (tp, pp, vp, cp, ep, dp, micro-batch, ZeRO stage, recompute, schedule,
    sequence parallelism) is evaluated by the same model as `flopcast train`; invalid ones
    are counted per reason. Offload to host memory or NVMe (ZeRO-Offload, ZeRO-Infinity) is
    searched only when nothing fits without it, and the answer says so.
    """
    from flopcast.api.common import json_of
    from flopcast.api.plan import PlanTrainRequest, run_plan_train

    request = request_from(PlanTrainRequest, locals() | shape)
    check_outputs(plot)
    if progress and not as_json:
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("searching", total=None)

            def hook(k, n_clusters, done, total):
                bar.update(task, description=f"cluster {k + 1}/{n_clusters}", completed=done,
                           total=total)

            result = run_plan_train(request, warn, use_ray, hook)
    else:
        result = run_plan_train(request, warn, use_ray)
    answer = json_of(result)
    if plot is not None and "sweep" not in answer:
        from flopcast.report.plots import plot_plan

        plot_plan(answer, plot)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    for a in answer.get("sweep", [answer]):
        _print_plan(a, objective.value)


def _print_counts(answer: dict) -> None:
    n = answer["counts"]
    c = answer["top"][0]["config"]
    console.print(f"[bold]{c['model']}[/], seq {c['seq_len']}, global batch "
                  f"{plural(c['global_batch'], 'sequence')}, {c['precision']}, "
                  f"{c['framework']}{lora_text(c)}, attention {c['attention_backend']}: "
                  f"{plural(n['enumerated'], 'configuration')} enumerated, "
                  f"{n['evaluated']:,} evaluated, {n['fit']:,} fit in memory")
    print_table("Configurations (− rejected)", ("", "count"), [
        ("enumerated", f"{n['enumerated']:,}"),
        *((f"  − {reason}", f"{count:,}") for reason, count in n["rejected_by_rule"].items()),
        ("evaluated", f"{n['evaluated']:,}"),
        ("  − does not fit in GPU memory", f"{n['do_not_fit']:,}"),
        ("  fit in memory (ranked)", f"{n['fit']:,}"),
    ])


def _print_assumptions(answer: dict) -> None:
    """Price and power behind the cost and energy figures, the best configuration's time,
    cost and energy when there is a budget, and the expected error."""
    prices = ", ".join(f"{g} ${p:,.2f}/GPU-hour"
                       for g, p in answer["price_per_gpu_hour_usd"].items())
    best = answer["top"][0]
    line = (f"assumed: {prices}; best configuration draws {best['board_power_w']:,.0f} W per "
            "GPU")
    if best["time_to_train_days"] is not None:
        line += (f"; it trains {best['tokens']:.3g} tokens in {best['time_to_train_days']:,.1f} "
                 f"days for ${best['cost_usd']:,.0f} and {best['energy_mwh']:,.1f} MWh")
    console.print(line, highlight=False)
    for c in answer["clusters"]:  # each searched cluster with its own best, not the overall
        if c.get("offload_searched"):
            found = _offload_text(c["config"]) if c.get("config") else ""
            console.print(f"nothing fit without offload on {c['num_gpus']}× {c['gpu']}: "
                          "offload to host memory / NVMe searched there (ZeRO-Offload, "
                          f"ZeRO-Infinity); its best:{found or ' none fits'}", highlight=False)
    expected_error_lines(answer["expected_error"])


def _print_plan(answer: dict, objective: str) -> None:
    _print_counts(answer)
    top = Table(title=f"Top {len(answer['top'])} by {objective}")
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
    _print_assumptions(answer)


def _config_text(c: dict, with_cluster: bool = False) -> str:
    """One line: tp2 pp1 vp1 cp2 ep1 dp16 mb1 zero3 recompute=none 1f1b sp offload."""
    text = (f"tp{c['tp']} pp{c['pp']} vp{c['vp']} cp{c['cp']} ep{c['ep']} dp{c['dp']} "
            f"mb{c['micro_batch']} zero{c['zero_stage']} rc={c['recompute']} {c['schedule']}"
            + (" sp" if c["sp"] else "")
            + _offload_text(c))
    if with_cluster:
        text = f"{c['num_gpus']}×{c['gpu']} " + text
    return text


def _offload_text(c: dict) -> str:
    """" offload=optimizer:cpu,params:nvme" for the states off the GPU, else ""."""
    tiers = c.get("offload")
    if tiers is None:  # a search config (Parallelism keyword arguments)
        tiers = {k: c.get(f"offload_{k}", "gpu") for k in OFFLOAD_KINDS}
        if c.get("cpu_offload_optimizer") and tiers["optimizer"] == "gpu":
            tiers["optimizer"] = "cpu"
    off = [f"{k}:{v}" for k, v in tiers.items() if v != "gpu"]
    return f" offload={','.join(off)}" if off else ""


def _opt(v, fmt: str) -> str:
    return "—" if v is None else fmt.format(v)
