"""Least-squares fit of per-family efficiency parameters (see package docstring)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from flopcast.errors import FlopcastError
from flopcast.specs.efficiency import Efficiency
from flopcast.validate.inputs import read_table
from flopcast.validate.report import ape_pct, error_summary
from flopcast.validate.training import TrainingCase, predict_case, prepare_training_rows

#: Fitted parameters with their bounds. Everything else keeps its documented default.
FITTED_PARAMETERS: dict[str, tuple[float, float]] = {
    "kernel_fraction_scale": (0.5, 1.3),
    "training_kernel_scale": (0.5, 1.3),
    "nvlink_fraction": (0.2, 1.0),
    "network_fraction": (0.2, 1.0),
    "layer_overhead_s": (0.0, 1e-3),
    "tp_overlap_exposed_fraction": (0.0, 1.0),
    "dp_overlap_exposed_fraction": (0.0, 1.0),
    "elementwise_traffic_factor": (1.0, 4.0),
    "inference_step_overhead_s": (0.0, 5e-3),
    "kernel_fixed_cost_scale": (0.0, 2.0),
    "allreduce_latency_s": (0.0, 1e-4),
}

#: Weight of the pull toward the prior, per parameter, on log(value/prior): halving a
#: parameter costs as much as about two rows off by 20%, so a parameter the rows do not
#: inform stays near its documented prior, while one that a hundred rows inform moves freely.
PRIOR_WEIGHT = 0.3
#: Rows are weighted 1/√(rows from the same source)^SOURCE_BALANCE, so one framework's
#: 200-row benchmark does not outvote four others' handful (0 = every row counts the same).
SOURCE_BALANCE = 1.0

#: Robust loss scale: residuals (log errors) beyond ~0.15 count linearly, not quadratically.
ROBUST_SCALE = 0.15


def _scaled_bounds(names, prior):
    lo = np.array([FITTED_PARAMETERS[n][0] for n in names])
    hi = np.array([FITTED_PARAMETERS[n][1] for n in names])
    x0 = np.clip(np.array([getattr(prior, n) for n in names]), lo, hi)
    scale = np.where(hi > 0, hi, 1.0)
    return x0 / scale, lo / scale, hi / scale, scale


def fit_parameters(cases, predict, names: list[str], prior: Efficiency,
                   with_cost: bool = False):
    """Fit ``names`` of ``prior`` so that ``predict(case, efficiency)`` matches each case's
    ``measured`` (robust least squares on log error, source-balanced, pulled to the prior).
    With ``with_cost``, return (efficiency, final loss)."""
    least_squares = scipy_least_squares()
    x0, lo, hi, scale = _scaled_bounds(names, prior)
    measured = np.array([c.measured for c in cases])
    weights = _source_weights(cases)
    prior_values = np.array([max(getattr(prior, n), 1e-9) for n in names])

    def efficiency(x):
        return prior.updated(**dict(zip(names, (x * scale).tolist(), strict=True)))

    def residuals(x):
        eff = efficiency(x)
        predicted = np.array([predict(c, eff) for c in cases])
        rows = weights * np.log(predicted / measured)
        values = np.maximum(x * scale, 1e-9)
        pull = PRIOR_WEIGHT * np.log(values / prior_values)
        return np.concatenate([rows, pull])

    result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=ROBUST_SCALE,
                           diff_step=1e-3, max_nfev=200)
    return (efficiency(result.x), float(result.cost)) if with_cost else efficiency(result.x)


def scipy_least_squares():
    """scipy's least_squares, or one line saying how to install it (an optional extra)."""
    try:
        from scipy.optimize import least_squares
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise FlopcastError("calibrate needs scipy: pip install 'flopcast[calibrate]'") from None
    return least_squares


def _source_weights(cases: list[TrainingCase]) -> np.ndarray:
    """Per-row weights 1/√n_source^SOURCE_BALANCE, scaled to a mean square of one."""
    counts: dict[str, int] = defaultdict(int)
    for c in cases:
        counts[c.source] += 1
    w = np.array([counts[c.source] ** (-0.5 * SOURCE_BALANCE) for c in cases])
    return w / np.sqrt(np.mean(w**2))


