"""`flopcast plan train`: search configurations, clusters and sweeps."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from flopcast.api.common import ModelFlags
from flopcast.cli.common import (
    CALIBRATION_OPT,
    FFN_OPT,
    FRAMEWORK_OPT,
    GIB,
    GPU_HELP,
    HEADS_OPT,
    HIDDEN_OPT,
    JSON_OPT,
    KV_HEADS_OPT,
    LAYERS_OPT,
    MAX_INT,
    MODEL_OPT,
    PRECISION_OPT,
    SEQ_OPT,
    SWIGLU_OPT,
    TOKENS_OPT,
    VOCAB_OPT,
    PrecisionChoice,
    app,
    console,
    ensure_finite,
    expected_error_lines,
    float_option,
    int_option,
    parse_count,
    plural,
    print_table,
    short,
    warn_beyond_context,
)
from flopcast.errors import FlopcastError
from flopcast.specs.parallelism import OFFLOAD_KINDS

plan_app = typer.Typer(no_args_is_help=True, help="Search configurations and clusters.")
app.add_typer(plan_app, name="plan")


class ObjectiveChoice(str, Enum):
    time = "time"
    cost = "cost"
    energy = "energy"


def parse_gpu_counts(text: str) -> list[int]:
    """'512' → [512]; '64..2048' → powers of two from 64 to 2048; '64,96,128' → that list.
    Every count is 1 to MAX_INT (a 20-digit count would search for hours)."""
    text = text.strip()
    try:
        if ".." in text:
            lo, hi = (int(x) for x in text.split(".."))
            if lo > hi:
                raise ValueError
            counts = _powers_of_two(lo, min(hi, MAX_INT + 1))
        else:
            counts = [int(x) for x in text.split(",")]
    except ValueError:
        raise FlopcastError(f"--gpus: expected a count (512), a range (64..2048) or a list "
                            f"(64,128); got {short(text)!r}") from None
    if not all(1 <= n <= MAX_INT for n in counts):
        raise FlopcastError(f"--gpus: every GPU count must be at least 1 and at most "
                            f"{MAX_INT:,}; got {short(text)!r}")
    return counts


def _powers_of_two(lo: int, hi: int) -> list[int]:
    """lo, 2·lo, 4·lo, … up to hi, and hi itself (lo < 1 gives [lo]: refused by the caller)."""
    if lo < 1:
        return [lo]
    counts, n = [], lo
    while n <= hi:
        counts.append(n)
        n *= 2
    if counts[-1] != hi:
        counts.append(hi)
    return counts


def gpu_refs(text: str) -> list[str]:
    """'h100-sxm,my.yaml' → ['h100-sxm', '/abs/my.yaml']: GPU entry files as absolute paths,
    so that Ray workers in another directory find them too."""
    from flopcast.catalog.loader import is_gpu_file

    refs = [g.strip() for g in text.split(",") if g.strip()]
    return [str(Path(g).expanduser().resolve()) if is_gpu_file(g) else g for g in refs]


def _int_list(text: str | None, name: str, low: int = 1, high: int = MAX_INT) -> list[int] | None:
    """'4,8' → [4, 8]; each value within [low, high], else one line naming --name."""
    if text is None:
        return None
    allowed = f"comma-separated integers from {low} to {high:,}"
    try:
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(low <= v <= high for v in values):
        raise FlopcastError(f"--{name}: expected {allowed}; got {short(text)!r}")
    return values


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
    framework: str = FRAMEWORK_OPT,
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
    sequence parallelism) is evaluated by the same model as `flopcast train`; invalid ones
    are counted per reason. Offload to host memory or NVMe (ZeRO-Offload, ZeRO-Infinity) is
    searched only when nothing fits without it, and the answer says so.
    """
    from flopcast.specs.plan import PlanRequest
    from flopcast.workloads.training.distributed import plan_sweep
    from flopcast.workloads.training.plan import plan_training

    if deadline_days is not None and not tokens:
        raise FlopcastError(f"--deadline-days {deadline_days:g}: needs --tokens (the training "
                            "budget the deadline applies to)")

    options = {k: v for k, v in dict(
        tp=_int_list(tp, "tp"), pp=_int_list(pp, "pp"), cp=_int_list(cp, "cp"),
        ep=_int_list(ep, "ep"), micro_batch=_int_list(micro_batch, "micro-batch"),
        zero=_int_list(zero, "zero", 0, 3)).items() if v is not None}
    refs = [m.strip() for m in model.split(",")] if model else [None]
    models = [ModelFlags(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads,
                          ffn_hidden=ffn_hidden, vocab=vocab, swiglu=swiglu).resolve(ref)
              for ref in refs]
    lengths = _int_list(seq_lens, "seq-lens") or [seq_len]
    requests = [PlanRequest(
        model=m, gpus=gpu_refs(gpu), gpu_counts=parse_gpu_counts(gpus),
        seq_len=s, global_batch=global_batch, precision=precision.value,
        tokens=parse_count(tokens) if tokens else None, objective=objective.value, top=top,
        deadline_days=deadline_days, options=options, framework=framework,
    ) for m in models for s in lengths]
    request = requests[0]
    from flopcast.catalog import load_gpu

    families = [load_gpu(g, calibration).family  # refuses an unknown GPU before searching
                for g in request.gpus]
    cal = str(calibration) if calibration else None
    if len(requests) > 1:
        answers = [_annotate(a, families, request.framework)
                   for a in plan_sweep(requests, cal, use_ray=use_ray)]
        _warn_context(requests)
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
    answer = _annotate(answer, families, request.framework)
    _warn_context(requests)
    if plot is not None:
        from flopcast.report.plots import plot_plan

        plot_plan(answer, plot)
    if as_json:
        print(json.dumps(answer, indent=2))
        return
    _print_plan(answer, request)


