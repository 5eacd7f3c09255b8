import pytest

from flopcast.catalog import gpu_ids, load_gpu, load_model, model_from_hf_config, model_ids
from flopcast.errors import FlopcastError

REQUIRED_GPUS = {"a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "gb200",
                 "gb300", "mi250x", "mi300x", "l40s", "rtx-pro-6000", "rtx-4090"}
REQUIRED_MODELS = {"gpt-3-175b", "gpt-j-6b", "llama-2-7b", "llama-2-13b", "llama-2-70b",
                   "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.3-70b", "mistral-7b",
                   "mixtral-8x7b", "mixtral-8x22b", "falcon-180b", "qwen2.5-7b", "qwen2.5-72b",
                   "qwen3-30b-a3b", "qwen3-235b-a22b", "llama-4-scout", "llama-4-maverick",
                   "deepseek-v3", "gpt-oss-120b", "bloom-176b"}

# Llama 4 Scout's published 109B counts the vision encoder, which flopcast's text model omits.
TOLERANCE = {"llama-4-scout": 0.015}


def test_catalogs_have_required_entries():
    assert set(gpu_ids()) >= REQUIRED_GPUS
    assert set(model_ids()) >= REQUIRED_MODELS


@pytest.mark.parametrize("model_id", sorted(REQUIRED_MODELS))
def test_parameter_count_matches_published(model_id):
    m = load_model(model_id)
    assert m.published_params, f"{model_id} lacks its published count"
    rel = abs(m.num_parameters() / m.published_params - 1)
    assert rel <= TOLERANCE.get(model_id, 0.01), f"{model_id}: {m.num_parameters():.4g}"


@pytest.mark.parametrize("model_id", ["mixtral-8x7b", "mixtral-8x22b", "qwen3-235b-a22b",
                                      "deepseek-v3", "llama-4-maverick"])
def test_active_parameters_match_published(model_id):
    m = load_model(model_id)
    assert abs(m.num_active_parameters() / m.published_active_params - 1) <= 0.02


@pytest.mark.parametrize("gpu_id", sorted(REQUIRED_GPUS))
def test_gpu_entries_are_dense_and_sourced(gpu_id):
    g = load_gpu(gpu_id)
    assert g.sources and g.price_date
    assert g.hbm_bytes > 16 * 2**30 and g.hbm_bandwidth > 5e11
    # dense peaks: fp16 never above 2.6 PF per GPU for any part in the catalog (sparsity
    # figures would show up as 2x the datasheet's dense numbers)
    assert g.peak("bf16") < 2.6e15
    if "fp8" in g.peak_flops:
        assert g.peak("fp8") == pytest.approx(2 * g.peak("bf16"), rel=0.02)


@pytest.mark.parametrize("gpu_id", gpu_ids())
def test_every_gpu_entry_is_sourced_with_dense_peaks(gpu_id):
    """Every entry, not only the required ones: sourced and priced; dense peaks (a sparse
    figure copied by mistake would put fp16 above the fastest part's 2.6 PF, or make fp8 4x
    bf16); fp8 where present runs at twice bf16 (int8 varies: 1-4x across parts), fp4 at
    2-8x (Blackwell Ultra's is 6x); the roofline ridge (bf16 FLOP per byte of memory)
    within what parts from the H20 (37) to B300 (290) have."""
    g = load_gpu(gpu_id)
    assert g.sources and g.price_date and g.tdp_watts > 0
    bf16 = g.peak("bf16") if "bf16" in g.peak_flops else g.peak("fp16")
    assert bf16 < 2.6e15
    if "fp8" in g.peak_flops:
        assert g.peak("fp8") == pytest.approx(2 * bf16, rel=0.02)
    if "fp4" in g.peak_flops:
        assert 2 * bf16 <= g.peak("fp4") <= 8 * bf16
    assert 30 < bf16 / g.hbm_bandwidth < 700


def test_h100_datasheet_numbers():
    g = load_gpu("h100-sxm")
    assert g.peak("bf16") == pytest.approx(989.4e12)
    assert g.hbm_bandwidth == pytest.approx(3.35e12)
    assert g.network_bandwidth == pytest.approx(50e9)


