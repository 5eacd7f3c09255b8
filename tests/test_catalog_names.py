"""Published model and GPU names find their catalog entry (catalog/names.py, aliases)."""

import pytest

from flopcast.catalog import gpu_ids, load_gpu, load_model, model_ids, resolve_model
from flopcast.catalog.loader import GPU_DIR, _gpu_names, _model_names, load_shipped_yaml
from flopcast.catalog.names import model_name_keys
from flopcast.errors import FlopcastError


@pytest.mark.parametrize("name, entry", [
    ("llama-3.1-8b", "llama-3.1-8b"),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("Meta-Llama-3-70B-Instruct", "llama-3-70b"),
    ("nvidia/Llama-3.3-70B-Instruct-FP8", "llama-3.3-70b"),
    ("meta-llama/Llama-2-70b-chat-hf", "llama-2-70b"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ("mistralai/Mistral-7B-Instruct-v0.1", "mistral-7b"),
    # v0.3 is another network (no sliding window, larger vocabulary): its own entry wins
    # because the literal name is tried before any part is dropped
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b-v0.3"),
    ("mistralai/Mistral-Nemo-Instruct-2407", "mistral-nemo-12b"),
    ("Qwen/Qwen3-235B-A22B-Thinking-2507-FP8", "qwen3-235b-a22b"),
    ("nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8", "llama-4-maverick"),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "llama-3.3-70b"),
    ("google/gemma-2-9b-it", "gemma-2-9b"),
    ("Qwen/QwQ-32B", "qwen2.5-32b"),
    # Qwen2.5-Coder: Qwen2.5's shapes, but a 32768-token config (Qwen2.5's base: 131072)
    ("Qwen/Qwen2.5-Coder-7B-Instruct", "qwen2.5-coder-7b"),
    ("Qwen/Qwen2.5-Coder-14B-Instruct", "qwen2.5-coder-14b"),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", "qwen2.5-coder-32b"),
    ("bigscience/bloom", "bloom-176b"),
    ("mosaicml/mpt-7b", "mpt-7b"),
    ("mosaicml/mpt-30b", "mpt-30b"),
    ("CohereForAI/c4ai-command-r-v01", "command-r-35b"),
    ("CohereForAI/c4ai-command-r-plus", "command-r-plus-104b"),
    ("deepseek-ai/deepseek-llm-67b-chat", "deepseek-llm-67b"),
    ("deepseek-ai/deepseek-llm-67b-base", "deepseek-llm-67b"),
    ("deepseek-ai/deepseek-coder-33b-instruct", "deepseek-coder-33b"),
    ("ibm-granite/granite-3.1-8b-instruct", "granite-3.1-8b"),
    ("Qwen/Qwen2-57B-A14B", "qwen2-57b-a14b"),
    # Phi-3.5-mini has Phi-3-mini's shapes but a 131072-token context (phi-3-mini: 4096)
    ("microsoft/Phi-3.5-mini-instruct", "phi-3.5-mini"),
    ("microsoft/Phi-3.5-MoE-instruct", "phi-3.5-moe"),
    ("THUDM/glm-4-9b-chat", "glm-4-9b"),
    # GLM-4.6 is GLM-4.5's network with a 202752-token context (glm-4.5: 131072)
    ("zai-org/GLM-4.6", "glm-4.6"),
])
def test_published_names_resolve_to_their_network(name, entry):
    assert resolve_model(name).name == entry


@pytest.mark.parametrize("name", [
    "llama-9", "meta-llama/Llama-9-8B-Instruct", "deepseek", "qwen3", "-instruct", "gpt-4o",
    # another network under a family name: Mistral Small 2 (22B), an unknown version
    "mistralai/Mistral-Small-Instruct-2409", "Mistral-7B-v0.4", "x" + "-v1" * 20000])
def test_unknown_names_are_refused(name):
    with pytest.raises(FlopcastError, match="unknown id"):
        load_model(name)


def test_only_non_architecture_parts_are_dropped():
    """Versions are never dropped (Mistral 7B v0.2 is another network than v0.1; DeepSeek-V3
    is not V2): an entry lists its own versioned names as aliases."""
    assert model_name_keys("deepseek-v3") == ["deepseek-v3"]
    assert model_name_keys("Mistral-7B-Instruct-v0.1")[-1] == "mistral-7b-instruct-v0.1"
    assert load_model("DeepSeek-V3").name == "deepseek-v3"
    assert model_name_keys("Qwen2.5-7B-Instruct-AWQ")[-1] == "qwen2.5-7b"


def test_aliases_are_unique_and_never_another_entrys_id():
    names = _model_names()
    ids = set(model_ids())
    for stem in ids:
        for alias in load_model(stem).aliases:
            assert names[alias.lower()] == stem
            assert alias.lower() not in ids


