"""Build a Model from a Hugging Face ``config.json``.

Each ``model_type`` has a reader (``_READERS``); Llama-shaped decoders (pre-norm, rotary,
gated MLP) share one (``_llama_family``) with their differences in ``_LLAMA_VARIANTS``. A
multimodal checkpoint is read as its text model (``text_config``): its vision or audio
tower is not counted. Keys a config leaves out take transformers' defaults for that model
type where they change the shapes and are listed in ``_TYPE_DEFAULTS`` (others take
flopcast's generic ones: hub files carry them)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flopcast.errors import FlopcastError, validation_message
from flopcast.files import load_json_mapping
from flopcast.specs.model import Model

_LLAMA_LIKE = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "llama4",
               "llama4_text", "deepseek_v3", "deepseek_v2", "gpt_oss", "phi3"}
#: Llama-shaped decoders that differ from Llama in the fields given (transformers'
#: configuration_*.py and modeling_*.py of each type): norm kind, per-head or full-width
#: q/k norms, norms after attention and MLP (sandwich), one shared input norm for attention
#: and MLP (parallel). Defaults of keys a config may leave out are in _TYPE_DEFAULTS.
_LLAMA_VARIANTS: dict[str, dict[str, Any]] = {
    "granite": {}, "granitemoe": {}, "granitemoeshared": {}, "smollm3": {}, "ernie4_5": {},
    "internlm3": {}, "helium": {}, "ministral": {}, "seed_oss": {},
    "olmo": dict(norm="layernorm"),  # OlmoLayerNorm: non-parametric
    "olmo2": dict(qk_norm=True), "olmo3": dict(qk_norm=True), "olmoe": dict(qk_norm=True),
    "phimoe": dict(norm="layernorm"),
    "stablelm": dict(norm="layernorm"),
    "cohere": dict(norm="layernorm", parallel_attention=True),
    "cohere2": dict(norm="layernorm", parallel_attention=True),
    "glm": {}, "glm4": dict(sandwich_norm=True),
}
#: Shape-setting defaults of transformers' configuration classes, for keys a config leaves
#: out (LlamaConfig, MistralConfig, MixtralConfig, Qwen3Config,
#: DeepseekV3Config, GptOssConfig, GlmConfig, Glm4Config, SeedOssConfig, Llama4TextConfig,
#: PhimoeConfig; tied embeddings: SmolLM3Config, Ernie4_5Config, CohereConfig, Cohere2Config).
_TYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": dict(intermediate_size=11008),
    "mistral": dict(intermediate_size=14336, num_key_value_heads=8),
    "mixtral": dict(intermediate_size=14336, num_key_value_heads=8, num_local_experts=8),
    "qwen3": dict(head_dim=128),
    "gpt_oss": dict(head_dim=64),
    "deepseek_v3": dict(q_lora_rank=1536, first_k_dense_replace=3, moe_intermediate_size=2048),
    "glm": dict(attention_bias=True), "glm4": dict(attention_bias=True),
    "seed_oss": dict(attention_bias=True),
    "llama4_text": dict(num_local_experts=16), "phimoe": dict(num_local_experts=16),
    "smollm3": dict(tie_word_embeddings=True), "ernie4_5": dict(tie_word_embeddings=True),
    "cohere": dict(tie_word_embeddings=True), "cohere2": dict(tie_word_embeddings=True),
}
_GEMMA = {"gemma", "gemma2", "gemma3", "gemma3_text"}
#: Every type _llama_family reads.
_LLAMA_TYPES = _LLAMA_LIKE | set(_LLAMA_VARIANTS)


def model_from_hf_config(config: dict[str, Any] | str | Path, name: str | None = None) -> Model:
    """A Model from a HF config dict or a path to ``config.json``.

    >>> cfg = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64,
    ...        "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}
    >>> model_from_hf_config(cfg).mlp
    'swiglu'
    >>> neox = {"model_type": "gpt_neox", "num_hidden_layers": 6, "hidden_size": 512,
    ...         "num_attention_heads": 8, "intermediate_size": 2048, "vocab_size": 50304,
    ...         "use_parallel_residual": True, "rotary_pct": 0.25}
    >>> int(model_from_hf_config(neox).num_parameters())  # Pythia-70M's model card
    70426624
    """
    if not isinstance(config, dict):
        config = load_json_mapping(config, "model", "a Hugging Face config.json")
    if isinstance(config.get("text_config"), dict):  # multimodal: read the text model
        inner = config["text_config"]
        config = {**inner, "model_type": inner.get("model_type") or config.get("model_type", "")}
    mt = config.get("model_type", "")
    if not isinstance(mt, str):
        raise FlopcastError(f"config.json: model_type must be a string; got {mt!r:.60}")
    name = name or config.get("_name_or_path") or mt or "hf-model"
    try:
        fields = _fields(mt, {**_TYPE_DEFAULTS.get(mt, {}), **config})
    except KeyError as e:
        raise FlopcastError(f"config.json ({mt}): missing key {e.args[0]}") from None
    except (TypeError, AttributeError) as e:  # a value of the wrong kind where a number goes
        raise FlopcastError(f"config.json ({mt}): malformed value ({e})") from None
    try:
        return Model.model_validate({"name": str(name)[:200],
                                     "source": "Hugging Face config.json", **fields})
    except ValidationError as e:
        raise FlopcastError(f"config.json ({mt}): {validation_message(e)}") from None


def _fields(mt: str, c: dict[str, Any]) -> dict[str, Any]:
    if mt in _LLAMA_TYPES:
        return _llama_family(mt, c)
    if mt in _GEMMA:
        return _gemma_family(mt, c)
    reader = _READERS.get(mt)
    if reader is None:
        raise FlopcastError(
            f"config.json: model_type {mt!r} is not supported (supported: "
            f"{', '.join(supported_model_types())}); describe the model in a flopcast model "
            "YAML or with --layers/--hidden/--heads instead")
    return reader(c)


def supported_model_types() -> list[str]:
    """The ``model_type`` values model_from_hf_config reads."""
    return sorted(_LLAMA_TYPES | _GEMMA | set(_READERS))


def _gpt2(c: dict[str, Any]) -> dict[str, Any]:
    return dict(
        num_layers=c["n_layer"], hidden_size=c["n_embd"], num_attention_heads=c["n_head"],
        ffn_hidden_size=c.get("n_inner"), vocab_size=c["vocab_size"],
        max_position_embeddings=c.get("n_positions", 1024), mlp="gelu", norm="layernorm",
        position_embedding="learned", tied_embeddings=True, linear_bias=True, dropout=True,
        fused_projections=True,  # c_attn: one Conv1D for Q, K, V
    )


def _gpt_bigcode(c: dict[str, Any]) -> dict[str, Any]:
    """StarCoder / SantaCoder (GPTBigCodeConfig): GPT-2 with multi-query attention (one K/V
    head, ``multi_query`` default true)."""
    return {**_gpt2(c), "num_kv_heads": 1 if c.get("multi_query", True) else None,
            "max_position_embeddings": c.get("n_positions", 2048)}


def _gptj(c: dict[str, Any]) -> dict[str, Any]:
    return dict(
        num_layers=c["n_layer"], hidden_size=c["n_embd"], num_attention_heads=c["n_head"],
        ffn_hidden_size=c.get("n_inner"), vocab_size=c["vocab_size"],
        max_position_embeddings=c.get("n_positions", 2048), mlp="gelu", norm="layernorm",
        position_embedding="rotary", parallel_attention=True,
    )


def _gpt_neox(c: dict[str, Any]) -> dict[str, Any]:
    # GPT-NeoX (Pythia, GPT-NeoX-20B): input_layernorm and post_attention_layernorm in every
    # layer, also with use_parallel_residual (x + attn(ln1(x)) + mlp(ln2(x))), so never one
    # shared norm (parallel_attention); rotary on rotary_pct of each head, which changes no
    # count here. attention_bias (newer configs; absent = true) gates the QKV/dense biases,
    # the MLP always has them: linear_bias follows attention_bias.
    return dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_attention_heads=c["num_attention_heads"],
        ffn_hidden_size=c.get("intermediate_size"), vocab_size=c["vocab_size"],
        max_position_embeddings=c.get("max_position_embeddings", 2048), mlp="gelu",
        norm="layernorm", position_embedding="rotary",
        tied_embeddings=c.get("tie_word_embeddings", False),
        linear_bias=c.get("attention_bias", True), parallel_attention=False,
        fused_projections=True,  # query_key_value
    )


def _falcon(c: dict[str, Any]) -> dict[str, Any]:
    """Falcon (FalconConfig; the legacy RefinedWeb/RefinedWebModel files too): the new decoder
    architecture (Falcon-40B/180B: grouped KV heads, two norms) is also what a legacy file
    with ``n_head_kv`` describes; otherwise multi-query attention with one shared norm.
    Embeddings are tied unless the file says otherwise (FalconConfig's default)."""
    new_arch = c.get("new_decoder_architecture", "n_head_kv" in c)
    if new_arch:
        kv = c.get("num_kv_heads", c.get("n_head_kv"))
    else:
        kv = 1 if c.get("multi_query", True) else None
    return dict(
        num_layers=c.get("num_hidden_layers", c.get("n_layer")),
        hidden_size=c["hidden_size"],
        num_attention_heads=c.get("num_attention_heads", c.get("n_head")),
        num_kv_heads=kv, vocab_size=c["vocab_size"], mlp="gelu", norm="layernorm",
        position_embedding="alibi" if c.get("alibi") else "rotary",
        parallel_attention=c.get("parallel_attn", True) and not new_arch,
        linear_bias=c.get("bias", False), tied_embeddings=c.get("tie_word_embeddings", True),
        fused_projections=True,  # query_key_value
    )


def _bloom(c: dict[str, Any]) -> dict[str, Any]:
    return dict(
        num_layers=c["n_layer"], hidden_size=c["hidden_size"], num_attention_heads=c["n_head"],
        vocab_size=c["vocab_size"], mlp="gelu", norm="layernorm", position_embedding="alibi",
        tied_embeddings=True, linear_bias=True, embedding_norm=True,
        fused_projections=True,  # query_key_value
    )


def _phi(c: dict[str, Any]) -> dict[str, Any]:
    """Phi-1/1.5/2 (PhiConfig, PhiDecoderLayer): attention and a GeLU MLP side by side on one
    LayerNorm, biases on every linear layer (the untied LM head's too), partial rotary."""
    return dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_attention_heads=c["num_attention_heads"], num_kv_heads=c.get("num_key_value_heads"),
        ffn_hidden_size=c.get("intermediate_size"), vocab_size=c["vocab_size"],
        max_position_embeddings=c.get("max_position_embeddings", 2048), mlp="gelu",
        norm="layernorm", position_embedding="rotary", parallel_attention=True,
        linear_bias=True, tied_embeddings=c.get("tie_word_embeddings", False),
    )


