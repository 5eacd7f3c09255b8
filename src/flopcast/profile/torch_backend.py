"""A CUDA or ROCm GPU measured through PyTorch (``pip install 'flopcast[profile]'``).

What stands for what (the layouts of shared/measurements/kernels.csv):

- GEMM: ``F.linear`` (cuBLAS/hipBLASLt) in bf16; fp8 through ``torch._scaled_mm`` (e4m3 × e4m3
  → bf16, per-tensor scales) on GPUs with fp8 tensor cores (sm89+, MI300); m padded to 16;
- grouped GEMM: ``torch._grouped_mm`` (MoE experts, each its own weights) where PyTorch has it;
- attention: ``F.scaled_dot_product_attention`` causal, each backend forced with
  ``torch.nn.attention.sdpa_kernel`` (flash-attention-2, cudnn, mem-efficient), forward and
  forward+backward; decode attention the same call with one query row per sequence;
- copies: ``Tensor.copy_`` device to device; board power through NVML at idle, under a bf16
  8192³ GEMM loop and under a copy loop; all-reduce/all-gather over NCCL when several GPUs are
  visible (rows the kernel validator skips: it has no collective model).

Times are medians of ``triton.testing.do_bench`` (which flushes L2 by writing a 256 MB buffer
between runs) or, without Triton, of CUDA events around each run after the same flush.
PyTorch is imported only when this backend runs.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

from flopcast.errors import FlopcastError
from flopcast.profile import sweep
from flopcast.profile.base import Backend, DeviceInfo, Task, kernel_row, register, slug
from flopcast.profile.power import PowerMeter

#: SDPA backends by the names kernels.csv uses.
SDPA_BACKENDS = {"flash-attention-2": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION",
                 "mem-efficient": "EFFICIENT_ATTENTION"}
FLUSH_BYTES = 256 * 2**20
#: do_bench time budgets (ms): warm-up and measurement per point.
BENCH_MS = {True: (10, 40), False: (25, 100)}


@register
class TorchBackend(Backend):
    """CUDA/ROCm kernels through PyTorch (see the module docstring)."""

    name = "torch"
    device = "cuda"

    def __init__(self, quick: bool = False, index: int = 0) -> None:
        super().__init__(quick)
        import torch

        self.torch = torch
        self.dev = torch.device("cuda", index)
        self.index = index
        torch.cuda.set_device(self.dev)
        self._flush = torch.empty(FLUSH_BYTES, dtype=torch.int8, device=self.dev)

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            import torch
        except ImportError:
            return ("device cuda: needs PyTorch, which is not installed "
                    "(pip install 'flopcast[profile]'; or use --device cpu)")
        if not torch.cuda.is_available():
            return (f"device cuda: PyTorch {torch.__version__} sees no CUDA or ROCm GPU "
                    "(use --device cpu)")
        return None

    def device_info(self) -> DeviceInfo:
        torch = self.torch
        props = torch.cuda.get_device_properties(self.dev)
        hip = getattr(torch.version, "hip", None)
        versions = {"python": platform.python_version(), "torch": torch.__version__,
                    ("hip" if hip else "cuda"): str(hip or torch.version.cuda)}
        driver = PowerMeter(self.dev_pci_bus_id()).driver_version()
        if driver:
            versions["driver"] = driver
        arch = getattr(props, "gcnArchName", "") or f"sm_{props.major}{props.minor}"
        return DeviceInfo(
            id=slug(props.name), name=props.name, vendor="amd" if hip else "nvidia",
            kind="cuda", sm_count=props.multi_processor_count,
            memory_bytes=float(props.total_memory), versions=versions,
            details={"arch": arch, "capability": f"{props.major}.{props.minor}",
                     "visible_gpus": str(torch.cuda.device_count())})

    def dev_pci_bus_id(self) -> str | None:
        """PCI bus id of the measured GPU (NVML names GPUs by it, whatever CUDA numbers)."""
        props = self.torch.cuda.get_device_properties(self.dev)
        bus = getattr(props, "pci_bus_id", None)
        if bus is None:
            return None
        domain, device = getattr(props, "pci_domain_id", 0), getattr(props, "pci_device_id", 0)
        return f"{domain:08x}:{bus:02x}:{device:02x}.0"

    def timing_note(self) -> str:
        try:
            import triton  # noqa: F401
            return "medians of triton.testing.do_bench (L2 flushed between runs)"
        except ImportError:
            return "medians of CUDA events, a 256 MB buffer written between runs (L2 flushed)"

    def tasks(self) -> list[Task]:
        q = self.quick
        out = [Task(f"gemm {dt} m={m} n={n} k={k}", lambda m=m, n=n, k=k, dt=dt:
                    self._gemm(m, n, k, dt))
               for dt in self._gemm_dtypes() for n, k in sweep.GEMM_SHAPES
               for m in sweep.gemm_tokens(q)]
        if hasattr(self.torch, "_grouped_mm"):
            out += [Task(f"grouped gemm e={e} m={m} n={n} k={k}",
                         lambda e=e, m=m, n=n, k=k: self._grouped(e, m, n, k))
                    for e, n, k in sweep.GROUPED_SHAPES for m in sweep.GROUPED_TOKENS]
        out += [Task(f"attention {b} seq={s}", lambda b=b, s=s: self._attention(b, s))
                for b in SDPA_BACKENDS for s in sweep.attention_seqs(q)]
        out += [Task(f"decode attention {b} batch={n} kv={kv}",
                     lambda b=b, n=n, kv=kv: self._decode(b, n, kv))
                for b in ("flash-attention-2", "mem-efficient")
                for n, kv in sweep.decode_cases(q)]
        out += [Task(f"copy {nb // 2**20} MiB", lambda nb=nb: self._copy(nb))
                for nb in sweep.copy_bytes(q)]
        if getattr(self.torch.version, "hip", None) is None:
            out.append(Task("board power (idle, GEMM loop, copy loop)", self._power))
        if self.torch.cuda.device_count() > 1:
            out += [Task(f"{op} over {self.torch.cuda.device_count()} GPUs",
                         lambda op=op: self._collective(op)) for op in ("all_reduce",
                                                                       "all_gather")]
        return out

    # -- timing -------------------------------------------------------------------------------

    def bench_ms(self, fn: Callable[[], object]) -> float:
        """Median milliseconds of ``fn`` with L2 flushed between runs."""
        warmup, rep = BENCH_MS[self.quick]
        try:
            from triton.testing import do_bench
        except ImportError:
            return self._event_bench_ms(fn, rep)
        try:
            return float(do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))
        except TypeError:  # Triton < 3.0: no return_mode
            return float(do_bench(fn, warmup=warmup, rep=rep, quantiles=[0.5]))

    def _event_bench_ms(self, fn: Callable[[], object], rep_ms: float) -> float:
        torch = self.torch
        fn()
        torch.cuda.synchronize(self.dev)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        repeats = int(min(max(rep_ms / max(start.elapsed_time(end), 1e-3), 5), 200))
        pairs = []
        for _ in range(repeats):
            self._flush.zero_()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            pairs.append((s, e))
        torch.cuda.synchronize(self.dev)
        return statistics.median(s.elapsed_time(e) for s, e in pairs)

    # -- kernels ------------------------------------------------------------------------------

    def _gemm_dtypes(self) -> list[str]:
        """bf16 always; fp8 where the GPU has fp8 tensor cores and PyTorch has _scaled_mm."""
        return ["bf16", "fp8"] if self._fp8_dtype() is not None else ["bf16"]

    def _fp8_dtype(self):
        torch = self.torch
        if not hasattr(torch, "_scaled_mm"):
            return None
        if getattr(torch.version, "hip", None):
            arch = getattr(torch.cuda.get_device_properties(self.dev), "gcnArchName", "")
            ok = arch.startswith(("gfx94", "gfx95"))
            return getattr(torch, "float8_e4m3fnuz", None) if ok else None
        major, minor = torch.cuda.get_device_capability(self.dev)
        return getattr(torch, "float8_e4m3fn", None) if (major, minor) >= (8, 9) else None

    def _gemm(self, m: int, n: int, k: int, dtype: str) -> list[dict]:
        """y = x·Wᵀ: bf16 F.linear, or fp8 torch._scaled_mm (m padded to 16): a projection."""
        torch = self.torch
        bf16 = torch.bfloat16
        if dtype == "bf16":
            x = torch.randn(m, k, dtype=bf16, device=self.dev)
            w = torch.randn(n, k, dtype=bf16, device=self.dev)
            t = self.bench_ms(lambda: torch.nn.functional.linear(x, w))
            note = "y = x @ W.T (F.linear), x [m,k], W [n,k]"
        else:
            f8, mp = self._fp8_dtype(), -(-m // 16) * 16
            x = torch.randn(mp, k, device=self.dev).to(f8)
            w = torch.randn(n, k, device=self.dev).to(f8)
            one = torch.ones((), dtype=torch.float32, device=self.dev)
            t = self.bench_ms(lambda: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one,
                                                       out_dtype=bf16))
            note = ("torch._scaled_mm e4m3 x e4m3 -> bf16, per-tensor scales; m padded to 16 "
                    "(fp8 needs multiples of 16)")
        return [kernel_row("gemm", t, dtype=dtype, backend=self._blas(), m=m, n=n, k=k,
                           notes=note)]

    def _blas(self) -> str:
        return "hipblaslt" if getattr(self.torch.version, "hip", None) else "cublas"

    def _grouped(self, experts: int, m: int, n: int, k: int) -> list[dict]:
        """MoE expert GEMMs: ``experts`` groups of m tokens, each times its own k×n weight."""
        torch = self.torch
        x = torch.randn(experts * m, k, dtype=torch.bfloat16, device=self.dev)
        w = torch.randn(experts, n, k, dtype=torch.bfloat16, device=self.dev)
        offs = torch.arange(1, experts + 1, dtype=torch.int32, device=self.dev) * m
        t = self.bench_ms(lambda: torch._grouped_mm(x, w.transpose(-2, -1), offs=offs,
                                                    out_dtype=torch.bfloat16))
        return [kernel_row("grouped_gemm", t, dtype="bf16", backend=f"{self._blas()}-grouped",
                           m=m, n=n, k=k, batch=experts, notes="torch._grouped_mm: batch = "
                           "experts, each with m tokens, weights [experts, k, n]")]

    def _sdpa(self, backend: str):
        """A context that forces SDPA ``backend`` (torch >= 2.3: sdpa_kernel; older: flags)."""
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel
        except ImportError:
            flags = {"flash-attention-2": "enable_flash", "mem-efficient": "enable_mem_efficient"}
            if backend not in flags:
                raise FlopcastError(f"attention backend {backend}: needs torch >= 2.3") from None
            return self.torch.backends.cuda.sdp_kernel(**{
                f: f == flags[backend] for f in ("enable_flash", "enable_math",
                                                 "enable_mem_efficient")})
        return sdpa_kernel(getattr(SDPBackend, SDPA_BACKENDS[backend]))

    def _attention(self, backend: str, seq: int) -> list[dict]:
        """Causal prefill attention, forward and forward+backward, with ``backend`` forced."""
        torch, f = self.torch, self.torch.nn.functional
        batch, h, d = max(sweep.ATTENTION_TOKENS // seq, 1), sweep.ATTENTION_HEADS, sweep.HEAD_DIM
        q, k, v = (torch.randn(batch, h, seq, d, dtype=torch.bfloat16, device=self.dev,
                               requires_grad=True) for _ in range(3))
        grad = torch.randn(batch, h, seq, d, dtype=torch.bfloat16, device=self.dev)

        def fwd():
            return f.scaled_dot_product_attention(q, k, v, is_causal=True)

        def fwd_bwd():
            q.grad = k.grad = v.grad = None  # no gradient accumulation kernels in the timing
            fwd().backward(grad)

        rows = []
        shape = dict(dtype="bf16", backend=backend, batch=batch, heads=h, kv_heads=h,
                     seq_len=seq, kv_len=seq, head_dim=d, causal=1)
        with self._sdpa(backend):
            with torch.no_grad():
                rows.append(kernel_row("attention", self.bench_ms(fwd), pass_="fwd",
                                       notes=SDPA_NOTE, **shape))
            rows.append(kernel_row("attention", self.bench_ms(fwd_bwd), pass_="fwd_bwd",
                                   notes=SDPA_NOTE, **shape))
        return rows

    def _decode(self, backend: str, batch: int, kv_len: int) -> list[dict]:
        """One query row per sequence against ``kv_len`` cached tokens (8 heads, no GQA)."""
        torch, f = self.torch, self.torch.nn.functional
        h, d = sweep.DECODE_HEADS, sweep.HEAD_DIM
        q = torch.randn(batch, h, 1, d, dtype=torch.bfloat16, device=self.dev)
        k, v = (torch.randn(batch, h, kv_len, d, dtype=torch.bfloat16, device=self.dev)
                for _ in range(2))
        with self._sdpa(backend), torch.no_grad():
            t = self.bench_ms(lambda: f.scaled_dot_product_attention(q, k, v))
        return [kernel_row("decode_attention", t, dtype="bf16", backend=backend, batch=batch,
                           heads=h, kv_heads=h, seq_len=1, kv_len=kv_len, head_dim=d, causal=0,
                           pass_="fwd", notes="one query token per sequence against kv_len "
                           "cached tokens (no GQA grouping)")]

    def _copy(self, nbytes: int) -> list[dict]:
        """Device-to-device copy of nbytes/2: the HBM bandwidth streaming kernels reach."""
        src = self.torch.empty(nbytes // 4, dtype=self.torch.bfloat16, device=self.dev)
        dst = self.torch.empty_like(src)
        t = self.bench_ms(lambda: dst.copy_(src))
        return [kernel_row("copy", t, dtype="bf16", bytes=nbytes,
                           notes="device-to-device copy; bytes = read + written")]

    def _power(self) -> list[dict]:
        """Board power (W) at idle, under a bf16 8192³ GEMM loop and under 2 GiB copies."""
        torch = self.torch
        meter = PowerMeter(self.dev_pci_bus_id(), self.index)
        seconds = 3.0 if self.quick else 8.0
        a = torch.randn(8192, 8192, dtype=torch.bfloat16, device=self.dev)
        src = torch.empty(2**30, dtype=torch.bfloat16, device=self.dev)
        dst = torch.empty_like(src)
        loads = {"power:idle": lambda: time.sleep(0.05),
                 "power:bf16_gemm_8192": lambda: torch.matmul(a, a),
                 "power:hbm_copy": lambda: dst.copy_(src)}
        rows = []
        for op, step in loads.items():
            watts = meter.median_watts_under(step, seconds, torch.cuda.synchronize)
            rows.append(kernel_row(op, watts, metric="board_power_w", notes=POWER_NOTE.format(
                source=meter.source)))
        return rows

    def _collective(self, op: str) -> list[dict]:
        """NCCL all-reduce / all-gather over every visible GPU (torch.cuda.nccl, one process)."""
        torch = self.torch
        from torch.cuda import nccl

        n, rows = torch.cuda.device_count(), []
        for nbytes in (2**20, 2**26, 2**30):
            ins = [torch.ones(nbytes // 2, dtype=torch.bfloat16, device=f"cuda:{i}")
                   for i in range(n)]
            outs = ([torch.empty(n * (nbytes // 2), dtype=torch.bfloat16, device=f"cuda:{i}")
                     for i in range(n)] if op == "all_gather" else None)

            def run(ins=ins, outs=outs):
                nccl.all_reduce(ins) if outs is None else nccl.all_gather(ins, outs)
                for i in range(n):
                    torch.cuda.synchronize(i)

            t = _median_wall_ms(run, 3 if self.quick else 10)
            rows.append(kernel_row(op, t, dtype="bf16", batch=n, bytes=nbytes,
                                   notes=f"NCCL {op} of bytes per GPU over {n} GPUs "
                                   "(torch.cuda.nccl, one process); batch = GPUs"))
        return rows


SDPA_NOTE = "torch scaled_dot_product_attention, backend forced with sdpa_kernel"
POWER_NOTE = ("{source} board power, median after ramp; gemm = 8192^3 bf16 loop, copy = 2 GiB "
              "copies")


def _median_wall_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)
