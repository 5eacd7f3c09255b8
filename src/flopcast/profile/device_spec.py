"""The GPU entry a profile starts from: the catalog's for a known GPU, else one built from what
the device reports and what was just measured.

A known GPU keeps its datasheet peaks, bandwidths, TDP and price (the catalog's sources), and
its family's kernel priors are where the fit starts. An unknown GPU or a CPU gets peaks and
bandwidth from the best GEMM and copy it ran (the kernel profile's fractions are then relative
to those, not to a datasheet), and nominal values, said to be nominal, where nothing measures
them.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import yaml

from flopcast.catalog.loader import GPU_DIR, _kernel_family_priors
from flopcast.profile.base import DeviceInfo

GIB = 2**30

#: Substrings of the names drivers report (torch.cuda.get_device_name) → catalog id, first match
#: wins, compared without case, spaces or hyphens. None: a part the catalog does not have (so a
#: shorter pattern below must not claim it).
CATALOG_NAMES: tuple[tuple[str, str | None], ...] = (
    ("GH200", None), ("GB300", "gb300"), ("GB200", "gb200"), ("B200", "b200"),
    ("H200", "h200"), ("H100 PCIe", "h100-pcie"), ("H100 NVL", None), ("H100", "h100-sxm"),
    ("A100-SXM4-80GB", "a100-80gb"), ("A100 80GB", "a100-80gb"), ("A100", "a100-40gb"),
    ("L40S", "l40s"), ("RTX 4090", "rtx-4090"), ("RTX PRO 6000", "rtx-pro-6000"),
    ("MI300X", "mi300x"), ("MI250X", "mi250x"), ("MI250", "mi250x"),
)

#: Kernel-prior family of a GPU the catalog lacks, by CUDA capability or ROCm architecture.
FAMILY_BY_ARCH = {"sm_80": "ampere", "sm_86": "ampere", "sm_87": "ampere", "sm_89": "ada",
                  "sm_90": "hopper", "sm_100": "blackwell", "sm_103": "blackwell",
                  "sm_120": "blackwell", "gfx90a": "cdna2", "gfx942": "cdna3",
                  "gfx950": "cdna3"}

#: Kernel profile a CPU starts from (no catalog family measures CPUs).
CPU_KERNEL_PRIORS: dict = {
    "source": "priors for a CPU measured through NumPy (profile/device_spec.py): one core "
              "stands for one SM; GEMM tiles of 1 row (BLAS runs m = 1 as GEMV and pads rows "
              "only to its micro-kernel height, a padding its timings do not show), no "
              "split-K; attention and decode attention are the NumPy kernels",
    "launch_s": 2.0e-6,
    "gemm_fraction": {"fp32": 0.9},
    "gemm_k_overhead": 16.0,
    "gemm_tiles": [[1, 64]],
    "gemm_max_split_k": 1,
    "gemm_stream_fraction": 0.8,
    "copy_fraction": 0.9,
    "attention": {"numpy": {"fwd_fraction": 0.3, "fwd_context_half": 64.0,
                            "bwd_fraction": 0.3, "bwd_context_half": 64.0}},
    "decode_attention": {"numpy": {"stream_fraction": 0.5, "split_kv": False, "launches": 1}},
    "default_attention": "numpy",
    "default_decode_attention": "numpy",
}
#: Generic GPU kernel priors for an architecture no family file covers (FlashAttention-2-like).
GENERIC_GPU_KERNELS: dict = {
    "attention": {"flash-attention-2": {"fwd_fraction": 0.5, "fwd_context_half": 150.0,
                                        "bwd_fraction": 0.4, "bwd_context_half": 300.0}},
    "decode_attention": {"flash-attention-2": {"stream_fraction": 0.8, "split_kv": True,
                                               "launches": 2}},
}
#: Nominal numbers nothing in a profile measures (sources say so).
CPU_NOMINAL = {"pcie_bandwidth_gb_s": 16.0, "network_gbit_s": 10.0, "tdp_watts_per_core": 10.0}
GPU_NOMINAL = {"pcie_bandwidth_gb_s": 32.0, "network_gbit_s": 100.0, "tdp_watts": 300.0}


def _squash(text: str) -> str:
    return re.sub(r"[\s\-_]+", "", text.lower())


def catalog_id_for(device_name: str) -> str | None:
    """The catalog id of the GPU a driver calls ``device_name``, or None.

    >>> catalog_id_for("NVIDIA H100 80GB HBM3"), catalog_id_for("NVIDIA GH200 480GB")
    ('h100-sxm', None)
    >>> catalog_id_for("NVIDIA A100 80GB PCIe"), catalog_id_for("NVIDIA A100-SXM4-40GB")
    ('a100-80gb', 'a100-40gb')
    """
    name = _squash(device_name)
    for pattern, gpu_id in CATALOG_NAMES:
        if _squash(pattern) in name:
            return gpu_id
    return None


def best_gemm_flops(rows: list[dict], dtype: str) -> tuple[float, str]:
    """Highest GEMM throughput (FLOP/s) among ``dtype`` GEMM rows, and the shape it ran at."""
    best, where = 0.0, ""
    for r in rows:
        if r["op"] in ("gemm", "grouped_gemm") and r["dtype"] == dtype:
            m, n, k = (float(r[c]) for c in ("m", "n", "k"))
            flops = 2.0 * m * n * k * float(r["batch"] or 1) / (float(r["value"]) / 1e3)
            if flops > best:
                best, where = flops, f"m={r['m']} n={r['n']} k={r['k']}"
    return best, where


def best_copy_bandwidth(rows: list[dict]) -> float:
    """Highest copy bandwidth (bytes read + written per second) among copy rows."""
    rates = [float(r["bytes"]) / (float(r["value"]) / 1e3) for r in rows if r["op"] == "copy"]
    return max(rates, default=0.0)


def base_entry(info: DeviceInfo, rows: list[dict]) -> tuple[dict, list[str]]:
    """The catalog-format entry (a dict) a profile of ``info`` starts from, and source lines
    saying where each number came from."""
    if info.kind == "cpu":
        return _cpu_entry(info, rows)
    gpu_id = catalog_id_for(info.name)
    if gpu_id is not None and (GPU_DIR / f"{gpu_id}.yaml").exists():
        return _catalog_entry(info, gpu_id)
    return _measured_gpu_entry(info, rows)


def _common(info: DeviceInfo) -> dict:
    return {"id": info.id, "name": info.name, "vendor": info.vendor}


def _cpu_entry(info: DeviceInfo, rows: list[dict]) -> tuple[dict, list[str]]:
    """A CPU as an entry: float32 GEMM rate for every dtype key, copy bandwidth as 'HBM'."""
    peak, where = best_gemm_flops(rows, "fp32")
    bandwidth = best_copy_bandwidth(rows)
    if peak <= 0 or bandwidth <= 0:
        from flopcast.errors import FlopcastError

        raise FlopcastError("profile: a CPU entry needs at least one GEMM and one copy row")
    tdp = CPU_NOMINAL["tdp_watts_per_core"] * info.sm_count
    entry = {**_common(info), "family": "cpu", "sm_count": info.sm_count,
             "dense_tflops": {d: peak / 1e12 for d in ("fp32", "tf32", "bf16", "fp16")},
             "hbm_gib": info.memory_bytes / GIB, "hbm_bandwidth_gb_s": bandwidth / 1e9,
             "nvlink_bandwidth_gb_s": 0.0,
             "pcie_bandwidth_gb_s": CPU_NOMINAL["pcie_bandwidth_gb_s"], "gpus_per_node": 1,
             "network_gbit_s": CPU_NOMINAL["network_gbit_s"], "tdp_watts": tdp,
             "price_per_gpu_hour_usd": 0.0, "price_date": _dt.date.today().strftime("%Y-%m"),
             "kernels": CPU_KERNEL_PRIORS}
    sources = [
        f"dense_tflops: the best float32 GEMM measured (np.matmul, {where}); it stands for "
        "every dtype key (fp32, tf32, bf16, fp16): NumPy runs no 16-bit GEMMs, so 16-bit "
        "training and inference are predicted at the float32 rate",
        "hbm_bandwidth_gb_s: the best copy measured (bytes read + written per second); "
        "hbm_gib: physical memory",
        f"sm_count: os.cpu_count() = {info.sm_count} logical CPUs (a core stands for an SM)",
        f"not measured: tdp_watts is nominal ({CPU_NOMINAL['tdp_watts_per_core']:g} W per "
        "core), pcie_bandwidth_gb_s and network_gbit_s are nominal, price 0 (own hardware)",
    ]
    return entry, sources


def _catalog_entry(info: DeviceInfo, gpu_id: str) -> tuple[dict, list[str]]:
    """The catalog entry of a known GPU, renamed to this device, SM count as the driver says."""
    entry = yaml.safe_load((GPU_DIR / f"{gpu_id}.yaml").read_text())
    sources = [f"datasheet numbers from catalog entry {gpu_id} ({entry['name']}); "
               f"matched by the driver's name {info.name!r}"]
    sources += [f"{gpu_id}: {s}" for s in entry.get("sources", [])]
    if entry["sm_count"] != info.sm_count:
        sources.append(f"sm_count {info.sm_count} as the driver reports it (catalog: "
                       f"{entry['sm_count']}; a MIG slice or a cut-down part)")
    memory_gib = info.memory_bytes / GIB
    if abs(memory_gib - entry["hbm_gib"]) > 0.1 * entry["hbm_gib"]:
        sources.append(f"hbm_gib {memory_gib:.1f} as the driver reports it (catalog: "
                       f"{entry['hbm_gib']})")
        entry["hbm_gib"] = memory_gib
    entry.update(_common(info), sm_count=info.sm_count)
    entry.pop("sources", None)
    return entry, sources


def _measured_gpu_entry(info: DeviceInfo, rows: list[dict]) -> tuple[dict, list[str]]:
    """A GPU the catalog lacks: peaks from its best GEMMs, bandwidth from its best copy."""
    peaks = {d: best_gemm_flops(rows, d)[0] / 1e12 for d in ("bf16", "fp8")}
    peaks = {d: v for d, v in peaks.items() if v > 0}
    if "bf16" not in peaks or best_copy_bandwidth(rows) <= 0:
        from flopcast.errors import FlopcastError

        raise FlopcastError("profile: an unknown GPU needs bf16 GEMM and copy rows")
    peaks["fp16"] = peaks["bf16"]
    gemm_watts = [float(r["value"]) for r in rows if r["op"] == "power:bf16_gemm_8192"]
    family = FAMILY_BY_ARCH.get(info.details.get("arch", "").split(":")[0], "unknown")
    entry = {**_common(info), "family": family, "sm_count": info.sm_count,
             "dense_tflops": peaks, "hbm_gib": info.memory_bytes / GIB,
             "hbm_bandwidth_gb_s": best_copy_bandwidth(rows) / 1e9, "nvlink_bandwidth_gb_s": 0.0,
             "pcie_bandwidth_gb_s": GPU_NOMINAL["pcie_bandwidth_gb_s"],
             "gpus_per_node": max(int(info.details.get("visible_gpus", "1")), 1),
             "network_gbit_s": GPU_NOMINAL["network_gbit_s"],
             "tdp_watts": max(gemm_watts, default=GPU_NOMINAL["tdp_watts"]),
             "price_per_gpu_hour_usd": 0.0,
             "price_date": _dt.date.today().strftime("%Y-%m")}
    if not _kernel_family_priors(family):
        entry["kernels"] = GENERIC_GPU_KERNELS
    sources = [
        f"not in the catalog: dense_tflops are the best GEMMs measured per dtype (fp16 = bf16), "
        f"hbm_bandwidth_gb_s the best copy; sm_count and hbm_gib as the driver reports; kernel "
        f"priors of family {family}",
        "tdp_watts: board power under the bf16 GEMM loop" if gemm_watts else
        "not measured: tdp_watts is nominal",
        "not measured: pcie_bandwidth_gb_s and network_gbit_s are nominal, nvlink 0, price 0",
    ]
    return entry, sources


def entry_path_default(info: DeviceInfo) -> Path:
    """Where the entry goes without --output: ``<device-id>.yaml`` in the working directory."""
    return Path(f"{info.id}.yaml")
