"""Write src/flopcast/calibration/accuracy.yaml: what `flopcast validate` measures on the
published runs, per kind of prediction and per GPU family. The CLI prints it beside every
prediction as the expected error ("±5.9 % median (p90 15.8 %) on 254 published training
runs"), so a newcomer sees how far to trust a number and where the evidence ends.

Values are recorded as measured, good or bad. Regenerate after any change to the model, the
calibration or the measurements:

    python benchmarks/accuracy_table.py [../shared/measurements] [-o OUT.yaml]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from flopcast import __version__
from flopcast.validate import validate_file
from flopcast.validate.report import summarize

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "measurements"
DEFAULT_OUT = ROOT / "src" / "flopcast" / "calibration" / "accuracy.yaml"

#: kind → (file, metrics kept (None = all), what one row is, what the prediction is).
KINDS: dict[str, tuple[str, tuple[str, ...] | None, str, str]] = {
    "training": ("training.csv", None, "published training runs",
                 "training step time / throughput"),
    "training-hf-step": ("training-hf.csv", ("step_time_s",),
                         "measured Hugging Face training runs", "training step time"),
    "training-hf-memory": ("training-hf.csv", ("peak_memory_gib",),
                           "measured Hugging Face training runs", "training peak memory"),
    "inference": ("inference.csv", None, "published inference benchmarks",
                  "inference latency / throughput"),
    "serving": ("serving.csv", None, "published serving benchmarks",
                "serving latency / throughput"),
    "kernels": ("kernels.csv", None, "measured kernel timings", "kernel time"),
}


def _family(gpu: str, cache: dict[str, str]) -> str:
    """The efficiency family of a row's GPU (the calibration's unit); unknown → 'other'."""
    if gpu not in cache:
        from flopcast.catalog import load_gpu

        try:
            cache[gpu] = load_gpu(gpu).family
        except Exception:  # a GPU file that moved, an id no longer in the catalog
            cache[gpu] = "other"
    return cache[gpu]


def _rounded(summary: dict) -> dict:
    """rows, predicted, median and p90 APE in %, three decimals (so that one-decimal output
    matches `flopcast validate`'s); None when nothing was predicted."""
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in summary.items()}


def _skipped(rows: list[dict]) -> dict:
    """{"skipped": {reason: rows}} for rows the validator could not predict (else {})."""
    reasons: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["predicted"] is None:
            reasons[r["skipped"] or "no prediction"] += 1
    return {"skipped": dict(reasons)} if reasons else {}


def kind_entry(folder: Path, kind: str, families: dict[str, str]) -> dict | None:
    """The summary of one kind: overall and per GPU family (None when the file is missing)."""
    name, metrics, unit, what = KINDS[kind]
    path = folder / name
    if not path.exists():
        return None
    rows = validate_file(path)["rows"]
    if metrics is not None:
        rows = [r for r in rows if r["metric"] in metrics]
    by_family: dict[str, list[dict]] = defaultdict(list)
    gpus: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        fam = _family(r["gpu"], families)
        by_family[fam].append(r)
        gpus[fam].add(r["gpu"])
    return {
        "file": name, "metrics": sorted({r["metric"] for r in rows}), "rows_are": unit,
        "prediction": what, **_rounded(summarize(rows)), **_skipped(rows),
        "families": {fam: {**_rounded(summarize(fr)), "gpus": sorted(gpus[fam])}
                     for fam, fr in sorted(by_family.items())},
    }


def build(folder: Path, command: str) -> dict:
    """The whole accuracy document."""
    families: dict[str, str] = {}
    kinds = {}
    for kind in KINDS:
        entry = kind_entry(folder, kind, families)
        if entry is not None:
            kinds[kind] = entry
            print(f"{kind}: {entry['predicted']}/{entry['rows']} rows predicted, median "
                  f"{entry['median_ape_pct']} %, p90 {entry['p90_ape_pct']} %", file=sys.stderr)
    return {"generated": datetime.date.today().isoformat(), "command": command,
            "flopcast_version": __version__, "kinds": kinds}


HEADER = """\
# Expected error of flopcast's predictions: `flopcast validate` on the published measurements
# (absolute percentage error per row; median and p90 over the predicted rows), per kind and
# per GPU family. The CLI prints it beside every prediction. Generated, not edited by hand:
# values are as measured, good or bad. Regenerate with the command below.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    command = "python benchmarks/accuracy_table.py ../shared/measurements"
    doc = build(args.folder, command)
    args.out.write_text(HEADER + yaml.safe_dump(doc, sort_keys=False, width=100))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
