"""The CPU measured through NumPy: always available, and what CI profiles.

float32 matmul through NumPy's BLAS stands for the GEMMs (rows labelled ``fp32``: what ran),
a blocked causal softmax attention written in NumPy for prefill attention (backend ``numpy``,
forward only: there is no fused backward to time), one query row per sequence against cached
keys and values for decode attention, and ``np.copyto`` for streaming copies. Times are
``time.perf_counter`` medians; a 64 MiB buffer (larger than the last-level cache of most
CPUs; this one reports it below) is written before every run so that each starts from DRAM,
as a layer's weights do inside a model.
"""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path

import numpy as np

try:  # optional (flopcast[profile]): pin BLAS threads; without it BLAS keeps its default
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - depends on the environment
    from contextlib import nullcontext

    def threadpool_limits(limits=None, user_api=None):
        return nullcontext()

from flopcast.profile import sweep
from flopcast.profile.base import Backend, DeviceInfo, Task, kernel_row, median_seconds, register
from flopcast.profile.base import slug as _slug

#: Largest GEMM measured (FLOPs): a CPU runs ~0.1 TFLOP/s, so the 70B-class shapes at
#: thousands of tokens would take minutes; quick mode keeps each point under ~0.5 s.
MAX_GEMM_FLOPS = {True: 3.5e10, False: 2.5e11}
#: Causal attention on a CPU: tokens per call, heads (head dim 128), sequence lengths.
CPU_ATTENTION_TOKENS = 2048
CPU_ATTENTION_HEADS = 8
CPU_ATTENTION_SEQS = {True: (256, 1024, 2048), False: (256, 512, 1024, 2048, 4096)}
#: Query rows per block of the blocked attention (FlashAttention's block size).
ATTENTION_BLOCK = 128
#: Decode attention (sequences, cached tokens) and copies (bytes read + written), CPU-sized.
CPU_DECODE_CASES = {True: ((1, 1024), (4, 4096), (8, 8192)),
                    False: ((1, 1024), (1, 8192), (4, 4096), (8, 8192), (16, 8192))}
CPU_COPY_BYTES = {True: (2**27, 2**29), False: (2**27, 2**29, 2**31)}
FLUSH_BYTES = 64 * 2**20
#: (m, k) of the square probe GEMM that picks the BLAS thread count.
PROBE = (64, 4096)
#: Load average per CPU above which another process is taken to share the cores.
BUSY_LOAD_PER_CORE = 0.5
#: Seconds of repeats per point (after one warm-up run).
BUDGET_S = {True: 0.12, False: 0.5}


