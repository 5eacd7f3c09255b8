"""flopcast: predict LLM training time, memory, cost and energy before spending a GPU-hour.

>>> import flopcast
>>> sorted(flopcast.__all__)[:3]
['Efficiency', 'GPU', 'Model']
"""

from flopcast.specs import GPU, Efficiency, Model, Parallelism, Precision, System, TrainingJob
from flopcast.workloads.training import TrainingEstimate, estimate_training

__version__ = "0.1.0"

__all__ = [
    "GPU", "Efficiency", "Model", "Parallelism", "Precision", "System", "TrainingEstimate",
    "TrainingJob", "estimate_training",
]
