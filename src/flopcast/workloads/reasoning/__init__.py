"""Reasoning workloads: accuracy of repeated sampling from per-problem sample counts.

``samples`` reads and validates a per-problem samples CSV (one :class:`SampleSet` per model and
benchmark); ``coverage`` turns counts into pass@k (the unbiased estimator within the samples
drawn) and extrapolates beyond them (by default the mean of an Akaike-weighted Beta/Kumaraswamy
model average, ``average`` and ``kumaraswamy``, and Brown et al.'s exponentiated power law; or
a Beta mixture with a point mass at 0), with seeded bootstrap bands and a held-out comparison;
``voting`` bounds majority-vote accuracy from the same counts; ``posterior`` gives each
problem's posterior under any of those fits, which ``strategies`` (pass@k, best-of-N),
``answers`` (majority and weighted voting from an answer model) and ``search`` (tree search,
sequential thinking) average over for ``plan``. Formulas and
their sources: shared/reasoning/README.md (A1); measured accuracy: docs/reasoning.md.

The function ``coverage`` is not re-exported here: the package attribute ``coverage`` is the
module (``from flopcast.workloads.reasoning.coverage import coverage``).
"""

from flopcast.workloads.reasoning.average import ModelAverageFit, fit_model_average
from flopcast.workloads.reasoning.coverage import (
    DEFAULT_METHOD,
    METHODS,
    BetaMixtureFit,
    CombinedFit,
    Extrapolation,
    HeldOut,
    PowerLawFit,
    extrapolate,
    fit_beta_mixture,
    fit_power_law,
    fit_power_law_curve,
    held_out,
    pass_at_k,
)
from flopcast.workloads.reasoning.kumaraswamy import KumaraswamyFit, fit_kumaraswamy
from flopcast.workloads.reasoning.samples import (
    REQUIRED_COLUMNS,
    SampleSet,
    check_counts,
    read_sample_groups,
    read_samples,
)
from flopcast.workloads.reasoning.voting import (
    majority_vote_bounds,
    majority_vote_bounds_given,
    majority_vote_limits,
)

__all__ = [
    "DEFAULT_METHOD", "METHODS", "REQUIRED_COLUMNS", "BetaMixtureFit", "CombinedFit",
    "Extrapolation", "HeldOut", "KumaraswamyFit", "ModelAverageFit", "PowerLawFit",
    "SampleSet", "check_counts", "extrapolate", "fit_beta_mixture", "fit_kumaraswamy",
    "fit_model_average", "fit_power_law",
    "fit_power_law_curve", "held_out", "majority_vote_bounds", "majority_vote_bounds_given",
    "majority_vote_limits", "pass_at_k", "read_sample_groups", "read_samples",
]
