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

import numpy as np

from flopcast.physics import comm, compute, memory
from flopcast.physics import flops as F
from flopcast.physics.compute import (
    ELEMENTWISE_BACKWARD_PER_FORWARD,
    NORM_ELEMENTS,
    RESIDUAL_ELEMENTS,
)
from flopcast.physics.pipeline import layers_per_stage, micro_batches_in_flight, pipeline_time
from flopcast.specs.model import Model
from flopcast.specs.precision import Precision
from flopcast.specs.system import System
from flopcast.workloads.training.layout import Layout

#: Adam update traffic per parameter: read the 16-bit gradient (2), read and write the fp32
#: master weight, momentum and variance (3·8), write the 16-bit weight (2) = 28 bytes
#: (memory-bound; Megatron's distributed optimizer does it on each rank's shard).
ADAM_UPDATE_BYTES_PER_PARAM = 28

#: Cross-entropy over the vocabulary per token: read 16-bit logits, write and read fp32
#: probabilities, write the 16-bit gradient (Megatron vocab-parallel cross entropy).
CROSS_ENTROPY_BYTES_PER_LOGIT = 2 + 4 + 4 + 2


def _gemm_list_time(gemms, tokens, lay: Layout, system: System, precision: Precision):
    """Forward time of a list of weight GEMMs for ``tokens`` tokens on one rank."""
    gpu, eff = system.gpu, system.gpu.efficiency
    peak_low = gpu.peak(precision.gemm_dtype)
    peak_other = gpu.peak(precision.compute_dtype)
    low_fraction = eff.low_precision_gemm_fraction if precision.is_low_precision else 1.0
    low_bytes = 1.0 if precision.is_low_precision else precision.activation_bytes
    total = 0.0
    for g in gemms:
        k = g.k / lay.tp if g.split == "row" else g.k
        n = g.n / lay.tp if g.split == "column" else g.n
        if g.experts:
            local_experts = g.experts / lay.ep
            rows = tokens * g.tokens_per_token * lay.ep / g.experts
        else:
            local_experts = 1.0
            rows = tokens * g.tokens_per_token
        if g.split == "replicated":
            peak, fraction, nbytes = peak_other, 1.0, precision.activation_bytes
        else:
            peak, fraction, nbytes = peak_low, low_fraction, low_bytes
        total = total + local_experts * compute.gemm_time(
            rows, n, k, peak, gpu.hbm_bandwidth, eff, nbytes, fraction
        )
    return total


def _elementwise_bytes_per_token(model: Model, lay: Layout, precision: Precision, moe: bool):
    """Forward element-wise bytes per token per layer on one rank (see constants above)."""
    h, ab = model.hidden_size, precision.activation_bytes
    norms = 1 if model.parallel_attention else 2
    replicated = norms * NORM_ELEMENTS * h + 2 * RESIDUAL_ELEMENTS * h
    if model.dropout:
        replicated += 2 * 2 * h  # two dropouts: read input, write output (+ mask, below)
    replicated_bytes = ab * replicated + (2 * h if model.dropout else 0)
    replicated_bytes = np.where(lay.sp, replicated_bytes / lay.tp, replicated_bytes)
    act_per_width = 3 if model.mlp == "swiglu" else 2  # SwiGLU reads gate and up, writes 1
    if moe:
        width = model.moe_top_k * model.moe_ffn_hidden_size + (
            model.num_shared_experts * model.shared_expert_ffn
        )
        permute = 2 * 2 * model.moe_top_k * h  # token dispatch and combine copies
    else:
        width, permute = model.ffn_hidden, 0
    q_dim = model.num_attention_heads * model.head_dim_qk
    k_dim = model.kv_heads * model.head_dim_qk
    rotary = 2 * (q_dim + k_dim) if model.position_embedding == "rotary" else 0
    split_bytes = ab * (act_per_width * width + rotary + permute) / lay.tp
    cast_bytes = 0.0
    if precision.is_low_precision:  # quantize each GEMM input: read 16-bit, write 8/4-bit
        gemm_inputs = 2 * h + (q_dim + width) / lay.tp
        cast_bytes = (ab + precision.low_precision_weight_bytes) * gemm_inputs
    return replicated_bytes + split_bytes + cast_bytes


