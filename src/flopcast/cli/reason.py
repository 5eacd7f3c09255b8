"""`flopcast reason`: accuracy of test-time compute from per-problem samples (coverage now;
cost and planning follow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from flopcast.cli.common import (
    JSON_OPT,
    app,
    float_option,
    int_option,
    plural,
    print_table,
)
from flopcast.errors import FlopcastError, echo
from flopcast.specs.limits import MAX_SEQ_LEN

reason_app = typer.Typer(no_args_is_help=True, help="Test-time reasoning: coverage of "
                         "repeated sampling from per-problem samples.")
app.add_typer(reason_app, name="reason")


#: Largest sample count per problem (Large Language Monkeys drew 10⁴; beyond 10⁹ the
#: extrapolation means nothing and the float arithmetic of (1 - p)^k loses meaning too).
MAX_SAMPLES = 10**9
#: Largest arithmetic intensity (FLOPs per byte of HBM): B200 is 562.5 (Kinetics), no
#: accelerator is above a few thousand.
MAX_INTENSITY = 1e5
#: Most bootstrap resamples (each refits the difficulty model: ~ 10 ms per model).
MAX_REPS = 10_000
#: Most values in one list option.
MAX_LIST = 1000


def _parse_ks(text: str, name: str = "k") -> list[int]:
    try:
        ks = [int(float(x)) for x in text.split(",") if x.strip()]
    except (ValueError, OverflowError):
        raise FlopcastError(f"{name}: expected comma-separated whole numbers such as "
                            f"1,10,100; got {echo(text)}") from None
    if not ks or min(ks) < 1 or max(ks) > MAX_SAMPLES or len(ks) > MAX_LIST:
        raise FlopcastError(f"{name}: at most {MAX_LIST} values, each in 1..{MAX_SAMPLES:.0e}; "
                            f"got {echo(text)}")
    return sorted(set(ks))


def coverage_curve(data, ks: list[int], method: str, reps: int, seed: int) -> dict:
    """One model × benchmark: the unbiased estimator where every problem has ≥ k samples
    (exact, no band), the fitted model beyond (with its bootstrap band)."""
    from flopcast.workloads.reasoning.coverage import coverage, extrapolate

    ks_arr = np.asarray(ks)
    inside = ks_arr <= int(data.samples.min())
    cov = np.empty(ks_arr.size)
    low, high = np.empty_like(cov), np.empty_like(cov)
    if inside.any():
        cov[inside] = low[inside] = high[inside] = coverage(data.samples, data.correct,
                                                            ks_arr[inside])
    if (~inside).any():
        ext = extrapolate(data.samples, data.correct, ks_arr[~inside], method, reps=reps,
                          seed=seed)
        cov[~inside], low[~inside], high[~inside] = ext.coverage, ext.low, ext.high
    return {"model": data.model, "benchmark": data.benchmark, "problems": data.n_problems,
            "samples_per_problem": int(data.samples.min()), "method": method,
            "k": ks, "coverage": cov.tolist(), "low": low.tolist(), "high": high.tolist(),
            "extrapolated": (~inside).tolist()}


@reason_app.command("coverage")
def reason_coverage(
    samples: Path = typer.Option(..., "--samples", help="Per-problem samples CSV: model, "
                                 "benchmark, problem, samples, correct."),
    k: str = typer.Option("1,10,100,1000", "--k", help="Comma-separated sample counts."),
    method: str = typer.Option("combined", "--method", help="Beyond the samples drawn: "
                               "combined (the mean of model-average and power-law), "
                               "model-average (Beta and Kumaraswamy difficulty distributions "
                               "fitted to the counts, Akaike-weighted), beta-mixture (Beta "
                               "with a point mass at 0), kumaraswamy, or power-law (Brown et "
                               "al.'s exp(a·k^b))."),
    reps: int = int_option(200, "--reps", help="Bootstrap resamples for the band."),
    seed: int = int_option(0, "--seed", help="Seed of the bootstrap."),
    as_json: bool = JSON_OPT,
) -> None:
    """Coverage (pass@k) per model and benchmark: exact where k ≤ the samples drawn,
    extrapolated with a 90 % band beyond.

    Example: flopcast reason coverage --samples pythia-math-samples.csv --k 1,10,100,1000,10000
    """
    from flopcast.workloads.reasoning.coverage import METHODS
    from flopcast.workloads.reasoning.samples import read_sample_groups

    ks = _parse_ks(k)
    if method not in METHODS:
        raise FlopcastError(f"method: one of {', '.join(METHODS)}; got {echo(method)}")
    if not 0 <= reps <= MAX_REPS:
        raise FlopcastError(f"reps: bootstrap resamples in 0..{MAX_REPS}; got {echo(reps)}")
    curves = [coverage_curve(data, ks, method, reps, seed)
              for _, data in sorted(read_sample_groups(samples).items())]
    if as_json:
        print(json.dumps({"curves": curves}, indent=2))
        return
    for c in curves:
        rows = [(f"{kk:,}", f"{100 * v:.1f}", f"{100 * lo:.1f}–{100 * hi:.1f}" if ext else "exact")
                for kk, v, lo, hi, ext in zip(c["k"], c["coverage"], c["low"], c["high"],
                                              c["extrapolated"], strict=True)]
        print_table(f"{c['model']} on {c['benchmark']}: {plural(c['problems'], 'problem')}, "
                    f"{plural(c['samples_per_problem'], 'sample')} each ({c['method']} beyond)",
                    ("k", "coverage %", "90 % band"), rows)


@reason_app.command("cost")
def reason_cost(
    model: str = typer.Option(..., "--model", "-m", help="Catalog id or config.json."),
    gpu: str = typer.Option("h100-sxm", "--gpu", help="GPU catalog id or entry file."),
    gpus: int = int_option(1, "--gpus", help="GPUs of the replica (tensor parallel)."),
    engine: str = typer.Option("vllm", "--engine", help="Serving engine."),
    precision: str = typer.Option("bf16", "--precision", help="Weights/GEMMs."),
    trials: str = typer.Option("1,8,64", "--trials", help="Comma-separated samples per "
                               "problem."),
    prompt_len: int = int_option(500, "--prompt-len", help="Prompt tokens."),
    out_len: int = int_option(4000, "--out-len", help="Mean generated tokens per trial."),
    intensity: float = float_option(562.5, "--intensity", help="Arithmetic intensity for "
                                    "Kinetics' eFLOPs (FLOPs/byte; 562.5 = their B200)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Cost of one problem at N samples, three ways: FLOPs (2·P per token, Wu et al.),
    Kinetics eFLOPs (compute + intensity × KV bytes read) and time, $ and energy on the
    chosen hardware from flopcast's inference model (prompt KV shared by the trials).

    Example: flopcast reason cost -m llama-3.1-8b --gpu h100-sxm --trials 1,16,64 --out-len 8000
    """
    from flopcast.catalog import load_gpu, resolve_model
    from flopcast.catalog.loader import inference_efficiency, load_engine
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.reasoning.cost import (
        Shape,
        kinetics_cost,
        problem_cost,
        sampling_flops,
    )

    ns = _parse_ks(trials, "trials")
    for name, value in (("prompt-len", prompt_len), ("out-len", out_len)):
        if not 1 <= value <= MAX_SEQ_LEN:
            raise FlopcastError(f"{name}: tokens in 1..{MAX_SEQ_LEN:,}; got {echo(value)}")
    if not 0 < intensity <= MAX_INTENSITY:  # NaN too
        raise FlopcastError(f"intensity: FLOPs per byte in (0, {MAX_INTENSITY:g}]; got "
                            f"{intensity}")
    job = InferenceJob(model=resolve_model(model), engine=load_engine(engine), tp=gpus,
                       system=System(gpu=load_gpu(gpu), num_gpus=gpus), weights=precision)
    eff = inference_efficiency(job.system.gpu, job.engine)
    shape = Shape.of(job.model)
    rows = []
    for n in ns:
        hw = problem_cost(job, eff, n, prompt_len, out_len)
        kin = kinetics_cost(shape, n, prompt_len, out_len, intensity)
        rows.append({"trials": n, "flops": float(sampling_flops(shape.active_params, out_len, n)),
                     "kinetics_eflops": float(kin["eflops"]),
                     "kinetics_memory_share": float(kin["memory_eflops"] / kin["eflops"]),
                     **{k: float(v) for k, v in hw.items()}})
    if as_json:
        print(json.dumps({"model": job.model.name, "gpu": job.system.gpu.id, "gpus": gpus,
                          "prompt_len": prompt_len, "out_len": out_len, "costs": rows},
                         indent=2))
        return
    print_table(f"{job.model.name} on {gpus}x {job.system.gpu.id} at "
                f"${job.system.gpu.price_per_gpu_hour_usd:,.2f}/GPU-hour: {prompt_len} prompt + "
                f"{plural(out_len, 'generated token')} per trial",
                ("trials", "FLOPs", "eFLOPs (KV share)", "seconds", "$", "Wh"),
                [(str(r["trials"]), f"{r['flops']:.3g}",
                  f"{r['kinetics_eflops']:.3g} ({100 * r['kinetics_memory_share']:.0f} %)",
                  f"{r['seconds']:,.1f}", f"{r['usd']:.4f}", f"{r['joules'] / 3600:,.1f}")
                 for r in rows])
