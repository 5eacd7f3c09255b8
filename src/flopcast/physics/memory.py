"""Bytes per GPU: weights, gradients, optimizer states, activations.

- Model states: mixed-precision Adam keeps 2 (weights) + 2 (gradients) + 12 (fp32 master
  weights, momentum, variance) = 16 bytes per parameter (Rajbhandari et al. 2020, ZeRO §3.1,
  K = 12). ZeRO-1 shards the 12 over data-parallel ranks, ZeRO-2 also the gradients,
  ZeRO-3 (FSDP FULL_SHARD) also the weights (ZeRO §5, Figure 1). A sharded state is
  materialised whole, transiently, only for the units being computed (zero_transient_bytes).
- Activations per layer: Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
  Transformer Models") §4: s·b·h·(34 + 5·a·s/h) bytes in 16-bit, of which 10·s·b·h stays
  replicated under tensor parallelism unless sequence parallelism splits it too (Eq. 2-4);
  full recomputation keeps only each layer's 2·s·b·h input (§4.3); FlashAttention (Dao et al.
  2022) never stores the a·s² softmax terms. Written here per token in terms of the actual
  projection widths, so GQA, SwiGLU and MoE follow from the same counting.
- Other frameworks (catalog/frameworks/*.yaml, specs/framework.py) list the tensors autograd
  saves per token, in which dtype (saved_bytes_per_token), the buffers of the loss, and the
  bytes per parameter of their weights, gradients and optimizer states.
"""

from __future__ import annotations

import numpy as np

from flopcast.physics import params as P
from flopcast.physics.pipeline import layers_per_stage
from flopcast.specs.framework import Framework, SavedTensor
from flopcast.specs.model import Model
from flopcast.specs.precision import Precision

#: ZeRO §3.1: Adam in mixed precision keeps fp32 weights, momentum and variance (4+4+4 bytes).
ADAM_STATE_BYTES_MIXED = 12
#: Adam in pure fp32 needs no separate master copy: momentum and variance only.
ADAM_STATE_BYTES_FP32 = 8
#: Bytes of a dropout mask element (PyTorch stores masks as uint8/bool).
DROPOUT_MASK_BYTES = 1
#: The cross-entropy loss works on fp32 logits (Megatron vocab-parallel cross entropy).
LOGIT_LOSS_BYTES = 4
#: Sharding units (one transformer layer, or the embedding / LM head) whose sharded weights
#: (ZeRO-3) or gradients (ZeRO-2/3) are materialised whole at once: the unit being computed
#: and the one prefetched (weights) or still being reduce-scattered (gradients). PyTorch FSDP2
#: "allows two all-gather output tensors to be alive at once" (pytorch/pytorch#128884); FSDP1's
#: default limit_all_gathers rate limiter lets two all-gathers be in flight (#104900);
#: Megatron-FSDP's SchedulePolicy prefetches "one successor" by default. DeepSpeed bounds the
#: same by element counts instead (deepspeed/runtime/zero/config.py: stage3_prefetch_bucket_size
#: 5e7, stage3_max_live_parameters 1e9, reduce_bucket_size 5e8 elements).
ZERO_UNITS_IN_FLIGHT = 2
#: Layers whose saved activations stay on the GPU when activations are offloaded: the layer
#: being computed and the one whose activations are being copied out (forward) or prefetched
#: (backward): ZeRO-Infinity's activation-checkpoint offload (Rajbhandari et al. 2021 §5.1.2)
#: and Superpipeline's layer streaming keep one transfer in flight beside the compute.
OFFLOAD_RESIDENT_LAYERS = 2
#: Optimizer subgroups whose states (and, when gradients are offloaded, gradients) are on the
#: GPU at once under Deep Optimizer States' interleaved update (Maurya et al. 2024,
#: arXiv:2410.21316): the one the GPU updates and the next, prefetched while it runs (the
#: artifact's "prefetch_optimizer" setting), as any double-buffered stream needs.
OPTIMIZER_SUBGROUPS_IN_FLIGHT = 2


def _dims(model: Model):
    q_dim = model.num_attention_heads * model.head_dim_qk
    k_dim = (model.num_attention_heads if model.is_mla else model.kv_heads) * model.head_dim_qk
    v_dim = (model.num_attention_heads if model.is_mla else model.kv_heads) * model.head_dim_v
    o_dim = model.num_attention_heads * model.head_dim_v
    return q_dim, k_dim, v_dim, o_dim


