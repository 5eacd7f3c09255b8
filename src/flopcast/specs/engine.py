"""Serving engine: batching limits and KV-cache paging, as data (catalog/engines/*.yaml)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class GpuLimits(BaseModel):
    """Engine defaults that depend on the GPU (vLLM: larger batches on large-memory GPUs;
    SGLang: smaller prefill chunks on small ones). A limit left out keeps the entry's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_hbm_gib: float = Field(0, ge=0, description="Applies to GPUs with at least this memory.")
    max_hbm_gib: float | None = Field(
        None, gt=0, description="…and with less than this memory (None = no upper bound).")
    except_gpus: list[str] = Field(
        default_factory=list, description="…but not to GPUs whose id contains one of these.")
    max_batch_size: int | None = Field(None, ge=1)
    max_num_tokens: int | None = Field(None, ge=1)
    prefill_chunk_tokens: int | None = Field(None, ge=1)

    def applies_to(self, gpu) -> bool:
        below = self.max_hbm_gib is None or gpu.hbm_bytes < self.max_hbm_gib * 2**30
        return (gpu.hbm_bytes >= self.min_hbm_gib * 2**30 and below
                and not any(name in gpu.id for name in self.except_gpus))


class DerivedBatchLimit(BaseModel):
    """Sequences in flight an engine derives from its KV cache when none is set (SGLang's
    --max-running-requests default: ModelRunner sizes its request pool min(max(KV tokens /
    context_len · requests_per_context, floor), ceiling), and TpModelWorker admits at most
    min(KV tokens · kv_token_share, that pool + pool_slack))."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_context: float = Field(gt=0, description="Pool size per context_len "
                                        "(the model's longest context) of KV tokens.")
    floor: int = Field(ge=1, description="Smallest request pool.")
    ceiling: int = Field(ge=1, description="Largest request pool.")
    kv_token_share: float = Field(gt=0, le=1, description="At most this many sequences per "
                                  "KV token (SGLang: max_total_num_tokens // 2).")
    pool_slack: int = Field(1, ge=-1, le=1, description="Running requests at most the "
                            "pool size plus this: +1 where the pool gets one slot more than "
                            "it is sized for and all are admitted (SGLang from 0.3.2), 0 where "
                            "it gets none and all are admitted (0.3.1), -1 where one is kept "
                            "back (0.3.0).")

    @model_validator(mode="after")
    def _bounds(self):
        if self.floor > self.ceiling:
            raise ValueError(f"max_batch_from_kv: floor {self.floor} is above ceiling "
                             f"{self.ceiling}")
        return self


#: Engine fields a GpuLimits rule may set.
GPU_DEPENDENT = ("max_batch_size", "max_num_tokens", "prefill_chunk_tokens")


class ReleaseChange(BaseModel):
    """Defaults that differ by release: runs of release ``since`` or newer, or of releases
    older than ``before`` (engine_version column), get ``values``; unversioned runs keep the
    entry's (the release it describes, or the current one). Exactly one of since/before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    since: str | None = None
    before: str | None = None
    values: dict[str, Any]

    @field_validator("since", "before")
    @classmethod
    def _is_release(cls, v: str | None, info) -> str | None:
        if v is not None and not release_tuple(v):
            raise ValueError(f"{info.field_name}: {v!r} is not a release number (e.g. 0.4.3)")
        return v

    @field_validator("values")
    @classmethod
    def _are_engine_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted((set(v) - set(Engine.model_fields))
                         | (set(v) & {"id", "release_changes", "priced_release"}))
        if unknown:
            raise ValueError(f"values: {', '.join(unknown)} cannot change by release")
        return v

    @model_validator(mode="after")
    def _one_bound(self) -> ReleaseChange:
        if (self.since is None) == (self.before is None):
            raise ValueError("a release change needs exactly one of since and before, got "
                             f"since={self.since!r}, before={self.before!r}")
        return self

    def applies_to(self, run: tuple[int, ...]) -> bool:
        """Whether a run of release ``run`` (parsed; () = unversioned) takes ``values``."""
        if not run:
            return False
        if self.since is not None:
            return run >= release_tuple(self.since)
        return run < release_tuple(self.before)


