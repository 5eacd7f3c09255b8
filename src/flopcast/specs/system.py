"""A cluster: GPUs of one kind, a scale-up (NVLink) domain and a scale-out network."""

from __future__ import annotations

from pydantic import Field, model_validator

from flopcast.specs.base import Spec
from flopcast.specs.gpu import GPU
from flopcast.specs.host import DEFAULT_HOST, Host
from flopcast.specs.limits import MAX_GPUS

GIB = 2**30
#: Host memory per GPU when none is given: DGX A100 carries 1 TB of DDR4 for 8 GPUs and
#: DGX H100 2 TB (NVIDIA DGX A100 / DGX H100 user guides, "Hardware overview"); 128 GiB is
#: the smaller of the two per GPU. Workstations differ: give --host-memory-gib.
HOST_MEMORY_PER_GPU_BYTES = 128 * GIB
#: NVMe per node when none is given: DGX A100's data cache of 4x 3.84 TB U.2 NVMe (15 TB;
#: DGX H100: 8x 3.84 TB), and its sequential read rate, ~6.5 GB/s per PCIe Gen4 drive summed
#: (Samsung PM1733 datasheet: 7.0 GB/s read, 3.8-4.8 GB/s write; 25 GB/s taken for four).
#: ZeRO-Infinity (Rajbhandari et al. 2021 §6.3, DGX-2) measured its aggregate NVMe rate with
#: the same per-node RAID-0 of drives.
NVME_PER_NODE_BYTES = 15.36e12
NVME_BANDWIDTH_PER_NODE = 25e9


class System(Spec):
    """``num_gpus`` GPUs, ``gpus_per_node`` of them per NVLink domain.

    ``network_bandwidth`` is per GPU per direction (bytes/s) between domains; it defaults to
    the GPU entry's typical NIC (e.g. 400 Gb/s = 50 GB/s per H100). Offload tiers (ZeRO-Offload,
    ZeRO-Infinity): host memory and its link per GPU, NVMe capacity and bandwidth per node
    (node = ``gpus_per_node`` GPUs), with the documented defaults above; the host CPUs and DRAM
    (``host``, shared by ``host.gpus`` GPUs) that run the offloaded optimizer.
    """


    gpu: GPU
    num_gpus: int = Field(ge=1, le=MAX_GPUS)
    gpus_per_node: int | None = Field(None, ge=1, le=MAX_GPUS)
    network_bandwidth: float | None = Field(None, gt=0)
    network_latency_s: float | None = Field(None, ge=0)
    host_memory_bytes: float | None = Field(
        None, gt=0, description="Host (CPU) memory per GPU for offloaded states, bytes; None = "
        "HOST_MEMORY_PER_GPU_BYTES.")
    host_bandwidth: float | None = Field(
        None, gt=0, description="Host link per GPU per direction, bytes/s; None = the GPU "
        "entry's pcie_bandwidth (NVLink-C2C on GH200/GB200).")
    nvme_bytes: float | None = Field(
        None, ge=0, description="NVMe capacity per node, bytes; None = NVME_PER_NODE_BYTES.")
    nvme_bandwidth: float | None = Field(
        None, gt=0, description="NVMe bandwidth per node (read or write), bytes/s, shared by "
        "the node's GPUs; None = NVME_BANDWIDTH_PER_NODE.")
    host: Host | None = Field(
        None, description="The host CPUs and DRAM the GPUs share (specs/host.py); None = the "
        "GPU entry's host, else DEFAULT_HOST; its ``gpus`` None = the GPU entry's "
        "gpus_per_node.")

    @model_validator(mode="after")
    def _fill(self) -> System:
        if self.gpus_per_node is None:
            object.__setattr__(self, "gpus_per_node", self.gpu.gpus_per_node)
        if self.network_bandwidth is None:
            object.__setattr__(self, "network_bandwidth", self.gpu.network_bandwidth)
        if self.network_latency_s is None:
            object.__setattr__(self, "network_latency_s", self.gpu.network_latency_s)
        defaults = dict(host_memory_bytes=HOST_MEMORY_PER_GPU_BYTES,
                        host_bandwidth=self.gpu.pcie_bandwidth, nvme_bytes=NVME_PER_NODE_BYTES,
                        nvme_bandwidth=NVME_BANDWIDTH_PER_NODE)
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        host = self.host or self.gpu.host or DEFAULT_HOST
        if host.gpus is None:
            host = host.model_copy(update={"gpus": self.gpu.gpus_per_node})
        object.__setattr__(self, "host", host)
        return self

    @property
    def gpus_per_host(self) -> int:
        """The job's GPUs on one host, sharing its CPUs and DRAM (never more than the job has)."""
        return min(self.host.gpus, self.num_gpus)

    @property
    def nvme_bandwidth_per_gpu(self) -> float:
        """NVMe bytes/s one GPU gets: the node's drives shared by the job's GPUs on it."""
        return self.nvme_bandwidth / self.domain_size

    @property
    def domain_size(self) -> int:
        """GPUs that share the fast domain (never more than the job has)."""
        return min(self.gpus_per_node, self.num_gpus)