def activation_bytes_per_token_layer(model: Model, seq_len, tp, sp, recompute,
                                     act_bytes: float = 2.0, flash_attention: bool = True,
                                     moe_layer: bool = False):
    """Activation bytes one token leaves behind in one layer for the backward pass.

    Korthikanti et al. 2022 §4 per token (s·b = 1): replicated part 4h (two norm inputs) +
    2h (QKV input) + 2h (MLP input) + 2·h mask bytes (dropout) = 10h for GPT-3; split part
    Q,K,V (6h), attention output (2h), MLP (2·4h + 2·4h), = 24h, plus 5·a·s without flash.
    With sequence parallelism the replicated part is split by tp too (Eq. 4). Full
    recompute keeps just the layer input, 2h (split with SP). ``recompute``: 0/1/2 codes.
    Per-head q/k norms (Model.qk_norm, Megatron-Core qk_layernorm) add nothing here: their
    inputs are views of the fused QKV output, already counted in Q, K, V.

    >>> from flopcast.specs.model import Model
    >>> gpt = Model(name="g", num_layers=1, hidden_size=1, num_attention_heads=1, vocab_size=1,
    ...             dropout=True)
    >>> float(activation_bytes_per_token_layer(gpt, 1, 1, False, 0))  # 34·h with h = 1
    34.0
    """
    h = model.hidden_size
    tp = np.asarray(tp, dtype=float)
    sp = np.asarray(sp, dtype=bool)
    recompute = np.asarray(recompute)
    q_dim, k_dim, v_dim, o_dim = _dims(model)
    mask = DROPOUT_MASK_BYTES * h if model.dropout else 0.0
    norms = model.norms_per_layer * act_bytes * h  # each norm keeps its input
    replicated = norms + 2 * act_bytes * h + 2 * mask
    attention = act_bytes * (q_dim + k_dim + v_dim + o_dim)
    if not flash_attention:
        per_score = act_bytes + (DROPOUT_MASK_BYTES + act_bytes if model.dropout else 0)
        attention = attention + per_score * model.num_attention_heads * np.asarray(seq_len)
    if moe_layer:
        f = model.moe_ffn_hidden_size
        up = 2 * f if model.mlp == "swiglu" else f
        mlp = model.moe_top_k * act_bytes * (h + up + f)  # dispatched input, act in/out
        shared = model.num_shared_experts * model.shared_expert_ffn
        shared_up = 2 * shared if model.mlp == "swiglu" else shared
        mlp = mlp + act_bytes * (shared_up + shared) + LOGIT_LOSS_BYTES * model.num_experts
    else:
        f = model.ffn_hidden
        up = 2 * f if model.mlp == "swiglu" else f
        mlp = act_bytes * (up + f)
    split = attention + mlp
    no_recompute = np.where(sp, (replicated + split) / tp, replicated + split / tp)
    full = np.where(sp, act_bytes * h / tp, act_bytes * h)
    return np.where(recompute == 2, full, no_recompute)


def layer_param_counts(model: Model) -> tuple[float, float]:
    """(non-expert, routed-expert) parameters of an average layer."""
    dense = P.dense_layer_params(model)
    if not model.is_moe:
        return float(dense), 0.0
    moe_total, _ = P.moe_layer_params(model)
    expert = model.num_experts * P.mlp_params(model, model.moe_ffn_hidden_size,
                                              bias=model.moe_expert_bias)
    moe_other = moe_total - expert
    n_moe, n = model.num_moe_layers, model.num_layers
    return ((n - n_moe) * dense + n_moe * moe_other) / n, n_moe * expert / n


