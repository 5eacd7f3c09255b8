"""`flopcast profile`: measure this machine's kernels and write a GPU entry for --gpu."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from flopcast.cli.common import JSON_OPT, app, console, print_table, progress_console


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
def profile(
    device: DeviceChoice = typer.Option(
        DeviceChoice.auto, "--device", help="What to measure: cuda (a CUDA/ROCm GPU through "
        "PyTorch, pip install 'flopcast[profile]'), cpu (NumPy), auto (a GPU when PyTorch sees "
        "one, else the CPU)."),
    quick: bool = typer.Option(False, "--quick", help="Fewer shapes and repeats: under a "
                               "minute on a CPU, about two on a GPU."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="GPU entry to write (default: <device-id>.yaml); the "
        "measured rows go beside it as <name>.kernels.csv."),
    as_json: bool = JSON_OPT,
) -> None:
    """Measure GEMMs, attention, decode attention, copies (and on a GPU board power) on this
    machine, fit its kernel profile, and write a GPU entry that --gpu FILE.yaml takes.

    `flopcast validate FILE.kernels.csv` scores the entry against the rows it was fitted to.
    """
    from flopcast.profile import profile_device

    result = profile_device(device.value, quick, output, progress=_progress_bar())
    summary = {
        "device": result.device.name, "device_id": result.device.id,
        "entry": str(result.entry_path), "rows_csv": str(result.csv_path),
        "rows": result.rows, "fitted_rows": result.fitted_rows,
        "parameters_fitted": result.parameters, "in_sample": result.fit,
        "started_from": result.started_from,
        "skipped": [{"task": t, "reason": r} for t, r in result.skipped],
        "caveats": result.caveats, "seconds": result.seconds,
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    _print_summary(summary)


def _progress_bar():
    """A rich progress bar on stderr, driven by profile_device's progress(label, done, total)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                   "{task.total}"), TimeElapsedColumn(), console=progress_console,
                   transient=True)
    state: dict = {}

    def update(label: str, done: int, total: int) -> None:
        if "task" not in state:
            bar.start()
            state["task"] = bar.add_task(label, total=total)
        bar.update(state["task"], description=label, completed=done)
        if done >= total:
            bar.stop()
            progress_console.print(f"measured {total} kernel groups; fitting")

    return update


def _print_summary(s: dict) -> None:
    fit = s["in_sample"]
    console.print(f"[bold]{s['device']}[/]: {s['rows']} rows measured, {s['fitted_rows']} "
                  f"fitted; in-sample median APE {fit['median_ape_pct']:.1f}%, p90 "
                  f"{fit['p90_ape_pct']:.1f}% ({s['seconds']['total']:.0f} s)")
    print_table("Fitted kernel-profile parameters", ("parameter",),
                [(p,) for p in s["parameters_fitted"]])
    for item in s["skipped"]:
        console.print(f"[yellow]not measured[/]: {item['task']}: {item['reason']}")
    for caveat in s["caveats"]:
        console.print(f"[yellow]caveat[/]: {caveat}")
    console.print(f"wrote {s['entry']} (use: --gpu {s['entry']}) and {s['rows_csv']} (check: "
                  f"flopcast validate {s['rows_csv']})")