@pytest.mark.parametrize("model_id", model_ids())
def test_every_entry_counts_its_published_parameters(model_id):
    """Each catalog entry's shapes give its published total within 1.5 % (model cards round;
    Llama 4's include the vision encoder); Kimi K2's card rounds 1.026T to "1T"."""
    m = load_model(model_id)
    if m.published_params is None:
        pytest.skip(f"{model_id} has no published count")
    tolerance = {"kimi-k2": 0.03}.get(model_id, 0.015)
    assert abs(m.num_parameters() / m.published_params - 1) <= tolerance, m.num_parameters()


@pytest.mark.parametrize("name, entry", [
    ("h100-sxm", "h100-sxm"), ("H100 SXM", "h100-sxm"), ("NVIDIA H100 80GB HBM3", "h100-sxm"),
    ("DGX H100", "h100-sxm"), ("NVIDIA H200", "h200"), ("A100-SXM4-80GB", "a100-80gb"),
    ("L40S", "l40s"), ("AMD Instinct MI300X", "mi300x"), ("GB200 NVL72", "gb200"),
    ("RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000"),
    ("NVIDIA GeForce RTX 4090", "rtx-4090"),
])
def test_gpu_names_resolve_to_their_entry(name, entry):
    assert load_gpu(name).id == entry


@pytest.mark.parametrize("name", ["h1000", "a100", "NVIDIA", "v100", "h100", "H100 80GB"])
def test_unknown_or_ambiguous_gpu_names_are_refused(name):
    """"a100" and "v100" name two memory sizes each, "h100" (80 GB) the SXM, PCIe and NVL
    parts: the user must choose."""
    with pytest.raises(FlopcastError, match="unknown id"):
        load_gpu(name)


def test_gpu_aliases_are_unique_and_never_another_entrys_id():
    names, ids = _gpu_names(), set(gpu_ids())
    for gid in ids:
        for alias in load_shipped_yaml(GPU_DIR / f"{gid}.yaml").get("aliases") or []:
            assert names[alias.lower()] == gid and alias.lower() not in ids


@pytest.mark.parametrize("written, weights", [
    ("FP8", "fp8"), ("bfloat16", "bf16"), ("float16", "fp16"), ("FP4", "nvfp4"),
    ("NVFP4", "nvfp4"), ("AWQ", "w4a16"), ("GPTQ", "w4a16"), ("int4", "w4a16"),
    ("W3A16", "w3a16"), ("w8a8", "int8"),
])
def test_format_names_people_write(written, weights):
    from flopcast.specs.precision import precision
    from flopcast.specs.quantization import weight_format

    assert weight_format(written).name == weights
    if weights in ("fp8", "bf16", "fp16", "nvfp4"):
        assert precision(written).name == weights


def test_kv_format_names_keep_their_own_meaning():
    """An int4 KV cache is int4 (0.5 byte + scales), not the 4-bit weight format; the
    engines' "auto" is the engine's default."""
    from flopcast.catalog.loader import load_engine
    from flopcast.specs import System
    from flopcast.specs.inference import InferenceJob
    from flopcast.specs.quantization import kv_bytes_per_element

    assert kv_bytes_per_element("INT4") == kv_bytes_per_element("int4") < 1
    assert kv_bytes_per_element("FP8_E4M3") == 1
    job = dict(model=load_model("llama-3.1-8b"),
               system=System(gpu=load_gpu("h100-sxm"), num_gpus=1),
               weights="FP8")
    trt, vllm = load_engine("tensorrt-llm"), load_engine("vllm")
    assert InferenceJob(**job, engine=trt, kv_format="auto").kv_format == "fp8"
    assert InferenceJob(**job, engine=vllm, kv_format="auto").kv_format == "bf16"
    assert InferenceJob(**job, engine=vllm, kv_format="FP8").kv_format == "fp8"
    with pytest.raises(FlopcastError, match="got 'fp9'"):
        kv_bytes_per_element("fp9")


@pytest.mark.parametrize("written, engine", [
    ("tensorrt_llm", "tensorrt-llm"), ("TRT LLM", "tensorrt-llm"), ("NVIDIA NIM", "nim"),
    ("nvidia-nim", "nim"), ("vLLM", "vllm"), ("SGLang", "sglang")])
def test_engine_names_people_write(written, engine):
    from flopcast.catalog.loader import load_engine

    assert load_engine(written).id == engine


@pytest.mark.parametrize("written, framework", [
    ("NVIDIA NeMo", "megatron"), ("Megatron-LM", "megatron"), ("HF Trainer", "hf-transformers"),
    ("llm-foundry", "fsdp"), ("torchtitan", "fsdp"), ("DeepSpeed", "deepspeed")])
def test_framework_names_people_write(written, framework):
    from flopcast.catalog.loader import load_framework

    assert load_framework(written).id == framework


def test_engines_without_an_entry_are_refused():
    from flopcast.catalog.loader import load_engine

    with pytest.raises(FlopcastError, match="unknown 'TGI'"):
        load_engine("TGI")