def _starcoder2(c: dict[str, Any]) -> dict[str, Any]:
    """StarCoder2 (Starcoder2Config, Starcoder2MLP c_fc/c_proj): grouped-query attention with
    rotary and a sliding window, a GeLU MLP, LayerNorm, biases (``use_bias``)."""
    f = dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_attention_heads=c["num_attention_heads"], num_kv_heads=c.get("num_key_value_heads"),
        ffn_hidden_size=c.get("intermediate_size"), vocab_size=c["vocab_size"],
        max_position_embeddings=c.get("max_position_embeddings", 4096), mlp="gelu",
        norm="layernorm", position_embedding="rotary", linear_bias=c.get("use_bias", True),
        tied_embeddings=c.get("tie_word_embeddings", True),
    )
    if c.get("sliding_window"):
        f["sliding_window"] = c["sliding_window"]
    return f


def _mpt(c: dict[str, Any]) -> dict[str, Any]:
    """MPT (MptConfig, llm-foundry): ALiBi, LayerNorm, a GeLU MLP of expansion_ratio·d_model,
    no biases (``no_bias``), tied embeddings, one Wqkv GEMM."""
    attn = c.get("attn_config") or {}
    return dict(
        num_layers=c["n_layers"], hidden_size=c["d_model"], num_attention_heads=c["n_heads"],
        num_kv_heads=attn.get("kv_n_heads"),
        ffn_hidden_size=int(c.get("expansion_ratio", 4) * c["d_model"]),
        vocab_size=c["vocab_size"], max_position_embeddings=c.get("max_seq_len", 2048),
        mlp="gelu", norm="layernorm",
        position_embedding="alibi" if attn.get("alibi", True) else "learned",
        linear_bias=not c.get("no_bias", True), tied_embeddings=True, fused_projections=True,
    )