def test_unknown_ids_are_refused():
    with pytest.raises(FlopcastError, match="unknown id"):
        load_gpu("h1000")
    with pytest.raises(FlopcastError, match="unknown id"):
        load_model("llama-9")


HF_CONFIGS = {
    "llama-3.1-8b": {"model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096,
                     "num_attention_heads": 32, "num_key_value_heads": 8,
                     "intermediate_size": 14336, "vocab_size": 128256,
                     "tie_word_embeddings": False},
    "mixtral-8x7b": {"model_type": "mixtral", "num_hidden_layers": 32, "hidden_size": 4096,
                     "num_attention_heads": 32, "num_key_value_heads": 8,
                     "intermediate_size": 14336, "vocab_size": 32000, "num_local_experts": 8,
                     "num_experts_per_tok": 2},
    "qwen3-30b-a3b": {"model_type": "qwen3_moe", "num_hidden_layers": 48, "hidden_size": 2048,
                      "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
                      "intermediate_size": 6144, "moe_intermediate_size": 768,
                      "num_experts": 128, "num_experts_per_tok": 8, "vocab_size": 151936,
                      "tie_word_embeddings": False},
    "deepseek-v3": {"model_type": "deepseek_v3", "num_hidden_layers": 61, "hidden_size": 7168,
                    "num_attention_heads": 128, "num_key_value_heads": 128,
                    "intermediate_size": 18432, "moe_intermediate_size": 2048,
                    "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
                    "first_k_dense_replace": 3, "q_lora_rank": 1536, "kv_lora_rank": 512,
                    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
                    "vocab_size": 129280, "topk_method": "noaux_tc", "moe_layer_freq": 1},
    "gpt-j-6b": {"model_type": "gptj", "n_layer": 28, "n_embd": 4096, "n_head": 16,
                 "vocab_size": 50400, "n_positions": 2048},
    "bloom-176b": {"model_type": "bloom", "n_layer": 70, "hidden_size": 14336, "n_head": 112,
                   "vocab_size": 250880},
}


@pytest.mark.parametrize("model_id", sorted(HF_CONFIGS))
def test_hf_config_reader_matches_catalog(model_id):
    from_hf = model_from_hf_config(HF_CONFIGS[model_id])
    # gpt-j's head dim is 256 with 16 heads: hidden/heads, so the reader needs nothing more
    assert from_hf.num_parameters() == pytest.approx(load_model(model_id).num_parameters(),
                                                     rel=2e-3)


def test_hf_config_reader_refuses_unknown_type():
    with pytest.raises(FlopcastError, match="not supported"):
        model_from_hf_config({"model_type": "mamba"})


def test_gpt2_config():
    m = model_from_hf_config({"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12,
                              "vocab_size": 50257, "n_positions": 1024})
    assert m.num_parameters() == pytest.approx(124_439_808, rel=1e-4)  # GPT-2 small


def test_nim_is_an_engine_calibrated_as_tensorrt_llm():
    from flopcast.catalog.loader import inference_calibration_source, load_engine

    nim = load_engine("NVIDIA NIM")
    assert nim.id == "nim" and load_engine("NIM") is nim
    assert nim.calibration_engine == "tensorrt-llm"
    trt = load_engine("tensorrt-llm")
    assert (nim.max_batch_size, nim.max_num_tokens) == (trt.max_batch_size, trt.max_num_tokens)
    gpu = load_gpu("h100-sxm")
    source, values = inference_calibration_source(gpu, nim)
    assert "tensorrt-llm" in source
    assert values == inference_calibration_source(gpu, trt)[1]


def test_catalog_engines_lists_nim():
    import json
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "flopcast.cli", "catalog", "engines", "--json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "nim" in {e["id"] for e in json.loads(p.stdout)}


