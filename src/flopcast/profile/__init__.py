"""`flopcast profile`: measure this machine's kernels, fit its kernel profile, write a GPU entry.

Backends (one module each, registered in ``base``): ``numpy`` measures the CPU and is always
available; ``torch`` measures a CUDA or ROCm GPU (``pip install 'flopcast[profile]'``) and
imports PyTorch only when it runs. ``run.profile_device`` measures, fits
(calibration/kernels.py) and writes FILE.yaml (catalog format + ``kernels:``) and
FILE.kernels.csv (the rows, kernels.csv schema).
"""

from flopcast.profile import numpy_backend, torch_backend  # noqa: F401  (register backends)
from flopcast.profile.base import Backend, DeviceInfo, Task, backends, select_backend
from flopcast.profile.run import ProfileResult, profile_device

__all__ = ["Backend", "DeviceInfo", "ProfileResult", "Task", "backends", "profile_device",
           "select_backend"]
