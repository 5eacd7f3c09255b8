"""Training framework profile: which tensors a framework keeps, in which dtype, and the kernels
it runs, as data (catalog/frameworks/*.yaml).

Megatron-LM, Hugging Face transformers (Trainer/accelerate on eager PyTorch), PyTorch FSDP
(torchtitan, llm-foundry) and DeepSpeed lay out the same model differently: fp32 or 16-bit
parameters, a separate fp32 master copy or none, gradients kept between steps or freed by
``zero_grad(set_to_none=True)``, bf16 copies of fp32 weights cached by autocast, a fp32
residual stream, fp32 copies of the logits for the loss. A profile states those choices, each
with its source; physics/memory.py counts bytes from them and workloads/training/phases.py
places them in time (forward, backward, optimizer step). Nothing here is fitted.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from flopcast.specs.base import Spec

#: Per-token widths a saved tensor can have, read from the model's shape
#: (physics/memory.saved_width): hidden h, query q = heads·d, key k and value v = kv heads·d,
#: attention output o, heads and kv_heads (one value per query or key head, e.g. a softmax or
#: norm statistic), ffn (the MLP width; top-k routed + shared experts for MoE), head_dim (one
#: rotary table row), vocab (the logits of one token on this rank, V/tp).
Width = Literal["hidden", "q", "k", "v", "o", "heads", "kv_heads", "ffn", "head_dim", "vocab"]
#: compute = the recipe's activation dtype (bf16: 2 bytes); residual = the profile's residual
#: stream dtype; fp32 = 4 bytes.
TensorDtype = Literal["compute", "residual", "fp32"]
#: Which models a tensor exists for: always, gated (SwiGLU) or plain (GeLU) MLPs, rotary
#: position embeddings, per-head RMSNorm on queries and keys (Model.qk_norm: Qwen3, Gemma 3),
#: norms after attention and after the MLP (Model.sandwich_norm: Gemma 2/3), soft-capped
#: logits (Model.final_logit_softcapping: Gemma 2), Q/K/V and gate/up computed by one GEMM
#: each in the model code or by separate ones (Model.fused_projections: Phi-3). A list of
#: conditions holds when each does.
Condition = Literal["always", "gated", "plain", "rotary", "qk_norm", "sandwich_norm",
                    "logit_softcap", "fused_projections", "separate_projections"]


#: Several conditions, all of which must hold.
Conditions = Annotated[list[Condition], Field(min_length=1)]


class SavedTensor(Spec):
    """``count`` tensors of ``width`` elements per token in ``dtype`` that autograd keeps for
    the backward pass (or that a checkpoint keeps), present when ``when`` holds."""

    what: str = Field(min_length=1, description="Which tensor, and which op saves it.")
    width: Width
    dtype: TensorDtype = "compute"
    count: float = Field(1.0, gt=0, le=64)
    when: Condition | Conditions = "always"


class TrafficTerm(Spec):
    """Element-wise work that only some models run (``when``), e.g. the per-head q/k norms:
    ``kernels`` launches and ``bytes_per_width`` bytes per token per unit of each width."""

    what: str = Field(min_length=1)
    when: Condition | Conditions
    kernels: float = Field(ge=0, le=10_000)
    bytes_per_width: dict[Width, float]


class ElementwiseTraffic(Spec):
    """Forward element-wise work of one layer in an unfused (eager) framework: ``kernels``
    launches and ``bytes_per_width`` bytes read + written per token per unit of each width
    (e.g. ``hidden: 106`` = 106·h bytes per token), plus the ``extra`` terms whose condition
    the model meets. Backward moves twice the bytes in twice the kernels
    (physics/layer.ELEMENTWISE_BACKWARD_PER_FORWARD)."""

    kernels: float = Field(ge=0, le=10_000)
    bytes_per_width: dict[Width, float]
    extra: list[TrafficTerm] = Field(default_factory=list)
    source: str = Field(min_length=1)


#: The attention "backend" of frameworks that do not fuse attention (Framework.attention
#: "eager", or --attention-backend eager): physics/kernels.eager_attention_time.
EAGER_ATTENTION = "eager"


class EagerScoreTraffic(Spec):
    """What unfused attention's element-wise kernels move per attention score (the QKᵀ
    write and the PV read are the GEMMs'), counted op by op in the framework's code."""

    fwd_bytes: float = Field(ge=0, le=64)
    fwd_kernels: int = Field(ge=0, le=32)
    bwd_bytes: float = Field(ge=0, le=64)
    bwd_kernels: int = Field(ge=0, le=32)
    source: str = Field(min_length=1)


#: PyTorch eager attention as Hugging Face transformers writes it (eager_attention_forward,
#: bf16): forward `* scaling` (read 2, write 2), `+ causal_mask` (2, 2; the broadcast mask's
#: own read left out, it mostly stays in L2), `softmax(dtype=float32)` on a bf16 input (a
#: cast, 2 -> 4, then the fp32 softmax, 4 -> 4: aten SoftMax.cpp fuses the up-cast for fp16
#: only), `.to(bf16)` (4, 2) = 28 B in 5 kernels; backward the cast back (2, 4), softmax
#: backward (4 + 4, 4), the cast to 16 bits (4, 2), the scale (2, 2) = 28 B in 4 kernels.
PYTORCH_EAGER_SCORE_TRAFFIC = EagerScoreTraffic(
    fwd_bytes=28.0, fwd_kernels=5, bwd_bytes=28.0, bwd_kernels=4,
    source="transformers eager_attention_forward (bf16 scores, fp32 softmax), counted op by "
    "op; aten/src/ATen/native/SoftMax.cpp: the half-to-float fast path is fp16 only")


class Framework(Spec):
    """What one training framework allocates and runs. ``None`` in a byte field means "as the
    precision recipe says" (Megatron's counting: 16-bit weights and gradients, fp32 master
    weights and Adam moments in the optimizer, ZeRO's K = 12; Rajbhandari et al. 2020 §3.1)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    default_zero_stage: int = Field(
        1, ge=0, le=3, description="ZeRO stage a run of this framework uses when none is "
        "stated (measurement rows with an empty zero_stage).")
    parameter_bytes: float | None = Field(
        None, gt=0, le=8, description="Bytes per parameter of the model's own weights.")
    gradient_bytes: float | None = Field(None, gt=0, le=8)
    optimizer_bytes: float | None = Field(
        None, ge=0, le=32, description="Bytes per parameter of the optimizer: master copy (if "
        "any) and Adam's two moments.")
    gradients_persist: bool = Field(
        True, description="Gradients stay allocated between steps (a contiguous grad buffer); "
        "False = optimizer.zero_grad(set_to_none=True) frees them and backward allocates them.")
    ddp_bucket_copy: bool = Field(
        False, description="With plain data parallelism (ZeRO-0, dp > 1), DDP keeps a flat "
        "copy of every gradient in its all-reduce buckets (torch DDP "
        "gradient_as_bucket_view=False).")
    weight_casts: Literal["none", "autocast"] = Field(
        "none", description="autocast: fp32 weights are cast to the compute dtype once per "
        "forward and the copies cached until the forward's autocast context exits; each copy "
        "stays saved for its GEMM's backward.")
    residual_dtype: Literal["compute", "fp32"] = "compute"
    activations: Literal["korthikanti"] | list[SavedTensor] = Field(
        "korthikanti", description="Per layer: 'korthikanti' = Megatron's counting "
        "(physics/memory.activation_bytes_per_token_layer), or the tensors autograd saves.")
    head_saved: list[SavedTensor] = Field(
        default_factory=list, description="Saved by the final norm and the LM head input, per "
        "token (freed once the head's backward has run).")
    model_saved: list[SavedTensor] = Field(
        default_factory=list, description="Saved once per model (shared by every layer), per "
        "token, e.g. the rotary cos/sin tables.")
    checkpoint_keeps: list[SavedTensor] = Field(
        min_length=1, description="What full activation checkpointing keeps per layer.")
    attention: Literal["flash", "eager"] = Field(
        "flash", description="flash/SDPA attention never stores the s×s scores; eager "
        "attention keeps them (eager_score_bytes per score) and moves them through memory "
        "(physics/kernels.eager_attention_time).")
    eager_score_bytes: float = Field(
        6.0, ge=0, le=16, description="Bytes per attention score kept by eager attention: the "
        "fp32 softmax output and its 16-bit copy for the PV product.")
    eager_score_traffic: EagerScoreTraffic = Field(
        default_factory=lambda: PYTORCH_EAGER_SCORE_TRAFFIC, description="Bytes and kernels "
        "per score of unfused attention's element-wise work (default: PyTorch eager as "
        "transformers writes it).")
    attention_backends: dict[str, str] = Field(
        default_factory=dict, description="Attention kernel per GPU family (a kernel-profile "
        "backend), key 'default' for the rest; empty = the GPU's calibrated training backend.")
    attention_chosen_by_calibration: bool = Field(
        True, description="Whether whole-run calibration chooses the attention kernel among "
        "the kernel profile's training backends (calibration/joint.py: choose_backends). True "
        "for data-parallel wrappers (FSDP, DeepSpeed) that run whatever attention the model "
        "code calls, which a measured row does not name; False for a framework that runs its "
        "own attention module, whose choice attention_backends documents.")
    eager_context_parallel: bool = Field(
        False, description="Context parallelism runs with eager (unfused) attention "
        "(DeepSpeed-Ulysses all-to-alls heads around any attention); False = it needs a fused "
        "kernel (Megatron-Core: 'Context parallelism is only supported by "
        "TEDotProductAttention'; PyTorch context_parallel: SDPA's fused backends).")
    sliding_window_as_mask: bool = Field(
        False, description="Sliding-window layers reach the attention kernel as an explicit "
        "mask (transformers' SDPA path once the sequence reaches the window), so every score "
        "of the s×s block is computed (physics/flops.attention_context); False = the kernel "
        "skips what the window and the causal mask hide (FlashAttention's window_size).")
    loss_forward: list[SavedTensor] = Field(
        min_length=1, description="Buffers live when the forward computes the loss (width "
        "vocab: logits and their copies).")
    loss_backward: list[SavedTensor] = Field(
        min_length=1, description="Buffers live when the backward starts at the loss.")
    loss_freed_before_layers: bool = Field(
        True, description="The logit buffers are freed before the layers' backward starts; "
        "False = counted beside the layers' backward working set (conservative).")
    elementwise: ElementwiseTraffic | None = Field(
        None, description="None = fused kernels (physics/layer.elementwise_bytes_per_token).")
    loss_traffic_bytes_per_logit: float | None = Field(
        None, gt=0, le=256, description="HBM bytes the loss moves per logit, forward + "
        "backward; None = a fused cross-entropy (physics/layer.CROSS_ENTROPY_BYTES_PER_LOGIT).")
    weight_cast_traffic_bytes_per_param: float = Field(
        0.0, ge=0, le=64, description="HBM bytes per GEMM weight per pass (forward, backward "
        "and any recomputed forward) for casting fp32 weights to the compute dtype, and their "
        "gradients back (autocast).")
    gradient_accumulation_bytes_per_param: float = Field(
        0.0, ge=0, le=64, description="HBM bytes per parameter per micro-batch after the first "
        "to add its gradient into the kept one; 0 where the weight-gradient GEMM accumulates "
        "in place (Megatron's fused wgrad into main_grad).")
    optimizer_update_bytes_per_param: float = Field(
        28.0, gt=0, le=128, description="HBM bytes the optimizer step moves per parameter.")
    sources: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Framework:
        if self.weight_casts == "autocast" and self.parameter_bytes is None:
            raise ValueError("weight_casts 'autocast' needs parameter_bytes (the fp32 weights "
                             "autocast casts from)")
        return self

    def bytes_of(self, dtype: str, compute_bytes: float) -> float:
        """Bytes of one element in ``dtype`` (compute, residual or fp32)."""
        if dtype == "fp32":
            return 4.0
        if dtype == "residual" and self.residual_dtype == "fp32":
            return 4.0
        return float(compute_bytes)
