"""InferenceJob: a model served on a system with an engine, a number format and a workload."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flopcast.specs.engine import Engine
from flopcast.specs.model import Model
from flopcast.specs.quantization import (
    WeightFormat,
    default_kv_format,
    kv_bytes_per_element,
    kv_format_name,
    weight_format,
)
from flopcast.specs.system import System

Mode = Literal["batch", "concurrency", "max_throughput"]


class InferenceJob(BaseModel):
    """Serve ``model`` on ``system`` with requests of ``input_len`` prompt and ``output_len``
    generated tokens.

    Modes: ``batch`` — one static batch of ``batch`` requests run together (prefill, then
    decode to the end; TensorRT-LLM's gptSessionBenchmark); ``concurrency`` — continuous
    batching holding ``batch`` requests in flight (steady state); ``max_throughput`` — the
    engine saturated by an offline run of identical requests (trtllm-bench throughput): as
    many in flight as KV memory and the engine's limits allow; they advance in lock step, so
    the KV cache holds every running sequence at its full length at once. Given
    ``num_requests``, the run is finite: it holds at most that many sequences, and its
    requests pass in waves, the last one possibly part-full.

    GPUs beyond one replica's tp·pp serve as data-parallel replicas (each its own engine);
    system-wide figures (output tokens/s, requests/s, concurrency) cover all replicas.
    MXFP4 weights on a GPU without FP4 tensor cores run weight-only, dequantised to 16 bits
    (how vLLM and TensorRT-LLM serve gpt-oss on Hopper).

    Rules: tp·pp divides the GPU count; tp divides the attention heads, and tp and the KV heads
    divide one another (engines replicate KV heads when tp exceeds them); ep divides the experts
    and either divides tp (expert parallel inside the tensor-parallel group, as TensorRT-LLM's
    moe_ep_size·moe_tp_size = tp) or is a multiple of tp dividing tp·replicas (experts spread
    over data-parallel attention replicas: vLLM's --enable-expert-parallel with
    --data-parallel-size, SGLang's --enable-dp-attention, TensorRT-LLM's attention DP).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Model
    system: System
    engine: Engine
    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    weights: WeightFormat = Field(default_factory=lambda: weight_format("bf16"))
    kv_format: str | None = Field(None, description="None = the engine's default "
                                     "(Engine.kv_cache_auto): fp8 with fp8/fp4 weights on "
                                     "TensorRT-LLM, NIM and generic, else bf16.")
    input_len: int = Field(1024, ge=1)
    output_len: int = Field(128, ge=1)
    mode: Mode = "batch"
    batch: int = Field(1, ge=1, description="Static batch, or concurrency in that mode.")
    num_requests: int | None = Field(
        None, ge=1, description="Requests in the offline run (max_throughput only; None = "
        "unbounded): a run holds no more sequences than it has requests, and its last wave "
        "may run part-full.")

    @model_validator(mode="before")
    @classmethod
    def _formats_by_name(cls, data):
        if isinstance(data, dict) and isinstance(data.get("weights"), str):
            data = {**data, "weights": weight_format(data["weights"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> InferenceJob:
        m, n = self.model, self.system.num_gpus
        if n % (self.tp * self.pp):
            raise ValueError(f"tp·pp ({self.tp}·{self.pp}) must divide the GPU count ({n})")
        if m.num_attention_heads % self.tp:
            raise ValueError(f"tp ({self.tp}) must divide num_attention_heads "
                             f"({m.num_attention_heads})")
        if not m.is_mla and m.kv_heads % self.tp and self.tp % m.kv_heads:
            raise ValueError(f"tp ({self.tp}) and num_kv_heads ({m.kv_heads}) must divide one "
                             "another")
        if self.pp > m.num_layers:
            raise ValueError(f"pp ({self.pp}) must be at most num_layers ({m.num_layers})")
        if self.num_requests is not None and self.mode != "max_throughput":
            raise ValueError(f"num_requests ({self.num_requests}) applies to the "
                             f"max_throughput mode only, not {self.mode}")
        if self.ep > 1:
            self._check_expert_parallel()
        gpu = self.system.gpu
        if self.engine.gpu_vendors and gpu.vendor not in self.engine.gpu_vendors:
            raise ValueError(f"engine {self.engine.id} runs on {', '.join(self.engine.gpu_vendors)}"
                             f" GPUs only; gpu {gpu.id} is {gpu.vendor}")
        object.__setattr__(self, "engine", self.engine.for_gpu(gpu))  # GPU-dependent limits
        if (not self.engine.uniform_sliding_window and m.sliding_window is not None
                and m.sliding_window_every == 0):
            # the model as the engine runs it: every layer attends over the whole context
            object.__setattr__(self, "model", m.model_copy(update={"sliding_window": None}))
        if (self.weights.name == "fp8" and "fp8" not in gpu.peak_flops
                and self.engine.fp8_weight_only_fallback and not m.is_moe
                and gpu.vendor == "nvidia" and gpu.family != "volta"):
            # FP8 Marlin is a CUDA kernel for compute capability >= 8.0 (7.5 in later
            # releases): not V100 (7.0), not ROCm (FP8 there needs MI300's hardware FP8)
            # the engine dequantises the FP8 weights inside a 16-bit GEMM (FP8 Marlin)
            object.__setattr__(self, "weights", self.weights.model_copy(
                update={"gemm_dtype": "bf16" if "bf16" in gpu.peak_flops else "fp16",
                        "weight_only": True}))
        if self.weights.name == "mxfp4" and "fp4" not in gpu.peak_flops:
            weight_only = self.weights.model_copy(update={"gemm_dtype": "bf16",
                                                          "weight_only": True})
            object.__setattr__(self, "weights", weight_only)
        for dtype in {self.weights.gemm_dtype, "bf16" if "bf16" in gpu.peak_flops else "fp16"}:
            if dtype not in gpu.peak_flops:
                have = ", ".join(sorted(gpu.peak_flops))
                why = (f"; {self.engine.id} runs FP8 dense models there as weight-only W8A16, "
                       "not mixture-of-experts ones" if dtype == "fp8" and m.is_moe
                       and self.engine.fp8_weight_only_fallback else "")
                raise ValueError(f"precision {self.weights.name}: gpu {gpu.id} has no {dtype} "
                                 f"tensor cores (it has: {have}){why}")
        if self.kv_format is not None and self.kv_format.strip().lower() != "auto":
            kv_bytes_per_element(self.kv_format)  # refuses unknown formats as written
        given = None if self.kv_format is None else kv_format_name(self.kv_format)
        # "auto" is the engines' own word for their default (--kv-cache-dtype auto)
        kv = default_kv_format(self.weights, self.engine.kv_cache_auto == "checkpoint") \
            if given in (None, "auto") else given
        kv_bytes_per_element(kv)  # refuses unknown formats
        object.__setattr__(self, "kv_format", kv)
        return self

    def model_copy(self, *, update=None, deep: bool = False) -> InferenceJob:
        """A copy; moved to another system or engine, the engine's limits follow the GPU
        (Engine.for_gpu; pydantic does not validate copies)."""
        copy = super().model_copy(update=update, deep=deep)
        if update and ("system" in update or "engine" in update):
            object.__setattr__(copy, "engine", copy.engine.for_gpu(copy.system.gpu))
        return copy

    def _check_expert_parallel(self) -> None:
        """ep divides the experts and tp, or spans tp·replicas (see the class rules)."""
        m, ep, tp = self.model, self.ep, self.tp
        if not m.is_moe:
            raise ValueError(f"ep ({ep}) > 1 needs a mixture-of-experts model")
        if m.num_experts % ep:
            raise ValueError(f"ep ({ep}) must divide num_experts ({m.num_experts})")
        ranks = tp * self.replicas
        if tp % ep and (ep % tp or ranks % ep):
            raise ValueError(
                f"ep ({ep}) must divide tp ({tp}), or be a multiple of tp that divides "
                f"tp·replicas ({tp}·{self.replicas} = {ranks}: experts across data-parallel "
                "attention replicas)"
            )

    @property
    def expert_tp(self) -> int:
        """Tensor-parallel ways of each expert: tp/ep inside the TP group, 1 when ep ≥ tp."""
        return max(self.tp // self.ep, 1)

    @property
    def ep_replicas(self) -> int:
        """Attention replicas whose tokens one expert-parallel group serves: ep/tp when the
        experts span data-parallel replicas, else 1."""
        return max(self.ep // self.tp, 1)

    @property
    def expert_shards(self) -> int:
        """GPUs one MoE layer's routed experts are split over: expert_tp·ep = max(tp, ep)."""
        return self.expert_tp * self.ep

    @property
    def replicas(self) -> int:
        """Data-parallel copies of the model: GPUs / (tp·pp)."""
        return self.system.num_gpus // (self.tp * self.pp)

    @property
    def kv_element_bytes(self) -> float:
        return kv_bytes_per_element(self.kv_format)
