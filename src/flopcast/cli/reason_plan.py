"""`flopcast reason plan`: model × strategy × samples for a target accuracy or a budget."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from flopcast.cli.common import JSON_OPT, print_table
from flopcast.cli.reason import _parse_ks, reason_app
from flopcast.errors import FlopcastError, echo
from flopcast.specs.limits import MAX_SEQ_LEN

#: Default largest k: 4,096 samples per problem (Brown et al. 2024 drew 10,000; beyond a few
#: thousand the extrapolation rests on the fitted tail alone).
DEFAULT_MAX_K = 4096


def _model_map(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, sep, ref = item.partition("=")
        if not sep or not name.strip() or not ref.strip():
            raise FlopcastError(f"model-map: expected name=catalog-id pairs such as "
                                f"pythia-12b=pythia-12b; got {echo(item)}")
        out[name.strip()] = ref.strip()
    return out


def _candidates(paths: list[Path], benchmark: str | None, mapping: dict, deployment: dict):
    """One planner candidate per model in the samples files, on ``benchmark``."""
    from flopcast.catalog import load_gpu, resolve_model
    from flopcast.catalog.loader import inference_efficiency, load_engine
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.reasoning import fit_beta_mixture, read_sample_groups
    from flopcast.workloads.reasoning.plan import Candidate

    groups = {}
    for path in paths:
        groups.update(read_sample_groups(path))
    benches = sorted({b for _, b in groups})
    if benchmark is None and len(benches) > 1:
        raise FlopcastError(f"benchmark: the samples hold {', '.join(benches)}; choose one")
    bench = benchmark or benches[0]
    chosen = {m: s for (m, b), s in sorted(groups.items()) if b == bench}
    if not chosen:
        raise FlopcastError(f"benchmark: {echo(bench)} not in the samples ({', '.join(benches)})")
    gpu, engine = load_gpu(deployment["gpu"]), load_engine(deployment["engine"])
    cands = []
    for name, s in chosen.items():
        try:
            model = resolve_model(mapping.get(name, name))
        except FlopcastError as e:
            raise FlopcastError(f"model-map: samples model {name!r} is not a catalog model "
                                f"({e}); map it with --model-map {name}=<catalog id>") from None
        job = InferenceJob(model=model, engine=engine, tp=deployment["gpus"],
                           system=System(gpu=gpu, num_gpus=deployment["gpus"]),
                           weights=deployment["precision"])
        cands.append(Candidate(name, s, fit_beta_mixture(s.samples, s.correct), job,
                               inference_efficiency(gpu, engine)))
    return bench, cands


def _check_numbers(prompt_len: int, out_len: int, target, budget) -> None:
    for name, value in (("prompt-len", prompt_len), ("out-len", out_len)):
        if not 1 <= value <= MAX_SEQ_LEN:
            raise FlopcastError(f"{name}: tokens in 1..{MAX_SEQ_LEN:,}; got {echo(value)}")
    if target is not None and not 0 < target <= 1:
        raise FlopcastError(f"target-accuracy: a share in (0, 1]; got {target}")
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise FlopcastError(f"budget: a finite number > 0; got {budget}")
    if (target is None) == (budget is None):
        raise FlopcastError("reason plan: give --target-accuracy or --budget (one of them)")


@reason_app.command("plan")
def reason_plan(
    samples: list[Path] = typer.Option(..., "--samples", help="Per-problem samples CSV (repeat "
                                       "for more files); one candidate per model in them."),
    benchmark: str = typer.Option(None, "--benchmark", help="Benchmark to plan for (needed "
                                  "when the files hold several)."),
    model_map: str = typer.Option("", "--model-map", help="Samples model → catalog model, e.g. "
                                  "'my-12b=pythia-12b' (default: the same name)."),
    gpu: str = typer.Option("h100-sxm", "--gpu", help="GPU catalog id or entry file."),
    gpus: int = typer.Option(1, "--gpus", help="GPUs per replica (tensor parallel)."),
    engine: str = typer.Option("vllm", "--engine", help="Serving engine."),
    precision: str = typer.Option("bf16", "--precision", help="Weights/GEMMs."),
    prompt_len: int = typer.Option(500, "--prompt-len", help="Prompt tokens."),
    out_len: int = typer.Option(512, "--out-len", help="Mean generated tokens per sample "
                                "(Brown et al. capped MATH answers at 512)."),
    strategies: str = typer.Option("oracle,best-of-n,majority", "--strategies", help="oracle "
                                   "(perfect verifier: pass@k), best-of-n (imperfect "
                                   "verifier), majority (Wu et al. lower bound)."),
    tpr: float = typer.Option(0.9, "--verifier-tpr", help="best-of-n: P(verifier accepts a "
                              "correct sample)."),
    fpr: float = typer.Option(0.1, "--verifier-fpr", help="best-of-n: P(verifier accepts a "
                              "wrong sample)."),
    max_k: int = typer.Option(DEFAULT_MAX_K, "--max-k", help="Largest samples per problem."),
    per_octave: int = typer.Option(4, "--k-per-octave", help="Sample counts tried per doubling "
                                   "of k (1: powers of two)."),
    target: float = typer.Option(None, "--target-accuracy", help="Cheapest way to reach this "
                                 "accuracy (0-1)."),
    budget: float = typer.Option(None, "--budget", help="Most accurate way within this cost "
                                 "per problem (units of --objective: $, J or s)."),
    objective: str = typer.Option("usd", "--objective", help="usd ($ per problem, replica "
                                  "kept full), energy (J per problem), latency (s, one "
                                  "problem alone), flops (2·P per token, Wu et al.) or eflops "
                                  "(Kinetics: FLOPs + intensity × KV bytes)."),
    per_bin: int = typer.Option(0, "--per-bin", help="Also allocate per difficulty bin: this "
                                "many quantile bins of the first model's pass@1 (Snell et al.)."),
    plot: Path = typer.Option(None, "--plot", help="Save the accuracy-vs-cost front (PNG/SVG)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Cheapest model × strategy × samples reaching --target-accuracy, or the most accurate
    within --budget; prints the accuracy-vs-cost Pareto front.

    Example: flopcast reason plan --samples pythia-math-samples.csv --target-accuracy 0.5
    """
    from flopcast.workloads.reasoning.plan import (
        OBJECTIVES,
        allocate_by_bin,
        choose,
        difficulty_bins,
        evaluate,
        pareto_front,
    )
    from flopcast.workloads.reasoning.strategies import STRATEGIES, check_verifier

    _check_numbers(prompt_len, out_len, target, budget)
    if objective not in OBJECTIVES:
        raise FlopcastError(f"objective: one of {', '.join(OBJECTIVES)}; got {echo(objective)}")
    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    bad = [s for s in chosen if s not in STRATEGIES]
    if bad or not chosen:
        raise FlopcastError(f"strategies: each one of {', '.join(STRATEGIES)}; got "
                            f"{echo(strategies)}")
    check_verifier(tpr, fpr)
    if not 0 <= per_bin <= 20:
        raise FlopcastError(f"per-bin: bins in 0..20; got {per_bin}")
    top = _parse_ks(str(max_k), "max-k")[0]
    if not 1 <= per_octave <= 16:
        raise FlopcastError(f"k-per-octave: 1..16; got {per_octave}")
    ks = sorted({min(top, round(2 ** (i / per_octave)))
                 for i in range(per_octave * top.bit_length() + 1)})
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise FlopcastError(f"plot: file must end in .png, .svg or .pdf; got {plot.name!r}")
    bench, cands = _candidates(samples, benchmark, _model_map(model_map),
                               {"gpu": gpu, "gpus": gpus, "engine": engine,
                                "precision": precision})
    opts = evaluate(cands, chosen, ks, prompt_len, out_len, tpr, fpr)
    key = OBJECTIVES[objective]
    answer = {"benchmark": bench, "objective": objective, "target_accuracy": target,
              "budget": budget, "best": choose(opts, key, target, budget),
              "front": pareto_front(opts.rows, key), "ceilings": opts.ceilings}
    if per_bin:
        problems = {c.samples.problems for c in cands}
        if len(problems) > 1:
            raise FlopcastError("per-bin: the candidates' samples cover different problems")
        answer["per_bin"] = allocate_by_bin(opts, difficulty_bins(cands[0].samples, per_bin),
                                            key, target, budget)
    if plot is not None:
        from flopcast.report.reasoning import plot_front

        plot_front(opts.rows, key, plot)
    _show(answer, key, as_json)