def _opt(c: dict[str, Any]) -> dict[str, Any]:
    """OPT (OPTConfig): learned positions, LayerNorm, a ReLU MLP of ffn_dim (two matrices, as
    GeLU's), biases (``enable_bias``), tied embeddings. OPT-350m's 512-wide embedding
    projections (word_embed_proj_dim) are not counted."""
    return dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_attention_heads=c["num_attention_heads"], ffn_hidden_size=c.get("ffn_dim"),
        vocab_size=c["vocab_size"], max_position_embeddings=c.get("max_position_embeddings", 2048),
        mlp="gelu", norm="layernorm", position_embedding="learned",
        linear_bias=c.get("enable_bias", True), tied_embeddings=c.get("tie_word_embeddings", True),
        dropout=bool(c.get("dropout", 0.1)),
    )


_READERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "gpt2": _gpt2, "gpt_bigcode": _gpt_bigcode, "gptj": _gptj, "gpt_neox": _gpt_neox,
    "falcon": _falcon, "RefinedWeb": _falcon, "RefinedWebModel": _falcon, "bloom": _bloom,
    "phi": _phi, "starcoder2": _starcoder2, "mpt": _mpt, "opt": _opt,
}


def _llama_family(mt: str, c: dict[str, Any]) -> dict[str, Any]:
    f: dict[str, Any] = dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_attention_heads=c["num_attention_heads"], num_kv_heads=c.get("num_key_value_heads"),
        head_dim=c.get("head_dim"), ffn_hidden_size=c.get("intermediate_size"),
        vocab_size=c["vocab_size"], max_position_embeddings=c.get("max_position_embeddings", 4096),
        mlp="swiglu", norm="rmsnorm", position_embedding="rotary",
        tied_embeddings=c.get("tie_word_embeddings", False),
        qkv_bias=c.get("attention_bias", c.get("use_qkv_bias",
                                                mt == "qwen2" or mt == "qwen2_moe")),
        # Llama 4's use_qk_norm is a weightless L2 norm on the RoPE layers: not counted
        qk_norm=mt in ("qwen3", "qwen3_moe") or (bool(c.get("use_qk_norm"))
                                                 and not mt.startswith("llama4")),
    )
    f.update(_LLAMA_VARIANTS.get(mt, {}))
    if mt == "stablelm" and c.get("use_parallel_residual"):
        f["parallel_attention"] = True
    # Phi-3 masks every layer to its sliding_window (Phi3Config); Mistral's may be null;
    # Cohere 2 and OLMo 3 mix local and global layers (layer_types / sliding_window_pattern).
    if c.get("sliding_window") and c.get("use_sliding_window", mt in ("mistral", "phi3")):
        f["sliding_window"] = c["sliding_window"]
    elif c.get("sliding_window") and (c.get("layer_types") or mt == "cohere2"):
        f["sliding_window"] = c["sliding_window"]
        f["sliding_window_every"] = _global_layer_stride(c, 4)
    experts = c.get("num_local_experts") or c.get("num_experts") or c.get("n_routed_experts")
    if experts:
        f.update(
            num_experts=experts,
            moe_top_k=c.get("num_experts_per_tok") or c.get("num_experts_per_token", 2),
            moe_ffn_hidden_size=c.get("moe_intermediate_size") or c.get("intermediate_size"),
            num_shared_experts=c.get("n_shared_experts") or 0,
        )
        # qwen2_moe, granitemoeshared: one wide shared expert
        shared = c.get("shared_expert_intermediate_size") or c.get("shared_intermediate_size")
        if shared:
            f.update(num_shared_experts=1, shared_expert_ffn_hidden_size=shared)
    if mt.startswith("deepseek"):
        f.update(
            q_lora_rank=c.get("q_lora_rank"), kv_lora_rank=c["kv_lora_rank"],
            qk_nope_head_dim=c["qk_nope_head_dim"], qk_rope_head_dim=c["qk_rope_head_dim"],
            v_head_dim=c["v_head_dim"], first_k_dense_layers=c.get("first_k_dense_replace", 0),
            moe_layer_every=c.get("moe_layer_freq", 1),
            moe_router_bias=c.get("topk_method") == "noaux_tc", head_dim=None, qkv_bias=False,
            mtp_num_layers=c.get("num_nextn_predict_layers") or 0,
        )
    if mt.startswith("llama4"):
        f.update(
            ffn_hidden_size=c.get("intermediate_size_mlp", c.get("intermediate_size")),
            moe_ffn_hidden_size=c.get("intermediate_size"), num_shared_experts=1,
            moe_layer_every=c.get("interleave_moe_layer_step", 1),
        )
        # chunked local attention on the RoPE layers, every no_rope_layer_interval-th layer
        # global (Llama4TextConfig attention_chunk_size, no_rope_layers / layer_types)
        if c.get("attention_chunk_size"):
            f.update(sliding_window=c["attention_chunk_size"], local_attention="chunked",
                     sliding_window_every=_global_layer_stride(
                         c, c.get("no_rope_layer_interval") or 4))
    if mt == "phi3":  # Phi3Attention.qkv_proj, Phi3MLP.gate_up_proj
        f["fused_projections"] = True
    if mt == "gpt_oss":
        f.update(
            linear_bias=True, qkv_bias=False, attention_sinks=True, moe_router_bias=True,
            moe_expert_bias=True, sliding_window=c.get("sliding_window", 128),
            sliding_window_every=2,
        )
    return f


