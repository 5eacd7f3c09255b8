"""How a training job is split: Megatron-LM's parallel sizes, batch sizes and memory options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from flopcast.specs.base import Spec
from flopcast.specs.limits import MAX_BATCH, MAX_GPUS, MAX_LAYERS

Recompute = Literal["none", "selective", "full"]
#: Where a training state lives (ZeRO-Offload: cpu; ZeRO-Infinity: cpu or nvme).
Tier = Literal["gpu", "cpu", "nvme"]
TIER_CODES = {"gpu": 0, "cpu": 1, "nvme": 2}
#: What can be offloaded, as --offload names it, and the Parallelism field of each.
OFFLOAD_KINDS = {"optimizer": "offload_optimizer", "gradients": "offload_gradients",
                 "params": "offload_params", "activations": "offload_activations"}
Schedule = Literal["1f1b", "interleaved", "gpipe"]
#: --offload keys beyond OFFLOAD_KINDS: the streaming window (Superpipeline's k) and the
#: optimizer placement that interleaves CPU and GPU updates (Deep Optimizer States).
OFFLOAD_WINDOW_KEY = "window"
INTERLEAVED_OPTIMIZER = "cpu-interleaved"
#: DeepSpeed ZeRO-3 ``sub_group_size`` of the Deep Optimizer States runs (the authors' artifact,
#: mauryaavinash95/deep-optimizer-states-results, ds_config.json: 100,000,000); DeepSpeed's own
#: default is 1e9 (deepspeed/runtime/zero/config.py).
DOS_SUBGROUP_PARAMS = 1e8


class Parallelism(Spec):
    """Parallel layout and batch of one training job (Megatron-LM option names in brackets).

    - tp [tensor-model-parallel-size], pp [pipeline-model-parallel-size], vp [virtual
      pipeline stages per device, i.e. num-layers / (pp · num-layers-per-virtual-pipeline-stage)],
      cp [context-parallel-size], ep [expert-model-parallel-size], dp (None = GPUs/(tp·pp·cp)).
    - etp [expert-tensor-parallel-size]: tensor-parallel size inside the expert layers; None =
      tp (Megatron's legacy behaviour). Megatron-Core's MoE parallel folding (Liu et al. 2025,
      "MoE Parallel Folding: Heterogeneous Parallelism Mappings for Efficient Large-Scale MoE
      Model Training with Megatron Core"; Megatron-Core docs "MoE parallel folding") runs
      attention on tp×cp×dp(×pp) ranks and re-folds the same ranks as etp×ep×edp(×pp) for the
      experts, edp = tp·cp·dp/(etp·ep) being the expert data-parallel size.
    - sp [sequence-parallel]: None = on whenever tp > 1 (Megatron/NeMo recommended setting).
    - embedding_loss_stages [account-for-embedding-in-pipeline-split and
      account-for-loss-in-pipeline-split; the E and L of pipeline-model-parallel-layout]: the
      input embedding and the loss/LM head (and any MTP module) each count as one layer when
      splitting the pipeline, so pp·vp may reach num_layers + 2 (+ MTP). None = on exactly
      when pp·vp > num_layers.
    - offload_optimizer / offload_gradients / offload_params / offload_activations: where
      each state lives, gpu (default), cpu (ZeRO-Offload, Ren et al. 2021) or nvme
      (ZeRO-Infinity, Rajbhandari et al. 2021; activations: gpu or cpu). The legacy
      ``cpu_offload_optimizer`` = offload_optimizer "cpu".
    - stream_window_layers: Superpipeline's k (Abbasi & Lim 2024, arXiv:2410.08791 §3): with
      parameters (or activations) off the GPU, how many layers' worth stay resident while the
      rest stream through; None = 2 (the layer computed and the one prefetched, as ZeRO-Infinity
      keeps). With 1 nothing can be prefetched, so transfers no longer hide behind compute.
    - interleave_optimizer: Deep Optimizer States (Maurya et al. 2024, arXiv:2410.21316): with
      the optimizer on the CPU, a fraction of its update runs on the GPU, the states of those
      subgroups streamed in and out over the host link while the CPU updates the rest.
      ``optimizer_gpu_fraction`` pins that fraction (None = the one that minimises the step,
      workloads/training/offload.py); ``optimizer_subgroup_params`` is DeepSpeed's
      sub_group_size, the unit the GPU updates (its states are the GPU buffer it needs).
    - zero_stage: 0 DDP, 1 sharded optimizer states (Megatron distributed optimizer),
      2 + gradients, 3 + parameters (FSDP FULL_SHARD).
    """


    tp: int = Field(1, ge=1, le=MAX_GPUS)
    pp: int = Field(1, ge=1, le=MAX_GPUS)
    vp: int = Field(1, ge=1, le=MAX_GPUS)
    cp: int = Field(1, ge=1, le=MAX_GPUS)
    ep: int = Field(1, ge=1, le=MAX_GPUS)
    etp: int | None = Field(
        None, ge=1, le=MAX_GPUS, description="None = tp (no folding of expert TP).")
    dp: int | None = Field(None, ge=1, le=MAX_GPUS)
    sp: bool | None = None
    zero_stage: int = Field(1, ge=0, le=3)
    micro_batch: int = Field(1, ge=1, le=MAX_BATCH)
    global_batch: int | None = Field(
        None, ge=1, le=MAX_BATCH, description="None = micro_batch · dp.")
    recompute: Recompute = "none"
    schedule: Schedule | None = Field(None, description="None = interleaved if vp > 1 else 1f1b.")
    tp_comm_overlap: bool | None = Field(
        None, description="None = on whenever sequence parallelism is (Megatron requires SP "
        "for --tp-comm-overlap; NeMo's performance recipes enable it)."
    )
    dp_comm_overlap: bool = True
    cpu_offload_optimizer: bool = False
    offload_optimizer: Tier = "gpu"
    offload_gradients: Tier = "gpu"
    offload_params: Tier = "gpu"
    offload_activations: Literal["gpu", "cpu"] = "gpu"
    stream_window_layers: int | None = Field(
        None, ge=1, le=MAX_LAYERS, description="Layers resident on the GPU while offloaded "
        "parameters/activations stream (Superpipeline's k); None = 2.")
    interleave_optimizer: bool = False
    optimizer_gpu_fraction: float | None = Field(
        None, ge=0, le=1, description="Share of the optimizer update run on the GPU under "
        "interleave_optimizer; None = chosen to minimise the step.")
    optimizer_subgroup_params: float = Field(
        DOS_SUBGROUP_PARAMS, gt=0, le=1e13,
        description="Parameters per optimizer subgroup (DeepSpeed sub_group_size).")
    embedding_loss_stages: bool | None = Field(
        None, description="Embedding and loss count as pipeline layers (Megatron-Core "
        "--account-for-embedding/loss-in-pipeline-split); None = on when pp·vp > num_layers."
    )

    @model_validator(mode="after")
    def _legacy_offload(self) -> Parallelism:
        """``cpu_offload_optimizer`` and ``offload_optimizer`` say the same thing: keep them
        in step (the former is what older callers and the planner's configs pass)."""
        if self.cpu_offload_optimizer and self.offload_optimizer == "gpu":
            object.__setattr__(self, "offload_optimizer", "cpu")
        object.__setattr__(self, "cpu_offload_optimizer", self.offload_optimizer != "gpu")
        if self.interleave_optimizer and self.offload_optimizer != "cpu":
            raise ValueError("interleave_optimizer (Deep Optimizer States) needs "
                             f"offload_optimizer 'cpu'; got {self.offload_optimizer!r}")
        if self.optimizer_gpu_fraction is not None and not self.interleave_optimizer:
            raise ValueError("optimizer_gpu_fraction needs interleave_optimizer")
        if self.tp_comm_overlap and self.tp > 1 and not self.sequence_parallel:
            raise ValueError("tp_comm_overlap needs sequence parallelism (Megatron-LM asserts "
                             "--sequence-parallel with --tp-comm-overlap); drop --no-sp or the "
                             "overlap")
        if self.stream_window_layers is not None and (
                self.offload_params == "gpu" and self.offload_activations == "gpu"):
            raise ValueError(f"stream_window_layers (--offload window="
                             f"{self.stream_window_layers}) streams offloaded layers: it needs "
                             "params or activations off the GPU (e.g. --offload "
                             "params=cpu,window=4)")
        return self

    @property
    def offload(self) -> dict[str, str]:
        """Tier of each offloadable state, by --offload name."""
        return {kind: getattr(self, name) for kind, name in OFFLOAD_KINDS.items()}

    @property
    def sequence_parallel(self) -> bool:
        return (self.tp > 1) if self.sp is None else (self.sp and self.tp > 1)

    @property
    def expert_tp(self) -> int:
        """Expert tensor-parallel size: ``etp``, or tp when not given (Megatron-Core's default
        for --expert-tensor-parallel-size)."""
        return self.tp if self.etp is None else self.etp

    @property
    def tp_overlap(self) -> bool:
        if self.tp_comm_overlap is None:
            return self.sequence_parallel
        return self.tp_comm_overlap and self.tp > 1

    @property
    def pipeline_schedule(self) -> str:
        if self.schedule is not None:
            return self.schedule
        return "interleaved" if self.vp > 1 else "1f1b"


def parse_offload(text: str | None) -> dict:
    """``--offload`` text → Parallelism keyword arguments.

    Comma-separated KIND=TIER (KIND one of OFFLOAD_KINDS; TIER gpu, cpu or nvme, activations
    gpu or cpu), plus ``optimizer=cpu-interleaved`` (Deep Optimizer States: the optimizer on the
    CPU with part of its update interleaved on the GPU) and ``window=K`` (Superpipeline's
    streaming window, stream_window_layers), e.g. ``params=cpu,window=4`` or
    ``optimizer=cpu-interleaved``. Raises ValueError with one line naming --offload and the bad
    part."""
    out: dict = {}
    seen: set[str] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        kind, _, value = (x.strip().lower() for x in part.partition("="))
        if kind in seen:
            raise ValueError(f"--offload: {kind} is given twice ({text.strip()!r}); give each "
                             "kind once")
        seen.add(kind)
        if kind == OFFLOAD_WINDOW_KEY:
            if not (value.isdigit() and 1 <= int(value) <= MAX_LAYERS):
                raise ValueError(f"--offload: {part.strip()!r}: window must be a whole number "
                                 f"of layers from 1 to {MAX_LAYERS}")
            out["stream_window_layers"] = int(value)
            continue
        tiers = ("gpu", "cpu") if kind == "activations" else tuple(TIER_CODES)
        if kind == "optimizer" and value == INTERLEAVED_OPTIMIZER:
            out |= {"offload_optimizer": "cpu", "interleave_optimizer": True}
            continue
        if kind not in OFFLOAD_KINDS or value not in tiers:
            extra = f", {INTERLEAVED_OPTIMIZER} (optimizer)" if kind == "optimizer" else ""
            raise ValueError(
                f"--offload: {part.strip()!r} is not KIND=TIER with KIND one of "
                f"{', '.join(OFFLOAD_KINDS)} and TIER one of {', '.join(tiers)}{extra}, "
                f"or {OFFLOAD_WINDOW_KEY}=LAYERS")
        out[OFFLOAD_KINDS[kind]] = value
    return out