def _layer_times(model: Model, system: System, precision: Precision, seq_len, lay: Layout,
                 moe: bool):
    """Forward and backward seconds of one layer for one micro-batch, by part."""
    gpu, eff = system.gpu, system.gpu.efficiency
    tokens = lay.micro_batch * seq_len / lay.cp
    gemms = F.moe_layer_gemms(model) if moe else F.dense_layer_gemms(model)
    gemm = _gemm_list_time(gemms, tokens, lay, system, precision)
    attn_flops = tokens * F.attention_core_flops_per_token(model, seq_len, causal=True) / lay.tp
    attn = compute.attention_time(attn_flops, gpu.peak(precision.compute_dtype), eff)
    elem = compute.memory_time(
        tokens * _elementwise_bytes_per_token(model, lay, precision, moe), gpu.hbm_bandwidth, eff
    )
    ab = precision.activation_bytes
    domain = system.domain_size
    # Tensor parallel: 2 all-reduces per layer forward (or all-gather + reduce-scatter with
    # SP, same ring volume) and 2 backward (Shoeybi et al. 2019 §3; Korthikanti §4.2.2).
    tp_bw = comm.group_bandwidth(lay.tp, 1, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    tp_lat = comm.group_latency(lay.tp, 1, domain, gpu.nvlink_latency_s, system.network_latency_s)
    tp_one = comm.all_reduce_time(tokens * model.hidden_size * ab, lay.tp, tp_bw, tp_lat)
    # Overlapped (chunked GEMM + transfer), at least tp_overlap_exposed_fraction stays exposed.
    exposed = eff.tp_overlap_exposed_fraction
    tp_fwd = np.where(lay.tp_overlap,
                      np.maximum(2 * tp_one - gemm, exposed * 2 * tp_one), 2 * tp_one)
    tp_bwd = np.where(lay.tp_overlap,
                      np.maximum(2 * tp_one - 2 * gemm, exposed * 2 * tp_one), 2 * tp_one)
    # Context parallel: ring exchange of K and V chunks, cp-1 steps forward, K,V and their
    # gradients backward, hidden behind the attention it feeds (Liu et al. 2023, Ring
    # Attention §3; Megatron-Core context parallelism).
    q_heads_kv = model.num_attention_heads if model.is_mla else model.kv_heads
    kv_bytes = tokens * q_heads_kv * (model.head_dim_qk + model.head_dim_v) * ab / lay.tp
    cp_bw = comm.group_bandwidth(lay.cp, lay.tp, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    cp_lat = comm.group_latency(lay.cp, lay.tp, domain, gpu.nvlink_latency_s,
                                system.network_latency_s)
    cp_ring = np.where(lay.cp > 1, (lay.cp - 1) * comm.p2p_time(kv_bytes, cp_bw, cp_lat), 0.0)
    cp_share = eff.cp_overlap_exposed_fraction
    cp_fwd = np.maximum(cp_ring - attn, cp_share * cp_ring)
    cp_bwd = np.maximum(2 * cp_ring - F.FLASH_ATTENTION_BACKWARD_PER_FORWARD * attn,
                        cp_share * 2 * cp_ring)
    # Expert parallel: dispatch and combine all-to-alls forward, twice again backward
    # (Lepikhin et al. 2020 GShard §2.2).
    if moe:
        per_domain = comm.ranks_per_domain(lay.ep, lay.etp, domain)  # ETP innermost
        a2a_bytes = tokens * model.moe_top_k * model.hidden_size * ab / np.where(lay.sp, lay.tp, 1)
        a2a = comm.all_to_all_two_level_time(
            a2a_bytes, lay.ep, per_domain, gpu.scale_up_bandwidth, system.network_bandwidth, eff,
            gpu.nvlink_latency_s, system.network_latency_s,
        )
        ep_fwd = ep_bwd = 2 * a2a
    else:
        ep_fwd = ep_bwd = 0.0
    overhead = eff.layer_overhead_s
    fwd_compute = gemm + attn + elem + overhead
    bwd_compute = (F.LINEAR_BACKWARD_PER_FORWARD * gemm
                   + F.FLASH_ATTENTION_BACKWARD_PER_FORWARD * attn
                   + ELEMENTWISE_BACKWARD_PER_FORWARD * elem + 2 * overhead)
    fwd_comm = tp_fwd + cp_fwd + ep_fwd
    recompute = np.where(lay.recompute == 2, fwd_compute + fwd_comm,
                         np.where(lay.recompute == 1, attn, 0.0))
    return dict(
        compute=fwd_compute + bwd_compute + recompute,
        recompute=recompute,
        fwd_compute=fwd_compute,
        tp_comm=tp_fwd + tp_bwd + np.where(lay.recompute == 2, tp_fwd, 0.0),
        cp_comm=cp_fwd + cp_bwd + np.where(lay.recompute == 2, cp_fwd, 0.0),
        ep_comm=ep_fwd + ep_bwd + np.where(lay.recompute == 2, ep_fwd, 0.0),
    )


def _head_time(model: Model, system: System, precision: Precision, seq_len, lay: Layout):
    """LM head GEMM (16-bit, as Transformer Engine keeps it) and cross-entropy, fwd + bwd."""
    gpu, eff = system.gpu, system.gpu.efficiency
    tokens = lay.micro_batch * seq_len / lay.cp
    vocab = model.vocab_size / lay.tp
    gemm = compute.gemm_time(tokens, vocab, model.hidden_size, gpu.peak(precision.compute_dtype),
                             gpu.hbm_bandwidth, eff, precision.activation_bytes)
    loss = compute.memory_time(tokens * vocab * CROSS_ENTROPY_BYTES_PER_LOGIT, gpu.hbm_bandwidth,
                               eff)
    return (1 + F.LINEAR_BACKWARD_PER_FORWARD) * gemm + loss


def training_step(model: Model, system: System, precision: Precision, seq_len,
                  lay: Layout) -> dict[str, np.ndarray]:
    """Time, memory and FLOPs of one optimizer step for each configuration in ``lay``."""
    gpu, eff = system.gpu, system.gpu.efficiency
    seq_len = np.asarray(seq_len, dtype=float)
    n_layers_stage = layers_per_stage(model.num_layers, lay.pp, lay.vp, lay.extra_slots)
    moe_fraction = model.num_moe_layers / model.num_layers
    parts = _layer_times(model, system, precision, seq_len, lay, moe=False)
    if model.is_moe:
        moe_parts = _layer_times(model, system, precision, seq_len, lay, moe=True)
        parts = {k: (1 - moe_fraction) * parts[k] + moe_fraction * moe_parts[k] for k in parts}
    layers = {k: n_layers_stage * v for k, v in parts.items()}
    head = _head_time(model, system, precision, seq_len, lay)
    domain = system.domain_size
    ab = precision.activation_bytes
    tokens = lay.micro_batch * seq_len / lay.cp

    # Pipeline hand-offs: activations forward, their gradients backward, once per model chunk
    # (v per device when interleaved); scattered over tp with SP (Narayanan et al. §4.1).
    pp_stride = lay.tp * lay.cp * lay.dp
    pp_bw = comm.group_bandwidth(lay.pp, pp_stride, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    pp_lat = comm.group_latency(lay.pp, pp_stride, domain, gpu.nvlink_latency_s,
                                system.network_latency_s)
    pp_bytes = tokens * model.hidden_size * ab / np.where(lay.sp, lay.tp, 1)
    pp_comm = np.where(lay.pp > 1, 2 * lay.vp * comm.p2p_time(pp_bytes, pp_bw, pp_lat), 0.0)

    stage_compute = layers["compute"] + head
    stage_time = stage_compute + layers["tp_comm"] + layers["cp_comm"] + layers["ep_comm"] + pp_comm
    m = lay.num_micro_batches
    pipe = pipeline_time(stage_time, lay.pp, m, lay.vp)

    # Data parallel: gradient all-reduce (ZeRO-0), reduce-scatter + all-gather (ZeRO-1/2),
    # or per micro-batch all-gather (fwd), all-gather (bwd) and reduce-scatter (ZeRO-3 / FSDP)
    # (Rajbhandari et al. 2020 §7: 2Ψ, 2Ψ and 3Ψ of traffic). Overlapped with the backward of
    # the last micro-batch (ZeRO 0-2) or with each micro-batch (ZeRO-3), as PyTorch DDP/FSDP
    # and Megatron's overlap-grad-reduce do; the last bucket cannot hide (1/layers of it), and
    # overlapped kernels still cost dp_overlap_exposed_fraction of their time.
    first_p, last_p, expert_p = memory.stage_param_counts(model, lay.tp, lay.pp, lay.ep, lay.vp,
                                                          lay.etp, lay.extra_slots)
    stage_p = np.maximum(first_p, last_p) + expert_p
    dp_group = lay.dp * lay.cp
    dp_bw = comm.group_bandwidth(dp_group, lay.tp, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    # ZeRO/FSDP and DDP issue one collective per layer (or gradient bucket), not one per step:
    # the ring's (n-1)·latency is paid per layer.
    dp_lat = n_layers_stage * comm.group_latency(dp_group, lay.tp, domain, gpu.nvlink_latency_s,
                                                 system.network_latency_s)
    wb, gb = precision.weight_bytes, precision.weight_bytes
    grad_ar = comm.all_reduce_time(stage_p * gb, dp_group, dp_bw, dp_lat)
    grad_rs = comm.reduce_scatter_time(stage_p * gb, dp_group, dp_bw, dp_lat)
    param_ag = comm.all_gather_time(stage_p * wb, dp_group, dp_bw, dp_lat)
    per_step = np.where(lay.zero == 0, grad_ar, grad_rs + param_ag)
    per_micro = 2 * param_ag + grad_rs
    floor_share = np.maximum(1.0 / n_layers_stage, eff.dp_overlap_exposed_fraction)
    step_exposed = np.where(lay.dp_overlap,
                            np.maximum(per_step - stage_compute, per_step * floor_share), per_step)
    micro_exposed = m * np.where(lay.dp_overlap,
                                 np.maximum(per_micro - stage_compute, per_micro * floor_share),
                                 per_micro)
    zero3 = lay.zero == 3
    dp_comm = np.where(zero3, micro_exposed, step_exposed)
    dp_comm_total = np.where(zero3, m * per_micro, per_step)

    # Optimizer: Adam over this rank's shard (memory-bound), or on the host (ZeRO-Offload).
    shards = np.where(lay.zero >= 1, dp_group, 1)
    shard_params = stage_p / shards
    gpu_adam = compute.memory_time(shard_params * ADAM_UPDATE_BYTES_PER_PARAM, gpu.hbm_bandwidth,
                                   eff)
    host_adam = shard_params * (gb + wb) / gpu.pcie_bandwidth + (
        shard_params / eff.cpu_adam_params_per_s
    )
    optimizer = np.where(lay.offload, host_adam, gpu_adam)

    step = pipe + dp_comm + optimizer + eff.step_overhead_s

    # FLOPs per step in both conventions (flops.py), for throughput and utilisation figures.
    tokens_step = lay.global_batch * seq_len
    model_flops = F.training_flops_per_token(model, seq_len, "model") * tokens_step
    hardware_flops = F.training_flops_per_token(model, seq_len, "hardware",
                                                lay.recompute) * tokens_step

    mem = _memory(model, system, precision, seq_len, lay, first_p, last_p, expert_p,
                  n_layers_stage, moe_fraction)

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
        overhead_s=eff.step_overhead_s,
        tokens_per_step=tokens_step,
        model_flops_per_step=model_flops,
        hardware_flops_per_step=hardware_flops,
        **mem,
    )
    arrays = {k: np.asarray(v, dtype=float) for k, v in out.items()}
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    return {k: np.broadcast_to(a, shape) for k, a in arrays.items()}


def _memory(model, system, precision, seq_len, lay, first_p, last_p, expert_p, n_layers_stage,
            moe_fraction):
    """Bytes per GPU on the first and last pipeline stage; the larger is reported."""
    eff = system.gpu.efficiency
    dense_shards = lay.dp * lay.cp
    expert_shards = np.maximum(lay.tp * dense_shards / (lay.etp * lay.ep), 1)  # edp
    tokens = lay.micro_batch * seq_len / lay.cp
    ab = precision.activation_bytes

    def per_layer(recompute):
        a = memory.activation_bytes_per_token_layer(model, seq_len, lay.tp, lay.sp, recompute, ab)
        if model.is_moe:
            a_moe = memory.activation_bytes_per_token_layer(model, seq_len, lay.tp, lay.sp,
                                                            recompute, ab, moe_layer=True)
            a = (1 - moe_fraction) * a + moe_fraction * a_moe
        return a * tokens

    stored = per_layer(lay.recompute)
    # Under full recompute one layer's activations are rebuilt at a time during backward.
    working = np.where(lay.recompute == 2, per_layer(np.zeros_like(lay.recompute)), 0.0)
    in_flight = micro_batches_in_flight(lay.pp, lay.num_micro_batches, lay.vp, lay.schedule)
    logits = tokens * memory.logits_bytes_per_token(model, lay.tp, ab)
    single = lay.pp == 1
    act_first = n_layers_stage * stored * in_flight + working + np.where(single, logits, 0.0)
    act_last = n_layers_stage * stored + working + logits

    result = {}
    for name, non_expert, act in (("first", first_p, act_first), ("last", last_p, act_last)):
        w, g, o = memory.model_state_bytes(non_expert, expert_p, precision, lay.zero,
                                           dense_shards, expert_shards, lay.offload)
        layer_p = (non_expert + expert_p) / n_layers_stage
        # ZeRO-3 gathers a layer's full weights (and its gradients before reduce-scatter),
        # with one layer prefetched: two layers' worth of unsharded state at a time.
        gathered = np.where(lay.zero == 3, 2 * layer_p * (precision.weight_bytes * 2), 0.0)
        temp = gathered + eff.runtime_reserved_bytes
        result[name] = dict(weights=w, gradients=g, optimizer=o, activations=act, temporary=temp)
    total_first = sum(result["first"].values())
    total_last = sum(result["last"].values())
    first_is_max = total_first >= total_last
    out = {f"memory_{k}_bytes": np.where(first_is_max, result["first"][k], result["last"][k])
           for k in result["first"]}
    for stage in ("first", "last"):
        for k, v in result[stage].items():
            out[f"memory_{stage}_stage_{k}_bytes"] = v
    out["memory_total_bytes"] = np.maximum(total_first, total_last)
    out["memory_largest_stage"] = np.where(first_is_max, 0.0, lay.pp - 1.0)
    out["memory_capacity_bytes"] = system.gpu.hbm_bytes
    return out
