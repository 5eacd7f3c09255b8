"""Test-time search and sequential-thinking settings (catalog/reasoning/test-time.yaml): the
cost and accuracy parameters of each documented setting, with its source and what is assumed
(workloads/reasoning/search.py uses them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flopcast.specs.base import Spec


class TreeSearchSetting(Spec):
    """A tree search (REBASE, beam search) as a cost multiplier on drawing N independent
    samples and an equivalent-samples gain: its accuracy with N solutions is the ``selection``
    strategy's accuracy with ``equivalent_samples`` x N independent samples."""

    cost_multiplier: float = Field(gt=0, le=100, description="Cost / the cost of N samples.")
    equivalent_samples: float = Field(ge=1, le=1000, description="Independent samples one "
                                      "solution of the search is worth.")
    selection: Literal["weighted-vote", "best-of-n"]
    source: str = Field(min_length=1)
    assumed: str = Field(min_length=1)


class SequentialSetting(Spec):
    """Sequential thinking as a two-state Markov chain over rounds: a wrong answer is fixed
    with probability ``rethink_efficiency`` x p per round, a correct one broken with
    ``break_rate``."""

    rethink_efficiency: float = Field(gt=0, le=10)
    break_rate: float = Field(ge=0, lt=1)
    source: str = Field(min_length=1)
    assumed: str = Field(min_length=1)


class TestTimeCatalog(Spec):
    """The whole file: settings by name."""

    __test__ = False  # not a pytest class

    tree_search: dict[str, TreeSearchSetting]
    sequential: dict[str, SequentialSetting]
