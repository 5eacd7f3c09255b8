"""One inference forward step (any mix of prefill and decode tokens) and the memory plan.

A step runs every layer once over M = prefill tokens + decoding sequences rows:
- weight GEMMs by the roofline of physics/compute.py with the weight format's bytes and peak
  (decode at small M is the "flat GEMM" regime, Hong et al. 2024 FlashDecoding++ §3: bound
  by streaming the weights, which the memory term captures);
- routed experts touch E·(1 - (1 - k/E)^M) distinct experts for M tokens (each token picks k
  of E), so a small decode batch reads only those experts' weights;
- attention: prefill at FlashAttention efficiency on causal FLOPs; decode streams each
  sequence's KV cache from HBM (Dao et al. 2023, Flash-Decoding);
- two tensor-parallel all-reduces per layer (Shoeybi et al. 2019 §3) with a fixed small-
  message latency (one-shot custom all-reduce); when experts span data-parallel attention
  replicas (ep > tp), a dispatch and a combine all-to-all per MoE layer; a batch crosses
  the pipeline stages one after another (steady-state serving keeps pp micro-batches in
  flight: see estimate.py); the LM head only for rows that sample a token;
- a fixed per-step engine overhead.
All workload arguments may be NumPy arrays and broadcast.
"""

from __future__ import annotations

import numpy as np

from flopcast.physics import comm, compute
from flopcast.physics import flops as F
from flopcast.physics import params as P
from flopcast.physics.compute import NORM_ELEMENTS, RESIDUAL_ELEMENTS
from flopcast.physics.kv_cache import (
    cached_tokens_per_layer,
    kv_elements_per_token_layer,
    sequence_kv_bytes,
)
from flopcast.physics.memory import layer_param_counts
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.inference import InferenceJob

GIB = 2**30


def compute_dtype(job: InferenceJob) -> str:
    """16-bit type of attention, norms and the LM head: fp16 for fp16 weights, else bf16."""
    return "fp16" if job.weights.gemm_dtype == "fp16" else "bf16"


def _gemm_dtype_fraction(job: InferenceJob, eff: Efficiency) -> float:
    if job.weights.weight_only:
        return eff.weight_only_gemm_fraction
    if job.weights.gemm_dtype in ("fp8", "fp4", "int8"):
        return eff.low_precision_gemm_fraction
    return 1.0


def _layer_gemms_time(job: InferenceJob, eff: Efficiency, rows, moe: bool):
    gpu = job.system.gpu
    tp, ep = job.tp, job.ep
    gemms = F.moe_layer_gemms(job.model) if moe else F.dense_layer_gemms(job.model)
    peak_low = gpu.peak(job.weights.gemm_dtype)
    peak_16 = gpu.peak(compute_dtype(job))
    frac = _gemm_dtype_fraction(job, eff)
    act = job.weights.activation_bytes
    total = 0.0
    for g in gemms:
        if g.split == "replicated":
            total = total + compute.gemm_time(rows, g.n, g.k, peak_16, gpu.hbm_bandwidth, eff,
                                              act)
            continue
        if g.experts:
            split = job.expert_tp  # tp/ep inside the TP group; 1 when ep spans DP replicas
            k = g.k / split if g.split == "row" else g.k
            n = g.n / split if g.split == "column" else g.n
            group_rows = rows * job.ep_replicas  # tokens of the replicas one EP group serves
            assignments = group_rows * g.tokens_per_token
            touched = g.experts * (1 - (1 - g.tokens_per_token / g.experts) ** group_rows)
            touched = np.maximum(touched, 1e-12)
            per_expert_rows = assignments / touched
            time = (touched / ep) * compute.gemm_time(
                per_expert_rows, n, k, peak_low, gpu.hbm_bandwidth, eff, act, frac,
                job.weights.weight_bytes)
        else:
            k = g.k / tp if g.split == "row" else g.k
            n = g.n / tp if g.split == "column" else g.n
            time = compute.gemm_time(rows * g.tokens_per_token, n, k, peak_low,
                                     gpu.hbm_bandwidth, eff, act, frac, job.weights.weight_bytes)
        total = total + time
    return total


