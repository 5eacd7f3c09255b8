"""Inference: prefill/decode step times, KV capacity, static and continuous batching (names
imported on first use, ``flopcast.lazy``)."""

from flopcast.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    "flopcast.workloads.inference.estimate": "InferenceEstimate estimate_inference",
    "flopcast.workloads.inference.step": "forward_step memory_plan",
})
