"""Pydantic specs: every user input is validated here, at the edge (names imported on first
use, ``flopcast.lazy``)."""

from flopcast.lazy import lazy_exports

# Imported now: the function ``precision`` shares its name with its module, which importing
# the module would otherwise bind here instead.
from flopcast.specs.precision import Precision, precision  # noqa: F401

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    "flopcast.specs.efficiency": "Efficiency", "flopcast.specs.gpu": "GPU",
    "flopcast.specs.model": "Model", "flopcast.specs.parallelism": "Parallelism",
    "flopcast.specs.precision": "Precision precision", "flopcast.specs.system": "System",
    "flopcast.specs.training": "TrainingJob",
})
