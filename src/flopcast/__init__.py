"""flopcast: predict LLM training time, memory, cost and energy before spending a GPU-hour.

>>> import flopcast
>>> sorted(flopcast.__all__)[:3]
['Efficiency', 'GPU', 'InferenceEstimate']

The names below are imported on first use (``flopcast.lazy``).
"""

from flopcast.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    "flopcast.specs": "GPU Efficiency Model Parallelism Precision System TrainingJob",
    "flopcast.specs.inference": "InferenceJob",
    "flopcast.specs.plan": "PlanRequest",
    "flopcast.workloads.inference": "InferenceEstimate estimate_inference",
    "flopcast.workloads.training": "TrainingEstimate estimate_training",
    "flopcast.workloads.training.plan": "plan_training",
})