#: How MoE tokens cross attention data-parallel ranks (Engine.expert_dispatch; priced by
#: physics/layer.py expert_dispatch_time).
ExpertDispatch = Literal["all-to-all", "allgather", "allgather-quantized", "allgather-allreduce"]


class Engine(BaseModel):
    """What an inference engine allows per step and how it pages the KV cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    gpu_vendors: list[str] = Field(
        default_factory=list, description="GPU vendors the engine runs on (TensorRT-LLM: "
        "nvidia only); empty = any.")
    max_batch_size: int = Field(ge=1, description="Sequences in flight at most.")
    max_batch_from_kv: DerivedBatchLimit | None = Field(
        None, description="Derive the sequences in flight from the KV cache instead "
        "(max_batch_size is then only the bound workspace is sized for).")
    max_num_tokens: int = Field(ge=1, description="Tokens (prefill + decode) per step at most.")
    kv_block_tokens: int = Field(ge=1, description="Paged-KV block size in tokens.")
    memory_fraction: float = Field(
        gt=0, le=1, description="The engine's memory share; what it is a share of: "
        "memory_fraction_of.")
    memory_fraction_of: Literal["free", "total", "static"] = Field(
        "free", description="free: the KV cache gets this share of the memory left after "
        "weights, runtime reserve and step workspace (TensorRT-LLM free_gpu_memory_fraction); "
        "total: the engine uses this share of all GPU memory, weights and workspace included "
        "(vLLM gpu_memory_utilization); static: weights and the KV pool fill this share of all "
        "GPU memory, activations live in the rest (SGLang mem_fraction_static).")
    memory_fraction_by_tp: dict[int, float] | None = Field(
        None, description="Default share that depends on the model-parallel size (tp·pp): the "
        "value of the largest key not above it (SGLang: 0.88 alone, 0.79 from 16 GPUs); "
        "memory_fraction is the one-GPU value.")
    attention_backend: str | None = Field(
        None, description="Prefill attention kernel (a kernel-profile backend name); None or "
        "one the GPU's profile lacks = the profile's default.")
    decode_attention_backend: str | None = Field(
        None, description="Decode attention kernel (kernel-profile backend name).")
    small_group_decode_backend: str | None = Field(
        None, description="Decode attention kernel for grouped-query attention whose group "
        "(query heads // KV heads on a rank) is one of small_group_decode_groups (SGLang on "
        "FlashInfer: the CUDA-core BatchDecode kernel for those groups, the tensor-core "
        "kernel otherwise).")
    small_group_decode_groups: list[int] = Field(
        default_factory=list, description="GQA groups decoded with small_group_decode_backend.")
    small_group_decode_8bit_kv: bool = Field(
        True, description="An 8-bit KV cache follows the group rule too (False: it always "
        "takes decode_attention_backend).")
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
    expert_dispatch: ExpertDispatch = Field(
        "all-to-all", description="How MoE tokens reach experts on other attention "
        "data-parallel ranks (ep > tp): all-to-all = each token's top-k copies sent to the "
        "experts' ranks and back (GShard §2.2; DeepEP-style dispatch); allgather = every rank "
        "all-gathers the group's hidden states, runs its local experts on all of them and "
        "reduce-scatters the outputs (k-independent volume); allgather-quantized = the same "
        "with the gathered activations already in the GEMM input format (fp8/fp4 + scales); "
        "allgather-allreduce = the outputs all-reduced instead of reduce-scattered "
        "(physics/layer.py expert_dispatch_time).")
    kv_cache_auto: Literal["checkpoint", "activations"] = Field(
        "checkpoint", description="KV-cache format when none is given: 'checkpoint' = fp8 "
        "with fp8/fp4 weights, as the engine takes the checkpoint's KV quantisation and the "
        "quantised checkpoints it serves carry FP8 KV scales (NVIDIA ModelOpt); "
        "'activations' = the 16-bit activation format whatever the weights (kv_cache_dtype "
        "'auto' = the model's dtype; FP8 KV only when asked).")
    decode_cuda_graphs: bool = Field(
        False, description="Decode-only steps replay captured CUDA graphs: each kernel pays "
        "the efficiency's graph_fixed_cost_scale of its fixed cost instead of the eager "
        "kernel_fixed_cost_scale (steps with prefill run eagerly).")
    cuda_graph_max_batch: int | None = Field(
        None, ge=1, description="Largest decode batch the engine captures; larger decode "
        "steps run eagerly. None = every batch size.")
    overlap_scheduling: bool = Field(
        False, description="The host forms iteration k+1 while the GPU runs iteration k "
        "(SGLang's zero-overhead batch scheduler): a request arriving while the replica is "
        "busy is first scheduled one iteration later than a synchronous loop would.")
    pipeline_overlap_scheduling: bool | None = Field(
        None, description="Whether the host's per-step work hides behind the GPU when the "
        "model is pipelined (pp > 1); None = as overlap_scheduling. TensorRT-LLM's PyTorch "
        "executor runs pipelines in a loop of its own that waits on the last rank's samples "
        "(false: host time adds to each pipeline slot).")
    host_s_per_sequence: float = Field(
        0.0, ge=0, le=1e-3, description="Host CPU seconds the engine's executor thread spends "
        "per sequence in each iteration (scheduling, KV-block bookkeeping, sampler and "
        "response handling): O(batch) work a Python executor does once per step on each "
        "scheduling rank. Under overlap_scheduling it is hidden behind the GPU's step up to "
        "the step's length, else it adds to it (workloads/inference/step.host_exposed_s). "
        "0 = not priced (no measurement of the engine's host cost).")
    custom_allreduce: bool = Field(
        True, description="Tensor-parallel all-reduces inside an NVLink domain run the "
        "engine's custom one-shot/two-shot kernels (the library's all-reduce for large "
        "buffers), priced by the GPU's measured kernels.engine_all_reduce where it has one. "
        "False: NCCL's ring throughout, priced as training prices it.")
    fp8_weight_only_fallback: bool = Field(
        False, description="FP8 checkpoints of dense models run on GPUs without FP8 tensor "
        "cores as weight-only W8A16 (vLLM's FP8 Marlin kernel on Ampere, PR 5975); False: "
        "refused there.")
    uniform_sliding_window: bool = Field(
        True, description="Whether the engine, left at its defaults, limits attention and "
        "the KV cache to the window of a model whose every layer is local (Mistral 7B v0.1's "
        "4,096). False: it attends over the whole context unless told otherwise (TensorRT-"
        "LLM's max_attention_window_size is a runtime option, unset by trtllm-bench). "
        "Interleaved local/global patterns (Gemma 2/3, gpt-oss, Llama 4's chunks) are part of "
        "the architecture and always applied.")
    describes_release: str | None = Field(
        None, description="Release whose defaults the entry's values are; what an "
        "unversioned run is priced as.")
    release_changes: list[ReleaseChange] = Field(
        default_factory=list, description="Defaults that differ in other releases (since: "
        "from a later release on; before: in releases older than one), applied to runs of "
        "those releases (engine_version column).")
    priced_release: str | None = Field(
        None, description="Set by at_version: the release a run was priced as (None: the "
        "entry as it stands, describes_release or the current release).")
    limits_by_gpu: list[GpuLimits] = Field(
        default_factory=list, description="GPU-dependent defaults replacing max_batch_size, "
        "max_num_tokens or prefill_chunk_tokens: the first rule that applies to the "
        "deployment's GPU.")
    entry_limits: dict[str, int | None] | None = Field(
        None, description="Set by for_gpu: the entry's own GPU-dependent limits, so that the "
        "engine can be moved to another GPU.")
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _changes_fit_the_release(self) -> Engine:
        """A ``since`` change describes a release after the one the entry describes, a
        ``before`` change releases up to it (else an unversioned run would be priced as a
        release the entry's own values do not describe)."""
        base = release_tuple(self.describes_release)
        for change in self.release_changes if base else ():
            if change.since is not None and release_tuple(change.since) <= base:
                raise ValueError(f"release_changes: since {change.since!r} is not after "
                                 f"describes_release {self.describes_release!r}")
            if change.before is not None and release_tuple(change.before) > base:
                raise ValueError(f"release_changes: before {change.before!r} is after "
                                 f"describes_release {self.describes_release!r}")
        return self

    @model_validator(mode="after")
    def _derived_batch_needs_a_static_pool(self) -> Engine:
        """The derived limit sizes the logits workspace, so the KV pool it is derived from
        must not depend on the workspace (SGLang's static pool: weights and KV only)."""
        if self.max_batch_from_kv is not None and self.memory_fraction_of != "static":
            raise ValueError("max_batch_from_kv: needs memory_fraction_of static (a KV pool "
                             f"that does not depend on the workspace); got "
                             f"{self.memory_fraction_of!r}")
        return self

    def for_gpu(self, gpu) -> Engine:
        """This engine's defaults on ``gpu``: the first ``limits_by_gpu`` rule that applies,
        else the entry's own limits."""
        if not self.limits_by_gpu:
            return self
        own = self.entry_limits or {f: getattr(self, f) for f in GPU_DEPENDENT}
        values = dict(own)
        rule = next((r for r in self.limits_by_gpu if r.applies_to(gpu)), None)
        if rule is not None:
            values.update({f: getattr(rule, f) for f in GPU_DEPENDENT
                           if getattr(rule, f) is not None})
        return self.model_copy(update={**values, "entry_limits": own})

    def hides_host_time_at(self, pp: int) -> bool:
        """Whether the host's per-step work overlaps the GPU with ``pp`` pipeline stages."""
        if pp > 1 and self.pipeline_overlap_scheduling is not None:
            return self.pipeline_overlap_scheduling
        return self.overlap_scheduling

    def memory_share(self, model_parallel: int) -> float:
        """``memory_fraction`` for a replica of ``model_parallel`` GPUs (tp·pp)."""
        table = self.memory_fraction_by_tp or {}
        keys = [k for k in table if k <= model_parallel]
        return table[max(keys)] if keys else self.memory_fraction

    def at_version(self, version: str | None) -> Engine:
        """This engine as a run of release ``version`` executes: the values of every
        ``release_changes`` entry that applies to it (the narrowest ``before`` range and the
        latest ``since`` win); None or an unparseable version = the entry as it stands
        (describes_release, else the current release)."""
        run = release_tuple(version)
        changed: dict[str, Any] = {}
        # before-changes widest first, so the narrowest range (the oldest releases) wins;
        # then since-changes oldest first, so the newest wins
        older = sorted((c for c in self.release_changes if c.before is not None),
                       key=lambda c: release_tuple(c.before), reverse=True)
        newer = sorted((c for c in self.release_changes if c.since is not None),
                       key=lambda c: release_tuple(c.since))
        for change in (*older, *newer):
            if change.applies_to(run):
                changed.update(change.values)
        engine = Engine.model_validate(
            {**self.model_dump(exclude={"priced_release"}), **changed}) if changed else self
        # set after validation: the field is the result of at_version, never an entry's
        return engine.model_copy(update={"priced_release": version}) if run else engine

    @property
    def release(self) -> str | None:
        """The release a run is priced as: the one asked for, else the one the entry
        describes (None: the current release, unnamed)."""
        return self.priced_release or self.describes_release

    def decode_backend_for(self, group: int | None, kv_8bit: bool = False) -> str | None:
        """The decode attention kernel for a GQA group of ``group`` query heads per KV head
        (None: no group rule applies, e.g. MLA)."""
        if (self.small_group_decode_backend and group in self.small_group_decode_groups
                and (self.small_group_decode_8bit_kv or not kv_8bit)):
            return self.small_group_decode_backend
        return self.decode_attention_backend


def release_tuple(version: str | None) -> tuple[int, ...]:
    """Leading numeric release of a version string, trailing zeros dropped ("0.5.0 (TensorRT
    9.1)" → (0, 5); "0.7a" → (0, 7); "1" and "1.0" → (1,)); () when it has none."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version or "")
    if not match:
        return ()
    parts = [int(x) for x in match.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:  # "1" and "1.0" are one release
        parts.pop()
    return tuple(parts)
