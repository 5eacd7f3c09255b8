"""`flopcast validate` and `flopcast calibrate`: measured against published runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from flopcast.cli.common import app, console, print_table, request_from, working
from flopcast.errors import FlopcastError


@app.command()
def validate(
    file: Path = typer.Argument(..., help="Measurement CSV (schema: "
                                "../shared/measurements/README.md)."),
    calibration: Path | None = typer.Option(None, "--calibration",
                                               help="Calibration YAML (default: shipped)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Predict every row of a measurement CSV and report the error (APE) per row and overall."""
    from flopcast.api.common import json_of
    from flopcast.api.validate import ValidateRequest, run_validate

    request = request_from(ValidateRequest, locals())
    with working(f"predicting {file.name}"):
        result = json_of(run_validate(request))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    _print_rows(file, result)
    _print_groups(result)


def _print_rows(file: Path, result: dict) -> None:
    """The row table(s): one per metric below 120 columns, ids folded, never cut; skip
    reasons numbered once under the table (text from the file is never read as markup)."""
    from flopcast.report.validation import validation_tables

    for renderable in validation_tables(result, file.name, console.width):
        console.print(renderable)


def _print_groups(result: dict) -> None:
    def summary_row(name: str, s: dict) -> tuple[str, ...]:
        return (name, str(s["rows"]), str(s["predicted"]), _pct(s["median_ape_pct"]),
                _pct(s["p90_ape_pct"]))

    groups = ("source", "metric", "gpu") + (("op", "backend") if "by_op" in result else ())
    for group in groups:
        print_table(f"By {group}", (group, "rows", "predicted", "median APE", "p90 APE"), [
            *(summary_row(escape(name), s) for name, s in result[f"by_{group}"].items()),
            summary_row("[bold]all[/]", result["summary"]),
        ])


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.4g}"


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1f}%"


@app.command()
def calibrate(
    file: Path = typer.Argument(..., help="Measurement CSV to fit (training, inference or "
                                "kernel schema)."),
    out: Path = typer.Option(Path("calibration.yaml"), "--out", "-o",
                             help="Where to write the calibration YAML."),
    loso: bool = typer.Option(False, "--leave-one-source-out",
                              help="Also fit without each source and score it (slow)."),
    hold: list[str] = typer.Option([], "--hold", metavar="NAME=VALUE",
                                   help="Training files: hold a parameter at VALUE for every "
                                   "GPU family instead of fitting it (repeatable), e.g. "
                                   "--hold nvlink_fraction=0.422285."),
) -> None:
    """Fit efficiency parameters to measurements; write a calibration YAML.

    A training file gives parameters per GPU family, an inference file per GPU family and
    engine, a kernel file (kernels.csv) the kernel profile of each GPU family it measures
    (shipped as src/flopcast/calibration/kernels.yaml). Later commands take the result with
    --calibration FILE. The shipped ones were made with
    `flopcast calibrate ../shared/measurements/training.csv -o
    src/flopcast/calibration/default.yaml --hold nvlink_fraction=0.422285 --hold
    network_fraction=0.999775`, kernels.csv -> kernels.yaml and
    src/flopcast/calibration/published/b200-gemm.csv -> kernels-blackwell.yaml,
    src/flopcast/calibration/published/a100-kernels.csv -> kernels-ampere.yaml,
    src/flopcast/calibration/published/h100-engine-attention.csv ->
    kernels-hopper-engines.yaml; inference.yaml
    was fitted on inference.csv before later model changes and is kept (docs/accuracy.md says
    why).
    """
    from flopcast.api.validate import CalibrateRequest, run_calibrate

    request = CalibrateRequest(file=str(file), out=str(out), leave_one_source_out=loso,
                               hold=_held_values(hold))
    with working(f"fitting {file.name}" + (" and each source left out" if loso else "")):
        result = run_calibrate(request)
    if result.kind == "kernel":
        _print_kernel_fit(out, result.doc)
        return
    _print_fit(out, result.doc)
    if result.held_out is not None:
        held = Table(title="Leave one source out (fit without it, score it)")
        for col in ("source", "rows", "median APE", "p90 APE"):
            held.add_column(col)
        for source, s in result.held_out.items():
            held.add_row(escape(source), str(s["rows"]), _pct(s["median_ape_pct"]),
                         _pct(s["p90_ape_pct"]))
        console.print(held)


def _held_values(items: list[str]) -> dict[str, float]:
    """``--hold NAME=VALUE`` options as a dict; a malformed one is refused with its text."""
    held: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name or number is None:
            raise FlopcastError(f"--hold {item!r}: not NAME=VALUE (allowed: a parameter name, "
                                "'=', a number, e.g. nvlink_fraction=0.42)")
        if name in held:
            raise FlopcastError(f"--hold {name}: given twice (allowed: each parameter once)")
        held[name] = number
    return held


def _print_fit(out: Path, doc: dict) -> None:
    """The in-sample fit of a training or inference calibration, per group."""
    console.print(f"wrote {escape(str(out))}: {doc['parameters_fitted']} parameters fitted; "
                  f"in-sample median {_pct(doc['summary']['median_ape_pct'])}, p90 "
                  f"{_pct(doc['summary']['p90_ape_pct'])} over {doc['summary']['rows']} rows")
    table = Table(title="Fit (in-sample)")
    for col in ("family", "rows", "median APE", "p90 APE", "parameters"):
        table.add_column(col)
    scopes = {**doc["families"],
              **{f"framework {fw}": f for fw, f in doc.get("frameworks", {}).items()}}
    for fam, f in scopes.items():
        groups = {"": f} if "efficiency" in f else {f" / {eng}": g for eng, g in f.items()}
        for suffix, g in groups.items():
            params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in g["efficiency"].items())
            table.add_row(fam + suffix, str(g["fit"]["rows"]), _pct(g["fit"]["median_ape_pct"]),
                          _pct(g["fit"]["p90_ape_pct"]), params)
    console.print(table)


def _print_kernel_fit(out: Path, doc: dict) -> None:
    console.print(f"wrote {escape(str(out))}: {doc['parameters_fitted']} kernel parameters "
                  "fitted")
    for fam, f in doc["families"].items():
        parts = ", ".join(f["gpu"]) if isinstance(f["gpu"], list) else f["gpu"]
        console.print(f"{fam} ({escape(parts)}): {f['fit']['rows']} rows, in-sample median "
                      f"{_pct(f['fit']['median_ape_pct'])}, p90 {_pct(f['fit']['p90_ape_pct'])}")
