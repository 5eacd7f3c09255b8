"""Training calibration fitted jointly: values shared by every GPU family, values per family,
and choices per training framework.

What a whole run shows beyond its kernels splits by who owns it. Link efficiencies (how much
of NVLink and the network NCCL gets) belong to the collective library: one value for every
family, the link speeds themselves being in each GPU's catalog entry (SHARED_PARAMETERS). The
kernel scale (a missing kernel profile, or what a training run sustains next to measured
kernels), per-layer overheads and the share of overlapped communication left exposed are
fitted per family (FAMILY_PARAMETERS says why not per framework). The attention kernel is
chosen per framework (choose_backends), and a framework value would apply on every family
(FRAMEWORK_PARAMETERS, empty now). Every row informs the shared values, its family's and its
framework's, and one least-squares problem fits them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from flopcast.specs.efficiency import Efficiency
from flopcast.validate.training import TrainingCase, predict_case

#: Whole-run parameters fitted per GPU family. Overheads and overlap are partly software,
#: but what they cost depends on the GPU's speed next to its links (the same framework leaves
#: more communication exposed on an H100 than on an A100), and fitting them per framework
#: across families made both worse (training.csv: 6.2 % / 16.6 % against 5.9 % / 15.8 %).
#: The kernel scale stands for a missing kernel profile; the training kernel scale for what a
#: whole training run sustains next to measured kernels (specs/efficiency.py): one or the
#: other per family, never both.
FAMILY_PARAMETERS = ("kernel_fraction_scale", "training_kernel_scale", "layer_overhead_s",
                     "tp_overlap_exposed_fraction", "dp_overlap_exposed_fraction")
#: Whole-run parameters fitted once for every family the rows cover: the share of a link's per-
#: direction bandwidth NCCL's collectives reach, over NVLink/NVSwitch and over the network. The
#: hardware difference between families is in the catalog (each GPU's link and network
#: bandwidth); what is left is the collective library's share of the wire, the same NCCL on both
#: (nccl-tests all-reduce bus bandwidth at large sizes: 230-250 of 300 GB/s on 8 A100, 460-480 of
#: 450 on 8 H100 with NVLink SHARP reducing in the switch). Fitted per family, a family's link
#: values were set by the few rows of its one tensor-parallel source: holding out Megatron-2021,
#: Ampere's nvlink_fraction fell to its 0.2 bound and that source came out 12.0 % off (median);
#: shared, 2.0 % (docs/accuracy.md).
SHARED_PARAMETERS = ("nvlink_fraction", "network_fraction")
#: Whole-run parameters fitted per training framework, whatever GPU it runs on. Empty: the
#: element-wise factor was fitted here (1.28 for FSDP on top of its profile's counted loss and
#: optimizer traffic), which improved training.csv in-sample (p90 13.5 -> 12.2 %) but made four
#: of five held-out sources worse (BLOOM 2.9 -> 6.2, MPT 15.8 -> 18.8, Megatron-2021 7.6 ->
#: 13.0, Megatron-2024 3.0 -> 5.9 %): the framework profiles (catalog/frameworks) count what
#: each framework moves, and what is left is not one number per framework. The attention
#: kernel stays a per-framework choice (choose_backends).
FRAMEWORK_PARAMETERS: tuple[str, ...] = ()
#: Frameworks whose element-wise kernels are the fused ones physics/layer.py counts, so their
#: traffic factor stays 1 and is not fitted: Megatron-Core with Transformer Engine fuses the
#: norm into the following GEMM (LayerNormLinear), bias+GeLU/SwiGLU, bias-dropout-add and
#: rotary embedding (Megatron-Core docs, "fusions"; TE docs, LayerNormLinear).
FUSED_ELEMENTWISE_FRAMEWORKS = ("megatron",)


@dataclass(frozen=True)
class Scoped:
    """One fitted value: ``name`` of the family or framework ``key`` (scope ``kind``)."""

    kind: str  # "family", "framework" or "shared" (every family; key "")
    key: str
    name: str


def case_scopes(case: TrainingCase) -> tuple[str, str]:
    """The (GPU family, framework) a case's row belongs to."""
    return case.job.system.gpu.family, case.job.framework.id