def stage_param_counts(model: Model, tp, pp, ep, vp=1, etp=None, extra_slots=0):
    """Per-GPU (non-expert, expert) parameters on the first and on the last pipeline stage.

    Layers are split ⌈L/p⌉ per stage at most (``extra_slots``: pipeline slots of the
    embedding, loss and MTP, see pipeline.layers_per_stage; every stage is given the most
    loaded rank's layers, an upper bound for the first and last); the first stage also holds
    the embedding, the last the final norm and LM head (and, when embeddings are tied and
    p > 1, its own copy of the embedding matrix, as Megatron does). TP shards the non-expert
    weights; the routed experts are sharded over etp·ep (expert tensor × expert parallel,
    ``etp`` None = tp: Megatron-Core's MoE parallel folding, Liu et al. 2025).
    """
    tp = np.asarray(tp, dtype=float)
    pp = np.asarray(pp, dtype=float)
    ep = np.asarray(ep, dtype=float)
    etp = tp if etp is None else np.asarray(etp, dtype=float)
    layers = layers_per_stage(model.num_layers, pp, vp, extra_slots)
    other, expert = layer_param_counts(model)
    layer_other = layers * other / tp
    layer_expert = layers * expert / (etp * ep)
    embed = P.embedding_params(model) / tp
    head = P.head_params(model) / tp
    tied_copy = np.where(
        model.tied_embeddings & (pp > 1), model.vocab_size * model.hidden_size / tp, 0.0
    )
    single = pp == 1
    first_other = layer_other + embed + np.where(single, head, 0.0)
    last_other = layer_other + head + tied_copy + np.where(single, embed, 0.0)
    return first_other, last_other, layer_expert


def stage_extra_unit_params(model: Model, tp, pp):
    """Per-GPU parameters of the largest non-layer sharding unit on the first and on the last
    pipeline stage: the embedding (first), the final norm and LM head with, when embeddings
    are tied and p > 1, the last stage's copy of the embedding matrix (last); both when p = 1
    (same split as ``stage_param_counts``)."""
    tp = np.asarray(tp, dtype=float)
    single = np.asarray(pp) == 1
    embed = P.embedding_params(model) / tp
    head = P.head_params(model) / tp
    tied_copy = np.where(model.tied_embeddings & ~single, model.vocab_size * model.hidden_size / tp,
                         0.0)
    first = np.where(single, np.maximum(embed, head), embed)
    last = np.where(single, np.maximum(embed, head), head + tied_copy)
    return first, last


def _weight_grad_bytes(precision: Precision) -> tuple[float, float]:
    """Bytes per parameter of the weights (16-bit copy plus any low-precision copy the recipe
    keeps) and of the gradients."""
    return precision.weight_bytes + precision.low_precision_weight_bytes, precision.weight_bytes


def state_bytes_per_param(precision: Precision, framework: Framework | None = None):
    """(weight, gradient, optimizer) bytes per parameter: the framework's, or where it leaves
    one unset (Megatron), the precision recipe's with ZeRO's K (12, or 8 for fp32 weights)."""
    wb, gb = _weight_grad_bytes(precision)
    ob = ADAM_STATE_BYTES_FP32 if precision.weight_bytes >= 4 else ADAM_STATE_BYTES_MIXED
    if framework is None:
        return wb, gb, ob
    own = (framework.parameter_bytes, framework.gradient_bytes, framework.optimizer_bytes)
    return tuple(d if o is None else o for o, d in zip(own, (wb, gb, ob), strict=True))


def model_state_bytes(non_expert, expert, precision: Precision, zero_stage, dense_shards,
                      expert_shards, offload_optimizer=False, framework: Framework | None = None):
    """(weights, gradients, optimizer) bytes per GPU under a ZeRO stage.

    ``dense_shards`` = dp·cp ranks share the non-expert states (Megatron's distributed
    optimizer shards over the data-parallel-with-context group); ``expert_shards`` = the
    expert data-parallel size edp = tp·cp·dp/(etp·ep) (MoE parallel folding, Liu et al. 2025;
    dp·cp/ep when etp = tp). Bytes per parameter: :func:`state_bytes_per_param`.
    """
    zero = np.asarray(zero_stage)
    wb, gb, ob = state_bytes_per_param(precision, framework)

    def sharded(count, shards, applies):
        return np.where(applies, count / shards, count)

    weights = wb * (sharded(non_expert, dense_shards, zero >= 3)
                    + sharded(expert, expert_shards, zero >= 3))
    grads = gb * (sharded(non_expert, dense_shards, zero >= 2)
                  + sharded(expert, expert_shards, zero >= 2))
    optim = ob * (sharded(non_expert, dense_shards, zero >= 1)
                  + sharded(expert, expert_shards, zero >= 1))
    optim = np.where(np.asarray(offload_optimizer), 0.0, optim)
    return weights, grads, optim


