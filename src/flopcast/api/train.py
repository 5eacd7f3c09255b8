"""`train`: one training configuration — its request, its result and the function answering
it (the CLI's ``flopcast train`` and the web's ``POST /api/train`` both call run_train).

Imports the training workload: the CLI imports this module inside the command."""

from __future__ import annotations

from typing import Any

from pydantic import create_model

from flopcast.api.common import (
    Finite,
    Int,
    ModelFlags,
    PrecisionChoice,
    RecomputeChoice,
    ScheduleChoice,
    Warn,
    beyond_context,
    ensure_finite,
    fields_of,
    ignore,
    lora_targets_of,
    parse_count,
    partial_node,
    validated_update,
)
from flopcast.errors import FlopcastError
from flopcast.workloads.training.estimate import TrainingEstimate


class TrainRequest(ModelFlags):
    """The options of ``flopcast train`` (same names, snake_case; defaults as the CLI's)."""

    gpu: str = "h100-sxm"
    gpus: Int = 8
    gpus_per_node: Int | None = None
    network_gbps: Finite | None = None
    tp: Int = 1
    pp: Int = 1
    vp: Int = 1
    cp: Int = 1
    ep: Int = 1
    etp: Int | None = None
    embedding_loss_stages: bool | None = None
    dp: Int | None = None
    sp: bool | None = None
    micro_batch: Int = 1
    global_batch: Int | None = None
    seq_len: Int = 4096
    zero: Int | None = None
    recompute: RecomputeChoice = RecomputeChoice.none
    schedule: ScheduleChoice | None = None
    precision: PrecisionChoice = PrecisionChoice.bf16
    tp_comm_overlap: bool | None = None
    dp_overlap: bool = True
    cpu_offload: bool = False
    offload: str | None = None
    host_memory_gib: Finite | None = None
    nvme_tb: Finite | None = None
    nvme_gbps: Finite | None = None
    attention_backend: str | None = None
    framework: str = "megatron"
    lora_rank: Int | None = None
    lora_targets: str | None = None
    tokens: str | None = None
    price: Finite | None = None
    calibration: str | None = None


#: What ``flopcast train --json`` prints: the TrainingEstimate's fields (times in s, memory in
#: bytes, energy in MWh; workloads/training/estimate.py documents each), then the price per
#: GPU-hour assumed and the expected error of the step time and of memory.
TrainResult = create_model(
    "TrainResult", __doc__="What `flopcast train --json` prints: a training estimate (times "
    "in s, memory in bytes, energy in MWh), the price per GPU-hour assumed and the expected "
    "error of the step time and of memory.",
    **fields_of(TrainingEstimate), price_per_gpu_hour_usd=(float, ...),
    expected_error=(dict[str, Any], ...), expected_error_memory=(dict[str, Any], ...))


def training_job(r: TrainRequest, warn: Warn = ignore):
    """The TrainingJob a request describes (catalog entries loaded, overrides validated);
    options this layout does not use are named through ``warn``."""
    from flopcast.catalog import load_framework, load_gpu
    from flopcast.specs import Parallelism, System, TrainingJob

    the_model = r.resolve()
    the_gpu = load_gpu(r.gpu, r.calibration, r.framework)
    if r.price is not None:  # through GPU's own validation
        the_gpu = validated_update(the_gpu, "--price", "price_per_gpu_hour_usd", r.price)
    if r.network_gbps is not None and r.network_gbps <= 0:
        raise FlopcastError(f"--network-gbps: must be > 0 Gb/s; got {r.network_gbps:g}")
    system = System(gpu=the_gpu, num_gpus=r.gpus, gpus_per_node=r.gpus_per_node,
                    network_bandwidth=None if r.network_gbps is None
                    else r.network_gbps * 1e9 / 8,
                    **_offload_system(r.host_memory_gib, r.nvme_tb, r.nvme_gbps))
    framework = load_framework(r.framework)
    offload = parse_offload(r.offload)
    if r.cpu_offload and offload.get("offload_optimizer", "cpu") != "cpu":
        raise FlopcastError(f"--cpu-offload keeps the optimizer on the host; --offload says "
                            f"optimizer={offload['offload_optimizer']}: give one of them")
    parallel = Parallelism(
        tp=r.tp, pp=r.pp, vp=r.vp, cp=r.cp, ep=r.ep, etp=r.etp, dp=r.dp, sp=r.sp,
        zero_stage=framework.default_zero_stage if r.zero is None else r.zero,
        micro_batch=r.micro_batch, global_batch=r.global_batch,
        recompute=r.recompute.value, schedule=r.schedule.value if r.schedule else None,
        tp_comm_overlap=r.tp_comm_overlap, dp_comm_overlap=r.dp_overlap,
        cpu_offload_optimizer=r.cpu_offload, **offload,
        embedding_loss_stages=r.embedding_loss_stages,
    )
    return TrainingJob(model=the_model, system=system, parallelism=parallel,
                       seq_len=r.seq_len, precision=r.precision.value,
                       tokens=parse_count(r.tokens) if r.tokens is not None else None,
                       attention_backend=r.attention_backend, framework=framework,
                       lora_rank=r.lora_rank,
                       lora_targets=lora_targets_of(r.lora_targets, r.lora_rank, warn))


