"""The host a node's GPUs share: CPU cores, vector width and DRAM bandwidth (datasheet peaks).

Offloaded training runs its optimizer on these CPUs (ZeRO-Offload's CPU-Adam, Ren et al. 2021
§4.1) and moves offloaded states through this DRAM (physics/host.py). A GPU catalog entry
carries its typical server's host (``host:``); System may name another.
"""

from __future__ import annotations

from pydantic import Field

from flopcast.specs.base import Spec


class Host(Spec):
    """One host (server node) and the GPUs that share it."""

    name: str
    gpus: int | None = Field(
        None, ge=1, description="GPUs that share this host's CPUs and DRAM; None = the GPU "
        "entry's gpus_per_node.")
    cpu_cores: int = Field(ge=1, description="Physical CPU cores of the host, all sockets.")
    cpu_clock_hz: float = Field(gt=0, description="All-core (base) clock, Hz.")
    fp32_flops_per_cycle_per_core: float = Field(
        gt=0, description="Peak vector fp32 FLOPs per cycle per core: SIMD lanes x FMA pipes "
        "x 2 (AVX2 with two 256-bit FMA pipes: 32; AVX-512 with two: 64; Neoverse V2, four "
        "128-bit pipes: 32).")
    memory_bandwidth: float = Field(
        gt=0, description="DRAM peak of the host, all sockets, bytes/s (channels x transfer "
        "rate x 8 bytes).")
    sources: list[str] = Field(default_factory=list)

    @property
    def vector_flops(self) -> float:
        """Peak vector fp32 FLOP/s of all cores."""
        return self.cpu_cores * self.cpu_clock_hz * self.fp32_flops_per_cycle_per_core


#: Host of a GPU entry without one: a DGX A100's (2x AMD EPYC 7742, 64 cores each at 2.25 GHz
#: base, AVX2 on Zen 2 with two 256-bit FMA pipes; 8 channels of DDR4-3200 per socket =
#: 2 x 204.8 GB/s; NVIDIA DGX A100 user guide, "Hardware overview"; AMD EPYC 7742 product
#: page), shared by the entry's gpus_per_node GPUs.
DEFAULT_HOST = Host(
    name="default (DGX A100-class: 2x EPYC 7742, 16x DDR4-3200)", cpu_cores=128,
    cpu_clock_hz=2.25e9, fp32_flops_per_cycle_per_core=32, memory_bandwidth=409.6e9,
    sources=["NVIDIA DGX A100 user guide, Hardware overview: 2x AMD EPYC 7742, 1 TB DDR4-3200",
             "AMD EPYC 7742: 64 cores, 2.25 GHz base, 8 DDR4-3200 channels (204.8 GB/s)"])