def identifiable(cases: list[TrainingCase], held: Iterable[str] = ()) -> list[Scoped]:
    """The values the cases can inform: a family's kernel scale only without kernel
    measurements, its training kernel scale only with them, its network fraction only with
    multi-node rows, its TP overlap only with overlapped TP rows; a framework's element-wise
    factor only when it does not fuse. Names in ``held`` are not fitted in any scope (the
    user holds them at a value: ``flopcast calibrate --hold``)."""
    held = set(held)
    out: list[Scoped] = []
    by_family, by_framework = _grouped(cases)
    out += [Scoped("shared", "", n) for n in SHARED_PARAMETERS if _informed(n, cases)]
    for fam, cs in sorted(by_family.items()):
        out += [Scoped("family", fam, n) for n in FAMILY_PARAMETERS if _informed(n, cs)]
    for fw in sorted(by_framework):
        out += [Scoped("framework", fw, n) for n in FRAMEWORK_PARAMETERS
                if not (n == "elementwise_traffic_factor" and fw in FUSED_ELEMENTWISE_FRAMEWORKS)]
    return [p for p in out if p.name not in held]


#: Family values that mean something on one kind of family only (kernel_fraction_scale
#: without kernel measurements, training_kernel_scale with them: _informed), so no single
#: value can be held for every family.
FAMILY_KIND_PARAMETERS = ("kernel_fraction_scale", "training_kernel_scale")
#: What ``--hold`` may name: values that apply to every family (a held value is used for all).
HOLDABLE_PARAMETERS = SHARED_PARAMETERS + tuple(
    n for n in FAMILY_PARAMETERS + FRAMEWORK_PARAMETERS if n not in FAMILY_KIND_PARAMETERS)


def _informed(name: str, cases: list[TrainingCase]) -> bool:
    """Whether a family's rows can inform ``name``."""
    if name == "kernel_fraction_scale":
        return not cases[0].job.system.gpu.kernels_measured
    if name == "training_kernel_scale":  # without measured kernels the scale above holds it
        return cases[0].job.system.gpu.kernels_measured
    if name == "network_fraction":
        return any(c.job.system.num_gpus > c.job.system.gpus_per_node for c in cases)
    if name == "tp_overlap_exposed_fraction":
        return any(c.job.parallelism.tp_overlap for c in cases)
    return True


def _grouped(cases):
    by_family, by_framework = defaultdict(list), defaultdict(list)
    for c in cases:
        fam, fw = case_scopes(c)
        by_family[fam].append(c)
        by_framework[fw].append(c)
    return dict(by_family), dict(by_framework)


@dataclass(frozen=True)
class JointFit:
    """Fitted values shared by every family (and values held for every family), per family
    and per framework, and each framework's attention kernel."""

    families: dict[str, dict[str, float]]
    frameworks: dict[str, dict[str, float]]
    backends: dict[str, str | None]
    cost: float = 0.0
    shared: dict[str, float] = field(default_factory=dict)

    def family_values(self, family: str) -> dict[str, float]:
        """A family's values with the shared ones: what its calibration entry records."""
        return {**self.shared, **self.families.get(family, {})}

    def efficiency(self, case: TrainingCase, prior: Efficiency | None = None) -> Efficiency:
        """The efficiency a case runs with: prior, then the shared values and its family's,
        then its framework's."""
        fam, fw = case_scopes(case)
        values = {**self.family_values(fam), **self.frameworks.get(fw, {})}
        backend = self.backends.get(fw)
        if backend:
            values["training_attention_backend"] = backend
        return (prior or Efficiency()).updated(**values)


