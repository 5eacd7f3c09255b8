"""Measure a device, fit its kernel profile, write its GPU entry and its rows.

The entry (FILE.yaml) is in the catalog's format with a ``kernels:`` section holding the whole
fitted profile, so ``--gpu FILE.yaml`` predicts with what this device measured; the rows
(FILE.kernels.csv, the kernels.csv schema) let ``flopcast validate FILE.kernels.csv`` check the
entry against them, and let anyone refit or compare them with other devices' rows.
"""

from __future__ import annotations

import csv
import datetime as _dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import flopcast
from flopcast.calibration.fit import check_output
from flopcast.calibration.kernels import fit_kernel_profile
from flopcast.catalog.loader import gpu_from_yaml
from flopcast.profile.base import KERNEL_COLUMNS, Backend, DeviceInfo, select_backend
from flopcast.profile.device_spec import base_entry, entry_path_default
from flopcast.specs.gpu import GPU
from flopcast.specs.kernels import KernelProfile
from flopcast.validate.kernels import KERNEL_OPS, POWER_LOADS

#: Ops the kernel model predicts (the rest, e.g. collectives, are written but not fitted).
FITTED_OPS = frozenset(KERNEL_OPS) | frozenset(POWER_LOADS) | {"power:bf16_gemm_8192"}
#: Order of an entry's fields (the catalog's).
ENTRY_ORDER = ("id", "name", "vendor", "family", "calibration_fallback", "sm_count",
               "dense_tflops", "hbm_gib", "hbm_bandwidth_gb_s", "nvlink_bandwidth_gb_s",
               "pcie_bandwidth_gb_s", "gpus_per_node", "network_gbit_s", "tdp_watts",
               "price_per_gpu_hour_usd", "price_date", "efficiency", "sources", "kernels")

#: progress(label, done, total) before each task and once at the end.
Progress = Callable[[str, int, int], None]


@dataclass
class ProfileResult:
    """What one `flopcast profile` run did."""

    device: DeviceInfo
    entry_path: Path
    csv_path: Path
    rows: int
    fitted_rows: int
    skipped: list[tuple[str, str]]
    parameters: list[str]
    fit: dict
    started_from: str
    caveats: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def measure(backend: Backend, progress: Progress | None = None
            ) -> tuple[list[dict], list[tuple[str, str]]]:
    """Run every task of ``backend``; a task that fails on this device is skipped with why."""
    tasks = backend.tasks()
    rows: list[dict] = []
    skipped: list[tuple[str, str]] = []
    for i, task in enumerate(tasks):
        if progress:
            progress(task.label, i, len(tasks))
        try:
            rows += task.run()
        except Exception as e:  # noqa: BLE001 - a kernel this device lacks must not stop the rest
            skipped.append((task.label, " ".join(f"{type(e).__name__}: {e}".split())[:200]))
    if progress:
        progress("measured", len(tasks), len(tasks))
    return rows, skipped


def fit_device(rows: list[dict], entry: dict, kind: str) -> tuple[KernelProfile, list[tuple],
                                                                  dict, int]:
    """Fit the profile of the device ``entry`` describes to its ``rows`` (those the kernel
    model predicts). Returns (profile, fitted paths, in-sample summary, rows fitted)."""
    gpu = gpu_from_yaml(entry, calibration=None)
    fit_rows = [r for r in rows if r["op"] in FITTED_OPS]
    profile, paths, summary = fit_kernel_profile(fit_rows, gpu)
    if kind == "cpu":  # the float32 rate stands for every dtype key (device_spec._cpu_entry)
        f32 = profile.gemm_fraction_for("fp32")
        profile = profile.model_copy(update={"gemm_fraction": dict.fromkeys(
            entry["dense_tflops"], f32)})
    return profile, paths, summary, len(fit_rows)