def rounded_summary(errors: list[float]) -> dict:
    """Row count, median and p90 APE rounded to 0.01 %, as calibration files record them."""
    stats = error_summary(errors)
    return {"rows": len(errors),
            **{k: None if v is None else round(v, 2) for k, v in stats.items()}}


def calibrate(path: str | Path, out: str | Path | None = None,
              held: dict[str, float] | None = None) -> dict:
    """Fit every GPU family and training framework present in ``path`` jointly
    (calibration/joint.py), with the values in ``held`` fixed for every family (checked by
    :func:`check_held`); write the calibration YAML to ``out``."""
    from flopcast.calibration.joint import calibrate_joint, identifiable

    path = Path(path)
    check_output(out)
    held = check_held(held)
    table = read_table(path)
    cases = [c for c in prepare_training_rows(table.usable()) if c.job is not None]
    if not cases:
        raise FlopcastError(nothing_to_fit(path, table, cases))
    params = identifiable(cases, held)
    check_enough_rows(path, {"all groups": (len(cases), [f"{p.key}.{p.name}" for p in params])})
    fit = calibrate_joint(cases, held=held)
    families = {fam: _scope_entry(fit.family_values(fam), _score(
        [c for c in cases if c.job.system.gpu.family == fam], fit),
        fitted=list(fit.families.get(fam, {}))) for fam in
        sorted({c.job.system.gpu.family for c in cases})}
    frameworks = {fw: _scope_entry(fit.frameworks.get(fw, {}), _score(
        [c for c in cases if c.job.framework.id == fw], fit), fit.backends.get(fw))
        for fw in sorted({c.job.framework.id for c in cases})}
    description = ("Whole-run training parameters fitted by `flopcast calibrate`: link "
                   "efficiencies shared by every GPU family (each family's entry repeats "
                   "them), overheads, overlap and kernel scale per family, attention kernel "
                   "per training framework (calibration/joint.py). Families and frameworks "
                   "not listed keep the priors of specs/efficiency.py.")
    if held:
        description += (" Held, not fitted (--hold): " + ", ".join(
            f"{n} = {v:g}" for n, v in sorted(held.items())) + "; every other value was "
            "fitted around them.")
    doc = write_calibration(path, None, families, _score(cases, fit),
                            parameters_fitted=len(params), description=description,
                            prior="the priors of specs/efficiency.py")
    doc["shared"] = {"fitted": sorted(n for n in fit.shared if n not in held),
                     "efficiency": {n: float(f"{v:.6g}") for n, v in sorted(fit.shared.items())},
                     "note": "one value for every family listed (calibration/joint.py "
                             "SHARED_PARAMETERS, and any held value), repeated in each "
                             "family's entry"}
    if held:
        doc["shared"]["held"] = {n: float(f"{v:.6g}") for n, v in sorted(held.items())}
    doc["frameworks"] = frameworks
    if out is not None:
        Path(out).write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
    return doc


def check_held(held: dict[str, float] | None) -> dict[str, float]:
    """``held`` checked: each name one the training fit fits for every family
    (calibration/joint.py HOLDABLE_PARAMETERS), each value inside that parameter's bounds
    (FITTED_PARAMETERS)."""
    from flopcast.calibration.joint import FAMILY_KIND_PARAMETERS, HOLDABLE_PARAMETERS

    held = dict(held or {})
    allowed = ", ".join(HOLDABLE_PARAMETERS)
    for name, value in held.items():
        if name in FAMILY_KIND_PARAMETERS:
            raise FlopcastError(f"--hold {name}: a kernel scale fitted only for families "
                                "without (kernel_fraction_scale) or with "
                                "(training_kernel_scale) kernel measurements cannot be held "
                                f"for every family (allowed: {allowed})")
        if name not in HOLDABLE_PARAMETERS:
            raise FlopcastError(f"--hold {name}: not a fitted training parameter (allowed: "
                                f"{allowed})")
        lo, hi = FITTED_PARAMETERS[name]
        if not lo <= value <= hi:
            raise FlopcastError(f"--hold {name}={value:g}: outside its bounds (allowed: "
                                f"{lo:g} to {hi:g})")
    return held


