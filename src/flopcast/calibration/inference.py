"""Fit inference efficiency per (GPU family, engine) to inference measurements.

Kernel speed comes from the GPU's kernel profile (measured kernels, physics/kernels.py); what
only shows at whole-run level is fitted per (GPU family, engine): the engine's per-step
overhead (scheduling, sampling, batch assembly), the share of each kernel's fixed cost its
execution mode pays (CUDA graphs), and, where rows use tensor parallelism over NCCL's ring
(not the engine's measured all-reduce, kernels.engine_all_reduce), its per-call latency.
Families without kernel measurements (ampere, ada) also fit kernel_fraction_scale, standing
for their missing profile.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from flopcast.calibration.fit import (
    check_enough_rows,
    check_output,
    fit_parameters,
    group_entry,
    leave_one_out,
    nothing_to_fit,
    rounded_summary,
    write_calibration,
)
from flopcast.errors import FlopcastError
from flopcast.validate.inference import predict_inference_case, prepare_inference_rows
from flopcast.validate.inputs import read_table
from flopcast.validate.report import ape_pct
from flopcast.workloads.inference.step import engine_all_reduce

BASE_PARAMETERS = ["inference_step_overhead_s", "kernel_fixed_cost_scale"]


def _parameters(cases) -> list[str]:
    names = list(BASE_PARAMETERS)
    # the ring's per-call latency, where some row's all-reduce is not the engine's measured one
    if any(c.job.tp > 1 and engine_all_reduce(c.job) is None for c in cases):
        names.append("allreduce_latency_s")
    if not cases[0].job.system.gpu.kernels_measured:
        names.append("kernel_fraction_scale")
    return names


def _groups(cases):
    groups = defaultdict(list)
    for c in cases:
        if c.job is not None:
            groups[(c.job.system.gpu.family, c.job.engine.id)].append(c)
    return dict(groups)


def _predict(case, eff):
    return predict_inference_case(case, efficiency_override=eff)


def _fit_groups(groups):
    return {key: fit_parameters(cs, _predict, _parameters(cs), cs[0].job.system.gpu.efficiency)
            for key, cs in sorted(groups.items())}


def _score(cases, fits) -> dict:
    errors = [ape_pct(_predict(c, fits.get((c.job.system.gpu.family, c.job.engine.id))),
                      c.measured) for c in cases if c.job is not None]
    return rounded_summary(errors)


def calibrate_inference(path: str | Path, out: str | Path | None = None) -> dict:
    """Fit every (family, engine) present in an inference CSV; write the YAML to ``out``."""
    path = Path(path)
    check_output(out)
    table = read_table(path)
    cases = prepare_inference_rows(table.usable())
    groups = _groups(cases)
    if not groups:
        raise FlopcastError(nothing_to_fit(path, table, cases))
    check_enough_rows(path, {key: (len(cs), _parameters(cs)) for key, cs in groups.items()})
    fits = _fit_groups(groups)
    families: dict[str, dict] = defaultdict(dict)
    for (fam, engine), eff in fits.items():
        families[fam][engine] = group_entry(_parameters(groups[(fam, engine)]), eff,
                                            _score(groups[(fam, engine)], fits), training=False)
    return write_calibration(
        path, out, dict(families), _score(cases, fits),
        parameters_fitted=sum(len(e["fitted"]) for f in families.values() for e in f.values()),
        description="Inference efficiency per GPU family and engine, fitted by `flopcast "
                    "calibrate` on an inference measurement file; applied on top of the "
                    "training calibration.",
        prior="the GPU's training efficiency",
    )


def leave_one_source_out_inference(path: str | Path) -> dict[str, dict]:
    """For each source: fit on the other sources' rows, score this source's rows."""
    return leave_one_out(prepare_inference_rows(read_table(path).usable()),
                         lambda rest: _fit_groups(_groups(rest)), _score)
