"""estimate_training(job): the step model on a batch of one, in people's terms."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from flopcast.specs.training import TrainingJob
from flopcast.workloads.training.layout import Layout
from flopcast.workloads.training.phases import PARTS, PHASES
from flopcast.workloads.training.step import training_attention_backend, training_step

SECONDS_PER_DAY = 86400.0
JOULES_PER_MWH = 3.6e9

TIME_PARTS = ("compute_s", "tp_comm_s", "cp_comm_s", "ep_comm_s", "pp_comm_s", "bubble_s",
              "dp_comm_exposed_s", "optimizer_s", "offload_s", "overhead_s")
MEMORY_KINDS = ("weights", "gradients", "optimizer", "activations", "temporary")


@dataclass(frozen=True)
class TrainingEstimate:
    """What one training configuration costs. Times in s, memory in bytes, energy in MWh.

    ``memory`` is the largest pipeline stage's bytes per GPU by kind at its worst moment
    (``total``, which ``fits`` compares with ``capacity``; ``allocated`` = total less the
    runtime reserve, what torch.cuda.max_memory_allocated reports); ``memory_by_stage`` gives
    the first stage (embedding, most micro-batches in flight) and the last (LM head, logits);
    middle stages lie between them. ``memory_phases`` breaks the largest stage's memory into
    the worst moment of each phase (forward, backward, optimizer_step) and what it is made of
    (workloads/training/phases.py PARTS), ``memory_phases_by_stage`` the same per stage, and
    ``memory_peak_phase`` names the phase that sets the peak. ``offload`` gives the tier of
    each offloadable state and the bytes placed on the host (per GPU) and on NVMe (per node)
    with their capacities; ``fits`` needs those to fit too.
    """

    step_time_s: float
    tokens_per_s: float
    tokens_per_s_per_gpu: float
    model_tflops_per_gpu: float
    hardware_tflops_per_gpu: float
    mfu: float
    hfu: float
    fits: bool
    memory: dict[str, float]
    memory_largest_stage: int
    memory_by_stage: dict[str, dict[str, float]]
    memory_phases: dict[str, dict[str, float]]
    memory_phases_by_stage: dict[str, dict[str, dict[str, float]]]
    memory_peak_phase: str
    offload: dict
    breakdown_s: dict[str, float]
    num_gpus: int
    tokens: float | None
    time_to_train_days: float | None
    gpu_hours: float | None
    cost_usd: float | None
    energy_mwh: float | None
    board_power_w: float
    config: dict

    def to_dict(self) -> dict:
        return asdict(self)


def memory_phases(v: dict, stage: str) -> dict[str, dict[str, float]]:
    """Per phase of one stage ("first" or "last"): bytes per part, the ``total`` and the
    ``allocated`` part of it (less the runtime reserve), from training_step's scalars ``v``."""
    out = {}
    for phase in PHASES:
        parts = {p: v[f"memory_{stage}_{phase}_{p}_bytes"] for p in PARTS}
        total = sum(parts.values())
        out[phase] = parts | {"total": total, "allocated": total - parts["reserved"]}
    return out


def _offload_summary(job: TrainingJob, v: dict) -> dict:
    """Tier of each state, what the host (per GPU) and the node's NVMe hold, the streaming
    window (Superpipeline) and the share of the update Deep Optimizer States runs on the GPU
    (0 when off, or when its buffer did not fit)."""
    system, p = job.system, job.parallelism
    return p.offload | dict(
        stream_window_layers=p.stream_window_layers, interleave_optimizer=p.interleave_optimizer,
        optimizer_gpu_fraction=v["optimizer_gpu_fraction"],
        host_bytes=v["memory_offload_host_bytes"], host_capacity_bytes=system.host_memory_bytes,
        nvme_bytes=v["memory_offload_nvme_bytes"] * system.domain_size,
        nvme_capacity_bytes=system.nvme_bytes)


def _memory_report(v: dict) -> dict:
    """TrainingEstimate's memory fields from a one-configuration training step ``v``: peak
    by kind on the largest stage, each end stage's, and the phases of both."""
    memory = {k: v[f"memory_{k}_bytes"] for k in MEMORY_KINDS}
    memory["total"] = v["memory_total_bytes"]
    memory["allocated"] = v["memory_allocated_bytes"]
    memory["capacity"] = v["memory_capacity_bytes"]
    by_stage = {}
    for stage in ("first", "last"):
        kinds = {k: v[f"memory_{stage}_stage_{k}_bytes"] for k in MEMORY_KINDS}
        by_stage[stage] = kinds | {"total": sum(kinds.values())}
    phases_by_stage = {stage: memory_phases(v, stage) for stage in ("first", "last")}
    largest = "first" if v["memory_largest_stage"] == 0 else "last"
    return dict(memory=memory, memory_largest_stage=int(v["memory_largest_stage"]),
                memory_by_stage=by_stage, memory_phases=phases_by_stage[largest],
                memory_phases_by_stage=phases_by_stage,
                memory_peak_phase=PHASES[int(v[f"memory_{largest}_peak_phase"])])