def kv_heads_per_gpu_share(job: InferenceJob) -> float:
    """Share of one layer's KV cache each TP rank holds: 1/tp, or 1/kv_heads when the KV heads
    are replicated (tp > kv_heads); MLA's latent is replicated on every rank."""
    m = job.model
    if m.is_mla:
        return 1.0
    return 1.0 / min(job.tp, m.kv_heads)


def forward_step(job: InferenceJob, eff: Efficiency, prefill_tokens=0, prefill_len=1,
                 decode_seqs=0, decode_context=0, logit_rows=1) -> dict[str, np.ndarray]:
    """Seconds of one step, by part. ``prefill_len``: prompt length of the prefilled
    sequences; ``decode_context``: tokens cached per decoding sequence."""
    m, gpu, system = job.model, job.system.gpu, job.system
    prefill_tokens = np.asarray(prefill_tokens, dtype=float)
    decode_seqs = np.asarray(decode_seqs, dtype=float)
    rows = prefill_tokens + decode_seqs
    peak_16 = gpu.peak(compute_dtype(job))
    act = job.weights.activation_bytes
    moe_fraction = m.num_moe_layers / m.num_layers

    gemm = (1 - moe_fraction) * _layer_gemms_time(job, eff, rows, moe=False)
    if m.is_moe:
        gemm = gemm + moe_fraction * _layer_gemms_time(job, eff, rows, moe=True)

    prefill_flops = prefill_tokens * F.attention_core_flops_per_token(m, prefill_len, True) / job.tp
    decode_flops = decode_seqs * F.attention_core_flops_per_token(m, decode_context, False) / job.tp
    kv_read = (decode_seqs * cached_tokens_per_layer(m, decode_context)
               * kv_elements_per_token_layer(m) * kv_heads_per_gpu_share(job)
               * job.kv_element_bytes)
    attention = compute.attention_time(prefill_flops, peak_16, eff) + np.maximum(
        compute.attention_time(decode_flops, peak_16, eff),
        compute.memory_time(kv_read, gpu.hbm_bandwidth, eff))

    width = m.ffn_hidden if not m.is_moe else (
        m.moe_top_k * m.moe_ffn_hidden_size + m.num_shared_experts * m.shared_expert_ffn)
    act_elements = (3 if m.mlp == "swiglu" else 2) * width / job.tp
    elementwise = compute.memory_time(
        rows * act * ((1 if m.parallel_attention else 2) * NORM_ELEMENTS * m.hidden_size
                      + 2 * RESIDUAL_ELEMENTS * m.hidden_size + act_elements),
        gpu.hbm_bandwidth, eff)

    domain = system.domain_size
    tp_bw = comm.group_bandwidth(job.tp, 1, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    inside = job.tp <= domain
    latency = eff.allreduce_latency_s if inside else system.network_latency_s * 2 * (job.tp - 1)
    one_allreduce = np.where(
        job.tp > 1,
        comm.all_reduce_time(rows * m.hidden_size * act, job.tp, tp_bw, 0.0) + latency, 0.0)
    tp_comm = 2 * one_allreduce
    # Experts across data-parallel attention replicas: dispatch and combine all-to-alls per MoE
    # layer over the ep ranks (GShard §2.2; DeepSpeed-MoE §5), each rank sending its share of
    # the replica's tokens, top-k copies each.
    ep_comm = 0.0
    if job.ep_replicas > 1:
        a2a_bytes = rows * m.moe_top_k * m.hidden_size * act / job.tp
        ep_comm = moe_fraction * 2 * comm.all_to_all_two_level_time(
            a2a_bytes, job.ep, comm.ranks_per_domain(job.ep, 1, domain), gpu.scale_up_bandwidth,
            system.network_bandwidth, eff, gpu.nvlink_latency_s, system.network_latency_s)

    per_layer = gemm + attention + elementwise + tp_comm + ep_comm
    head = compute.gemm_time(np.asarray(logit_rows, dtype=float), m.vocab_size / job.tp,
                             m.hidden_size, peak_16, gpu.hbm_bandwidth, eff, act)
    pp_bw = comm.group_bandwidth(job.pp, job.tp, domain, gpu.scale_up_bandwidth,
                                 system.network_bandwidth, eff)
    pp_comm = (job.pp - 1) * comm.p2p_time(rows * m.hidden_size * act, pp_bw,
                                           system.network_latency_s)
    layers = m.num_layers  # pp stages run in turn, so a batch crosses all layers' time
    total = layers * per_layer + head + pp_comm + eff.inference_step_overhead_s
    out = dict(
        step_s=total, gemm_s=layers * gemm, attention_s=layers * attention,
        elementwise_s=layers * elementwise, tp_comm_s=layers * tp_comm,
        ep_comm_s=layers * ep_comm, lm_head_s=head,
        pp_comm_s=pp_comm, overhead_s=eff.inference_step_overhead_s,
    )
    shape = np.broadcast_shapes(*(np.shape(v) for v in out.values()))
    return {k: np.broadcast_to(np.asarray(v, dtype=float), shape) for k, v in out.items()}


def weight_bytes_per_gpu(job: InferenceJob) -> float:
    """Linear-layer weights in the job's format, embeddings and norms in 16 bits, over tp·pp;
    routed experts over expert_shards·pp (max(tp, ep): more than tp when ep spans replicas)."""
    m = job.model
    edge = P.embedding_params(m) + P.head_params(m)
    experts = m.num_layers * layer_param_counts(m)[1]
    body = P.total_parameters(m) - edge - experts
    wb = job.weights.weight_bytes
    return ((body * wb + edge * 2.0) / job.tp + experts * wb / job.expert_shards) / job.pp


def memory_plan(job: InferenceJob, eff: Efficiency, context) -> dict[str, np.ndarray]:
    """Weights, workspace, KV budget and how many sequences of ``context`` tokens fit per GPU.

    The engine gives ``memory_fraction`` of what is left after weights, runtime reserve and
    step workspace to the paged KV cache (TensorRT-LLM free_gpu_memory_fraction, vLLM
    gpu_memory_utilization); sequences occupy whole pages.
    """
    m, gpu, engine = job.model, job.system.gpu, job.engine
    weights = weight_bytes_per_gpu(job)
    act = job.weights.activation_bytes
    # step workspace: activations of max_num_tokens rows (hidden, QKV, MLP up) and fp32 logits
    # of max_batch_size rows
    up = (2 if m.mlp == "swiglu" else 1) * (m.ffn_hidden if not m.is_moe else
                                            m.moe_top_k * m.moe_ffn_hidden_size)
    workspace = (engine.max_num_tokens * act * (4 * m.hidden_size + up / job.tp)
                 + engine.max_batch_size * 4 * m.vocab_size / job.tp)
    free = gpu.hbm_bytes - weights - eff.runtime_reserved_bytes - workspace
    kv_budget = np.maximum(free, 0) * engine.memory_fraction
    per_seq = (sequence_kv_bytes(m, context, job.kv_element_bytes, engine.kv_block_tokens)
               * kv_heads_per_gpu_share(job) / job.pp)
    max_seqs = np.floor(kv_budget / per_seq)
    return dict(weights_bytes=weights, workspace_bytes=workspace,
                reserved_bytes=eff.runtime_reserved_bytes, kv_budget_bytes=kv_budget,
                kv_bytes_per_sequence=per_seq, max_sequences=max_seqs,
                capacity_bytes=gpu.hbm_bytes)
