"""How a training job is split: Megatron-LM's parallel sizes, batch sizes and memory options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from flopcast.specs.base import Spec
from flopcast.specs.limits import MAX_BATCH, MAX_GPUS

Recompute = Literal["none", "selective", "full"]
#: Where a training state lives (ZeRO-Offload: cpu; ZeRO-Infinity: cpu or nvme).
Tier = Literal["gpu", "cpu", "nvme"]
TIER_CODES = {"gpu": 0, "cpu": 1, "nvme": 2}
#: What can be offloaded, as --offload names it, and the Parallelism field of each.
OFFLOAD_KINDS = {"optimizer": "offload_optimizer", "gradients": "offload_gradients",
                 "params": "offload_params", "activations": "offload_activations"}
Schedule = Literal["1f1b", "interleaved", "gpipe"]


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
