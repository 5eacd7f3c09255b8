"""Fit a GPU's kernel profile (specs/kernels.py) to kernel timings.

Used by ``flopcast calibrate kernels.csv`` (published timings, per GPU family) and by
``flopcast profile`` (the user's own device). The parameters are the profile's measurable
terms: fixed kernel cost, full-wave GEMM fraction per dtype, per-tile k overhead, streaming
bandwidth fractions, grouped-GEMM and attention efficiencies per backend and direction, and
board-power fractions. Only parameters that the rows inform are fitted (an fp8 fraction needs
fp8 GEMM rows, a backend needs its rows); the rest keep the family prior. Robust least squares
on log(predicted/measured) (scipy, ``flopcast[calibrate]``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from flopcast.errors import FlopcastError
from flopcast.specs.gpu import GPU
from flopcast.specs.kernels import SAME_RATE_DTYPES, KernelProfile
from flopcast.validate.kernels import predict_kernel_row
from flopcast.validate.report import ape_pct, error_summary

#: Robust loss scale on log error: beyond ~10 % a row counts linearly.
ROBUST_SCALE = 0.1

#: Bounds per parameter path (a path is a tuple of keys into the profile's dict form).
_BOUNDS = {
    "launch_s": (0.0, 1e-4), "gemm_k_overhead": (0.0, 2048.0),
    "gemm_stream_fraction": (0.2, 1.0), "grouped_gemm_fraction": (0.3, 1.0),
    "copy_fraction": (0.2, 1.0), "gemm_fraction": (0.1, 1.0),
    "fwd_fraction": (0.05, 1.0), "bwd_fraction": (0.05, 1.0),
    "fwd_context_half": (0.0, 8192.0), "bwd_context_half": (0.0, 8192.0),
    "stream_fraction": (0.05, 1.0), "idle_power_fraction": (0.01, 1.0),
    "memory_power_fraction": (0.01, 1.2), "compute_power_fraction": (0.01, 1.2),
}


def _informed_parameters(rows: list[dict], profile: dict) -> list[tuple]:
    """Parameter paths the rows can inform."""
    ops = {r["op"].strip() for r in rows}
    paths: list[tuple] = []
    # the fixed cost is pinned by GEMM and copy rows; decode rows alone (an engine's own
    # decode timings) would trade it against their streaming fraction
    if ops & {"gemm", "grouped_gemm", "copy"}:
        paths.append(("launch_s",))
    if ops & {"gemm", "grouped_gemm"}:
        paths += [("gemm_k_overhead",), ("gemm_stream_fraction",)]
        gemm_rows = [r for r in rows if r["op"].strip() in ("gemm", "grouped_gemm")]
        for dtype in sorted({_gemm_dtype(r, profile) for r in gemm_rows}):
            paths.append(("gemm_fraction", dtype))
            # only where the family's prior declares a dtype-specific streaming fraction
            paths.append(("gemm_stream_fraction_by_dtype", dtype))
    if "grouped_gemm" in ops:
        paths.append(("grouped_gemm_fraction",))
    if "copy" in ops:
        paths.append(("copy_fraction",))
    for r in rows:
        backend = (r.get("backend") or "").strip()
        if r["op"].strip() == "attention":
            fields = ["fwd_fraction", "fwd_context_half"]
            if (r.get("pass") or "").strip() == "fwd_bwd":
                fields += ["bwd_fraction", "bwd_context_half"]
            paths += [("attention", backend, f) for f in fields]
        elif r["op"].strip() == "decode_attention":
            paths.append(("decode_attention", backend, "stream_fraction"))
        elif r["op"].strip().startswith("power:"):
            op = r["op"].strip()
            paths.append(("idle_power_fraction",) if op == "power:idle" else
                         ("memory_power_fraction",) if "copy" in op else
                         ("compute_power_fraction",))
    return list(dict.fromkeys(p for p in paths if _exists(profile, p)))


def _gemm_dtype(row: dict, profile: dict) -> str:
    """The gemm_fraction key a GEMM row's timing informs."""
    dtype = row["dtype"].strip() or "bf16"
    if dtype in SAME_RATE_DTYPES and dtype not in profile.get("gemm_fraction", {}):
        return SAME_RATE_DTYPES[dtype]
    return dtype


def _exists(profile: dict, path: tuple) -> bool:
    node = profile
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    # a key set to null (a GPU entry undoing its family's value) is not a parameter
    return isinstance(node, dict) and (node.get(path[-1]) is not None
                                       or path[0] == "gemm_fraction")


