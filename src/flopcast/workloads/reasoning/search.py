"""Tree search and sequential thinking: accuracy and cost from documented settings
(catalog/reasoning/test-time.yaml, validated by ``specs.reasoning``).

**Tree search** (REBASE: Wu et al. 2025, "Inference Scaling Laws", arXiv:2408.00724, §3.2;
beam search: Snell et al. 2024, arXiv:2408.03314, §5.3). No input here holds tree-search runs,
so a search with N solutions is modelled by two documented numbers: its cost is
``cost_multiplier`` x the cost of N independent samples (Wu et al. Table 4 gives REBASE's FLOPs
per question against sampling's at the same N; Snell et al. count N beams as N generations),
and its accuracy is the ``selection`` strategy's (weighted vote for REBASE, best-of-N for beam
search) with ``equivalent_samples`` x N independent samples (the compute gain the papers
report). Both are read off the papers where the file says so; the rest is named in each
setting's ``assumed``.

**Sequential thinking** (long chains of thought, revisions, budget forcing): R rounds of
``out_len`` tokens in one chain, the answer after the last round. Per problem a two-state
Markov chain: the first round is right with probability p; each later round fixes a wrong
answer with f = eta p and breaks a right one with g (TTSPM, arXiv:2505.20522: the absorbing
case g = 0, where P(right after R) = 1 - (1 - p)(1 - eta p)^(R-1), with eta = 1 the parallel
form 1 - (1 - p)^R; Snell et al. §6 report right answers revised to wrong, hence g). In
general P_R = pi + (p - pi) (1 - f - g)^(R-1), pi = f / (f + g), the chain's stationary
share. Its cost is one trial of R x out_len tokens: the KV cache grows with the chain, so
Kinetics' L_out^2 term (``cost.kinetics_cost``) and flopcast's decode steps at the longer
mean context price it, not R separate samples.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from flopcast.errors import FlopcastError, validation_message
from flopcast.specs.reasoning import SequentialSetting, TestTimeCatalog, TreeSearchSetting
from flopcast.workloads.reasoning.coverage import _ks

#: The shipped settings file.
SETTINGS_FILE = "reasoning/test-time.yaml"
#: Settings the planner uses unless told otherwise.
DEFAULT_TREE = "rebase-mistral-7b-math"
DEFAULT_SEQUENTIAL = "ttspm-absorbing"


@lru_cache(maxsize=1)
def test_time_settings() -> TestTimeCatalog:
    """catalog/reasoning/test-time.yaml, validated."""
    from pydantic import ValidationError

    from flopcast.catalog.loader import CATALOG_DIR
    from flopcast.files import load_shipped_yaml

    try:
        return TestTimeCatalog.model_validate(load_shipped_yaml(CATALOG_DIR / SETTINGS_FILE))
    except ValidationError as e:
        raise FlopcastError(f"test-time settings: {validation_message(e)}") from None


test_time_settings.__test__ = False  # not a pytest test


def _pick(kind: str, table: dict, name: str):
    if name not in table:
        raise FlopcastError(f"{kind}: unknown setting {name!r}; one of {', '.join(table)}")
    return table[name]


def tree_setting(name: str = DEFAULT_TREE) -> TreeSearchSetting:
    return _pick("tree-search", test_time_settings().tree_search, name)


def sequential_setting(name: str = DEFAULT_SEQUENTIAL) -> SequentialSetting:
    return _pick("sequential", test_time_settings().sequential, name)


def equivalent_samples(setting: TreeSearchSetting, k) -> np.ndarray:
    """Independent samples a search with k solutions is worth (rounded, >= 1)."""
    return np.maximum(1, np.round(setting.equivalent_samples * _ks(k))).astype(np.int64)


def tree_search_accuracy(post, k, setting: TreeSearchSetting, rho, tpr: float,
                         fpr: float) -> np.ndarray:
    """Accuracy per problem (problems, ks) of a search with k solutions: its selection's
    accuracy at equivalent_samples x k independent samples (module docstring)."""
    from flopcast.workloads.reasoning.answers import vote_accuracy
    from flopcast.workloads.reasoning.strategies import best_of_n_posterior

    keq = equivalent_samples(setting, k).ravel()
    if setting.selection == "weighted-vote":
        return vote_accuracy(post, keq, rho, tpr, fpr)
    return best_of_n_posterior(post, keq, tpr, fpr)


def sequential_given_p(p, rounds, setting: SequentialSetting) -> np.ndarray:
    """P(right after R rounds) for success rate p (module docstring), broadcasting."""
    p, r = np.asarray(p, float), np.asarray(rounds, float)
    f, g = setting.rethink_efficiency * p, setting.break_rate
    f = np.minimum(f, 1.0 - g)
    with np.errstate(divide="ignore", invalid="ignore"):
        stationary = np.where(f + g > 0, f / (f + g), p)
    return stationary + (p - stationary) * (1.0 - f - g) ** (r - 1)


def sequential_accuracy(post, rounds, setting: SequentialSetting) -> np.ndarray:
    """sequential_given_p averaged over each problem's posterior, (problems, ks)."""
    ks = _ks(rounds).ravel()
    return post.expect(sequential_given_p(post.p[..., None], ks[None, None, :], setting))


def sequential_limit(post, setting: SequentialSetting) -> float:
    """Accuracy as R -> infinity: the posterior mean of the stationary share f / (f + g)."""
    big = sequential_given_p(post.p, np.inf, setting)
    return float(post.expect(np.nan_to_num(big)).mean())