def offloaded_state_bytes(states, in_flight_fraction, params_tier, grads_tier, optimizer_tier):
    """(weights, gradients, optimizer) bytes left on the GPU when some live off it.

    ``states``: the (weights, gradients, optimizer) bytes per GPU had nothing been offloaded
    (:func:`model_state_bytes`); tiers 0 = gpu, > 0 = cpu or nvme. Offloaded optimizer states
    leave nothing (ZeRO-Offload, Ren et al. 2021 §4.1: fp32 master weights, momentum and
    variance live on the host, the update runs there). Offloaded parameters and gradients keep
    only the sharding units in flight (``in_flight_fraction``, the share
    :func:`zero_units_in_flight_fraction` gives): ZeRO-Infinity fetches each unit's parameters
    before its forward and backward and frees them after, and moves each unit's gradients off
    as the backward produces them (Rajbhandari et al. 2021 §5.1, §6.2); Superpipeline streams
    layers the same way. As the fraction is ≤ 1, offloading never adds GPU memory.
    """
    w, g, o = states
    if not any(np.any(np.asarray(t) > 0) for t in (params_tier, grads_tier, optimizer_tier)):
        return w, g, o
    f = np.asarray(in_flight_fraction, dtype=float)
    return (np.where(np.asarray(params_tier) > 0, w * f, w),
            np.where(np.asarray(grads_tier) > 0, g * f, g),
            np.where(np.asarray(optimizer_tier) > 0, 0.0, o))


def interleaved_optimizer_bytes(states, subgroup_params, bytes_per_param, interleave,
                                grads_tier):
    """GPU bytes of Deep Optimizer States' update buffer (Maurya et al. 2024,
    arXiv:2410.21316): OPTIMIZER_SUBGROUPS_IN_FLIGHT subgroups of ``subgroup_params``
    parameters with their optimizer states and, when the gradients live off the GPU, their
    gradients, never more than the shard holds. ``states`` = (weights, gradients, optimizer)
    bytes per GPU had nothing been offloaded; ``bytes_per_param`` = state_bytes_per_param's
    triple. As the buffer is at most the offloaded optimizer (and gradient) bytes, interleaving
    never needs more GPU memory than keeping the optimizer on the GPU."""
    _, g, o = states
    _, gb, ob = bytes_per_param
    n = OPTIMIZER_SUBGROUPS_IN_FLIGHT * np.asarray(subgroup_params, dtype=float)
    grads = np.where(np.asarray(grads_tier) > 0, np.minimum(g, n * gb), 0.0)
    return np.where(np.asarray(interleave) > 0, np.minimum(o, n * ob) + grads, 0.0)


def resident_layers(layers, activations_tier, window=OFFLOAD_RESIDENT_LAYERS):
    """Layers' worth of saved activations on the GPU: all of them, or with activations
    offloaded to the host at most ``window`` (OFFLOAD_RESIDENT_LAYERS, or Superpipeline's k
    layers resident: Abbasi & Lim 2024, arXiv:2410.08791), never more than there are."""
    layers = np.asarray(layers, dtype=float)
    if not np.any(np.asarray(activations_tier) > 0):
        return layers
    return np.where(np.asarray(activations_tier) > 0, np.minimum(layers, window), layers)


def offloaded_bytes(states, activations, lay):
    """(host, NVMe) bytes per GPU of the offloaded states: each offloaded state whole, in its
    tier (1 = cpu, 2 = nvme): ``states`` = (weights, gradients, optimizer) had none been
    offloaded, ``activations`` the saved activations of all layers and micro-batches in
    flight; ``lay`` carries the tiers (Layout offload, offload_grad, offload_param,
    offload_act). The host's pinned staging buffers are left out."""
    w, g, o = states
    host = nvme = 0.0
    for bytes_, tier in ((w, lay.offload_param), (g, lay.offload_grad), (o, lay.offload),
                         (activations, lay.offload_act)):
        host = host + np.where(tier == 1, bytes_, 0.0)
        nvme = nvme + np.where(tier == 2, bytes_, 0.0)
    return host, nvme


