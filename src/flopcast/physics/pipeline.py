"""Pipeline schedules: bubble and micro-batches in flight.

GPipe (Huang et al. 2019) and 1F1B / PipeDream-Flush (Narayanan et al. 2021 §2.2.1) idle for
(p-1) micro-batch slots per step, a bubble fraction (p-1)/m of the ideal time; the
interleaved 1F1B schedule with v model chunks per device cuts it to (p-1)/(v·m) (§2.2.2).
Memory differs: GPipe keeps all m micro-batches' activations; 1F1B keeps at most p on the
first stage; interleaving keeps p·(1 + (p-1)/(p·v)) (Korthikanti et al. 2022 §4.2.3).
"""

from __future__ import annotations

import numpy as np

SCHEDULE_CODES = {"1f1b": 0, "interleaved": 1, "gpipe": 2}


def bubble_slots(pp, vp):
    """Idle micro-batch slots per step: (p-1)/v (v = 1 without interleaving)."""
    return (np.asarray(pp, dtype=float) - 1) / np.asarray(vp, dtype=float)


def bubble_fraction(pp, num_micro_batches, vp=1):
    """Bubble time over ideal time: (p-1)/(v·m).

    >>> float(bubble_fraction(8, 64))
    0.109375
    """
    return bubble_slots(pp, vp) / np.asarray(num_micro_batches, dtype=float)


def pipeline_time(stage_time_per_micro_batch, pp, num_micro_batches, vp=1):
    """Step time of a pipeline: (m + (p-1)/v) slots of the slowest stage's micro-batch time."""
    return (np.asarray(num_micro_batches, dtype=float) + bubble_slots(pp, vp)) * (
        stage_time_per_micro_batch
    )


def micro_batches_in_flight(pp, num_micro_batches, vp, schedule_code):
    """Micro-batches whose activations the first stage holds at its peak.

    1F1B: min(p, m); interleaved: p·(1 + (p-1)/(p·v)), at most m·(…); GPipe: m.
    """
    pp = np.asarray(pp, dtype=float)
    m = np.asarray(num_micro_batches, dtype=float)
    vp = np.asarray(vp, dtype=float)
    one_f_one_b = np.minimum(pp, m)
    interleaved = np.minimum(pp * (1 + (pp - 1) / (pp * vp)), m)
    code = np.asarray(schedule_code)
    return np.where(code == 2, m, np.where(code == 1, interleaved, one_f_one_b))


def layers_per_stage(num_layers: int, pp, vp=1, extra_slots=0):
    """Layers on the most loaded pipeline rank: v chunks of ⌈L/(p·v)⌉ layers each (equal to
    L/p when p·v divides L; uneven splits put the remainder on the first and last stages, as
    Megatron's --decoder-first/last-pipeline-num-layers and DeepSpeed's partitioning do).

    ``extra_slots`` > 0: the embedding, the loss/LM head (and MTP modules) take one layer slot
    each, as Megatron-Core's --account-for-embedding-in-pipeline-split and
    --account-for-loss-in-pipeline-split (or the E, L and m of its
    --pipeline-model-parallel-layout) and NeMo/torchtitan layouts do. The L + extra slots are
    split into p·v chunks; the most loaded rank gets v·⌈(L + extra)/(p·v)⌉ slots, and holds at
    most that many transformer layers (and never more than L).

    >>> float(layers_per_stage(61, 16, 4, extra_slots=3))  # DeepSeek-V3: E + 61 t + m + L
    4.0
    """
    pp = np.asarray(pp, dtype=float)
    vp = np.asarray(vp, dtype=float)
    slots = num_layers + np.asarray(extra_slots, dtype=float)
    return np.minimum(vp * np.ceil(slots / (pp * vp)), num_layers)
