"""Serving engine: batching limits and KV-cache paging, as data (catalog/engines/*.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Engine(BaseModel):
    """What an inference engine allows per step and how it pages the KV cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    max_batch_size: int = Field(ge=1, description="Sequences in flight at most.")
    max_num_tokens: int = Field(ge=1, description="Tokens (prefill + decode) per step at most.")
    kv_block_tokens: int = Field(ge=1, description="Paged-KV block size in tokens.")
    memory_fraction: float = Field(
        gt=0, le=1, description="Share of the memory left after weights given to the KV cache."
    )
    attention_backend: str | None = Field(
        None, description="Prefill attention kernel (a kernel-profile backend name); None or "
        "one the GPU's profile lacks = the profile's default.")
    decode_attention_backend: str | None = Field(
        None, description="Decode attention kernel (kernel-profile backend name).")
    calibration_engine: str | None = Field(
        None, description="Engine id whose inference calibration applies where this engine has "
        "none of its own: the runtime it wraps (NVIDIA NIM's optimized profiles run "
        "TensorRT-LLM, so nim names tensorrt-llm)."
    )
    scheduler: str = Field(
        "vllm", description="Serving scheduler (workloads/serving/schedulers registry): vllm, "
        "sarathi, trtllm-inflight, prefill-first, static.")
    prefill_chunk_tokens: int | None = Field(
        None, ge=1, description="Prompt chunk per iteration (chunked prefill); None = whole "
        "prompts.")
    prefix_caching: bool = Field(False, description="Reuses cached shared prefixes by default.")
    sources: list[str] = Field(default_factory=list)