def test_shipped_yaml_parses_the_same_with_libyaml():
    """files.load_shipped_yaml may use libyaml's parser: every YAML file shipped in the
    package must give exactly what yaml.safe_load gives."""
    from pathlib import Path

    import yaml

    import flopcast
    from flopcast.files import load_shipped_yaml

    files = sorted(Path(flopcast.__file__).parent.rglob("*.yaml"))
    assert len(files) > 20
    for path in files:
        assert load_shipped_yaml(path) == yaml.safe_load(path.read_text()), path


def test_lazy_package_names_are_the_objects_not_modules():
    """flopcast.lazy: a package name that is also a module's name (specs.precision) gives
    the function, whatever was imported before."""
    import importlib

    import flopcast
    import flopcast.specs
    import flopcast.specs.precision
    import flopcast.workloads.inference

    for package in (flopcast, flopcast.specs, flopcast.workloads.inference):
        for name in package.__all__:
            value = getattr(package, name)
            assert not isinstance(value, type(importlib)), f"{package.__name__}.{name}"
    assert flopcast.specs.precision("bf16").name == "bf16"



def test_every_shipped_data_file_is_package_data():
    """A wheel carries only the globs pyproject lists: a data folder missing there works in an
    editable install and breaks in `pip install flopcast` (it did for catalog/frameworks/ and
    the web page's static files)."""
    import fnmatch
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text()
    block = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    globs = re.findall(r'"([^"]+)"', block)
    package = root / "src" / "flopcast"
    shipped = [p.relative_to(package).as_posix() for p in package.rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc")]
    missing = [s for s in shipped if not any(fnmatch.fnmatch(s, g) for g in globs)]
    assert shipped and not missing, missing


def test_engine_entries_leave_the_priced_release_to_at_version():
    """priced_release records what --engine-version asked for; an entry setting it would
    claim a release its values need not describe."""
    import yaml

    from flopcast.catalog.loader import CATALOG_DIR, engine_ids, load_engine

    for path in sorted((CATALOG_DIR / "engines").glob("*.yaml")):
        assert "priced_release" not in yaml.safe_load(path.read_text()), path.name
    for name in engine_ids():
        engine = load_engine(name)
        assert engine.priced_release is None
        assert engine.at_version("0.1").release == "0.1"
        assert engine.at_version(None).release == engine.describes_release


def test_catalog_engines_shows_what_each_release_changes():
    """`flopcast catalog engines` says what --engine-version changes (its help points there)."""
    from flopcast.api.catalog import CatalogRequest, run_catalog

    rows = {r.id: r.releases for r in run_catalog(CatalogRequest(kind="engines")).root}
    assert rows["sglang"].startswith("is 0.4.1")
    assert "< 0.7: decode_attention_backend trtllm-mmha" in rows["tensorrt-llm"]
    assert rows["vllm"] == (">= 0.13: kv_cache_auto checkpoint; "
                            "< 0.4.1: custom_allreduce False; "
                            "< 0.5.1: fp8_weight_only_fallback False; "
                            "< 0.7: attention_backend flash-attention-2, "
                            "decode_attention_backend flash-attention-2")
    assert rows["generic"] == ""


GEMMA_AND_PHI = {  # shapes from the models' config.json; totals from their model cards
    "gemma-3-1b": ({"model_type": "gemma3_text", "num_hidden_layers": 26, "hidden_size": 1152,
                    "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
                    "intermediate_size": 6912, "vocab_size": 262144, "sliding_window": 512,
                    "sliding_window_pattern": 6}, 999_885_952, 22),
    "gemma-2-2b": ({"model_type": "gemma2", "num_hidden_layers": 26, "hidden_size": 2304,
                    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                    "intermediate_size": 9216, "vocab_size": 256000, "sliding_window": 4096,
                    "final_logit_softcapping": 30.0}, 2_614_341_888, 13),
    "phi-3-mini": ({"model_type": "phi3", "num_hidden_layers": 32, "hidden_size": 3072,
                    "num_attention_heads": 32, "num_key_value_heads": 32,
                    "intermediate_size": 8192, "vocab_size": 32064, "sliding_window": 2047,
                    "tie_word_embeddings": False}, 3_821_079_552, 32),
    "qwen3-0.6b": ({"model_type": "qwen3", "num_hidden_layers": 28, "hidden_size": 1024,
                    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
                    "intermediate_size": 3072, "vocab_size": 151936,
                    "tie_word_embeddings": True}, 596_049_920, 0),
}


@pytest.mark.parametrize("name", sorted(GEMMA_AND_PHI))
def test_gemma_phi3_qwen3_configs_count_their_parameters(name):
    """Gemma 2/3's four norms per layer and Gemma 3's and Qwen3's q/k norms are in the
    count; local layers follow the family's pattern (Gemma 2 alternates, Gemma 3 has one
    global layer in six)."""
    config, published, local = GEMMA_AND_PHI[name]
    m = model_from_hf_config(config)
    assert m.num_parameters() == published
    assert m.num_local_attention_layers == local


def test_gemma_layer_types_give_the_global_stride():
    config = dict(GEMMA_AND_PHI["gemma-3-1b"][0], sliding_window_pattern=None,
                  layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 4
                  + ["sliding_attention"] * 2)
    assert model_from_hf_config(config).num_local_attention_layers == 22


def test_gemma3_layer_types_with_an_uneven_count():
    """34 layers, one global in six (Gemma 3 4B): 29 local, 5 global."""
    types = [("full_attention" if (i + 1) % 6 == 0 else "sliding_attention") for i in range(34)]
    config = dict(GEMMA_AND_PHI["gemma-3-1b"][0], num_hidden_layers=34, layer_types=types,
                  sliding_window_pattern=None)
    assert model_from_hf_config(config).num_local_attention_layers == 29


def test_sparse_gemma3_text_config_takes_the_family_defaults():
    """Multimodal Gemma 3 checkpoints ship text_configs that leave out keys
    Gemma3TextConfig defaults (heads, KV heads, vocabulary, window)."""
    m = model_from_hf_config({"model_type": "gemma3", "text_config": {
        "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34,
        "model_type": "gemma3_text"}})
    assert (m.num_attention_heads, m.kv_heads, m.vocab_size, m.sliding_window) == (
        8, 4, 262208, 4096)
    assert m.qk_norm and m.sandwich_norm and m.num_local_attention_layers == 29


#: Published configs of architectures read through a variant or their own reader, with the
#: parameter count transformers builds from the same config (AutoModelForCausalLM.from_config
#: on the meta device, transformers 5.24; tied embeddings counted once).
HF_VARIANTS = {
    "olmo-2-7b": (7_298_617_344, {
        "model_type": "olmo2", "num_hidden_layers": 32, "hidden_size": 4096,
        "num_attention_heads": 32, "num_key_value_heads": 32, "intermediate_size": 11008,
        "vocab_size": 100352, "tie_word_embeddings": False}),
    "command-r-35b": (34_980_831_232, {
        "model_type": "cohere", "num_hidden_layers": 40, "hidden_size": 8192,
        "num_attention_heads": 64, "num_key_value_heads": 64, "intermediate_size": 22528,
        "vocab_size": 256000, "use_qk_norm": False}),
    "phi-2": (2_779_683_840, {
        "model_type": "phi", "num_hidden_layers": 32, "hidden_size": 2560,
        "num_attention_heads": 32, "intermediate_size": 10240, "vocab_size": 51200}),
    "starcoder2-7b": (7_400_416_256, {
        "model_type": "starcoder2", "num_hidden_layers": 32, "hidden_size": 4608,
        "num_attention_heads": 36, "num_key_value_heads": 4, "intermediate_size": 18432,
        "vocab_size": 49152, "tie_word_embeddings": False, "sliding_window": 4096}),
    "starcoder-15b": (15_517_456_384, {
        "model_type": "gpt_bigcode", "n_layer": 40, "n_embd": 6144, "n_head": 48,
        "vocab_size": 49152, "multi_query": True, "n_positions": 8192}),
    "mpt-7b": (6_649_286_656, {
        "model_type": "mpt", "d_model": 4096, "n_layers": 32, "n_heads": 32,
        "expansion_ratio": 4, "vocab_size": 50432, "no_bias": True,
        "attn_config": {"alibi": True}, "max_seq_len": 2048}),
    "opt-1.3b": (1_315_758_080, {
        "model_type": "opt", "num_hidden_layers": 24, "hidden_size": 2048,
        "num_attention_heads": 32, "ffn_dim": 8192, "vocab_size": 50272}),
    "phi-3.5-moe": (41_872_793_600, {
        "model_type": "phimoe", "num_hidden_layers": 32, "hidden_size": 4096,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 6400,
        "vocab_size": 32064, "num_local_experts": 16, "num_experts_per_tok": 2}),
    # the hub file has no tie_word_embeddings: FalconConfig's default (tied) applies
    "falcon-7b": (6_921_720_704, {
        "model_type": "falcon", "num_hidden_layers": 32, "hidden_size": 4544,
        "num_attention_heads": 71, "vocab_size": 65024, "multi_query": True,
        "parallel_attn": True, "bias": False, "alibi": False,
        "new_decoder_architecture": False}),
    # the legacy RefinedWeb file: n_head_kv means the new decoder architecture
    "falcon-40b-refinedweb": (41_303_293_952, {
        "model_type": "RefinedWeb", "hidden_size": 8192, "vocab_size": 65024, "n_layer": 60,
        "n_head": 128, "n_head_kv": 8, "parallel_attn": True, "bias": False,
        "alibi": False}),
}


@pytest.mark.parametrize("name", sorted(HF_VARIANTS))
def test_hf_config_variants_count_what_transformers_builds(name):
    expected, config = HF_VARIANTS[name]
    assert model_from_hf_config(config).num_parameters() == pytest.approx(expected, rel=1e-3)


def test_hf_config_legacy_falcon_keeps_its_grouped_kv_heads():
    m = model_from_hf_config(HF_VARIANTS["falcon-40b-refinedweb"][1])
    assert m.kv_heads == 8 and not m.parallel_attention


def test_hf_config_multimodal_wrapper_reads_its_text_model():
    text = {"model_type": "mistral", "num_hidden_layers": 40, "hidden_size": 5120,
            "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
            "intermediate_size": 32768, "vocab_size": 131072}
    wrapped = {"model_type": "mistral3", "text_config": text, "vision_config": {}}
    assert (model_from_hf_config(wrapped).num_parameters()
            == model_from_hf_config(text).num_parameters())


def test_hf_config_missing_keys_take_the_types_transformers_defaults():
    """MistralConfig's 8 KV heads and 14336-wide MLP, not one KV head per query head and
    4·hidden; a key present as null stays null (a Mistral window of null = none)."""
    m = model_from_hf_config({"model_type": "mistral", "num_hidden_layers": 32,
                              "hidden_size": 4096, "num_attention_heads": 32,
                              "vocab_size": 32000, "sliding_window": None})
    assert (m.kv_heads, m.ffn_hidden, m.sliding_window) == (8, 14336, None)


def test_hf_config_unsupported_type_names_the_alternatives():
    with pytest.raises(FlopcastError, match=r"supported: .*olmo2.*--layers"):
        model_from_hf_config({"model_type": "mamba"})


def test_llama4_config_reads_chunked_attention_on_three_layers_of_four():
    """Llama4TextConfig: attention_chunk_size 8192 on the RoPE layers, every 4th layer global;
    the catalog entry says the same."""
    m = model_from_hf_config({"model_type": "llama4_text", "num_hidden_layers": 48,
                              "hidden_size": 5120, "num_attention_heads": 40,
                              "num_key_value_heads": 8, "head_dim": 128,
                              "intermediate_size": 8192, "intermediate_size_mlp": 16384,
                              "vocab_size": 202048, "num_local_experts": 16,
                              "num_experts_per_tok": 1, "attention_chunk_size": 8192})
    scout = load_model("llama-4-scout")
    assert (m.local_attention, m.sliding_window, m.num_local_attention_layers) == (
        "chunked", 8192, 36)
    assert (scout.local_attention, scout.sliding_window, scout.num_local_attention_layers) == (
        "chunked", 8192, 36)

