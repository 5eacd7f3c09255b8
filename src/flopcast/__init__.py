"""flopcast: predict LLM training time, memory, cost and energy before spending a GPU-hour.

>>> import flopcast
>>> sorted(flopcast.__all__)[:3]
['Efficiency', 'GPU', 'InferenceEstimate']

The names below are imported on first use (``flopcast.lazy``).
"""

from flopcast.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(("GPU", "Efficiency", "Model", "Parallelism", "Precision", "System",
                     "TrainingJob"), "flopcast.specs"),
    "InferenceJob": "flopcast.specs.inference", "PlanRequest": "flopcast.specs.plan",
    "InferenceEstimate": "flopcast.workloads.inference",
    "estimate_inference": "flopcast.workloads.inference",
    "TrainingEstimate": "flopcast.workloads.training",
    "estimate_training": "flopcast.workloads.training",
    "plan_training": "flopcast.workloads.training.plan",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
