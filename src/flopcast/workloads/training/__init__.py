"""Training: step time, memory and cost of a parallel configuration (array-valued)."""

from flopcast.workloads.training.estimate import TrainingEstimate, estimate_training
from flopcast.workloads.training.layout import Layout
from flopcast.workloads.training.step import training_step

__all__ = ["Layout", "TrainingEstimate", "estimate_training", "training_step"]