def _split(params: list[Scoped], values) -> tuple[dict, dict, dict]:
    scopes: dict[str, dict[str, dict]] = {"family": defaultdict(dict),
                                          "framework": defaultdict(dict),
                                          "shared": defaultdict(dict)}
    for p, v in zip(params, values, strict=True):
        scopes[p.kind][p.key][p.name] = float(v)
    return dict(scopes["family"]), dict(scopes["framework"]), scopes["shared"].get("", {})


def fit_joint(cases: list[TrainingCase], backends: dict[str, str | None],
              prior: Efficiency | None = None, held: dict[str, float] | None = None
              ) -> JointFit:
    """Robust least squares of every identifiable value at once (the method of
    calibration/fit.py: log error, soft-L1, source-balanced rows, pull toward the prior).
    ``held`` values are not fitted: every row runs with them, and the fit records them among
    its ``shared`` values (a held value applies to every family)."""
    from flopcast.calibration import fit as base

    least_squares = base.scipy_least_squares()
    held = dict(held or {})
    prior = (prior or Efficiency()).updated(**held)
    params = identifiable(cases, held)
    bounds = np.array([base.FITTED_PARAMETERS[p.name] for p in params], dtype=float)
    scale = np.where(bounds[:, 1] > 0, bounds[:, 1], 1.0)
    x0 = np.clip([getattr(prior, p.name) for p in params], bounds[:, 0], bounds[:, 1]) / scale
    prior_values = np.array([max(getattr(prior, p.name), 1e-9) for p in params])
    measured = np.array([c.measured for c in cases])
    weights = base._source_weights(cases)

    def fitted(x) -> JointFit:
        families, frameworks, shared = _split(params, x * scale)
        return JointFit(families, frameworks, backends, shared=shared)

    def residuals(x):
        fit = fitted(x)
        predicted = np.array([predict_case(c, fit.efficiency(c, prior)) for c in cases])
        pull = base.PRIOR_WEIGHT * np.log(np.maximum(x * scale, 1e-9) / prior_values)
        return np.concatenate([weights * np.log(predicted / measured), pull])

    result = least_squares(residuals, x0, bounds=(bounds[:, 0] / scale, bounds[:, 1] / scale),
                           loss="soft_l1", f_scale=base.ROBUST_SCALE, diff_step=1e-3,
                           max_nfev=200)
    fit = fitted(result.x)
    shared = {**held, **fit.shared}
    return JointFit(fit.families, fit.frameworks, backends, float(result.cost), shared)


def choose_backends(cases: list[TrainingCase], prior: Efficiency | None = None,
                    held: dict[str, float] | None = None) -> dict[str, str | None]:
    """Each framework's attention kernel: among the training backends its GPUs' kernel
    profiles offer, the one whose fit on that framework's rows has the lowest loss (a
    discrete choice the continuous fit cannot make); None for a framework that runs its own
    documented attention (specs/framework.py: attention_chosen_by_calibration)."""
    _, by_framework = _grouped(cases)
    chosen: dict[str, str | None] = {}
    for fw, cs in sorted(by_framework.items()):
        if not cs[0].job.framework.attention_chosen_by_calibration:
            chosen[fw] = None  # the framework's own, documented kernel (attention_backends)
            continue
        offered = [set(c.job.system.gpu.kernels.training_attention_backends) for c in cs]
        candidates = sorted(set.intersection(*offered)) if offered else []
        if len(candidates) <= 1:
            chosen[fw] = candidates[0] if candidates else None
            continue
        fits = [fit_joint(cs, {fw: b}, prior, held) for b in candidates]
        chosen[fw] = min(zip(fits, candidates, strict=True), key=lambda fc: fc[0].cost)[1]
    return chosen


def calibrate_joint(cases: list[TrainingCase], prior: Efficiency | None = None,
                    held: dict[str, float] | None = None) -> JointFit:
    """Choose each framework's attention kernel, then fit every value jointly (``held``
    values fixed throughout)."""
    return fit_joint(cases, choose_backends(cases, prior, held), prior, held)