def zero_units_in_flight_fraction(layer_params, extra_unit_params, stage_params,
                                  units=ZERO_UNITS_IN_FLIGHT):
    """Share of a pipeline stage's parameters that ZeRO materialises whole at once.

    ``units`` sharding units (default ZERO_UNITS_IN_FLIGHT; each transformer layer is one
    unit, as FSDP wraps decoder layers and Megatron-FSDP its layers; the embedding and the LM
    head are units of their own, ``extra_unit_params`` the larger of those on the stage, 0 if
    none): at most one layer plus ``units`` − 1 units as large as the larger of a layer and
    that extra unit. Streamed parameters keep Superpipeline's window of k layers the same way
    (Abbasi & Lim 2024, arXiv:2410.08791). A stage cannot gather more than it holds, so the
    share is ≤ 1 and grows with ``units``.
    """
    layer = np.asarray(layer_params, dtype=float)
    pair = layer + np.maximum(layer, extra_unit_params) * (np.asarray(units) - 1)
    stage = np.asarray(stage_params, dtype=float)
    return np.where(stage > 0, np.minimum(pair / np.where(stage > 0, stage, 1.0), 1.0), 0.0)


def zero_transient_bytes(non_expert, expert, precision: Precision, zero_stage, dense_shards,
                         expert_shards, in_flight_fraction):
    """Bytes per GPU of sharded states materialised whole for the units in flight.

    ZeRO-3 all-gathers a unit's weights before its forward and again before its backward,
    and frees them after (Rajbhandari et al. 2020 §5.3; FSDP ``FULL_SHARD``); ZeRO-2 and
    ZeRO-3 produce a unit's whole gradient in backward and reduce-scatter it (ZeRO §5.2,
    DeepSpeed's reduce buckets; FSDP ``SHARD_GRAD_OP``). The rank's own shard is part of
    the gathered buffer (FSDP2's ``all_gather_copy_in`` copies it into a ``narrow`` view of
    the all-gather output; the reduce-scatter output is the rank's slice), so the extra is
    (1 − 1/N) of the units in flight for N shards. With N = 1 nothing is sharded and nothing
    gathered (PyTorch FSDP switches FULL_SHARD to NO_SHARD when the world size is 1:
    torch/distributed/fsdp/_init_utils.py). As ``in_flight_fraction`` ≤ 1 the extra never
    exceeds what sharding saved, so a higher stage never needs more memory than a lower.
    Returns (weights, gradients) bytes.
    """
    zero = np.asarray(zero_stage)
    f = np.asarray(in_flight_fraction, dtype=float)
    wb, gb = _weight_grad_bytes(precision)

    def unowned(count, shards):
        return f * np.asarray(count, dtype=float) * (1.0 - 1.0 / np.asarray(shards, dtype=float))

    params = unowned(non_expert, dense_shards) + unowned(expert, expert_shards)
    return np.where(zero >= 3, wb * params, 0.0), np.where(zero >= 2, gb * params, 0.0)


def logits_bytes_per_token(model: Model, tp, act_bytes: float = 2.0):
    """LM-head output kept for the loss: 16-bit logits plus their fp32 copy, split over tp."""
    return (act_bytes + LOGIT_LOSS_BYTES) * model.vocab_size / np.asarray(tp, dtype=float)


def saved_width(model: Model, width: str, tp=1):
    """Elements per token of a saved tensor of ``width`` on one tensor-parallel rank (names in
    specs/framework.Width): projections, heads, the MLP and the vocabulary split by tp; the
    hidden width and rotary rows replicated (sequence parallelism splits hidden, see
    :func:`saved_bytes_per_token`). MoE layers count top-k routed + shared expert widths."""
    tp = np.asarray(tp, dtype=float)
    q_dim, k_dim, v_dim, o_dim = _dims(model)
    if model.is_moe:
        ffn = model.moe_top_k * model.moe_ffn_hidden_size + (
            model.num_shared_experts * model.shared_expert_ffn)
    else:
        ffn = model.ffn_hidden
    kv_heads = model.num_attention_heads if model.is_mla else model.kv_heads
    split = {"q": q_dim, "k": k_dim, "v": v_dim, "o": o_dim, "ffn": ffn,
             "heads": model.num_attention_heads, "kv_heads": kv_heads,
             "vocab": model.vocab_size}
    if width in split:
        return split[width] / tp
    return float(model.hidden_size if width == "hidden" else model.head_dim_qk)


