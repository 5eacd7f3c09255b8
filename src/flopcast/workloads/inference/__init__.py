"""Inference: prefill/decode step times, KV capacity, static and continuous batching."""

from flopcast.workloads.inference.estimate import InferenceEstimate, estimate_inference
from flopcast.workloads.inference.step import forward_step, memory_plan

__all__ = ["InferenceEstimate", "estimate_inference", "forward_step", "memory_plan"]