def _scope_entry(values: dict, fit: dict, backend: str | None = None,
                 fitted: list[str] | None = None) -> dict:
    """One family's or framework's values as the calibration file records them; ``fitted``
    names those fitted for this scope alone (default: all of ``values``)."""
    eff = {n: float(f"{v:.6g}") for n, v in values.items()}
    if backend:
        eff["training_attention_backend"] = backend
    return {"fitted": list(values) if fitted is None else fitted, "efficiency": eff, "fit": fit}


def _score(cases, fit) -> dict:
    """Row count, median and p90 APE of ``cases`` under a JointFit."""
    return rounded_summary([ape_pct(predict_case(c, fit.efficiency(c)), c.measured)
                            for c in cases if c.job is not None])


def check_output(out: str | Path | None, option: str = "--out",
                 what: str = "the calibration YAML") -> None:
    """Refuse an output path ``what`` cannot be written to, before any fitting or measuring."""
    if out is None:
        return
    out = Path(out)
    folder = out.parent
    if out.is_dir():
        raise FlopcastError(f"{option} {out}: is a directory (allowed: a file path for "
                            f"{what})")
    if not folder.is_dir():
        raise FlopcastError(f"{option} {out}: folder {folder} does not exist (allowed: a file "
                            "in an existing folder)")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise FlopcastError(f"{option} {out}: not writable (allowed: a file path you may "
                            "write)")


def nothing_to_fit(path: Path, table, cases) -> str:
    """The message when no row of ``table`` can be fitted: how many, and the first reason."""
    reasons = [p for p in table.problems if p] + [c.skipped for c in cases if c.skipped]
    example = f" (first reason: {reasons[0]})" if reasons else ""
    return (f"{path}: none of its {len(table.rows)} {table.kind} rows can be fitted, nothing "
            f"to fit{example}")


def check_enough_rows(path: Path, groups: dict) -> None:
    """Refuse to fit a group with fewer usable rows than parameters: ``groups`` maps a group
    name to (usable rows, parameter names)."""
    for name, (rows, names) in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if rows < len(names):
            label = "/".join(name) if isinstance(name, tuple) else name
            raise FlopcastError(
                f"{path}: {label}: {rows} usable row{'s' if rows != 1 else ''} for "
                f"{len(names)} parameters ({', '.join(names)}); calibrate needs at least as "
                "many rows as parameters per group (add rows or remove the group's)")


def group_entry(names: list[str], eff: Efficiency, fit: dict, training: bool = True) -> dict:
    """One fitted group as the calibration file records it."""
    values = {n: float(f"{getattr(eff, n):.6g}") for n in names}
    if training and eff.training_attention_backend:
        values["training_attention_backend"] = eff.training_attention_backend
    return {"fitted": names, "efficiency": values, "fit": fit}


def write_calibration(path: Path, out, families: dict, summary: dict, parameters_fitted: int,
                      description: str, prior: str) -> dict:
    """The calibration document (method, data fingerprint, fit) written to ``out``."""
    doc = {
        "description": description,
        "method": f"robust (soft-L1, scale {ROBUST_SCALE}) least squares on log(predicted/"
                  f"measured); rows weighted 1/sqrt(rows per source)^{SOURCE_BALANCE}; pull "
                  f"{PRIOR_WEIGHT}·log(value/prior) toward {prior}",
        "fitted_on": path.name,
        "fitted_on_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "date": _dt.date.today().isoformat(),
        "parameters_fitted": parameters_fitted,
        "summary": summary,
        "families": families,
    }
    if out is not None:
        Path(out).write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
    return doc


def leave_one_out(cases, fit_groups, score) -> dict[str, dict]:
    """For each source: ``fit_groups`` on the other sources' cases, ``score`` this source's."""
    cases = [c for c in cases if c.job is not None]
    result = {}
    for source in sorted({c.id.split(":")[0] for c in cases}):
        held_out = [c for c in cases if c.id.split(":")[0] == source]
        rest = [c for c in cases if c.id.split(":")[0] != source]
        result[source] = score(held_out, fit_groups(rest))
    return result


def leave_one_source_out(path: str | Path, held: dict[str, float] | None = None
                         ) -> dict[str, dict]:
    """For each source: fit on the other sources' rows (``held`` values fixed), score this
    source's rows."""
    from flopcast.calibration.joint import calibrate_joint

    held = check_held(held)
    return leave_one_out(prepare_training_rows(read_table(path).usable()),
                         lambda cases: calibrate_joint(cases, held=held), _score)