def profile_device(device: str = "auto", quick: bool = False, output: Path | None = None,
                   progress: Progress | None = None) -> ProfileResult:
    """Measure ``device`` ('cpu', 'cuda', 'auto'), fit, write FILE.yaml and FILE.kernels.csv."""
    if output is not None:  # refused before minutes of measuring, not after
        from flopcast.catalog.loader import is_gpu_file
        from flopcast.errors import FlopcastError

        check_output(output, "--output", "the GPU entry")
        if not is_gpu_file(str(output)):
            raise FlopcastError(f"--output {output}: a GPU entry file ends in .yaml or .yml "
                                "(what --gpu takes)")
    start = time.perf_counter()
    backend = select_backend(device, quick)
    info = backend.device_info()
    rows, skipped = measure(backend, progress)
    measured_s = time.perf_counter() - start
    entry, sources = base_entry(info, rows)
    profile, paths, summary, fitted = fit_device(rows, entry, info.kind)
    fit_s = time.perf_counter() - start - measured_s
    entry_path = Path(output) if output else entry_path_default(info)
    csv_path = entry_path.with_name(entry_path.stem + ".kernels.csv")
    date = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    base_source = gpu_from_yaml(entry).kernels_source
    profile = profile.model_copy(update={"source": (
        f"flopcast profile {date} on {info.name}: {len(paths)} parameters fitted to "
        f"{fitted} rows ({entry_path.name.removesuffix('.yaml')}.kernels.csv); the rest from "
        f"{base_source}")})
    sources = [_measured_line(info, backend, rows, measured_s, date, quick),
               _fit_line(paths, summary, fitted), *sources]
    sources += [f"not measured here: {label} ({why})" for label, why in skipped]
    sources += [f"caveat: {c}" for c in backend.caveats()]
    document = entry_document(entry, profile, sources)
    write_entry(document, entry_path)
    write_rows(rows, csv_path, info, backend, entry_path.name, date)
    return ProfileResult(
        device=info, entry_path=entry_path, csv_path=csv_path, rows=len(rows),
        fitted_rows=fitted, skipped=skipped, parameters=[".".join(p) for p in paths],
        fit=summary, started_from=base_source, caveats=backend.caveats(),
        seconds={"measure": measured_s, "fit": fit_s, "total": time.perf_counter() - start})


def _versions(info: DeviceInfo) -> str:
    return ", ".join(f"{k} {v}" for k, v in {"flopcast": flopcast.__version__,
                                             **info.versions}.items())


def _measured_line(info: DeviceInfo, backend: Backend, rows: list[dict], seconds: float,
                   date: str, quick: bool) -> str:
    ops = Counter(r["op"] for r in rows)
    what = ", ".join(f"{n} {op}" for op, n in ops.items())
    details = ", ".join(f"{k} {v}" for k, v in info.details.items())
    return (f"measured {date} by `flopcast profile --device {backend.device}"
            f"{' --quick' if quick else ''}` ({backend.name} backend) on {info.name} "
            f"({details}) in {seconds:.0f} s: {what}; {backend.timing_note()}; versions: "
            f"{_versions(info)}")


def _fit_line(paths: list[tuple], summary: dict, fitted: int) -> str:
    return (f"kernels: {len(paths)} parameters fitted ({', '.join('.'.join(p) for p in paths)}) "
            f"by robust least squares on log(predicted/measured) (calibration/kernels.py); "
            f"in-sample median APE {summary['median_ape_pct']:.1f}%, p90 "
            f"{summary['p90_ape_pct']:.1f}% over {fitted} rows")


def _rounded(value):
    """Floats to 6 significant digits (readable YAML; far below measurement noise)."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def entry_document(entry: dict, profile: KernelProfile, sources: list[str]) -> dict:
    """The GPU entry as written: catalog fields in catalog order, sources, the full profile."""
    doc = {**entry, "sources": sources, "kernels": profile.model_dump(mode="json")}
    ordered = {k: doc[k] for k in ENTRY_ORDER if k in doc}
    ordered.update({k: v for k, v in doc.items() if k not in ordered})
    return _rounded(ordered)


def write_entry(document: dict, path: Path) -> GPU:
    """Write the entry YAML (its folder exists: profile_device checked --output); returns it
    loaded back, as --gpu will."""
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True))
    return gpu_from_yaml(yaml.safe_load(path.read_text()))


def write_rows(rows: list[dict], path: Path, info: DeviceInfo, backend: Backend,
               entry_name: str, date: str) -> None:
    """The rows as a kernels.csv file whose ``gpu`` column names the entry beside it."""
    source = (f"measured on {info.name} by flopcast profile ({backend.name} backend), "
              f"{_versions(info)}, {date}; {backend.timing_note()}")
    prefix = f"profile-{info.id}"
    with path.open("w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=KERNEL_COLUMNS)
        out.writeheader()
        for i, row in enumerate(rows, 1):
            out.writerow({**row, "id": f"{prefix}:{i}", "source": source, "gpu": entry_name})
