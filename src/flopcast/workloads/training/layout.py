"""Layout: a batch of parallel configurations as NumPy arrays (one element per configuration)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from flopcast.physics.flops import RECOMPUTE_CODES
from flopcast.physics.memory import ZERO_UNITS_IN_FLIGHT
from flopcast.physics.pipeline import SCHEDULE_CODES
from flopcast.specs.parallelism import DOS_SUBGROUP_PARAMS, TIER_CODES
from flopcast.specs.training import TrainingJob


@dataclass(frozen=True)
class Layout:
    """Parallel sizes, batch and options, each an array broadcastable against the others.

    Codes: recompute 0 none / 1 selective / 2 full; schedule 0 1f1b / 1 interleaved / 2 gpipe.
    Offload tiers (specs/parallelism.TIER_CODES, 0 gpu / 1 cpu / 2 nvme): ``offload`` of the
    optimizer states, ``offload_grad``, ``offload_param``, ``offload_act`` (default 0).
    ``stream_window``: layers resident on the GPU while offloaded parameters/activations stream
    (Superpipeline's k; default memory.ZERO_UNITS_IN_FLIGHT). ``interleave``: Deep Optimizer
    States on (0/1, default 0), ``gpu_fraction`` the pinned GPU share of its update (NaN = the
    best one), ``subgroup_params`` its optimizer subgroup size (Parallelism's fields).
    ``etp`` (expert tensor-parallel size, Megatron --expert-tensor-parallel-size) defaults to
    tp: no MoE parallel folding (Liu et al. 2025). ``extra_slots``: pipeline slots beyond the
    transformer layers (embedding, loss, MTP: see TrainingJob.pipeline_extra_slots), default 0.
    """

    tp: np.ndarray
    pp: np.ndarray
    vp: np.ndarray
    cp: np.ndarray
    ep: np.ndarray
    dp: np.ndarray
    micro_batch: np.ndarray
    num_micro_batches: np.ndarray
    sp: np.ndarray
    zero: np.ndarray
    recompute: np.ndarray
    schedule: np.ndarray
    tp_overlap: np.ndarray
    dp_overlap: np.ndarray
    offload: np.ndarray
    etp: np.ndarray | None = None
    extra_slots: np.ndarray | None = None
    offload_grad: np.ndarray | None = None
    offload_param: np.ndarray | None = None
    offload_act: np.ndarray | None = None
    stream_window: np.ndarray | None = None
    interleave: np.ndarray | None = None
    gpu_fraction: np.ndarray | None = None
    subgroup_params: np.ndarray | None = None

    def __post_init__(self) -> None:
        defaults = dict(offload_grad=0, offload_param=0, offload_act=0, interleave=0,
                        stream_window=ZERO_UNITS_IN_FLIGHT, gpu_fraction=np.nan,
                        subgroup_params=DOS_SUBGROUP_PARAMS)
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full_like(self.offload, value,
                                                             dtype=type(value)))
        if self.etp is None:
            object.__setattr__(self, "etp", self.tp)
        if self.extra_slots is None:
            object.__setattr__(self, "extra_slots", np.zeros_like(self.pp))

    @classmethod
    def from_job(cls, job: TrainingJob) -> Layout:
        p = job.parallelism
        values = dict(
            tp=p.tp, pp=p.pp, vp=p.vp, cp=p.cp, ep=p.ep, dp=p.dp, micro_batch=p.micro_batch,
            num_micro_batches=job.num_micro_batches, sp=p.sequence_parallel,
            zero=p.zero_stage, recompute=RECOMPUTE_CODES[p.recompute],
            schedule=SCHEDULE_CODES[p.pipeline_schedule], tp_overlap=p.tp_overlap,
            dp_overlap=p.dp_comm_overlap, offload=TIER_CODES[p.offload_optimizer],
            etp=p.expert_tp, extra_slots=job.pipeline_extra_slots,
            offload_grad=TIER_CODES[p.offload_gradients],
            offload_param=TIER_CODES[p.offload_params],
            offload_act=TIER_CODES[p.offload_activations],
            stream_window=p.stream_window_layers or ZERO_UNITS_IN_FLIGHT,
            interleave=int(p.interleave_optimizer),
            gpu_fraction=np.nan if p.optimizer_gpu_fraction is None else p.optimizer_gpu_fraction,
            subgroup_params=p.optimizer_subgroup_params,
        )
        return cls(**{k: np.atleast_1d(np.asarray(v)) for k, v in values.items()})

    def __len__(self) -> int:
        return int(np.broadcast(*(getattr(self, f.name) for f in fields(self))).size)

    @property
    def offloads(self) -> bool:
        """Whether any configuration keeps any state off the GPU (else the offload terms
        are skipped: the planner's speed)."""
        return any(bool(np.any(getattr(self, name) > 0)) for name in
                   ("offload", "offload_grad", "offload_param", "offload_act"))

    @property
    def global_batch(self) -> np.ndarray:
        return self.micro_batch * self.dp * self.num_micro_batches
