"""FLOPs of a transformer per token, per layer and per training step.

Conventions (../shared/measurements/README.md):
- ``model`` FLOPs: forward + backward (= 3 forward passes) of the model as written, attention
  scores counted over the full s×s square: Narayanan et al. 2021 eq. (3),
  72·B·s·l·h²·(1 + s/6h + V/12lh) per step for GPT, and PaLM (Chowdhery et al. 2022) App. B.
- ``hardware`` FLOPs: what is executed, recomputation included: full recompute runs each
  layer's forward again, 96·B·s·l·h²·(1 + s/6h + V/16lh) (Narayanan et al. 2021 §5.1);
  selective recompute (Korthikanti et al. 2022 §5) re-runs only the attention core.
- LoRA fine-tuning (Hu et al. 2021 §4.1) in both conventions: the frozen weights' weight-
  gradient GEMMs do not run (one of the three passes of every linear layer: Narayanan et al.
  2021 §5.1), so "model" FLOPs are then forward + activation gradients + the adapters' three
  passes, and MFU of a LoRA step is measured against that work, not against 6·N.

A GEMM of an (M×K) by (K×N) matrix costs 2·M·N·K FLOPs (one multiply and one add).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from flopcast.specs.model import Model

#: FlashAttention-2 backward runs 5 matmuls (S=QKᵀ recomputed, dV, dP, dQ, dK) where the
#: forward runs 2 (QKᵀ, PV): Dao 2023, "FlashAttention-2", §3.1-3.2.
FLASH_ATTENTION_BACKWARD_PER_FORWARD = 5 / 2

#: Backward of a linear layer = activation-gradient GEMM + weight-gradient GEMM, each with
#: the forward's FLOPs (Narayanan et al. 2021 §5.1: "backward pass is twice the forward").
LINEAR_BACKWARD_PER_FORWARD = 2

GemmSplit = Literal["column", "row", "replicated"]


@dataclass(frozen=True)
class Gemm:
    """One weight GEMM of a layer, per token: (tokens × k) @ (k × n).

    ``split`` is how tensor parallelism shards it (Megatron column-parallel splits n,
    row-parallel splits k); ``tokens_per_token`` is how many rows each input token adds
    (top-k for routed experts); ``experts`` > 0 marks routed-expert GEMMs (sharded by EP).
    """

    name: str
    k: int
    n: int
    split: GemmSplit
    tokens_per_token: float = 1.0
    experts: int = 0


def attention_gemms(model: Model) -> list[Gemm]:
    """Q/K/V/O projections (MLA: DeepSeek-V2 §2.1.2 down- and up-projections)."""
    h, nh = model.hidden_size, model.num_attention_heads
    if model.is_mla:
        gemms = []
        q_dim = nh * model.head_dim_qk
        if model.q_lora_rank:
            gemms += [Gemm("q_down", h, model.q_lora_rank, "replicated"),
                      Gemm("q_up", model.q_lora_rank, q_dim, "column")]
        else:
            gemms.append(Gemm("q", h, q_dim, "column"))
        gemms += [
            Gemm("kv_down", h, model.kv_lora_rank + model.qk_rope_head_dim, "replicated"),
            Gemm("kv_up", model.kv_lora_rank, nh * (model.qk_nope_head_dim + model.v_head_dim),
                 "column"),
            Gemm("out", nh * model.v_head_dim, h, "row"),
        ]
        return gemms
    q_dim = nh * model.head_dim_qk
    kv_dim = model.kv_heads * model.head_dim_qk
    return [Gemm("qkv", h, q_dim + 2 * kv_dim, "column"), Gemm("out", q_dim, h, "row")]


def mlp_gemms(model: Model, ffn: int, prefix: str = "mlp", tokens_per_token: float = 1.0,
              experts: int = 0) -> list[Gemm]:
    """Up (gate+up for SwiGLU, fused) and down projections of one MLP of width ``ffn``."""
    up = 2 * ffn if model.mlp == "swiglu" else ffn
    return [
        Gemm(f"{prefix}_up", model.hidden_size, up, "column", tokens_per_token, experts),
        Gemm(f"{prefix}_down", ffn, model.hidden_size, "row", tokens_per_token, experts),
    ]


def dense_layer_gemms(model: Model) -> list[Gemm]:
    return attention_gemms(model) + mlp_gemms(model, model.ffn_hidden)


def moe_layer_gemms(model: Model) -> list[Gemm]:
    """Router, top-k routed experts, shared experts (Fedus et al. 2021; DeepSeekMoE 2024)."""
    gemms = attention_gemms(model)
    gemms.append(Gemm("router", model.hidden_size, model.num_experts, "replicated"))
    gemms += mlp_gemms(model, model.moe_ffn_hidden_size, "expert", model.moe_top_k,
                       model.num_experts)
    if model.num_shared_experts:
        gemms += mlp_gemms(model, model.num_shared_experts * model.shared_expert_ffn, "shared")
    return gemms


def lora_adapter_gemms(model: Model, rank: int, targets, moe: bool | None = None) -> tuple:
    """LoRA adapters of one layer (Hu et al. 2021 §4.1: W x + B A x, A r×k, B n×r): for each
    targeted weight GEMM, A (k → r) and B (r → n), both split over the tensor-parallel ranks
    as the weight is (NeMo's ParallelLinearAdapter: column-parallel A and B beside a
    column-parallel weight, row-parallel beside a row-parallel one); the adapters' own small
    collectives are not counted. Expert GEMMs are not targeted. ``moe``: the adapters of an
    MoE layer, or of a dense one; None = of the layers the model has (its dense ones, if any:
    a target must be in every kind of layer, specs.training.check_lora_targets)."""
    if moe is None:
        moe = model.num_dense_layers == 0
    layer = moe_layer_gemms(model) if moe else dense_layer_gemms(model)
    out = []
    for g in layer:
        if g.name not in targets or g.experts:
            continue
        out += [Gemm(f"{g.name}_lora_a", g.k, rank, g.split, g.tokens_per_token),
                Gemm(f"{g.name}_lora_b", rank, g.n, g.split, g.tokens_per_token)]
    return tuple(out)


def lora_params_per_layer(model: Model, rank: int, targets, tp=1):
    """Trainable LoRA parameters of one (dense) layer on one of ``tp`` tensor-parallel ranks:
    Σ over targeted weights W (n×k) of r·(k + n) (Hu et al. 2021 §4.1: A ∈ R^{r×k},
    B ∈ R^{n×r}), divided by tp as the adapters are split (lora_adapter_gemms)."""
    tp = np.asarray(tp, dtype=float)
    return sum(g.k * g.n / np.where(g.split == "replicated", 1.0, tp)
               for g in lora_adapter_gemms(model, rank, targets))


def weight_gradient_flops_per_token(model: Model) -> float:
    """FLOPs per token of the weight-gradient GEMMs of every layer and the LM head (2·k·n per
    weight, Narayanan et al. 2021 §5.1): what training with frozen weights does not run."""
    return layer_linear_flops_per_token(model) + lm_head_flops_per_token(model)


def gemm_flops_per_token(gemms: list[Gemm]) -> float:
    """Forward FLOPs per token of a list of GEMMs: Σ 2·k·n·(rows per token)."""
    return float(sum(2 * g.k * g.n * g.tokens_per_token for g in gemms))


def attention_context(model: Model, seq_len, causal: bool, window_as_mask: bool = False):
    """Keys each query attends to, averaged over positions and layers.

    ``causal=False`` is the model-FLOPs convention (full s×s, Narayanan eq. 3, PaLM App. B);
    ``causal=True`` is what causal FlashAttention executes: (s+1)/2 on average, and for a
    sliding window w (Beltagy et al. 2020) positions beyond w attend to w keys; chunked local
    layers (Model.local_attention) attend within their chunk (_chunked_keys).
    ``window_as_mask``: the window reaches the kernel as an explicit mask (Hugging Face
    transformers with SDPA once s reaches w: masking_utils drops the mask only while the key
    length is below the window), and a masked kernel computes every score of the s×s block,
    skipping neither the window nor the causal half.
    """
    s = np.asarray(seq_len, dtype=float)
    n_local = model.num_local_attention_layers
    full = (s + 1) / 2 if causal else s
    if n_local == 0:
        return full
    w = float(model.sliding_window)
    if causal and window_as_mask:
        local = np.where(s < w, (s + 1) / 2, s)
    elif model.local_attention == "chunked":
        local = _chunked_keys(s, w, causal)
    elif causal:
        local = np.where(s <= w, (s + 1) / 2, (w * (w + 1) / 2 + (s - w) * w) / np.maximum(s, 1))
    else:
        local = np.minimum(s, w)
    n_global = model.num_layers - n_local
    return (n_global * full + n_local * local) / model.num_layers


def _chunked_keys(s, chunk: float, causal: bool):
    """Mean keys per query of chunked local attention over s positions (Llama 4: a query
    attends to the keys of its own ``chunk``-token block, causally): q = ⌊s/c⌋ full chunks
    and one of r = s − q·c tokens, Σ over chunks of n(n+1)/2 keys (causal) or n² (the full
    block, the model-FLOPs convention), divided by s."""
    q = np.floor(s / chunk)
    r = s - q * chunk
    causal_keys = q * chunk * (chunk + 1) / 2 + r * (r + 1) / 2
    total = causal_keys if causal else q * chunk ** 2 + r ** 2
    return total / np.maximum(s, 1)


def attention_core_flops_per_token(model: Model, seq_len, causal: bool = False):
    """Forward FLOPs per token per layer of QKᵀ and PV: 2·heads·(d_qk + d_v)·context."""
    per_key = 2 * model.num_attention_heads * (model.head_dim_qk + model.head_dim_v)
    return per_key * attention_context(model, seq_len, causal)


def lm_head_flops_per_token(model: Model) -> float:
    """Forward FLOPs per token of the output projection h → V."""
    return 2.0 * model.hidden_size * model.vocab_size


def layer_linear_flops_per_token(model: Model) -> float:
    """Forward FLOPs per token of all layers' weight GEMMs, summed over layers."""
    total = model.num_dense_layers * gemm_flops_per_token(dense_layer_gemms(model))
    if model.is_moe:
        total += model.num_moe_layers * gemm_flops_per_token(moe_layer_gemms(model))
    return total