@register
class NumpyBackend(Backend):
    """CPU kernels through NumPy (see the module docstring for what stands for what)."""

    name = "numpy"
    device = "cpu"

    def __init__(self, quick: bool = False) -> None:
        super().__init__(quick)
        self._rng = np.random.default_rng(0)
        self._flush = np.empty(FLUSH_BYTES // 4, dtype=np.float32)
        self._weights: dict[tuple[int, int], np.ndarray] = {}
        self._load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        self.threads = os.cpu_count() or 1

    @classmethod
    def unavailable(cls) -> str | None:
        return None

    def device_info(self) -> DeviceInfo:
        name, vendor = _cpu_name_vendor()
        cores = os.cpu_count() or 1
        return DeviceInfo(
            id=_slug(name if "cpu" in name.lower() else f"cpu {name}"), name=name,
            vendor=vendor, kind="cpu", sm_count=cores, memory_bytes=_memory_bytes(),
            versions={"python": platform.python_version(), "numpy": np.__version__,
                      **_blas_version()},
            details={"cores": str(cores), "machine": platform.machine()})

    def timing_note(self) -> str:
        return ("time.perf_counter medians after a warm-up run, a 64 MiB buffer written "
                f"between runs; BLAS threads {self.threads} of {os.cpu_count() or 1} (the "
                f"faster on a {PROBE[0]}x{PROBE[1]}x{PROBE[1]} probe)")

    def caveats(self) -> list[str]:
        """A busy machine: other processes shared the cores while these kernels ran."""
        cores = os.cpu_count() or 1
        if self._load < BUSY_LOAD_PER_CORE * cores:
            return []
        return [f"the machine was busy (load average {self._load:.1f} on {cores} CPUs before "
                f"measuring; BLAS ran {self.threads} thread(s)): other processes shared the "
                "cores, so these timings may be slower than the CPU alone; profile an idle "
                "machine for numbers that stand for the CPU"]

    def tasks(self) -> list[Task]:
        q = self.quick
        out = [(f"gemm fp32 m={m} n={n} k={k}", lambda m=m, n=n, k=k: self._gemm(m, n, k))
               for n, k in sweep.GEMM_SHAPES for m in sweep.gemm_tokens(q)
               if 2.0 * m * n * k <= MAX_GEMM_FLOPS[q]]
        out += [(f"attention numpy seq={s}", lambda s=s: self._attention(s))
                for s in CPU_ATTENTION_SEQS[q]]
        out += [(f"decode attention batch={b} kv={kv}", lambda b=b, kv=kv: self._decode(b, kv))
                for b, kv in CPU_DECODE_CASES[q]]
        out += [(f"copy {nbytes // 2**20} MiB", lambda nb=nbytes: self._copy(nb))
                for nbytes in CPU_COPY_BYTES[q]]
        return [Task("BLAS threads", self._choose_threads),
                *(Task(label, self._with_threads(fn)) for label, fn in out)]

    def _choose_threads(self) -> list[dict]:
        """Of 1 and all CPUs, the BLAS thread count that runs a probe GEMM faster: on a busy
        machine a thread waiting for a core another process holds stalls every call (a loaded
        2-core VM: ~110 ms per sgemm of any size with 2 threads, none with 1)."""
        w, x = self._random(PROBE[1], PROBE[1]), self._random(PROBE[0], PROBE[1])
        times = {}
        for n in sorted({1, os.cpu_count() or 1}):
            with threadpool_limits(limits=n, user_api="blas"):
                times[n] = median_seconds(lambda: x @ w.T, 0.0, min_repeats=3)
        self.threads = min(times, key=times.__getitem__)
        return []

    def _with_threads(self, fn):
        def run() -> list[dict]:
            with threadpool_limits(limits=self.threads, user_api="blas"):
                return fn()
        return run

    def _time(self, fn) -> float:
        return median_seconds(fn, BUDGET_S[self.quick], max_repeats=12 if self.quick else 30,
                              before=lambda: self._flush.fill(1.0))

    def _random(self, *shape: int) -> np.ndarray:
        return self._rng.random(shape, dtype=np.float32)

    def _gemm(self, m: int, n: int, k: int) -> list[dict]:
        """y = x·Wᵀ in float32 (np.matmul → BLAS sgemm; sgemv at m = 1): a projection GEMM."""
        if (n, k) not in self._weights:
            self._weights = {(n, k): self._random(n, k)}  # one layer's weights at a time
        w, x = self._weights[(n, k)], self._random(m, k)
        y = np.empty((m, n), dtype=np.float32)
        t = self._time(lambda: np.matmul(x, w.T, out=y))
        return [kernel_row("gemm", 1e3 * t, dtype="fp32", backend="numpy", m=m, n=n, k=k,
                           notes="y = x @ W.T (np.matmul, float32 BLAS), x [m,k], W [n,k]")]

    def _attention(self, seq: int) -> list[dict]:
        """Causal softmax attention forward, one 128-row query block at a time: stands for
        fused prefill attention (QKᵀ, masked softmax, PV)."""
        batch, h, d = max(CPU_ATTENTION_TOKENS // seq, 1), CPU_ATTENTION_HEADS, sweep.HEAD_DIM
        q, k, v = (self._random(batch * h, seq, d) for _ in range(3))
        t = self._time(lambda: blocked_causal_attention(q, k, v))
        return [kernel_row("attention", 1e3 * t, dtype="fp32", backend="numpy", batch=batch,
                           heads=h, kv_heads=h, seq_len=seq, kv_len=seq, head_dim=d, causal=1,
                           pass_="fwd", notes="blocked causal softmax attention in NumPy "
                           f"(query blocks of {ATTENTION_BLOCK}), float32")]

    def _decode(self, batch: int, kv_len: int) -> list[dict]:
        """One query row per sequence against ``kv_len`` cached keys/values: decode attention."""
        h, d = sweep.DECODE_HEADS, sweep.HEAD_DIM
        q = self._random(batch, h, 1, d)
        k, v = self._random(batch, h, kv_len, d), self._random(batch, h, kv_len, d)

        def run() -> np.ndarray:
            s = np.matmul(q, k.transpose(0, 1, 3, 2)) / math.sqrt(d)
            p = np.exp(s - s.max(-1, keepdims=True))
            return np.matmul(p / p.sum(-1, keepdims=True), v)

        t = self._time(run)
        return [kernel_row("decode_attention", 1e3 * t, dtype="fp32", backend="numpy",
                           batch=batch, heads=h, kv_heads=h, seq_len=1, kv_len=kv_len,
                           head_dim=d, causal=0, pass_="fwd", notes="one query token per "
                           "sequence against kv_len cached tokens (no GQA grouping), float32")]

    def _copy(self, nbytes: int) -> list[dict]:
        """np.copyto of nbytes/2: the DRAM bandwidth a streaming op reaches."""
        src = self._random(nbytes // 8)
        dst = np.empty_like(src)
        t = self._time(lambda: np.copyto(dst, src))
        return [kernel_row("copy", 1e3 * t, dtype="fp32", bytes=nbytes,
                           notes="np.copyto; bytes = read + written")]


def blocked_causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                             block: int = ATTENTION_BLOCK) -> np.ndarray:
    """softmax(QKᵀ/√d + causal mask)·V over (batch·heads, seq, d) arrays, block rows at a time.

    >>> rng = np.random.default_rng(0)
    >>> q, k, v = (rng.random((2, 300, 16), dtype=np.float32) for _ in range(3))
    >>> s = q @ k.transpose(0, 2, 1) / 4.0 + np.triu(np.full((300, 300), -np.inf), 1)
    >>> p = np.exp(s - s.max(-1, keepdims=True))
    >>> bool(np.allclose(blocked_causal_attention(q, k, v), (p / p.sum(-1, keepdims=True)) @ v,
    ...                  atol=1e-5))
    True
    """
    seq, d = q.shape[1], q.shape[2]
    out = np.empty_like(q)
    mask = np.triu(np.full((block, block), -np.inf, dtype=q.dtype), 1)
    for start in range(0, seq, block):
        end = min(start + block, seq)
        s = np.matmul(q[:, start:end], k[:, :end].transpose(0, 2, 1)) * (1.0 / math.sqrt(d))
        s[:, :, start:end] += mask[:end - start, :end - start]
        s -= s.max(-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(-1, keepdims=True)
        out[:, start:end] = np.matmul(s, v[:, :end])
    return out


def _cpu_name_vendor() -> tuple[str, str]:
    """CPU model name and vendor from /proc/cpuinfo (Linux), else what platform reports."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "cpu"
    vendor = {"GenuineIntel": "intel", "AuthenticAMD": "amd"}.get(
        fields.get("vendor_id", ""), _slug(platform.machine() or "cpu"))
    return name, vendor


def _memory_bytes() -> float:
    """Physical memory (the 'HBM' a CPU entry has); 16 GiB when the OS does not say."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16.0 * 2**30


def _blas_version() -> dict[str, str]:
    """NumPy's BLAS name and version, when NumPy reports them (numpy >= 1.25)."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip()}
    except Exception:  # noqa: BLE001 - older NumPy prints instead; the version is optional
        return {}
