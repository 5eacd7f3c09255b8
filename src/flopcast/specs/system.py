"""A cluster: GPUs of one kind, a scale-up (NVLink) domain and a scale-out network."""

from __future__ import annotations

from pydantic import Field, PrivateAttr, model_validator

from flopcast.specs.base import Spec
from flopcast.specs.gpu import GPU
from flopcast.specs.limits import MAX_GPUS


class System(Spec):
    """``num_gpus`` GPUs, ``gpus_per_node`` of them per NVLink domain.

    ``network_bandwidth`` is per GPU per direction (bytes/s) between domains; it defaults to
    the GPU entry's typical NIC (e.g. 400 Gb/s = 50 GB/s per H100).
    """


    gpu: GPU
    num_gpus: int = Field(ge=1, le=MAX_GPUS)
    gpus_per_node: int | None = Field(None, ge=1, le=MAX_GPUS)
    network_bandwidth: float | None = Field(None, gt=0)
    network_latency_s: float | None = Field(None, ge=0)

    #: Whether gpus_per_node was given (True) or taken from the GPU entry (False).
    _domain_given: bool = PrivateAttr(True)

    @model_validator(mode="after")
    def _fill(self) -> System:
        if self.gpus_per_node is None:
            self._domain_given = False
            object.__setattr__(self, "gpus_per_node", self.gpu.gpus_per_node)
        if self.network_bandwidth is None:
            object.__setattr__(self, "network_bandwidth", self.gpu.network_bandwidth)
        if self.network_latency_s is None:
            object.__setattr__(self, "network_latency_s", self.gpu.network_latency_s)
        return self

    @property
    def domain_given(self) -> bool:
        """Whether the NVLink domain size was chosen, not the GPU entry's default."""
        return self._domain_given

    @property
    def domain_size(self) -> int:
        """GPUs that share the fast domain (never more than the job has)."""
        return min(self.gpus_per_node, self.num_gpus)
