"""What every measuring backend provides, and the registry `flopcast profile` picks one from.

A backend measures one device (a CUDA/ROCm GPU through PyTorch, the CPU through NumPy) and
returns rows in the kernel measurement schema (``shared/measurements/README.md``, kernels.csv):
the same rows ``flopcast validate`` scores and ``fit_kernel_profile`` fits. Each backend is a
list of tasks (one sweep point or a small group each) so that the caller can show progress and
skip a task that fails on this device without losing the rest.
"""

from __future__ import annotations

import re
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from flopcast.errors import FlopcastError

#: Columns of kernels.csv, in order.
KERNEL_COLUMNS = ("id", "source", "gpu", "op", "dtype", "backend", "m", "n", "k", "batch",
                  "heads", "kv_heads", "seq_len", "kv_len", "head_dim", "causal", "pass",
                  "bytes", "metric", "value", "notes")


@dataclass(frozen=True)
class DeviceInfo:
    """What a backend knows about its device before measuring anything."""

    id: str  # slug used for the entry's id and the default file name
    name: str  # as the driver reports it
    vendor: str
    kind: str  # "cpu" or "cuda"
    sm_count: int  # streaming multiprocessors / compute units; CPU: cores
    memory_bytes: float
    versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One measurement step: ``run()`` returns kernel rows (without id/source/gpu)."""

    label: str
    run: Callable[[], list[dict]]


class Backend(ABC):
    """A way to measure a device. Subclasses register themselves with ``@register``."""

    name: ClassVar[str]
    device: ClassVar[str]  # the --device value it serves: "cpu" or "cuda"

    def __init__(self, quick: bool = False) -> None:
        self.quick = quick

    @classmethod
    @abstractmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run here (one line), or None when it can."""

    @abstractmethod
    def device_info(self) -> DeviceInfo:
        """The device this backend measures."""

    @abstractmethod
    def tasks(self) -> list[Task]:
        """The measurement steps, in order."""

    def timing_note(self) -> str:
        """How times were taken (goes into the rows' source)."""
        return ""

    def caveats(self) -> list[str]:
        """What may make this run's numbers unrepresentative (shown and written to sources)."""
        return []


_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make ``cls`` selectable by its ``device``."""
    _REGISTRY[cls.name] = cls
    return cls


def backends() -> dict[str, type[Backend]]:
    """Registered backends by name."""
    return dict(_REGISTRY)


def select_backend(device: str, quick: bool = False) -> Backend:
    """The backend for ``device`` ('cpu', 'cuda' or 'auto': a GPU when one can be measured).

    A named device whose backend cannot run gives one line saying why (FlopcastError).
    """
    if device == "auto":
        for cls in _REGISTRY.values():
            if cls.device != "cpu" and cls.unavailable() is None:
                return cls(quick)
        device = "cpu"
    candidates = [cls for cls in _REGISTRY.values() if cls.device == device]
    if not candidates:
        known = ", ".join(sorted({c.device for c in _REGISTRY.values()} | {"auto"}))
        raise FlopcastError(f"device: {device!r} is not one of {known}")
    reasons = {cls: cls.unavailable() for cls in candidates}
    for cls, reason in reasons.items():
        if reason is None:
            return cls(quick)
    raise FlopcastError(next(iter(reasons.values())))


def kernel_row(op: str, value: float, metric: str = "time_ms", notes: str = "",
               **fields: object) -> dict:
    """A kernels.csv row as strings (the CSV's form); id, source and gpu are filled later.

    ``fields`` are the other columns (dtype, backend, m, n, k, batch, heads, kv_heads, seq_len,
    kv_len, head_dim, causal, pass_, bytes): ``pass_`` stands for the ``pass`` column.
    """
    if "pass_" in fields:
        fields["pass"] = fields.pop("pass_")
    unknown = set(fields) - set(KERNEL_COLUMNS)
    if unknown:
        raise ValueError(f"kernel_row: unknown columns {sorted(unknown)}")
    row = dict.fromkeys(KERNEL_COLUMNS, "")
    row.update({k: "" if v is None else str(v) for k, v in fields.items()})
    row.update(op=op, metric=metric, value=f"{value:.6g}", notes=notes)
    return row


def median_seconds(fn: Callable[[], object], budget_s: float, min_repeats: int = 3,
                   max_repeats: int = 50, before: Callable[[], object] | None = None) -> float:
    """Median wall time of ``fn()`` (time.perf_counter) over repeats after one warm-up run.

    The repeat count fills about ``budget_s`` (between ``min_repeats`` and ``max_repeats``).
    ``before`` runs untimed ahead of every run (e.g. writing a buffer larger than the last-level
    cache, so that each run starts from memory as it would inside a model).
    """
    def once() -> float:
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    first = once()  # warm-up: page faults, BLAS thread start, lazy initialisation
    repeats = int(min(max(budget_s / max(first, 1e-9), min_repeats), max_repeats))
    return statistics.median(once() for _ in range(repeats))


def slug(text: str) -> str:
    """'NVIDIA H100 80GB HBM3' → 'nvidia-h100-80gb-hbm3'."""
    text = re.sub(r"\((r|tm|c)\)", "", text, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"