def run_train(request: TrainRequest, warn: Warn = ignore):
    """Estimate one training configuration: a TrainResult. Refusals raise FlopcastError or
    pydantic's ValidationError, each one line (api.common.one_line); ``warn`` receives what
    is allowed but doubtful."""
    from flopcast.workloads.training import estimate_training

    job = training_job(request, warn)
    for text in doubtful_options(request, job):
        warn(text)
    est = estimate_training(job)
    if (text := beyond_context(job.model, request.seq_len, "--seq-len")) is not None:
        warn(text)
    if not est.fits:
        gpu_full = est.memory["total"] > est.memory["capacity"]
        where = (f"the largest stage needs {est.memory['total'] / 2**30:,.1f} GiB per GPU of "
                 f"{est.memory['capacity'] / 2**30:,.1f}" if gpu_full else
                 "the offloaded states overflow the host memory or NVMe (--host-memory-gib, "
                 "--nvme-tb)")
        warn(f"does not fit: {where}; the times are what the step would take if it fit "
             "(`flopcast plan train` searches layouts that do)")
    out = est.to_dict() | training_assumptions(job.system.gpu, job.framework.id)
    ensure_finite(out, "estimate")
    return TrainResult.model_validate(out)


def doubtful_options(r: TrainRequest, job) -> list[str]:
    """Options given that this layout does not use, and a last node left partial, one
    warning each. Not refused: a script sweeping several models or layouts passes the same
    flags to all, but a user who typed --etp for a dense model should not believe it was
    priced."""
    out = []
    if (text := partial_node(job.system.num_gpus, job.system.gpus_per_node)) is not None:
        out.append(text)
    if r.etp not in (None, 1) and not job.model.num_experts:
        out.append(f"--etp {r.etp}: ignored; {job.model.name} has no experts")
    for option, value in (("--sp", r.sp), ("--tp-comm-overlap", r.tp_comm_overlap)):
        if value and r.tp == 1:
            out.append(f"{option}: ignored with --tp 1 (it acts on the tensor-parallel group)")
    p = job.parallelism
    placed = {p.offload_optimizer, p.offload_gradients, p.offload_params,
              p.offload_activations}
    # NVMe-resident states pass through pinned host buffers (ZeRO-Infinity), so NVMe uses
    # the host tier too.
    tiers = (("--host-memory-gib", r.host_memory_gib, {"cpu", "cpu-interleaved", "nvme"},
              "the host"), ("--nvme-tb", r.nvme_tb, {"nvme"}, "NVMe"),
             ("--nvme-gbps", r.nvme_gbps, {"nvme"}, "NVMe"))
    for option, value, used_by, tier in tiers:
        if value is not None and not placed & used_by:
            out.append(f"{option}: ignored; nothing is offloaded to {tier}")
    return out


def parse_offload(text: str | None) -> dict:
    """'optimizer=cpu,params=nvme,window=4' → Parallelism keyword arguments (the grammar is
    specs.parallelism.parse_offload's); one line naming --offload and the bad part otherwise."""
    from flopcast.specs.parallelism import parse_offload as parse

    try:
        return parse(text)
    except ValueError as e:
        raise FlopcastError(str(e)) from None


def _offload_system(host_memory_gib, nvme_tb, nvme_gbps) -> dict:
    """System keyword arguments of the offload tiers given in the request."""
    values = {"host_memory_bytes": (host_memory_gib, 2**30, "--host-memory-gib"),
              "nvme_bytes": (nvme_tb, 1e12, "--nvme-tb"),
              "nvme_bandwidth": (nvme_gbps, 1e9, "--nvme-gbps")}
    out = {}
    for field, (value, unit, option) in values.items():
        if value is None:
            continue
        if value <= 0:
            raise FlopcastError(f"{option}: must be > 0; got {value:g}")
        out[field] = value * unit
    return out


def training_assumptions(gpu, framework_id: str = "megatron") -> dict:
    """What the cost and the error rest on: the price per GPU-hour and the expected error of
    the step time (and of memory) on this GPU family with this framework's profile
    (flopcast.accuracy.training_kinds: measurements of another framework do not vouch)."""
    from flopcast.accuracy import expected_error, training_kinds

    step, mem = training_kinds(framework_id)
    return {"price_per_gpu_hour_usd": gpu.price_per_gpu_hour_usd,
            "expected_error": expected_error(step, [gpu.family]),
            "expected_error_memory": expected_error(mem, [gpu.family])}
