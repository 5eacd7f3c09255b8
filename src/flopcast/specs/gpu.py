"""GPU spec: datasheet numbers in SI units, plus its efficiency family."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from flopcast.specs.base import Spec
from flopcast.specs.efficiency import Efficiency
from flopcast.specs.host import Host
from flopcast.specs.kernels import KernelProfile
from flopcast.specs.limits import MAX_PRICE_USD_PER_GPU_HOUR

#: Tensor-core number formats a datasheet lists peak FLOP/s for.
ComputeDtype = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8"]


class GPU(Spec):
    """One accelerator. Peaks are dense (no 2:4 sparsity), per GPU, in FLOP/s."""


    id: str
    name: str
    vendor: str
    family: str = Field(description="Efficiency family (ampere, hopper, blackwell, ada, cdna).")
    sm_count: int = Field(ge=1, description="Streaming multiprocessors (AMD: compute units): "
                          "the parallel units GEMM tiles and attention blocks fill in waves.")
    peak_flops: dict[ComputeDtype, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        description="Dense peak FLOP/s by dtype (each > 0; a dtype the GPU lacks is left out).")
    hbm_bytes: float = Field(gt=0)
    hbm_bandwidth: float = Field(gt=0, description="bytes/s")
    nvlink_bandwidth: float = Field(
        ge=0, description="Scale-up (NVLink/xGMI) bandwidth per GPU per direction, bytes/s; "
        "0 when GPUs talk over PCIe only."
    )
    pcie_bandwidth: float = Field(gt=0, description="Host link bytes/s per direction.")
    gpus_per_node: int = Field(ge=1, description="GPUs in the default scale-up domain.")
    network_bandwidth: float = Field(
        gt=0, description="Typical scale-out bandwidth per GPU per direction, bytes/s."
    )
    network_latency_s: float = Field(5e-6, ge=0)
    nvlink_latency_s: float = Field(2e-6, ge=0)
    tdp_watts: float = Field(gt=0)
    price_per_gpu_hour_usd: float = Field(ge=0, le=MAX_PRICE_USD_PER_GPU_HOUR)
    price_date: str
    efficiency: Efficiency = Efficiency()
    host: Host | None = Field(None, description="The typical server's host CPUs and DRAM "
                              "(specs/host.py); None = specs.host.DEFAULT_HOST.")
    kernels: KernelProfile = KernelProfile()
    kernels_source: str = Field("priors", description="Where the kernel profile came from.")
    calibration_fallback: str | None = Field(
        None, description="Family whose calibration this GPU uses where its own has none."
    )
    efficiency_source: str = Field(
        "priors", description="Where the efficiency came from: 'priors', 'calibration:<family>' "
        "or 'calibration:<family> (fallback)'."
    )
    sources: list[str] = Field(default_factory=list)

    @property
    def kernels_measured(self) -> bool:
        """Whether the shipped kernel calibration (fitted on kernel timings) set this GPU's
        family profile; whole-run fits then leave its kernel fractions alone."""
        return "calibration:" in self.kernels_source

    @property
    def scale_up_bandwidth(self) -> float:
        """Bandwidth between GPUs of one node: NVLink where present, else PCIe."""
        return self.nvlink_bandwidth if self.nvlink_bandwidth > 0 else self.pcie_bandwidth

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for ``dtype``; refuses a format the part does not have."""
        from flopcast.errors import UnsupportedError

        if dtype not in self.peak_flops:
            have = ", ".join(sorted(self.peak_flops))
            raise UnsupportedError(f"gpu {self.id} has no {dtype} tensor cores (it has: {have})")
        return self.peak_flops[dtype]