#: Config defaults of each Gemma family (transformers GemmaConfig, Gemma2Config,
#: Gemma3TextConfig): the multimodal Gemma 3 checkpoints ship sparse text_configs that rely
#: on them.
_GEMMA_DEFAULTS = {
    "gemma": dict(vocab_size=256000, hidden_size=3072, intermediate_size=24576,
                  num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=16,
                  head_dim=256, max_position_embeddings=8192),
    "gemma2": dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216,
                   num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
                   head_dim=256, max_position_embeddings=8192, sliding_window=4096,
                   final_logit_softcapping=30.0),
    "gemma3": dict(vocab_size=262208, hidden_size=2304, intermediate_size=9216,
                   num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4,
                   head_dim=256, max_position_embeddings=131072, sliding_window=4096,
                   sliding_window_pattern=6),
}


def _gemma_family(mt: str, c: dict[str, Any]) -> dict[str, Any]:
    """Gemma 1/2/3 (Gemma Team 2024, 2025): a gated GeLU MLP (GeGLU: three matrices like
    SwiGLU), RMSNorm, head_dim 256, tied embeddings; Gemma 2 adds sandwich norms (after
    attention and after the MLP), alternating local/global layers and final-logit
    soft-capping; Gemma 3 adds per-head q/k norms and five local layers per global one.
    Keys a config leaves out take the family's transformers defaults."""
    family = "gemma3" if mt.startswith("gemma3") else mt
    # a null value takes the default, except soft-capping, where null means none
    c = {**_GEMMA_DEFAULTS[family], **{k: v for k, v in c.items() if v is not None
                                       or k == "final_logit_softcapping"}}
    f: dict[str, Any] = dict(
        num_layers=c["num_hidden_layers"], hidden_size=c["hidden_size"],
        num_attention_heads=c["num_attention_heads"], num_kv_heads=c.get("num_key_value_heads"),
        head_dim=c["head_dim"], ffn_hidden_size=c["intermediate_size"],
        vocab_size=c["vocab_size"], max_position_embeddings=c["max_position_embeddings"],
        mlp="swiglu", norm="rmsnorm", position_embedding="rotary",
        tied_embeddings=c.get("tie_word_embeddings", True), qkv_bias=c.get("attention_bias", False),
        sandwich_norm=mt != "gemma", qk_norm=mt.startswith("gemma3"),
        final_logit_softcapping=c.get("final_logit_softcapping"),
    )
    window = c.get("sliding_window")
    if mt != "gemma" and window:
        f["sliding_window"] = window
        f["sliding_window_every"] = _global_layer_stride(c, 2 if mt == "gemma2" else 6)
    return f


def _global_layer_stride(c: dict[str, Any], default: int) -> int:
    """Every how many layers one attends globally (Model.sliding_window_every): from
    ``layer_types`` (newer configs) the stride that leaves as many local layers as the list
    has, else ``sliding_window_pattern``, else the family's pattern; 0 = none global."""
    types = c.get("layer_types")
    if isinstance(types, list) and types:
        n = len(types)
        n_local = sum(t in ("sliding_attention", "chunked_attention") for t in types)
        if n_local == n:
            return 0
        # the nearest regular pattern when the list is irregular
        return min(range(1, n + 1), key=lambda k: abs(n - n // k - n_local))
    return int(c.get("sliding_window_pattern") or default)
