"""flopcast: predict LLM training time, memory, cost and energy before spending a GPU-hour.

>>> import flopcast
>>> sorted(flopcast.__all__)[:3]
['Efficiency', 'GPU', 'InferenceEstimate']

The names below are imported on first use (PEP 562), so a command that needs only some of
the package (``flopcast serve``) does not pay for loading the rest.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "GPU": "flopcast.specs", "Efficiency": "flopcast.specs", "Model": "flopcast.specs",
    "Parallelism": "flopcast.specs", "Precision": "flopcast.specs",
    "System": "flopcast.specs", "TrainingJob": "flopcast.specs",
    "InferenceJob": "flopcast.specs.inference", "PlanRequest": "flopcast.specs.plan",
    "InferenceEstimate": "flopcast.workloads.inference",
    "estimate_inference": "flopcast.workloads.inference",
    "TrainingEstimate": "flopcast.workloads.training",
    "estimate_training": "flopcast.workloads.training",
    "plan_training": "flopcast.workloads.training.plan",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flopcast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