def _budget_totals(job: TrainingJob, tokens_per_s: float, board_power_w: float) -> tuple:
    """(days, GPU-hours, $, MWh) to train ``job.tokens`` tokens; all None without a budget."""
    if not job.tokens:
        return None, None, None, None
    seconds = job.tokens / tokens_per_s
    n = job.system.num_gpus
    gpu_hours = seconds * n / 3600
    return (seconds / SECONDS_PER_DAY, gpu_hours,
            gpu_hours * job.system.gpu.price_per_gpu_hour_usd,
            n * board_power_w * seconds / JOULES_PER_MWH)


def _config(job: TrainingJob) -> dict:
    """The configuration a TrainingEstimate reports (what was priced, with its sources)."""
    p, gpu = job.parallelism, job.system.gpu
    n = job.system.num_gpus
    return dict(
        model=job.model.name, gpu=gpu.id, efficiency_source=gpu.efficiency_source,
        kernels_source=gpu.kernels_source,
        attention_backend=training_attention_backend(gpu, job.attention_backend,
                                                     job.framework),
        framework=job.framework.id,
        num_gpus=n, gpus_per_node=job.system.gpus_per_node,
        precision=job.precision.name, seq_len=job.seq_len, tp=p.tp, pp=p.pp, vp=p.vp,
        cp=p.cp, ep=p.ep, etp=p.expert_tp, dp=p.dp, sp=p.sequence_parallel,
        zero_stage=p.zero_stage,
        micro_batch=p.micro_batch, global_batch=p.global_batch,
        num_micro_batches=job.num_micro_batches, recompute=p.recompute,
        schedule=p.pipeline_schedule, tp_comm_overlap=p.tp_overlap,
        cpu_offload=p.cpu_offload_optimizer, offload=p.offload,
        embedding_loss_stages=p.embedding_loss_stages,
        lora_rank=job.lora_rank,
        lora_targets=list(job.lora_targets) if job.lora_rank else None,
    )


def estimate_training(job: TrainingJob) -> TrainingEstimate:
    """Estimate one training job.

    >>> from flopcast.catalog import load_gpu, load_model
    >>> from flopcast.specs import Parallelism, System, TrainingJob
    >>> job = TrainingJob(model=load_model("llama-3.1-8b"),
    ...                   system=System(gpu=load_gpu("h100-sxm"), num_gpus=8),
    ...                   parallelism=Parallelism(micro_batch=1, global_batch=64), seq_len=4096)
    >>> est = estimate_training(job)
    >>> est.fits, 0.2 < est.mfu < 0.7
    (True, True)
    """
    r = training_step(job.model, job.system, job.precision, job.seq_len, Layout.from_job(job),
                      job.attention_backend, job.framework, lora_rank=job.lora_rank,
                      lora_targets=job.lora_targets)
    v = {k: float(np.asarray(a).reshape(-1)[0]) for k, a in r.items()}
    gpu = job.system.gpu
    n = job.system.num_gpus
    step = v["step_time_s"]
    peak = gpu.peak(job.precision.gemm_dtype)
    model_tflops = v["model_flops_per_step"] / step / n
    hardware_tflops = v["hardware_flops_per_step"] / step / n
    tokens_per_s = v["tokens_per_step"] / step
    mem = _memory_report(v)
    memory = mem["memory"]
    budget = job.tokens
    days, gpu_hours, cost, energy = _budget_totals(job, tokens_per_s, v["board_power_w"])
    return TrainingEstimate(
        step_time_s=step,
        tokens_per_s=tokens_per_s,
        tokens_per_s_per_gpu=tokens_per_s / n,
        model_tflops_per_gpu=model_tflops / 1e12,
        hardware_tflops_per_gpu=hardware_tflops / 1e12,
        mfu=model_tflops / peak,
        hfu=hardware_tflops / peak,
        fits=bool(memory["total"] <= memory["capacity"] and v["offload_fits"]),
        **mem,
        offload=_offload_summary(job, v),
        breakdown_s={k: v[k] for k in TIME_PARTS} | {"recompute_s": v["recompute_s"]},
        num_gpus=n,
        tokens=budget,
        time_to_train_days=days,
        gpu_hours=gpu_hours,
        cost_usd=cost,
        energy_mwh=energy,
        board_power_w=v["board_power_w"],
        config=_config(job),
    )
