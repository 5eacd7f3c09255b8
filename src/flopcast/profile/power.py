"""Board power of an NVIDIA GPU: NVML (pynvml) when importable, else ``nvidia-smi``.

What physics/kernels.py's ``board_power_w`` needs: the power a GPU draws at idle, under a
tensor-core-bound loop and under an HBM-bound loop (the profile stores each as a fraction of
TDP). A reading is the median of samples taken while the loop runs, after a ramp-up second.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable

from flopcast.errors import FlopcastError

SAMPLE_S = 0.05
RAMP_S = 1.0


class PowerMeter:
    """Reads one GPU's board power; named by PCI bus id (or, failing that, NVML index)."""

    def __init__(self, pci_bus_id: str | None = None, index: int = 0) -> None:
        self.pci_bus_id, self.index = pci_bus_id, index
        self._nvml, self._handle = _nvml_handle(pci_bus_id, index)
        self.source = "NVML" if self._handle is not None else "nvidia-smi"

    def watts(self) -> float:
        """Board power now (W)."""
        if self._handle is not None:
            return self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
        out = _smi("power.draw", self.pci_bus_id or str(self.index))
        try:
            return float(out.split()[0])
        except (ValueError, IndexError):
            raise FlopcastError(f"power: nvidia-smi gave no power reading ({out!r})") from None

    def driver_version(self) -> str | None:
        """The NVIDIA driver version, or None when neither NVML nor nvidia-smi answers."""
        try:
            if self._handle is not None:
                version = self._nvml.nvmlSystemGetDriverVersion()
                return version.decode() if isinstance(version, bytes) else str(version)
            return _smi("driver_version", self.pci_bus_id or str(self.index)).strip() or None
        except Exception:  # noqa: BLE001 - the version is informative only
            return None

    def median_watts_under(self, step: Callable[[], object], seconds: float,
                           synchronize: Callable[[], object]) -> float:
        """Median power while ``step()`` runs back to back for ``seconds`` (after a ramp)."""
        samples: list[float] = []
        errors: list[str] = []
        stop = threading.Event()

        def sample() -> None:
            time.sleep(RAMP_S)
            try:
                while not stop.is_set():
                    samples.append(self.watts())
                    time.sleep(SAMPLE_S)
            except Exception as e:  # noqa: BLE001 - reported below, not in the thread
                errors.append(" ".join(str(e).split()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        end = time.perf_counter() + RAMP_S + seconds
        while time.perf_counter() < end:
            step()
            synchronize()
        stop.set()
        sampler.join()
        if not samples:
            raise FlopcastError(f"power: no readings while the loop ran "
                                f"({errors[0] if errors else 'too short'})")
        return statistics.median(samples)


def _nvml_handle(pci_bus_id: str | None, index: int):
    """(pynvml module, device handle), or (None, None) without pynvml or an NVML driver."""
    try:
        import pynvml
    except ImportError:
        return None, None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - any NVML failure falls back to nvidia-smi
        return None, None
    # Older pynvml takes bytes, newer str; the index is the fallback (CUDA may renumber).
    for get, arg in ((pynvml.nvmlDeviceGetHandleByPciBusId, pci_bus_id),
                     (pynvml.nvmlDeviceGetHandleByPciBusId, (pci_bus_id or "").encode()),
                     (pynvml.nvmlDeviceGetHandleByIndex, index)):
        if arg or arg == index:
            try:
                return pynvml, get(arg)
            except Exception:  # noqa: BLE001 - try the next way of naming the device
                continue
    return None, None


def _smi(field: str, device: str) -> str:
    if shutil.which("nvidia-smi") is None:
        raise FlopcastError("power: neither pynvml nor nvidia-smi is available")
    done = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits",
                           "-i", device], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise FlopcastError(f"power: nvidia-smi failed: {' '.join(done.stderr.split())}")
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