def _show(answer: dict, key: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer, indent=2, default=float))
        return
    unit = {"usd": "$", "joules": "J", "latency_s": "s", "flops": "FLOPs",
            "kinetics_eflops": "eFLOPs"}[key]
    rows = [(r["model"], r["strategy"], f"{r['k']:,}", f"{100 * r['accuracy']:.1f}",
             f"{r[key]:.3g}") for r in answer["front"]]
    print_table(f"accuracy vs {unit} per problem on {answer['benchmark']} (Pareto front)",
                ("model", "strategy", "k", "accuracy %", unit), rows)
    b = answer["best"]
    goal = (f"target {100 * answer['target_accuracy']:.1f} %" if answer["budget"] is None
            else f"budget {answer['budget']:.3g} {unit}")
    print(f"best for {goal}: {b['model']}, {b['strategy']}, k = {b['k']:,}: "
          f"{100 * b['accuracy']:.1f} % at {b[key]:.3g} {unit} per problem")
    if "per_bin" in answer:
        pb = answer["per_bin"]
        parts = [f"bin {x['bin']}: {x['model']} {x['strategy']} k={x['k']}" for x in pb["bins"]]
        print(f"per difficulty bin: {100 * pb['accuracy']:.1f} % at {pb[key]:.3g} {unit}; "
              + "; ".join(parts))
