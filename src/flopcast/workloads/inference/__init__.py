"""Inference: prefill/decode step times, KV capacity, static and continuous batching (names
imported on first use, ``flopcast.lazy``)."""

from flopcast.lazy import lazy_exports

_EXPORTS = {
    "InferenceEstimate": "flopcast.workloads.inference.estimate",
    "estimate_inference": "flopcast.workloads.inference.estimate",
    "forward_step": "flopcast.workloads.inference.step",
    "memory_plan": "flopcast.workloads.inference.step",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