def forward_flops_per_token(model: Model, seq_len, causal: bool = False):
    """Forward FLOPs per token of the whole model (layers + attention + LM head)."""
    attention = model.num_layers * attention_core_flops_per_token(model, seq_len, causal)
    return layer_linear_flops_per_token(model) + attention + lm_head_flops_per_token(model)


RECOMPUTE_CODES = {"none": 0, "selective": 1, "full": 2}


def training_flops_per_token(model: Model, seq_len, convention: str = "model", recompute=0,
                             lora_rank=0, lora_targets=()):
    """FLOPs per trained token in the given convention (see module docstring).

    ``recompute`` is a code or array of codes (0 none, 1 selective, 2 full); it only
    matters for the ``hardware`` convention. With ``lora_rank`` > 0 the weights are frozen:
    no weight-gradient GEMMs (weight_gradient_flops_per_token), plus the adapters' forward
    and backward: 3 × their forward FLOPs, as for any trained GEMM (Narayanan et al. 2021
    §5.1: forward, activation gradient, weight gradient).

    >>> from flopcast.catalog import load_model
    >>> m = load_model("gpt-3-175b")
    >>> f = training_flops_per_token(m, 2048)
    >>> round(float(f) / (6 * m.num_parameters()), 3)  # 6·N plus attention and head extras
    1.027
    """
    fwd = forward_flops_per_token(model, seq_len, causal=False)
    total = 3 * fwd
    if lora_rank:
        adapters = model.num_layers * gemm_flops_per_token(
            list(lora_adapter_gemms(model, lora_rank, lora_targets)))
        total = total - weight_gradient_flops_per_token(model) + 3 * adapters
    if convention == "model":
        return total
    if convention != "hardware":
        raise ValueError(f"convention must be 'model' or 'hardware', got {convention!r}")
    recompute = np.asarray(recompute)
    layers_fwd = fwd - lm_head_flops_per_token(model)
    attention_fwd = model.num_layers * attention_core_flops_per_token(model, seq_len, False)
    extra = np.where(recompute == 2, layers_fwd, np.where(recompute == 1, attention_fwd, 0.0))
    return total + extra
