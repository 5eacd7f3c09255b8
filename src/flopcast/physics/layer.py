"""ONE layer-cost model: what a transformer layer costs on one rank for one batch.

Training, inference and the planner all price a layer here; nobody keeps a private GEMM list,
element-wise byte count, all-reduce or LM-head term. Input: a batch description (query rows
with their mean attention context — a training micro-batch, or prefill chunks at offsets — plus
decode sequences with their cached contexts), the parallel layout on that rank and the number
formats. Output: forward (and, for training, backward) seconds by kernel class, from
physics/kernels.py, and the communication the layer issues, from physics/comm.py.

Counting follows the papers cited per term: GEMMs per layer (flops.py: Megatron column/row
splits, Shoeybi et al. 2019 §3), backward = activation-gradient GEMM (m×n·n×k) + weight-gradient
GEMM (k×m·m×n) (Narayanan et al. 2021 §5.1), attention backward 2.5× forward (FlashAttention-2
§3.1-3.2), element-wise traffic after Ivanov et al. 2021 §3, routed experts by balanced
routing with touched experts E·(1-(1-k/E)^D) for D distinct tokens, two tensor-parallel
all-reduces (or all-gather + reduce-scatter with sequence parallelism, Korthikanti et al. 2022
§4.2.2) per layer and direction, the expert token exchange across attention data-parallel
ranks: all-to-all dispatch + combine (GShard §2.2), or the engines' all-gather + reduce-scatter
(or all-reduce) of every rank's hidden states.
Every argument may be a NumPy array; results broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import numpy as np

from flopcast.physics import comm, kernels, memory
from flopcast.physics import flops as F
from flopcast.physics.kv_cache import attended_tokens_per_layer
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.engine import ExpertDispatch
from flopcast.specs.framework import (
    EAGER_ATTENTION,
    PYTORCH_EAGER_SCORE_TRAFFIC,
    EagerScoreTraffic,
)
from flopcast.specs.kernels import EngineAllReduce
from flopcast.specs.model import Model
from flopcast.specs.system import System

#: Memory-bound element-wise traffic, in elements per token per layer (read + write),
#: following Ivanov et al. 2021 ("Data Movement Is All You Need") §3: a norm reads and writes
#: h; a residual add reads 2h and writes h.
NORM_ELEMENTS = 2
RESIDUAL_ELEMENTS = 3
#: Element-wise kernels per layer forward (two norms, two residual adds, the MLP activation,
#: rotary embedding): each pays the kernel's fixed cost (Ivanov et al. 2021 §3 operator count).
ELEMENTWISE_KERNELS = 6
#: Backward element-wise work moves about twice the forward's bytes (gradient in, saved input,
#: gradient out) in as many kernels again.
ELEMENTWISE_BACKWARD_PER_FORWARD = 2
#: Cross-entropy over the vocabulary per token: read 16-bit logits, write and read fp32
#: probabilities, write the 16-bit gradient (Megatron vocab-parallel cross entropy).
CROSS_ENTROPY_BYTES_PER_LOGIT = 2 + 4 + 4 + 2
#: Final-logit soft-capping, cap·tanh(logits/cap) (Gemma 2), unfused, in elements of the
#: 16-bit logits per logit: forward divide, tanh, multiply (read + write each, 6); backward
#: the multiply's and divide's gradients (2 each) and tanh's (reads the gradient and its
#: saved output, writes 1: 3) = 13, in 6 kernels.
SOFTCAP_ELEMENTS_PER_LOGIT = 13
SOFTCAP_KERNELS = 6


@dataclass(frozen=True)
class Numerics:
    """Number formats of one workload's layers.

    ``gemm_dtype``: peak the weight GEMMs run at; ``compute_dtype``: 16-bit type of attention,
    the LM head and replicated GEMMs; ``gemm_in_bytes``: bytes of a GEMM's activation operand;
    ``weight_bytes``: of a weight as the GEMM reads it; ``act_bytes``: of stored activations;
    ``weight_only``: weights dequantised in the kernel (W4A16/W8A16); ``cast_bytes``: bytes
    written when quantising each GEMM input (0 when GEMMs take 16-bit inputs).
    """

    gemm_dtype: str
    compute_dtype: str
    gemm_in_bytes: float
    weight_bytes: float
    act_bytes: float = 2.0
    weight_only: bool = False
    cast_bytes: float = 0.0


@dataclass(frozen=True)
class Placement:
    """How one layer is split: tensor (tp, with sequence parallelism sp), context (cp),
    expert (ep) and expert-tensor (etp) parallel sizes, as arrays or numbers.

    Ranks are ordered TP innermost (Megatron), and expert layers re-fold the same ranks as
    ETP × EP × EDP (Megatron-Core MoE parallel folding): the EP group's rank stride is etp.
    An EP group of ep·etp ≤ tp ranks holds the same tokens (EP inside the TP group); a larger
    one spans data-parallel ranks (or replicas) with tokens of their own.
    """

    tp: object = 1
    sp: object = False
    cp: object = 1
    ep: object = 1
    etp: object = None  # None = tp

    @property
    def expert_tp(self):
        return self.tp if self.etp is None else self.etp


def _f(x):
    return np.asarray(x, dtype=float)


def _gemm(m, n, k, gpu, num: Numerics, replicated: bool, fixed: float, groups=1.0,
          grouped=False, direction="fwd"):
    """Seconds of one (m×k)·(k×n) weight GEMM forward ("fwd"), its two backward GEMMs
    ("bwd"), or only the activation-gradient one ("dgrad": a frozen weight, LoRA)."""
    if replicated:
        dtype, a, w, wo = num.compute_dtype, num.act_bytes, num.act_bytes, False
    else:
        dtype, a, w, wo = num.gemm_dtype, num.gemm_in_bytes, num.weight_bytes, num.weight_only
    kw = dict(gpu=gpu, dtype=dtype, act_bytes=a, weight_bytes=w, groups=groups,
              grouped=grouped, weight_only=wo)
    if direction == "fwd":
        return fixed_scaled(kernels.gemm_time(m, n, k, **kw), gpu, fixed)
    dgrad = kernels.gemm_time(m, k, n, **{**kw, "weight_bytes": w})
    if direction == "dgrad":
        return fixed_scaled(dgrad, gpu, fixed)
    wgrad = kernels.gemm_time(k, n, m, **{**kw, "weight_bytes": a})
    return fixed_scaled(dgrad, gpu, fixed) + fixed_scaled(wgrad, gpu, fixed)


def fixed_scaled(seconds, gpu, scale: float, launches=1.0):
    """Kernel time with its fixed cost scaled (CUDA graphs pay a fraction of an eager launch)."""
    return seconds - (1.0 - scale) * _f(launches) * gpu.kernels.launch_s


def gemms_time(model: Model, gpu, place: Placement, num: Numerics, tokens, moe: bool,
               fixed: float = 1.0, direction: str = "fwd", adapters: tuple = (),
               frozen: bool = False):
    """Weight GEMMs of one layer for ``tokens`` rows on one rank (forward or backward).

    ``frozen`` (LoRA): the layer's weights are frozen, so their backward is the activation
    gradient only (Hu et al. 2021 §4.1: no gradients for the pretrained weights); the
    ``adapters`` (flops.lora_adapter_gemms, possibly none in this layer) run forward and
    backward."""
    tokens = _f(tokens)
    tp, etp, ep = _f(place.tp), _f(place.expert_tp), _f(place.ep)
    total = 0.0
    base = F.moe_layer_gemms(model) if moe else F.dense_layer_gemms(model)
    base_direction = "dgrad" if frozen and direction == "bwd" else direction
    for g, d in [(g, base_direction) for g in base] + [(g, direction) for g in adapters]:
        if g.split == "replicated":
            total = total + _gemm(tokens, g.n, g.k, gpu, num, True, fixed, direction=d)
            continue
        split = etp if g.experts else tp
        k = g.k / split if g.split == "row" else g.k
        n = g.n / split if g.split == "column" else g.n
        if not g.experts:
            total = total + _gemm(tokens * g.tokens_per_token, n, k, gpu, num, False, fixed,
                                  direction=d)
            continue
        # Distinct tokens the EP×ETP group routes (each rank brings tokens/tp of its own when
        # the group spans data-parallel ranks); balanced routing over the touched experts.
        distinct = np.maximum(ep * etp / tp, 1.0) * tokens
        touched = np.maximum(g.experts * (1 - (1 - g.tokens_per_token / g.experts) ** distinct),
                             1e-12)
        rows = distinct * g.tokens_per_token / touched
        local = touched / ep
        total = total + _gemm(rows, n, k, gpu, num, False, fixed, groups=local, grouped=True,
                              direction=d)
    return total


def elementwise_bytes_per_token(model: Model, place: Placement, num: Numerics, moe: bool):
    """Forward element-wise bytes per token per layer on one rank (Ivanov et al. 2021 §3: a
    norm reads and writes h, a residual add reads 2h and writes h; the MLP activation reads
    gate and up for SwiGLU; rotary, and the per-head norms of qk_norm models, read and write q
    and k; MoE permutes tokens in and out; low-precision GEMMs quantise each input).
    Replicated work splits over tp with SP."""
    h, ab = model.hidden_size, num.act_bytes
    replicated = model.norms_per_layer * NORM_ELEMENTS * h + 2 * RESIDUAL_ELEMENTS * h
    if model.dropout:
        replicated += 2 * 2 * h  # two dropouts: read input, write output (+ mask, below)
    replicated_bytes = ab * replicated + (2 * h if model.dropout else 0)
    tp = _f(place.tp)
    replicated_bytes = np.where(place.sp, replicated_bytes / tp, replicated_bytes)
    act_per_width = 3 if model.mlp == "swiglu" else 2
    if moe:
        width = model.moe_top_k * model.moe_ffn_hidden_size + (
            model.num_shared_experts * model.shared_expert_ffn)
        permute = 2 * 2 * model.moe_top_k * h  # token dispatch and combine copies
    else:
        width, permute = model.ffn_hidden, 0
    q_dim = model.num_attention_heads * model.head_dim_qk
    k_dim = model.kv_heads * model.head_dim_qk
    rotary = 2 * (q_dim + k_dim) if model.position_embedding == "rotary" else 0
    qk_norm = NORM_ELEMENTS * (q_dim + k_dim) if model.qk_norm else 0  # per-head RMSNorm
    split_bytes = ab * (act_per_width * width + rotary + qk_norm + permute) / tp
    cast = (ab + num.cast_bytes) * (2 * h + (q_dim + width) / tp) if num.cast_bytes else 0.0
    return replicated_bytes + split_bytes + cast


def attention_heads(model: Model, tp):
    """Query heads and KV heads on one tensor-parallel rank (KV heads replicated when tp
    exceeds them; MLA attends over per-head decompressed keys in prefill)."""
    tp = _f(tp)
    kv = model.num_attention_heads if model.is_mla else model.kv_heads
    return model.num_attention_heads / tp, np.maximum(kv / tp, 1.0)


@dataclass(frozen=True)
class Batch:
    """What one rank's layer processes in one step.

    ``prefill_tokens`` query rows attend over ``prefill_context`` keys each on average (a
    training micro-batch of s tokens: (s+1)/2, causal; a prefill chunk of c tokens at offset
    o: o + (c+1)/2) and belong to ``prefill_sequences`` sequences; ``decode_seqs`` sequences
    each add one row attending over its ``decode_context`` cached tokens.
    """

    prefill_tokens: object = 0.0
    prefill_context: object = 1.0
    prefill_sequences: object = 1.0
    decode_seqs: object = 0.0
    decode_context: object = 0.0

    @property
    def rows(self):
        return _f(self.prefill_tokens) + _f(self.decode_seqs)


def attention_time(model: Model, gpu, place: Placement, num: Numerics, batch: Batch,
                   kv_element_bytes: float = 2.0, backend: str | None = None,
                   decode_backend: str | None = None, fixed: float = 1.0,
                   direction: str = "fwd", eager_traffic: EagerScoreTraffic | None = None):
    """Attention core of one layer on one rank: fused prefill attention over the query rows
    (with backend EAGER_ATTENTION, unfused attention moving ``eager_traffic`` per score: the
    framework's count, default PyTorch eager), plus bandwidth-bound decode attention over each
    decoding sequence's cache (backward: prefill rows only). KV heads are split by tp
    (replicated beyond the KV head count)."""
    q_heads, kv_heads = attention_heads(model, place.tp)
    tokens = _f(batch.prefill_tokens)
    launches = 1.0
    if backend == EAGER_ATTENTION:
        traffic = eager_traffic or PYTORCH_EAGER_SCORE_TRAFFIC
        score_bytes, score_kernels, gemms = (
            (traffic.fwd_bytes, traffic.fwd_kernels, 2) if direction == "fwd"
            else (traffic.bwd_bytes, traffic.bwd_kernels, 4))
        # every key up to the chunk's end is scored (masks, sliding windows included, hide
        # scores, they do not skip them): a chunk of c rows at mean context x = offset +
        # (c+1)/2 spans offset + c = x + (c-1)/2 keys, and never fewer than its own rows
        rows = tokens / np.maximum(_f(batch.prefill_sequences), 1.0)
        keys = np.maximum(_f(batch.prefill_context) + (rows - 1) / 2, rows)
        prefill = kernels.eager_attention_time(
            tokens, keys, q_heads, model.head_dim_qk, model.head_dim_v, gpu, num.compute_dtype,
            direction, batch.prefill_sequences, score_bytes, score_kernels)
        launches = gemms + score_kernels
    else:
        prefill = kernels.attention_time(
            tokens, batch.prefill_context, q_heads, model.head_dim_qk, model.head_dim_v, gpu,
            num.compute_dtype, backend, direction, batch.prefill_sequences)
    prefill = fixed_scaled(prefill, gpu, fixed, np.where(tokens > 0, launches, 0.0))
    if direction != "fwd":
        return prefill
    seqs = _f(batch.decode_seqs)
    elements = kv_elements_per_token_rank(model, place.tp)
    decode = kernels.decode_attention_time(
        seqs, attended_tokens_per_layer(model, batch.decode_context), elements, q_heads,
        kv_element_bytes, gpu, decode_backend, decode_flops_per_key(model, place.tp),
        num.compute_dtype, kv_heads)
    launches = gpu.kernels.decode_backend(decode_backend).launches
    return prefill + fixed_scaled(decode, gpu, fixed, np.where(seqs > 0, launches, 0.0))


def decode_flops_per_key(model: Model, tp):
    """FLOPs per decoding sequence per cached token on one rank: QKᵀ and PV over the rank's
    query heads; MLA in absorbed form multiplies each query head against the latent (d_c +
    d_rope) and back (d_c) (DeepSeek-V2 §2.1.2 absorption)."""
    q_heads, _ = attention_heads(model, tp)
    if model.is_mla:
        return 2 * q_heads * (2 * model.kv_lora_rank + model.qk_rope_head_dim)
    return 2 * q_heads * (model.head_dim_qk + model.head_dim_v)


def kv_elements_per_token_rank(model: Model, tp):
    """K and V elements one cached token holds per layer on one tensor-parallel rank: MLA's
    compressed latent (DeepSeek-V2 §2.1) is replicated; GQA/MHA heads split by tp, never below
    one head (heads are replicated when tp exceeds them)."""
    if model.is_mla:
        return float(model.kv_lora_rank + model.qk_rope_head_dim)
    _, kv_heads = attention_heads(model, tp)
    return kv_heads * (model.head_dim_qk + model.head_dim_v)


def counted_elementwise_bytes_per_token(model: Model, bytes_per_width: dict, place: Placement):
    """Forward element-wise bytes per token per layer on one rank as a framework counted them
    op by op (specs/framework.ElementwiseTraffic: bytes per unit of each width); widths as
    physics/memory.saved_width, the hidden width split by tp under sequence parallelism."""
    total = 0.0
    for width, coefficient in bytes_per_width.items():
        w = memory.saved_width(model, width, place.tp)
        if width == "hidden":
            w = np.where(place.sp, w / _f(place.tp), w)
        total = total + coefficient * w
    return total


def counted_elementwise(model: Model, traffic, place: Placement):
    """(forward bytes per token, forward kernels) of one layer as a framework counted them
    (specs/framework.ElementwiseTraffic), with the extra terms this model runs (e.g. the q/k
    norms of a qk_norm model)."""
    per_token = counted_elementwise_bytes_per_token(model, traffic.bytes_per_width, place)
    kernels_count = traffic.kernels
    for term in traffic.extra:
        if memory.applies(model, term.when):
            per_token = per_token + counted_elementwise_bytes_per_token(
                model, term.bytes_per_width, place)
            kernels_count = kernels_count + term.kernels
    return per_token, kernels_count


def elementwise_time(model: Model, gpu, place: Placement, num: Numerics, rows, moe: bool,
                     fixed: float = 1.0, direction: str = "fwd", traffic_factor: float = 1.0,
                     counted: tuple | None = None):
    """Memory-bound element-wise kernels of one layer (backward: twice the bytes);
    ``traffic_factor`` scales the fused byte count for frameworks that do not fuse them;
    ``counted`` = (forward bytes per token, forward kernels) replaces the fused count with a
    framework's own (counted_elementwise_bytes_per_token)."""
    if counted is None:
        per_token = traffic_factor * elementwise_bytes_per_token(model, place, num, moe)
        count = ELEMENTWISE_KERNELS
    else:
        per_token, count = counted
    scale = 1.0 if direction == "fwd" else ELEMENTWISE_BACKWARD_PER_FORWARD
    launches = count * scale
    t = kernels.stream_time(scale * _f(rows) * per_token, gpu, launches)
    return np.where(_f(rows) > 0, fixed_scaled(t, gpu, fixed, launches), 0.0)


def engine_all_reduce_time(num_bytes, n, link_bandwidth, ar: EngineAllReduce):
    """An inference engine's all-reduce of ``num_bytes`` over ``n`` ranks of one NVLink
    domain: the fastest of one-shot ((n-1)·S read per rank), two-shot and the library's
    large-message all-reduce (2(n-1)/n·S, Patarasuk & Yuan 2009), each with its fixed time
    (specs/kernels.EngineAllReduce)."""
    s, n = _f(num_bytes), _f(n)
    ring = 2 * (n - 1) / n * s
    custom = link_bandwidth * ar.custom_bus_fraction
    one_shot = ar.one_shot_s + (n - 1) * s / custom
    two_shot = ar.two_shot_s + ring / custom
    large = ar.large_s + ring / (link_bandwidth * ar.large_bus_fraction)
    return np.where(n > 1, np.minimum(np.minimum(one_shot, two_shot), large), 0.0)


def tp_collective_time(num_bytes, tp, system: System, eff: Efficiency,
                       engine_all_reduce: EngineAllReduce | None = None):
    """One tensor-parallel all-reduce of ``num_bytes`` (or its all-gather + reduce-scatter
    pair under sequence parallelism: the same ring volume, Korthikanti et al. 2022 §4.2.2):
    ring volume over the group's bus bandwidth plus a per-call latency (ring steps over the
    network across domains). ``engine_all_reduce``: an inference engine's measured custom
    all-reduce inside a domain (engine_all_reduce_time) instead of the ring."""
    gpu = system.gpu
    tp = _f(tp)
    bw = comm.group_bandwidth(tp, 1, system.domain_size, gpu.scale_up_bandwidth,
                              system.network_bandwidth, eff)
    inside = tp <= system.domain_size
    latency = np.where(inside, eff.allreduce_latency_s,
                       system.network_latency_s * 2 * (tp - 1))
    t = comm.all_reduce_time(num_bytes, tp, bw, 0.0) + latency
    if engine_all_reduce is not None:
        custom = engine_all_reduce_time(num_bytes, tp, gpu.scale_up_bandwidth,
                                        engine_all_reduce)
        t = np.where(inside, custom, t)
    return np.where(tp > 1, t, 0.0)


def expert_all_to_all_time(model: Model, system: System, eff: Efficiency, place: Placement,
                           tokens, act_bytes: float):
    """Dispatch or combine all-to-all of one MoE layer (one direction), when the EP group spans
    ranks with their own tokens (ep·etp > tp); each rank sends its tokens/tp share, top-k
    copies of h elements (GShard §2.2; hierarchical NVLink + NIC, DeepSpeed-MoE §5)."""
    gpu = system.gpu
    ep, etp, tp = _f(place.ep), _f(place.expert_tp), _f(place.tp)
    per_domain = comm.ranks_per_domain(ep, etp, system.domain_size)
    num_bytes = _f(tokens) / tp * model.moe_top_k * model.hidden_size * act_bytes
    a2a = comm.all_to_all_two_level_time(
        num_bytes, ep, per_domain, gpu.scale_up_bandwidth, system.network_bandwidth, eff,
        gpu.nvlink_latency_s, system.network_latency_s)
    return np.where(ep * etp > tp, a2a, 0.0)


def expert_gather_time(model: Model, system: System, eff: Efficiency, place: Placement,
                       tokens, gather_bytes: float, combine_bytes: float,
                       combine: str = "reduce-scatter"):
    """All-gather + reduce-scatter of one MoE layer (both directions), when the EP group spans
    attention data-parallel ranks (ep·etp > tp) and the engine gathers instead of routing:
    each rank all-gathers the hidden states (``gather_bytes`` per element) of the group's
    n = ep·etp/tp replicas, runs its local experts on all of them, and reduce-scatters the
    outputs (``combine_bytes``): (n − 1)·tokens·h elements each way, whatever top-k is
    (TensorRT-LLM CutlassFusedMoE with attention DP: allgather of the quantised input and
    routing, fused_moe, reducescatter; ring cost, Thakur et al. 2005). ``combine``
    "all-reduce": the outputs are all-reduced over the group and each rank keeps its slice
    (SGLang's DP attention), twice the reduce-scatter's volume."""
    gpu = system.gpu
    ep, etp, tp = _f(place.ep), _f(place.expert_tp), _f(place.tp)
    replicas = np.maximum(ep * etp / tp, 1.0)
    bw = comm.group_bandwidth(replicas, tp, system.domain_size, gpu.scale_up_bandwidth,
                              system.network_bandwidth, eff)
    latency = comm.group_latency(replicas, tp, system.domain_size, gpu.nvlink_latency_s,
                                 system.network_latency_s)
    gathered = replicas * _f(tokens) * model.hidden_size
    combined = (comm.all_reduce_time(gathered * combine_bytes, replicas, bw, latency)
                if combine == "all-reduce" else
                comm.reduce_scatter_time(gathered * combine_bytes, replicas, bw, latency))
    t = comm.all_gather_time(gathered * gather_bytes, replicas, bw, latency) + combined
    return np.where(replicas > 1, t, 0.0)


#: Ways an engine or framework moves MoE tokens across attention data-parallel ranks
#: (specs/engine.py ``ExpertDispatch``).
EXPERT_DISPATCH = get_args(ExpertDispatch)


def expert_dispatch_time(model: Model, system: System, eff: Efficiency, place: Placement,
                         tokens, num: Numerics, dispatch: str = "all-to-all"):
    """Both directions of one MoE layer's token exchange between attention data-parallel
    ranks, as the engine or framework moves them (EXPERT_DISPATCH): all-to-all dispatch +
    combine; all-gather (16-bit, or already in the GEMM input format) + reduce-scatter; or
    all-gather + all-reduce."""
    if dispatch not in EXPERT_DISPATCH:
        raise ValueError(f"expert_dispatch {dispatch!r} (allowed: {', '.join(EXPERT_DISPATCH)})")
    if dispatch == "all-to-all":
        return 2 * expert_all_to_all_time(model, system, eff, place, tokens, num.act_bytes)
    gather = num.gemm_in_bytes if dispatch == "allgather-quantized" else num.act_bytes
    combine = "all-reduce" if dispatch == "allgather-allreduce" else "reduce-scatter"
    return expert_gather_time(model, system, eff, place, tokens, gather, num.act_bytes,
                              combine)


def lm_head_time(model: Model, gpu, num: Numerics, rows, tp, fixed: float = 1.0,
                 direction: str = "fwd", loss_bytes_per_logit: float | None = None):
    """Output projection h → V/tp for ``rows`` rows at 16 bits (Transformer Engine and the
    engines keep it out of fp8); backward ("bwd") adds its two GEMMs, or only the activation
    gradient for a frozen head ("dgrad", LoRA), and the cross-entropy pass
    (``loss_bytes_per_logit``: a framework's own loss traffic, forward + backward; default
    CROSS_ENTROPY_BYTES_PER_LOGIT, a fused cross entropy), with final-logit soft-capping's
    element-wise work (SOFTCAP_ELEMENTS_PER_LOGIT) for models that cap."""
    rows = _f(rows)
    vocab = model.vocab_size / _f(tp)
    replicated = Numerics(num.compute_dtype, num.compute_dtype, num.act_bytes, num.act_bytes,
                          num.act_bytes)
    t = _gemm(rows, vocab, model.hidden_size, gpu, replicated, True, fixed, direction=direction)
    if direction != "fwd":
        per_logit = loss_bytes_per_logit or CROSS_ENTROPY_BYTES_PER_LOGIT
        loss = kernels.stream_time(rows * vocab * per_logit, gpu)
        t = t + fixed_scaled(loss, gpu, fixed)
        if model.final_logit_softcapping is not None:
            cap = kernels.stream_time(rows * vocab * SOFTCAP_ELEMENTS_PER_LOGIT * num.act_bytes,
                                      gpu, SOFTCAP_KERNELS)
            t = t + fixed_scaled(cap, gpu, fixed, SOFTCAP_KERNELS)
    return np.where(rows > 0, t, 0.0)


def layer_cost(model: Model, system: System, eff: Efficiency, place: Placement,
               num: Numerics, batch: Batch, moe: bool, kv_element_bytes: float = 2.0,
               backend: str | None = None, decode_backend: str | None = None,
               fixed: float = 1.0, backward: bool = False,
               elementwise_factor: float = 1.0, elementwise_counted: tuple | None = None,
               adapters: tuple = (), frozen: bool = False,
               eager_traffic: EagerScoreTraffic | None = None,
               expert_dispatch: str = "all-to-all",
               engine_all_reduce: EngineAllReduce | None = None) -> dict:
    """Seconds of one layer on one rank, by kernel class: ``gemm``, ``attention``,
    ``elementwise`` (forward, and ``*_bwd`` with ``backward``), the raw (un-overlapped)
    communication ``tp_comm`` (two collectives per direction) and ``ep_comm`` (dispatch +
    combine per direction). ``fixed`` scales each kernel's fixed cost (engine execution mode);
    ``elementwise_factor`` the element-wise traffic (unfused training frameworks), or
    ``elementwise_counted`` replaces it with a framework's own count (elementwise_time);
    ``frozen`` weights with LoRA ``adapters`` (gemms_time); ``expert_dispatch`` how MoE
    tokens cross attention data-parallel ranks (expert_dispatch_time);
    ``engine_all_reduce`` the inference engine's measured all-reduce (tp_collective_time).
    """
    gpu = system.gpu
    rows = batch.rows
    out = dict(
        gemm=gemms_time(model, gpu, place, num, rows, moe, fixed, adapters=adapters,
                        frozen=frozen),
        attention=attention_time(model, gpu, place, num, batch, kv_element_bytes, backend,
                                 decode_backend, fixed, eager_traffic=eager_traffic),
        elementwise=elementwise_time(model, gpu, place, num, rows, moe, fixed,
                                     traffic_factor=elementwise_factor,
                                     counted=elementwise_counted),
        tp_comm=2 * tp_collective_time(rows * model.hidden_size * num.act_bytes, place.tp,
                                       system, eff, engine_all_reduce),
        ep_comm=(expert_dispatch_time(model, system, eff, place, rows, num, expert_dispatch)
                 if moe else 0.0),
    )
    if backward:
        out.update(
            gemm_bwd=gemms_time(model, gpu, place, num, rows, moe, fixed, "bwd", adapters,
                                frozen),
            attention_bwd=attention_time(model, gpu, place, num, batch, kv_element_bytes,
                                         backend, decode_backend, fixed, "bwd", eager_traffic),
            elementwise_bwd=elementwise_time(model, gpu, place, num, rows, moe, fixed, "bwd",
                                             elementwise_factor, elementwise_counted),
        )
    return out
