"""Pydantic specs: every user input is validated here, at the edge."""

from flopcast.specs.efficiency import Efficiency
from flopcast.specs.gpu import GPU
from flopcast.specs.model import Model
from flopcast.specs.parallelism import Parallelism
from flopcast.specs.precision import Precision, precision
from flopcast.specs.system import System
from flopcast.specs.training import TrainingJob

__all__ = [
    "GPU", "Efficiency", "Model", "Parallelism", "Precision", "System", "TrainingJob",
    "precision",
]