def _bound_key(path: tuple) -> str:
    """The _BOUNDS entry of a parameter path (per-dtype values share their parameter's)."""
    return {"gemm_fraction": "gemm_fraction",
            "gemm_stream_fraction_by_dtype": "gemm_stream_fraction"}.get(path[0], path[-1])


def _get(profile: dict, path: tuple, default: float) -> float:
    node = profile
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return float(node)


def _set(profile: dict, path: tuple, value: float) -> None:
    node = profile
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _fit_start(rows: list[dict], base: dict) -> dict:
    """The profile a fit starts from: ``base`` with a start for every measured backend."""
    # Attention backends and dtypes measured but unknown to the prior start from the
    # default backend's values, so that a profile can learn a backend the catalog lacks.
    for r in rows:
        backend = (r.get("backend") or "").strip()
        kind = {"attention": "attention", "decode_attention": "decode_attention"}.get(
            r["op"].strip())
        if kind and backend not in base[kind]:
            default = base["default_attention" if kind == "attention" else
                           "default_decode_attention"]
            template = base[kind].get(default) or next(iter(base[kind].values()), None)
            if template is None:
                raise FlopcastError(f"no {kind} prior to start backend {backend!r} from")
            base[kind][backend] = dict(template)
        if kind == "attention" and base[kind][backend].get("relative_to"):
            # measured now: its own fractions, no longer a ratio of another backend's
            base[kind][backend].update(relative_to=None, fwd_ratio=None, bwd_ratio=None)
    return base


def fit_kernel_profile(rows: list[dict], gpu: GPU, siblings: dict[str, GPU] | None = None
                       ) -> tuple[KernelProfile, list[tuple], dict]:
    """Fit ``gpu``'s kernel profile to ``rows`` (kernel-schema dicts measured on that GPU).

    ``siblings`` maps other GPU ids of the same family to their entries: a row naming one is
    priced with that part's peaks and bandwidth and the shared profile (the profile's
    parameters are fractions of each part's own datasheet numbers, so the parts of one family,
    e.g. A100 40 GB and 80 GB, share them). Returns the fitted profile, the fitted parameter
    paths and an in-sample error summary.
    """
    try:
        from scipy.optimize import least_squares
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise FlopcastError("fitting kernels needs scipy: pip install 'flopcast[calibrate]'") \
            from e
    base = _fit_start(rows, gpu.kernels.model_dump())
    paths = _informed_parameters(rows, base)
    if not paths:
        raise FlopcastError("no kernel rows to fit (ops: gemm, grouped_gemm, attention, "
                            "decode_attention, copy, power:*)")
    _check_enough_rows(rows, paths)
    lo = np.array([_BOUNDS[_bound_key(p)][0] for p in paths])
    hi = np.array([_BOUNDS[_bound_key(p)][1] for p in paths])
    x0 = np.clip([_get(base, p, gpu.kernels.gemm_fraction_for(p[-1])) for p in paths], lo, hi)
    scale = np.where(hi > 0, hi, 1.0)
    measured = np.array([float(r["value"]) for r in rows])

    def profile_of(x) -> KernelProfile:
        values = yaml.safe_load(yaml.safe_dump(base))  # deep copy of plain data
        for p, v in zip(paths, x * scale, strict=True):
            _set(values, p, float(v))
        return KernelProfile.model_validate(values)

    # kernel timings are fitted by the profile alone: a whole-run scale in force on the GPU
    # (kernel_fraction_scale, from a training calibration) would be folded into the fit
    parts = {k: g.model_copy(update={"efficiency": g.efficiency.updated(kernel_fraction_scale=1.0)})
             for k, g in {gpu.id: gpu, **(siblings or {})}.items()}

    def predictions(profile: KernelProfile) -> np.ndarray:
        priced = {k: g.model_copy(update={"kernels": profile}) for k, g in parts.items()}
        return np.array([predict_kernel_row(r, priced.get(r["gpu"].strip(), priced[gpu.id]))
                         for r in rows])

    def residuals(x):
        return np.log(np.maximum(predictions(profile_of(x)), 1e-30) / measured)

    fit = least_squares(residuals, x0 / scale, bounds=(lo / scale, hi / scale),
                        loss="soft_l1", f_scale=ROBUST_SCALE, x_scale="jac")
    profile = profile_of(fit.x)
    errors = [ape_pct(p, m) for p, m in zip(predictions(profile), measured, strict=True)]
    return profile, paths, {"rows": len(rows), **error_summary(errors)}


def _check_enough_rows(rows: list[dict], paths: list[tuple]) -> None:
    if len(rows) < len(paths):
        names = ", ".join(".".join(p) for p in paths)
        raise FlopcastError(f"{len(rows)} usable row{'s' if len(rows) != 1 else ''} for "
                            f"{len(paths)} parameters ({names}); a fit needs at least as many "
                            "rows as parameters")