def _warn_context(requests) -> None:
    """After the search (an answer, not an error, follows the warning): sequence lengths
    beyond a model's context."""
    for r in requests:
        warn_beyond_context(r.model, r.seq_len, "--seq-len")


def plan_counts(answer: dict) -> dict:
    """How many configurations were enumerated, rejected by a rule before evaluation (per
    reason), evaluated, and of those how many fit in memory: enumerated = rejected by rule +
    evaluated, evaluated = fit + do not fit. (The search's ``rejected`` mixes rule rejections
    with memory rejections of evaluated ones, so its counts did not add up to anything.)"""
    from flopcast.workloads.training.search import REASONS

    memory_reason = REASONS[-1]
    by_rule = {k: v for k, v in answer["rejected"].items() if k != memory_reason}
    evaluated = answer["evaluated"]
    return {"enumerated": evaluated + sum(by_rule.values()), "rejected_by_rule": by_rule,
            "evaluated": evaluated, "fit": sum(c["feasible"] for c in answer["clusters"]),
            "do_not_fit": answer["rejected"].get(memory_reason, 0)}


def _annotate(answer: dict, families: list[str], framework=None) -> dict:
    """The answer with its counts, the expected error of its step times (under the request's
    framework profile) and the prices per GPU-hour it assumed (``answer`` itself is left as
    the planner returned it)."""
    from flopcast.accuracy import expected_error, training_kinds
    from flopcast.catalog import load_gpu

    prices = {c["gpu"]: load_gpu(c["gpu"]).price_per_gpu_hour_usd for c in answer["clusters"]}
    out = {**answer, "counts": plan_counts(answer),
           "expected_error": expected_error(
               training_kinds(framework.id if framework else "megatron")[0], families),
           "price_per_gpu_hour_usd": prices}
    ensure_finite(out, "plan")
    return out


def _print_counts(answer: dict, request) -> None:
    n = answer["counts"]
    console.print(f"[bold]{request.model.name}[/], seq {request.seq_len}, global batch "
                  f"{plural(request.batch, 'sequence')}, {request.precision.name}"
                  f"{', ' + request.framework.id if request.framework else ''}: "
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
    searched = [f"{c['num_gpus']}× {c['gpu']}" for c in answer["clusters"]
                if c.get("offload_searched")]
    if searched:
        console.print(f"nothing fit without offload on {', '.join(searched)}: offload to host "
                      "memory / NVMe searched there (ZeRO-Offload, ZeRO-Infinity)"
                      f"; best:{_offload_text(best['config']) or ' none'}", highlight=False)
    expected_error_lines(answer["expected_error"])


def _print_plan(answer: dict, request) -> None:
    _print_counts(answer, request)
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
