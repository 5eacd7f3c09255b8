"""KV-cache bytes: per token, per sequence, and the paged blocks that hold them.

Per token and layer a decoder caches K and V for each KV head: 2·kv_heads·head_dim elements
(MHA: kv_heads = heads; GQA, Ainslie et al. 2023: fewer). MLA (DeepSeek-V2 §2.1.1) caches
the compressed latent and the shared rotary key instead: kv_lora_rank + qk_rope_head_dim
elements, whatever the head count. Sliding-window layers keep at most the window.
Paged attention (Kwon et al. 2023, vLLM §4.1) allocates whole blocks of ``block_tokens``.
"""

from __future__ import annotations

import numpy as np

from flopcast.specs.model import Model


def kv_elements_per_token_layer(model: Model) -> int:
    """Cached elements per token in one layer."""
    if model.is_mla:
        return model.kv_lora_rank + model.qk_rope_head_dim
    return 2 * model.kv_heads * model.head_dim_qk


def kv_bytes_per_token(model: Model, element_bytes: float) -> float:
    """Cache bytes one token adds across all layers (no window applied).

    >>> from flopcast.catalog import load_model
    >>> kv_bytes_per_token(load_model("llama-3.1-70b"), 2)  # 80 · 2 · 8 · 128 · 2
    327680.0
    """
    return float(model.num_layers * kv_elements_per_token_layer(model) * element_bytes)


def attended_tokens_per_layer(model: Model, context):
    """Keys a decoding query reads per layer, averaged over layers: a sliding window or a
    chunk (at most its size: the chunk fills from 1 to c) caps local layers."""
    context = np.asarray(context, dtype=float)
    n_local = model.num_local_attention_layers
    if n_local == 0:
        return context
    local = np.minimum(context, model.sliding_window)
    return (n_local * local + (model.num_layers - n_local) * context) / model.num_layers


def cached_tokens_per_layer(model: Model, context):
    """Tokens held per layer, averaged over layers: what a query reads, except that chunked
    layers (Llama 4) keep the whole context: whether an engine frees the chunks before the
    current one depends on its version (vLLM's hybrid KV manager for chunked local attention
    was switched off by default in PR #21761 and back on in #29627), so capacity is planned
    for the full cache."""
    if model.local_attention == "chunked":
        return np.asarray(context, dtype=float)
    return attended_tokens_per_layer(model, context)


def sequence_kv_bytes(model: Model, context, element_bytes: float, block_tokens: int = 1):
    """Bytes one sequence of ``context`` tokens occupies, rounded up to whole pages."""
    tokens = np.ceil(np.asarray(context, dtype=float) / block_tokens) * block_tokens
    return kv_bytes_per_token(model, element_bytes) * cached_tokens_per_layer(model, tokens)
