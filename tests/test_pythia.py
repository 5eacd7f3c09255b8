"""The EleutherAI Pythia suite (Biderman et al. 2023) in the catalog and the gpt_neox reader."""

import json

import pytest

from flopcast.catalog import load_model, model_from_hf_config, model_ids
from flopcast.errors import FlopcastError

# size: (num_hidden_layers, hidden_size, num_attention_heads, vocab_size, published total)
# HF EleutherAI/pythia-<size> config.json; totals from the model cards' "Naming convention and
# parameter count" table. vocab_size is padded to 128 x the training model-parallel size.
PYTHIA = {
    "70m": (6, 512, 8, 50304, 70_426_624),
    "160m": (12, 768, 12, 50304, 162_322_944),
    "410m": (24, 1024, 16, 50304, 405_334_016),
    "1b": (16, 2048, 8, 50304, 1_011_781_632),
    "1.4b": (24, 2048, 16, 50304, 1_414_647_808),
    "2.8b": (32, 2560, 32, 50304, 2_775_208_960),
    "6.9b": (32, 4096, 32, 50432, 6_857_302_016),
    "12b": (36, 5120, 40, 50688, 11_846_072_320),
}
SHAPE_EXCLUDES = {"name", "source", "published_params", "published_active_params"}


def hf_config(size: str) -> dict:
    """A Pythia config.json as Hugging Face ships it (the fields flopcast reads and a few more)."""
    layers, hidden, heads, vocab, _ = PYTHIA[size]
    return {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
        "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
        "intermediate_size": 4 * hidden, "vocab_size": vocab, "max_position_embeddings": 2048,
        "hidden_act": "gelu", "layer_norm_eps": 1e-5, "rotary_pct": 0.25,
        "rotary_emb_base": 10000, "use_parallel_residual": True, "tie_word_embeddings": False,
        "_name_or_path": f"EleutherAI/pythia-{size}",
    }


def test_catalog_has_the_suite():
    assert {f"pythia-{s}" for s in PYTHIA} <= set(model_ids())


@pytest.mark.parametrize("size", sorted(PYTHIA))
def test_catalog_entry_loads_and_matches_published(size):
    m = load_model(f"pythia-{size}")
    layers, hidden, heads, vocab, total = PYTHIA[size]
    assert (m.num_layers, m.hidden_size, m.num_attention_heads, m.vocab_size) == (
        layers, hidden, heads, vocab)
    assert m.ffn_hidden == 4 * hidden and m.head_dim_qk == hidden // heads
    assert m.published_params == total
    assert abs(m.num_parameters() / m.published_params - 1) <= 0.01
    # GPT-NeoX counts exactly: per layer 12h^2 + 13h (biases and two LayerNorms), the final
    # LayerNorm, and untied input and output embeddings (no learned positions: rotary).
    assert m.num_parameters() == total
    assert m.num_parameters() - 2 * vocab * hidden == layers * (12 * hidden**2 + 13 * hidden) + (
        2 * hidden)


@pytest.mark.parametrize("size", sorted(PYTHIA))
def test_gpt_neox_config_maps_to_catalog_shape(size):
    from_hf = model_from_hf_config(hf_config(size))
    catalog = load_model(f"pythia-{size}")
    assert from_hf.name == f"EleutherAI/pythia-{size}"
    assert from_hf.model_dump(exclude=SHAPE_EXCLUDES) == catalog.model_dump(
        exclude=SHAPE_EXCLUDES)
    assert from_hf.num_parameters() == catalog.num_parameters()


def test_gpt_neox_config_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(hf_config("160m")))
    assert model_from_hf_config(path).num_parameters() == PYTHIA["160m"][4]


def test_gpt_neox_config_options():
    # newer transformers write attention_bias; false drops the attention biases
    no_bias = model_from_hf_config({**hf_config("70m"), "attention_bias": False})
    assert not no_bias.linear_bias
    tied = model_from_hf_config({**hf_config("70m"), "tie_word_embeddings": True})
    assert tied.tied_embeddings
    assert tied.num_parameters() == PYTHIA["70m"][4] - 50304 * 512
    # without use_parallel_residual the block is sequential, with the same two norms
    sequential = model_from_hf_config({**hf_config("70m"), "use_parallel_residual": False})
    assert sequential.num_parameters() == PYTHIA["70m"][4]


def test_gpt_neox_config_missing_key_and_listed_as_supported():
    cfg = hf_config("70m")
    del cfg["hidden_size"]
    with pytest.raises(FlopcastError, match="missing key hidden_size"):
        model_from_hf_config(cfg)
    with pytest.raises(FlopcastError, match="gpt_neox"):
        model_from_hf_config({"model_type": "mamba"})
