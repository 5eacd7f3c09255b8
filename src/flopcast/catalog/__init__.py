"""Catalogs: GPUs, models, engines and training frameworks as YAML data files, each with its
source.

Adding a GPU or a model is adding a file to ``catalog/gpus`` or ``catalog/models``.
"""

from flopcast.catalog.hf_config import model_from_hf_config
from flopcast.catalog.loader import (
    framework_ids,
    gpu_ids,
    load_calibration,
    load_framework,
    load_gpu,
    load_model,
    model_ids,
    resolve_model,
)

__all__ = [
    "framework_ids", "gpu_ids", "load_calibration", "load_framework", "load_gpu", "load_model",
    "model_from_hf_config", "model_ids", "resolve_model",
]
