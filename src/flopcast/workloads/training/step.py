"""One training step of a parallel configuration: time by part, memory by kind, FLOPs.

Per micro-batch and pipeline stage, each layer costs its GEMMs, its attention core, its
memory-bound element-wise work, a fixed per-layer overhead and its exposed tensor-, context-
and expert-parallel communication (forward once, backward twice the GEMMs and 2.5× the
attention, plus a second forward under full recomputation). The slowest stage sets the
pipeline's pace: step = (m + (p-1)/v)·t_stage + exposed data-parallel communication +
optimizer update (Narayanan et al. 2021 §3; references per term in physics/).

Every input may be a NumPy array (one element per configuration); the result is a dict of
arrays broadcast to the common shape. This is the only implementation: ``flopcast train``
calls it with arrays of length one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from flopcast.catalog.loader import load_framework
from flopcast.physics import comm, kernels, layer, memory
from flopcast.physics import flops as F
from flopcast.physics.pipeline import layers_per_stage, micro_batches_in_flight, pipeline_time
from flopcast.specs.framework import Framework
from flopcast.specs.model import Model
from flopcast.specs.precision import Precision
from flopcast.specs.system import System
from flopcast.workloads.training.layout import Layout
from flopcast.workloads.training.offload import offload_times
from flopcast.workloads.training.phases import token_bytes, training_memory


def training_numerics(precision: Precision) -> layer.Numerics:
    """Number formats of a training recipe for the layer-cost model: low-precision recipes
    (fp8/mxfp8/nvfp4, Transformer Engine) quantise both GEMM operands and write the casts."""
    low = precision.low_precision_weight_bytes if precision.is_low_precision else 0.0
    gemm_bytes = low or precision.activation_bytes
    return layer.Numerics(precision.gemm_dtype, precision.compute_dtype, gemm_bytes, gemm_bytes,
                          precision.activation_bytes, cast_bytes=low)


def training_attention_backend(gpu, requested: str | None = None,
                               framework: Framework | None = None) -> str:
    """The attention kernel of a training run: the job's; else, unless the framework runs
    its own documented attention, the one the calibration chose for this framework from its
    measured whole runs, when the kernel profile has it; else the framework profile's for
    this GPU family (or its 'default'), when the profile has it; else the profile's default.
    A framework whose attention is eager runs eager attention (specs/framework.EAGER_ATTENTION)."""
    if requested:
        return requested
    if framework is not None and framework.attention == "eager":
        return layer.EAGER_ATTENTION
    chosen = framework.attention_backends if framework else {}
    own = chosen.get(gpu.family, chosen.get("default"))
    calibrated = gpu.efficiency.training_attention_backend
    pinned = framework is not None and not framework.attention_chosen_by_calibration
    if calibrated in gpu.kernels.attention and not pinned:
        return calibrated
    if own in gpu.kernels.attention:
        return own
    return gpu.kernels.default_attention


def sustained(system: System) -> System:
    """``system`` as a whole training run sustains its kernels: the GPU's GEMM and attention
    fractions times its family's ``training_kernel_scale`` (specs/efficiency.py), which then
    reads 1 so that a second call changes nothing."""
    eff = system.gpu.efficiency
    if eff.training_kernel_scale == 1.0:
        return system
    eff = eff.updated(kernel_fraction_scale=eff.kernel_fraction_scale * eff.training_kernel_scale,
                      training_kernel_scale=1.0)
    return system.model_copy(update={"gpu": system.gpu.model_copy(update={"efficiency": eff})})


def _prefill_context(model: Model, seq_len, backend: str | None, framework: Framework):
    """Mean keys per query row the attention kernel computes: eager attention scores every
    key of the causal block, a window only masking scores (physics/layer.attention_time
    widens the causal mean to s keys); a fused kernel skips what the window hides unless
    the framework hands the window over as a mask (Framework.sliding_window_as_mask)."""
    if backend == layer.EAGER_ATTENTION:
        return (np.asarray(seq_len, dtype=float) + 1) / 2
    return F.attention_context(model, seq_len, causal=True,
                               window_as_mask=framework.sliding_window_as_mask)


def _layer_times(model: Model, system: System, precision: Precision, seq_len, lay: Layout,
                 moe: bool, backend: str | None, framework: Framework, adapters: tuple = (),
                 frozen: bool = False):
    """Forward and backward seconds of one layer for one micro-batch, by part (costs from
    physics/layer.py; overlap of communication with compute is decided here). Element-wise
    work is the framework's own count when it runs unfused kernels (specs/framework.py)."""
    eff = system.gpu.efficiency
    tokens = lay.micro_batch * seq_len / lay.cp
    place = layer.Placement(tp=lay.tp, sp=lay.sp, cp=lay.cp, ep=lay.ep, etp=lay.etp)
    own = framework.elementwise
    counted = None if own is None else layer.counted_elementwise(model, own, place)
    batch = layer.Batch(prefill_tokens=tokens,
                        prefill_context=_prefill_context(model, seq_len, backend, framework),
                        prefill_sequences=lay.micro_batch)
    cost = layer.layer_cost(model, system, eff, place, training_numerics(precision), batch, moe,
                            backend=backend, fixed=eff.kernel_fixed_cost_scale, backward=True,
                            elementwise_factor=eff.elementwise_traffic_factor,
                            elementwise_counted=counted, adapters=adapters, frozen=frozen,
                            eager_traffic=framework.eager_score_traffic)
    gemm, attn, elem = cost["gemm"], cost["attention"], cost["elementwise"]
    tp_one = cost["tp_comm"]  # two collectives per direction
    # Overlapped (chunked GEMM + transfer): communication hides only behind the GEMMs it runs
    # beside, and at least tp_overlap_exposed_fraction of it stays exposed.
    exposed = eff.tp_overlap_exposed_fraction
    tp_fwd = np.where(lay.tp_overlap, comm.exposed_time(tp_one, gemm, exposed), tp_one)
    tp_bwd = np.where(lay.tp_overlap, comm.exposed_time(tp_one, cost["gemm_bwd"], exposed),
                      tp_one)
    # Context parallel: ring exchange of K and V chunks, cp-1 steps forward, K,V and their
    # gradients backward, hidden behind the attention it feeds (Liu et al. 2023, Ring
    # Attention §3; Megatron-Core context parallelism).
    ab = precision.activation_bytes
    gpu, domain = system.gpu, system.domain_size
    q_heads_kv = model.num_attention_heads if model.is_mla else model.kv_heads
    kv_bytes = tokens * q_heads_kv * (model.head_dim_qk + model.head_dim_v) * ab / lay.tp
    cp_bw = comm.group_bandwidth(lay.cp, lay.tp, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    cp_lat = comm.group_latency(lay.cp, lay.tp, domain, gpu.nvlink_latency_s,
                                system.network_latency_s)
    cp_ring = np.where(lay.cp > 1, (lay.cp - 1) * comm.p2p_time(kv_bytes, cp_bw, cp_lat), 0.0)
    cp_share = eff.cp_overlap_exposed_fraction
    cp_fwd = comm.exposed_time(cp_ring, attn, cp_share)
    cp_bwd = comm.exposed_time(2 * cp_ring, cost["attention_bwd"], cp_share)
    ep_fwd = ep_bwd = cost["ep_comm"]
    overhead = eff.layer_overhead_s
    fwd_compute = gemm + attn + elem + overhead
    bwd_compute = cost["gemm_bwd"] + cost["attention_bwd"] + cost["elementwise_bwd"] + (
        2 * overhead)
    fwd_comm = tp_fwd + cp_fwd + ep_fwd
    recompute = np.where(lay.recompute == 2, fwd_compute + fwd_comm,
                         np.where(lay.recompute == 1, attn, 0.0))
    # What bounds the kernels, for board power: tensor cores (GEMMs, attention) or HBM.
    tensor = gemm + attn + cost["gemm_bwd"] + cost["attention_bwd"]
    stream = elem + cost["elementwise_bwd"]
    return dict(
        tensor=tensor + np.where(lay.recompute == 2, gemm + attn,
                                 np.where(lay.recompute == 1, attn, 0.0)),
        stream=stream + np.where(lay.recompute == 2, elem, 0.0),
        compute=fwd_compute + bwd_compute + recompute,
        recompute=recompute,
        fwd_compute=fwd_compute,
        tp_comm=tp_fwd + tp_bwd + np.where(lay.recompute == 2, tp_fwd, 0.0),
        cp_comm=cp_fwd + cp_bwd + np.where(lay.recompute == 2, cp_fwd, 0.0),
        ep_comm=ep_fwd + ep_bwd + np.where(lay.recompute == 2, ep_fwd, 0.0),
    )


def _head_time(model: Model, system: System, precision: Precision, seq_len, lay: Layout,
               framework: Framework, frozen: bool = False):
    """LM head GEMM and cross-entropy, forward + backward (physics/layer.py), the loss moving
    the framework's bytes per logit; a ``frozen`` head (LoRA) has no weight gradient."""
    tokens = lay.micro_batch * seq_len / lay.cp
    num = training_numerics(precision)
    fixed = system.gpu.efficiency.kernel_fixed_cost_scale
    per_logit = framework.loss_traffic_bytes_per_logit
    return (layer.lm_head_time(model, system.gpu, num, tokens, lay.tp, fixed)
            + layer.lm_head_time(model, system.gpu, num, tokens, lay.tp, fixed,
                                 "dgrad" if frozen else "bwd", per_logit))


def _weight_traffic(model: Model, gpu, framework: Framework, lay: Layout, n_layers_stage,
                    stage_p, trained_share=1.0, frozen: bool = False):
    """Seconds per micro-batch of a framework's weight-sized element-wise work: autocast's
    casts of the fp32 GEMM weights to the compute dtype and of their gradients back (once per
    forward, backward and recomputed forward, one kernel per weight; frozen weights have no
    gradient to cast), and the addition of each micro-batch's gradients after the first into
    the kept ones (spread over the micro-batches; the trained share of them).
    Zero for Megatron (16-bit weights, gradients accumulated by the wgrad GEMM)."""
    gemms = memory.gemm_weight_params(model, lay.tp, n_layers_stage, True)
    passes = (1.0 if frozen else 2.0) + (lay.recompute == 2)
    weights_per_layer = len(F.dense_layer_gemms(model))
    casts = np.where(framework.weight_cast_traffic_bytes_per_param > 0, kernels.stream_time(
        passes * framework.weight_cast_traffic_bytes_per_param * gemms, gpu,
        passes * (weights_per_layer * n_layers_stage + 1)), 0.0)
    m = lay.num_micro_batches
    adds = framework.gradient_accumulation_bytes_per_param * stage_p * trained_share
    accumulate = np.where((m > 1) & (adds > 0), (m - 1) / m * kernels.stream_time(adds, gpu), 0.0)
    return casts + accumulate


def _offload_sizes(model: Model, framework: Framework, precision: Precision, seq_len,
                   lay: Layout, stage_p, shard_params, dp_group, n_layers_stage,
                   trained_p) -> dict:
    """Bytes per GPU the offload tiers move (offload.offload_times' ``sizes``): the rank's
    16-bit parameters (its ZeRO-3 shard), the gradients it owns (its ZeRO-2/3 shard of the
    ``trained_p`` trained parameters), the
    optimizer shard's gradients, parameters and states (memory.state_bytes_per_param), and one
    micro-batch's saved activations of the stage (phases.token_bytes), and the host bytes
    CPU-Adam moves per parameter (physics/host.py)."""
    _, gb, ob = memory.state_bytes_per_param(precision, framework)
    wb = precision.weight_bytes
    tokens = lay.micro_batch * seq_len / lay.cp
    acts = 0.0
    if np.any(lay.offload_act > 0):
        moe_fraction = model.num_moe_layers / model.num_layers
        acts = token_bytes(model, framework, precision, seq_len, lay, moe_fraction)["stored"] * (
            tokens * n_layers_stage)
    return dict(params=stage_p * wb / np.where(lay.zero >= 3, dp_group, 1),
                grads=trained_p * gb / np.where(lay.zero >= 2, dp_group, 1),
                grad_shard=shard_params * gb, param_shard=shard_params * wb,
                states=shard_params * ob, activations=acts, shard_params=shard_params,
                units=n_layers_stage,
                update_bytes=framework.optimizer_update_bytes_per_param + wb)


def _offload_fits(system: System, mem: dict, lay: Layout):
    """Whether the offloaded states fit their tiers: host memory per GPU, and the node's NVMe
    for the job's GPUs on it."""
    if not lay.offloads:
        return True
    host = mem["memory_offload_host_bytes"] <= system.host_memory_bytes
    nvme = mem["memory_offload_nvme_bytes"] * system.domain_size <= system.nvme_bytes
    return host & nvme


def _memory_where_interleave_fits(memory_of, lay: Layout, capacity):
    """(layout, memory) with Deep Optimizer States' interleaving kept only where its GPU buffer
    fits (``memory_of(layout)`` → training_memory's dict): where it does not, the step is plain
    ZeRO-Offload (the GPU has no spare memory to update on) and so is its memory."""
    mem = memory_of(lay)
    if not np.any(lay.interleave > 0):
        return lay, mem
    off = (lay.interleave > 0) & (mem["memory_total_bytes"] > capacity)
    if not np.any(off):
        return lay, mem
    lay = replace(lay, interleave=np.where(off, 0, lay.interleave))
    return lay, memory_of(lay)


def _stage_layers(model: Model, system: System, precision: Precision, seq_len, lay: Layout,
                  backend: str | None, framework: Framework, n_layers_stage, lora_rank,
                  lora_targets) -> dict:
    """Seconds of the stage's layers for one micro-batch, by part (_layer_times): dense and
    MoE layers mixed by their share of the model; LoRA adapters on frozen weights."""
    lora = bool(lora_rank)

    def adapters(moe: bool) -> tuple:
        return F.lora_adapter_gemms(model, lora_rank, lora_targets, moe) if lora else ()

    parts = _layer_times(model, system, precision, seq_len, lay, False, backend, framework,
                         adapters(False), lora)
    if model.is_moe:
        moe_fraction = model.num_moe_layers / model.num_layers
        moe_parts = _layer_times(model, system, precision, seq_len, lay, True, backend,
                                 framework, adapters(True), lora)
        parts = {k: (1 - moe_fraction) * parts[k] + moe_fraction * moe_parts[k] for k in parts}
    return {k: n_layers_stage * v for k, v in parts.items()}


def _optimizer_and_offload(system: System, lay: Layout, layers: dict, stage_compute, gpu_adam,
                           sizes) -> tuple:
    """(optimizer seconds, offload traffic seconds, share of the update run on the GPU):
    Adam over the rank's shard on the GPU, or the offload tiers' CPU update and traffic
    (workloads/training/offload.py; ``sizes()`` gives _offload_sizes)."""
    if not lay.offloads:
        return gpu_adam, 0.0, 0.0
    bwd = stage_compute - layers["fwd_compute"] - layers["recompute"]
    moved = offload_times(system, lay, sizes(),
                          dict(fwd=layers["fwd_compute"], bwd=bwd, gpu_adam=gpu_adam))
    return moved["optimizer_s"], moved["offload_s"], moved["optimizer_gpu_fraction"]


def _pipeline_comm(model: Model, system: System, precision: Precision, lay: Layout, tokens):
    """Pipeline hand-offs of one micro-batch on one stage: activations forward, their
    gradients backward, once per model chunk (v per device when interleaved); scattered over
    tp with SP (Narayanan et al. 2021 §4.1)."""
    gpu, eff = system.gpu, system.gpu.efficiency
    stride = lay.tp * lay.cp * lay.dp
    bw = comm.group_bandwidth(lay.pp, stride, system.domain_size, gpu.scale_up_bandwidth,
                              system.network_bandwidth, eff)
    lat = comm.group_latency(lay.pp, stride, system.domain_size, gpu.nvlink_latency_s,
                             system.network_latency_s)
    num_bytes = tokens * model.hidden_size * precision.activation_bytes / np.where(
        lay.sp, lay.tp, 1)
    return np.where(lay.pp > 1, 2 * lay.vp * comm.p2p_time(num_bytes, bw, lat), 0.0)


def _data_parallel_comm(system: System, precision: Precision, framework: Framework,
                        lay: Layout, n_layers_stage, stage_p, trained_p, stage_compute):
    """(exposed, total) seconds per step of data-parallel communication: gradient all-reduce
    (ZeRO-0), reduce-scatter + all-gather (ZeRO-1/2), or per micro-batch all-gather (fwd),
    all-gather (bwd) and reduce-scatter (ZeRO-3 / FSDP) (Rajbhandari et al. 2020 §7: 2Ψ, 2Ψ
    and 3Ψ of traffic). Overlapped with the backward of the last micro-batch (ZeRO 0-2) or
    with each micro-batch (ZeRO-3), as PyTorch DDP/FSDP and Megatron's overlap-grad-reduce do:
    communication hides only behind the stage's compute, the last bucket cannot hide
    (1/layers of it), and overlapped kernels still cost dp_overlap_exposed_fraction of their
    time."""
    gpu, eff, domain = system.gpu, system.gpu.efficiency, system.domain_size
    dp_group = lay.dp * lay.cp
    bw = comm.group_bandwidth(dp_group, lay.tp, domain, gpu.scale_up_bandwidth,
                              system.network_bandwidth, eff)
    # ZeRO/FSDP and DDP issue one collective per layer (or gradient bucket), not one per step:
    # the ring's (n-1)·latency is paid per layer.
    lat = n_layers_stage * comm.group_latency(dp_group, lay.tp, domain, gpu.nvlink_latency_s,
                                              system.network_latency_s)
    # Parameters travel in the compute copy; gradients in the framework's gradient dtype.
    wb = precision.weight_bytes
    gb = framework.gradient_bytes or precision.weight_bytes
    grad_ar = comm.all_reduce_time(trained_p * gb, dp_group, bw, lat)
    grad_rs = comm.reduce_scatter_time(trained_p * gb, dp_group, bw, lat)
    # ZeRO-1/2 gather the updated (trained) parameters once per step; ZeRO-3 gathers every
    # parameter, frozen or not, for each micro-batch's forward and backward.
    param_ag = comm.all_gather_time(stage_p * wb, dp_group, bw, lat)
    updated_ag = comm.all_gather_time(trained_p * wb, dp_group, bw, lat)
    per_step = np.where(lay.zero == 0, grad_ar, grad_rs + updated_ag)
    per_micro = 2 * param_ag + grad_rs
    floor_share = np.maximum(1.0 / n_layers_stage, eff.dp_overlap_exposed_fraction)

    def exposed(traffic):
        return np.where(lay.dp_overlap,
                        np.maximum(traffic - stage_compute, traffic * floor_share), traffic)

    m = lay.num_micro_batches
    zero3 = lay.zero == 3
    return (np.where(zero3, m * exposed(per_micro), exposed(per_step)),
            np.where(zero3, m * per_micro, per_step))


def _board_power(gpu, lay: Layout, layers: dict, head, optimizer, step):
    """Board power from what bounds each part of the step (physics/kernels.board_power_w):
    GEMM/attention time at the compute-bound power, element-wise and optimizer time at the
    HBM-bound power, the rest (exposed communication, bubble, overheads) near idle."""
    m = lay.num_micro_batches
    tensor_share = np.minimum(m * (layers["tensor"] + head) / step, 1.0)
    stream_share = np.minimum((m * layers["stream"] + np.where(lay.offload, 0.0, optimizer))
                              / step, 1.0 - tensor_share)
    return kernels.board_power_w(gpu, tensor_share, stream_share)


def _step_flops(model: Model, seq_len, lay: Layout, lora_rank, lora_targets) -> dict:
    """Tokens and FLOPs per step in both conventions (flops.py), for throughput and
    utilisation figures."""
    tokens_step = lay.global_batch * seq_len
    adapted = dict(lora_rank=lora_rank or 0, lora_targets=lora_targets)
    return dict(
        tokens_per_step=tokens_step,
        model_flops_per_step=F.training_flops_per_token(model, seq_len, "model", **adapted)
        * tokens_step,
        hardware_flops_per_step=F.training_flops_per_token(
            model, seq_len, "hardware", lay.recompute, **adapted) * tokens_step)


def training_step(model: Model, system: System, precision: Precision, seq_len,
                  lay: Layout, attention_backend: str | None = None,
                  framework: Framework | None = None,
                  detail: bool = True, lora_rank: int | None = None,
                  lora_targets: tuple = ("qkv",)) -> dict[str, np.ndarray]:
    """Time, memory and FLOPs of one optimizer step for each configuration in ``lay``.

    ``attention_backend``: the attention kernel (default: the framework's for this GPU
    family, else the family's calibrated training backend, else the kernel profile's
    default); ``framework``: the training framework profile (default: megatron); without
    ``detail`` memory is only its totals (phases.training_memory), as the planner needs.
    ``lora_rank``: LoRA fine-tuning (TrainingJob.lora_rank): frozen weights run no weight-
    gradient GEMMs and hold no gradients or optimizer states; only the adapters on
    ``lora_targets`` are reduced over data parallelism and updated."""
    framework = framework or load_framework()
    system = sustained(system)
    gpu, eff = system.gpu, system.gpu.efficiency
    seq_len = np.asarray(seq_len, dtype=float)
    n_layers_stage = layers_per_stage(model.num_layers, lay.pp, lay.vp, lay.extra_slots)
    moe_fraction = model.num_moe_layers / model.num_layers
    backend = training_attention_backend(gpu, attention_backend, framework)
    lora = bool(lora_rank)

    layers = _stage_layers(model, system, precision, seq_len, lay, backend, framework,
                           n_layers_stage, lora_rank, lora_targets)
    head = _head_time(model, system, precision, seq_len, lay, framework, lora)
    pp_comm = _pipeline_comm(model, system, precision, lay, lay.micro_batch * seq_len / lay.cp)

    first_p, last_p, expert_p = memory.stage_param_counts(model, lay.tp, lay.pp, lay.ep, lay.vp,
                                                          lay.etp, lay.extra_slots)
    stage_p = np.maximum(first_p, last_p) + expert_p
    # What is trained: every parameter, or only the stage's LoRA adapters.
    trained_p = (n_layers_stage * F.lora_params_per_layer(model, lora_rank, lora_targets,
                                                           lay.tp) if lora else stage_p)
    trained_share = trained_p / np.maximum(stage_p, 1.0)
    stage_compute = layers["compute"] + head + _weight_traffic(
        model, gpu, framework, lay, n_layers_stage, stage_p, trained_share, lora)
    stage_time = stage_compute + layers["tp_comm"] + layers["cp_comm"] + layers["ep_comm"] + pp_comm
    m = lay.num_micro_batches
    pipe = pipeline_time(stage_time, lay.pp, m, lay.vp)

    dp_group = lay.dp * lay.cp
    dp_comm, dp_comm_total = _data_parallel_comm(system, precision, framework, lay,
                                                 n_layers_stage, stage_p, trained_p,
                                                 stage_compute)

    # Optimizer: Adam over this rank's shard (memory-bound) on the GPU, or on the host, and
    # the traffic of offloaded states (workloads/training/offload.py).
    shards = np.where(lay.zero >= 1, dp_group, 1)
    shard_params = trained_p / shards
    gpu_adam = kernels.stream_time(shard_params * framework.optimizer_update_bytes_per_param, gpu)
    in_flight = micro_batches_in_flight(lay.pp, lay.num_micro_batches, lay.vp, lay.schedule)
    lay, mem = _memory_where_interleave_fits(
        lambda lay_: training_memory(model, framework, precision, seq_len, lay_,
                                     (first_p, last_p, expert_p), n_layers_stage, in_flight,
                                     moe_fraction, eff.runtime_reserved_bytes, gpu.hbm_bytes,
                                     detail, trained_share), lay, gpu.hbm_bytes)
    optimizer, offload_s, gpu_fraction = _optimizer_and_offload(
        system, lay, layers, stage_compute, gpu_adam, lambda: _offload_sizes(
            model, framework, precision, seq_len, lay, stage_p, shard_params, dp_group,
            n_layers_stage, trained_p))

    step = pipe + dp_comm + optimizer + offload_s + eff.step_overhead_s
    power = _board_power(gpu, lay, layers, head, optimizer, step)

    bubble = pipe - m * stage_time
    out = dict(
        step_time_s=step,
        compute_s=m * stage_compute,
        recompute_s=m * layers["recompute"],
        tp_comm_s=m * layers["tp_comm"],
        cp_comm_s=m * layers["cp_comm"],
        ep_comm_s=m * layers["ep_comm"],
        pp_comm_s=m * pp_comm,
        bubble_s=bubble,
        dp_comm_exposed_s=dp_comm,
        dp_comm_total_s=dp_comm_total,
        optimizer_s=optimizer,
        optimizer_gpu_fraction=gpu_fraction,
        offload_s=offload_s,
        offload_fits=_offload_fits(system, mem, lay),
        overhead_s=eff.step_overhead_s,
        board_power_w=power,
        **_step_flops(model, seq_len, lay, lora_rank, lora_targets),
        **mem,
    )
    arrays = {k: np.asarray(v, dtype=float) for k, v in out.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    return {k: np.broadcast_to(a, shape) for k, a in arrays.items()}
