"""Pydantic specs: every user input is validated here, at the edge (names imported on first
use, ``flopcast.lazy``)."""

from flopcast.lazy import lazy_exports

_EXPORTS = {
    "Efficiency": "flopcast.specs.efficiency", "GPU": "flopcast.specs.gpu",
    "Model": "flopcast.specs.model", "Parallelism": "flopcast.specs.parallelism",
    "Precision": "flopcast.specs.precision", "precision": "flopcast.specs.precision",
    "System": "flopcast.specs.system", "TrainingJob": "flopcast.specs.training",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
