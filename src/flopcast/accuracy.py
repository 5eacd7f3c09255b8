"""Expected error of a prediction: what `flopcast validate` measured on the published runs,
shipped as calibration/accuracy.yaml (written by benchmarks/accuracy_table.py).

Every result the CLI prints carries it, so that a reader knows how far a number goes and
where the evidence stops: a GPU family with no validated rows says "unvalidated".

>>> e = expected_error("training", ["hopper"])
>>> e["kind"], e["overall"]["rows"] > 0, e["text"].startswith("expected error")
('training', True, True)
>>> expected_error("training", ["no-such-family"])["gpu_families"]
{'no-such-family': None}
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import yaml

from flopcast.files import load_shipped_yaml

ACCURACY_FILE = Path(__file__).parent / "calibration" / "accuracy.yaml"

#: What the error is of, in a few words, per kind (the yaml's keys).
LABELS = {
    "training": "step time", "training-hf-step": "step time",
    "training-hf-memory": "memory", "inference": "latency/throughput",
    "serving": "latency/throughput", "kernels": "kernel time",
}


@lru_cache(maxsize=4)
def load_accuracy(path: str | None = None) -> dict:
    """The accuracy document ({"generated", "command", "kinds": {...}}); {} when absent."""
    file = Path(path) if path else ACCURACY_FILE
    if not file.exists():
        return {}
    return (load_shipped_yaml(file) if file == ACCURACY_FILE else yaml.safe_load(
        file.read_text())) or {}


def training_kinds(framework_id: str) -> tuple[str, str]:
    """The accuracy kinds (step time, memory) that validate a training prediction made with
    ``framework_id``'s profile: the published runs (training.csv) are scored with Megatron's,
    training-hf.csv with the Hugging Face one; a kind no file validates reads "unknown".

    >>> training_kinds("megatron"), training_kinds("hf-transformers")[1]
    (('training', 'training-megatron-memory'), 'training-hf-memory')
    """
    if framework_id == "hf-transformers":
        return "training-hf-step", "training-hf-memory"
    step = "training" if framework_id == "megatron" else f"training-{framework_id}-step"
    return step, f"training-{framework_id}-memory"


def _label(kind: str) -> str:
    """What the error is of, for a kind with or without a LABELS entry."""
    if kind in LABELS:
        return LABELS[kind]
    return "memory" if kind.endswith("-memory") else "step time" if kind.endswith(
        "-step") else kind


def _summary(entry: dict | None) -> dict | None:
    """rows, predicted, median and p90 APE of a kind or family entry; None when no row of it
    was predicted (nothing validated)."""
    if not entry or not entry.get("predicted"):
        return None
    return {k: entry[k] for k in ("rows", "predicted", "median_ape_pct", "p90_ape_pct")}


def expected_error(kind: str, families: Iterable[str]) -> dict:
    """The expected-error object for a prediction of ``kind`` on GPUs of ``families``:
    overall and per-family validation summaries (None = unvalidated) and a one-line ``text``."""
    doc = load_accuracy()
    entry = doc.get("kinds", {}).get(kind)
    by_family = (entry or {}).get("families", {})
    out = {"kind": kind, "of": _label(kind), "file": entry and entry["file"],
           "command": entry and f"flopcast validate {entry['file']}",
           "generated": doc.get("generated"), "overall": _summary(entry),
           "validated_families": sorted(f for f, s in by_family.items() if _summary(s)),
           "gpu_families": {f: _summary(by_family.get(f)) for f in dict.fromkeys(families)}}
    out["text"] = _text(out, entry)
    return out


def _pct(s: dict) -> str:
    return f"±{s['median_ape_pct']:.1f} % median, p90 {s['p90_ape_pct']:.1f} %"


def _text(e: dict, entry: dict | None) -> str:
    """One line: the family's own error first (or 'unvalidated for …'), then the overall."""
    head = f"expected error ({e['of']})"
    if entry is None:
        return (f"{head}: unknown (no published measurement of this kind, "
                f"{e['kind']}, has been validated)")
    if e["overall"] is None:
        return (f"{head}: not validated yet (none of {entry['rows']} {entry['rows_are']} "
                "predicted)")
    noun = entry["rows_are"].split()[-1]
    parts = []
    for fam, s in e["gpu_families"].items():
        parts.append(f"{_pct(s)} on {s['predicted']} {fam} {noun}" if s
                     else f"unvalidated for {fam} GPUs")
    overall = e["overall"]
    where = ", ".join(e["validated_families"])
    return (f"{head}: {'; '.join(parts)} ({_pct(overall)} on all {overall['predicted']} "
            f"{entry['rows_are']}: {where}); see `{e['command']}`")
