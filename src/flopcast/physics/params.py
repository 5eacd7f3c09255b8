"""Parameter counts of a transformer, by block, from its shape.

Counting follows the architecture papers: GPT-3 (Brown et al. 2020, Table 2.1 / Megatron's
12·l·h² + 13·l·h + (V+s)·h, Narayanan et al. 2021 eq. 2), Llama (Touvron et al. 2023: GQA,
SwiGLU, RMSNorm, untied head), Mixtral/DeepSeekMoE (routed + shared experts) and DeepSeek-V2
§2.1 (multi-head latent attention).
"""

from __future__ import annotations

from flopcast.specs.model import Model


def norm_params(model: Model) -> int:
    """One norm over ``hidden_size``: LayerNorm has weight and bias, RMSNorm only a weight."""
    return 2 * model.hidden_size if model.norm == "layernorm" else model.hidden_size


def attention_linear_params(model: Model) -> int:
    """Weights of the attention projections (Q, K, V, O; or MLA's down/up projections).

    MLA (DeepSeek-V2 §2.1.2): q = W_uq·norm(W_dq·x) (or W_q·x when q_lora_rank is None),
    [c_kv, k_rope] = W_dkv·x, [k_nope, v] = W_ukv·norm(c_kv), o = W_o·attn.
    """
    h, nh = model.hidden_size, model.num_attention_heads
    if model.is_mla:
        q_dim = nh * model.head_dim_qk
        if model.q_lora_rank:
            q = h * model.q_lora_rank + model.q_lora_rank + model.q_lora_rank * q_dim
        else:
            q = h * q_dim
        kv_down = h * (model.kv_lora_rank + model.qk_rope_head_dim) + model.kv_lora_rank
        kv_up = model.kv_lora_rank * nh * (model.qk_nope_head_dim + model.v_head_dim)
        out = nh * model.v_head_dim * h
        return q + kv_down + kv_up + out
    q_dim = nh * model.head_dim_qk
    kv_dim = model.kv_heads * model.head_dim_qk
    weights = h * (q_dim + 2 * kv_dim) + q_dim * h
    if model.linear_bias:
        weights += q_dim + 2 * kv_dim + h
    elif model.qkv_bias:
        weights += q_dim + 2 * kv_dim
    if model.qk_norm:
        weights += 2 * model.head_dim_qk
    if model.attention_sinks:
        weights += nh
    return weights


def mlp_params(model: Model, ffn: int, bias: bool | None = None) -> int:
    """One MLP of width ``ffn``: 2 matrices (GeLU) or 3 (SwiGLU, Shazeer 2020)."""
    h = model.hidden_size
    mats = 3 if model.mlp == "swiglu" else 2
    n = mats * h * ffn
    if model.linear_bias if bias is None else bias:
        n += (mats - 1) * ffn + h
    return n


def moe_mlp_params(model: Model) -> tuple[int, int]:
    """(total, active-per-token) weights of one MoE MLP block: router, routed and shared experts."""
    expert = mlp_params(model, model.moe_ffn_hidden_size, bias=model.moe_expert_bias)
    shared = model.num_shared_experts * mlp_params(model, model.shared_expert_ffn, bias=False)
    router = model.hidden_size * model.num_experts + (
        model.num_experts if model.moe_router_bias else 0
    )
    total = router + model.num_experts * expert + shared
    active = router + model.moe_top_k * expert + shared
    return total, active


def layer_norm_params(model: Model) -> int:
    """Norms inside one layer (Model.norms_per_layer: two, one with parallel attention, four
    with Gemma 2's sandwich norms)."""
    return model.norms_per_layer * norm_params(model)


def embedding_params(model: Model) -> int:
    """Token embedding, learned positions, optional embedding norm (first pipeline stage)."""
    n = model.vocab_size * model.hidden_size
    if model.position_embedding == "learned":
        n += model.max_position_embeddings * model.hidden_size
    if model.embedding_norm:
        n += norm_params(model)
    return n


def head_params(model: Model) -> int:
    """Final norm and LM head (last pipeline stage); an untied head has its own V×h matrix."""
    n = norm_params(model)
    if not model.tied_embeddings:
        n += model.vocab_size * model.hidden_size
    return n


def dense_layer_params(model: Model) -> int:
    return attention_linear_params(model) + mlp_params(model, model.ffn_hidden) + layer_norm_params(
        model
    )


def moe_layer_params(model: Model) -> tuple[int, int]:
    total, active = moe_mlp_params(model)
    base = attention_linear_params(model) + layer_norm_params(model)
    return base + total, base + active


def total_parameters(model: Model) -> float:
    """All parameters, embeddings included (the figure model cards publish)."""
    n = model.num_dense_layers * dense_layer_params(model)
    if model.is_moe:
        n += model.num_moe_layers * moe_layer_params(model)[0]
    return float(n + embedding_params(model) + head_params(model))


def active_parameters(model: Model) -> float:
    """Parameters one token touches: as total, but only top-k routed experts."""
    n = model.num_dense_layers * dense_layer_params(model)
    if model.is_moe:
        n += model.num_moe_layers * moe_layer_params(model)[1]
    return float(n + embedding_params(model) + head_params(model))