def _fitted_values(profile: KernelProfile, paths: list[tuple], prior: KernelProfile) -> dict:
    """The fitted parameters as a nested mapping (what a calibration file carries); an
    attention backend the prior priced relative to another is marked as measured."""
    data = profile.model_dump()
    out: dict = {}
    for p in paths:
        _set(out, p, round(_get(data, p, 0.0), 6 if p[-1] != "launch_s" else 9))
    for name, backend in prior.attention.items():
        if backend.relative_to and name in out.get("attention", {}):
            # measured now: every field of its own (a direction without rows keeps the value
            # its ratio gave), so the file loads without the ratio
            fields = ("fwd_fraction", "fwd_context_half", "bwd_fraction", "bwd_context_half")
            for field in fields:
                _set(out, ("attention", name, field), round(data["attention"][name][field], 6))
            _set(out, ("attention", name, "relative_to"), None)
    return out


def calibrate_kernels(path: str | Path, out: str | Path | None = None) -> dict:
    """Fit the kernel profile of each GPU family with rows in ``path``; write the YAML."""
    from flopcast.calibration.fit import check_output, nothing_to_fit
    from flopcast.catalog import load_gpu
    from flopcast.validate.inputs import read_table
    from flopcast.validate.kernels import prepare_kernel_rows

    check_output(out)
    table = read_table(path)
    cases = prepare_kernel_rows(table.usable())
    by_gpu: dict[str, list[dict]] = defaultdict(list)
    for case in cases:
        if case.skipped is None:
            by_gpu[case.row["gpu"].strip()].append(case.row)
    if not by_gpu:
        raise FlopcastError(nothing_to_fit(Path(path), table, cases))
    by_family: dict[str, dict[str, GPU]] = defaultdict(dict)
    for gpu_id in sorted(by_gpu):
        gpu = load_gpu(gpu_id)
        by_family[gpu.family][gpu_id] = _unfitted(gpu, by_gpu[gpu_id])
    families: dict = {}
    for family, parts in sorted(by_family.items()):
        # the part with the most rows names the family's fit; the others price their own rows
        first = max(parts, key=lambda g: (len(by_gpu[g]), g))
        rows = [r for g in parts for r in by_gpu[g]]
        try:
            profile, paths, summary = fit_kernel_profile(rows, parts[first], parts)
        except FlopcastError as e:
            raise FlopcastError(f"{path}: {', '.join(parts)}: {e}") from None
        families[family] = {"gpu": first if len(parts) == 1 else sorted(parts),
                            "fit": {**summary, "parameters": len(paths)},
                            "profile": _fitted_values(profile, paths, parts[first].kernels)}
    doc = {
        "description": "Kernel-profile parameters per GPU family, fitted by `flopcast "
                       "calibrate` on kernel timings; everything else keeps the family "
                       "priors of catalog/kernels/<family>.yaml.",
        "method": f"robust (soft-L1, scale {ROBUST_SCALE}) least squares on "
                  "log(predicted/measured), only parameters the rows inform",
        "fitted_on": Path(path).name,
        "fitted_on_sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "date": _dt.date.today().isoformat(),
        "parameters_fitted": sum(f["fit"]["parameters"] for f in families.values()),
        "families": families,
    }
    if out:
        Path(out).write_text(yaml.safe_dump(doc, sort_keys=False, width=100))
    return doc


def _unfitted(gpu: GPU, rows: list[dict]) -> GPU:
    """``gpu`` as a refit of ``rows`` starts: what the rows inform (their backends, the
    fractions and costs they pin) from its family's priors, so a refit does not start from
    the previous fit, and everything else as the shipped kernel calibration prices it (e.g.
    the fixed cost kernels.csv fits, under a file of engine attention timings that does not
    pin it), so the fit is made with the profile it will run with."""
    from flopcast.catalog.loader import _kernel_family_priors

    priors = _kernel_family_priors(gpu.family)
    if not priors:  # a family with no catalog priors (a profiled CPU): start from its own
        return gpu
    prior = KernelProfile.model_validate(priors).model_dump()
    start = gpu.kernels.model_dump()
    for r in rows:  # every backend a row times starts from its prior entry, whole
        kind = r["op"].strip()
        backend = (r.get("backend") or "").strip()
        if kind in ("attention", "decode_attention") and backend in prior[kind]:
            start[kind][backend] = dict(prior[kind][backend])
    for path in _informed_parameters(rows, _fit_start(rows, prior)):
        if _exists(prior, path):
            _set(start, path, _get(prior, path, 0.0))
    return gpu.model_copy(update={"kernels": KernelProfile.model_validate(start)})
