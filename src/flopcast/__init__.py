"""flopcast: predict LLM training time, memory, cost and energy before spending a GPU-hour.

>>> import flopcast
>>> sorted(flopcast.__all__)[:3]
['Efficiency', 'GPU', 'InferenceEstimate']
"""

from flopcast.specs import GPU, Efficiency, Model, Parallelism, Precision, System, TrainingJob
from flopcast.specs.inference import InferenceJob
from flopcast.specs.plan import PlanRequest
from flopcast.workloads.inference import InferenceEstimate, estimate_inference
from flopcast.workloads.training import TrainingEstimate, estimate_training
from flopcast.workloads.training.plan import plan_training

__version__ = "0.1.0"

__all__ = [
    "GPU", "Efficiency", "InferenceEstimate", "InferenceJob", "Model", "Parallelism",
    "PlanRequest", "Precision", "System", "TrainingEstimate", "TrainingJob",
    "estimate_inference", "estimate_training", "plan_training",
]