def applies(model: Model, when: str | list[str]) -> bool:
    """Whether ``model`` has what a framework's tensor or traffic term is conditioned on
    (specs/framework.Condition; a list: every condition in it)."""
    if isinstance(when, list):
        return all(applies(model, w) for w in when)
    if when == "fused_projections":
        return model.fused_projections
    if when == "separate_projections":
        return not model.fused_projections
    if when == "gated":
        return model.mlp == "swiglu"
    if when == "plain":
        return model.mlp != "swiglu"
    if when == "rotary":
        return model.position_embedding == "rotary"
    if when == "qk_norm":
        return model.qk_norm
    if when == "sandwich_norm":
        return model.sandwich_norm
    if when == "logit_softcap":
        return model.final_logit_softcapping is not None
    return True


def saved_bytes_per_token(tensors: list[SavedTensor], model: Model, framework: Framework,
                          compute_bytes: float, tp=1, sp=False):
    """Bytes per token of ``tensors`` on one rank: Σ count · width · bytes of its dtype
    (compute, residual or fp32; Framework.bytes_of), for the tensors that exist for this model;
    hidden-width tensors are split by tp under sequence parallelism (Korthikanti et al. 2022
    §4.2.2), the rest as :func:`saved_width` says.

    >>> from flopcast.catalog import load_framework
    >>> from flopcast.specs.model import Model
    >>> m = Model(name="m", num_layers=1, hidden_size=8, num_attention_heads=2, vocab_size=10)
    >>> hf = load_framework("hf-transformers")
    >>> float(saved_bytes_per_token(hf.checkpoint_keeps, m, hf, 2.0))  # fp32 layer input: 4·h
    32.0
    """
    total = 0.0
    sp = np.asarray(sp, dtype=bool)
    tp = np.asarray(tp, dtype=float)
    for t in tensors:
        if not applies(model, t.when):
            continue
        width = saved_width(model, t.width, tp)
        if t.width == "hidden":
            width = np.where(sp, width / tp, width)
        total = total + t.count * width * framework.bytes_of(t.dtype, compute_bytes)
    return total


def layer_saved_bytes_per_token(model: Model, framework: Framework, seq_len, tp, sp, recompute,
                                act_bytes: float = 2.0, moe_layer: bool = False):
    """Activation bytes one token leaves in one layer under ``framework``: Megatron's counting
    (:func:`activation_bytes_per_token_layer`) or the framework's saved tensors; full
    recompute (code 2) keeps only ``checkpoint_keeps``. Eager attention adds the s scores per
    query and head it stores (``eager_score_bytes`` each; selective recompute drops them)."""
    recompute = np.asarray(recompute)
    flash = framework.attention == "flash"
    if framework.activations == "korthikanti":
        return activation_bytes_per_token_layer(model, seq_len, tp, sp, recompute, act_bytes,
                                                flash, moe_layer)
    stored = saved_bytes_per_token(framework.activations, model, framework, act_bytes, tp, sp)
    if not flash:
        scores = framework.eager_score_bytes * saved_width(model, "heads", tp) * np.asarray(
            seq_len, dtype=float)
        stored = stored + np.where(recompute == 1, 0.0, scores)
    kept = saved_bytes_per_token(framework.checkpoint_keeps, model, framework, act_bytes, tp, sp)
    return np.where(recompute == 2, kept, stored)


def gemm_weight_params(model: Model, tp, layers, head):
    """GEMM weights on one rank of a stage holding ``layers`` layers and (``head`` true) the LM
    head: what autocast casts to the compute dtype (norms, biases and the embedding lookup are
    not GEMMs; a tied head casts the embedding matrix for its GEMM)."""
    tp = np.asarray(tp, dtype=float)
    if model.is_moe:
        expert = model.num_experts * P.mlp_params(model, model.moe_ffn_hidden_size, bias=False)
        shared = model.num_shared_experts * P.mlp_params(model, model.shared_expert_ffn,
                                                         bias=False)
        n_moe = model.num_moe_layers
        mlp = ((model.num_layers - n_moe) * P.mlp_params(model, model.ffn_hidden, bias=False)
               + n_moe * (expert + shared)) / model.num_layers
    else:
        mlp = P.mlp_params(model, model.ffn_hidden, bias=False)
    per_layer = (P.attention_linear_params(model) + mlp) / tp
    return np.asarray(layers, dtype=float) * per_layer + np.where(
        head, model.vocab_size * model.hidden_size / tp, 0.0)

