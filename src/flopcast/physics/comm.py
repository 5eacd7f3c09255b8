"""Collectives on a two-level network: NVLink domains joined by a scale-out fabric.

Ring algorithms (Patarasuk & Yuan 2009; Thakur et al. 2005): for n ranks and a buffer of S
bytes each rank sends 2(n-1)/n·S in an all-reduce and (n-1)/n·S in a reduce-scatter or an
all-gather (S = the full, gathered size); an all-to-all sends (n-1)/n of its buffer.
Time = volume / bus bandwidth + steps · latency.

Bus bandwidth of a group: Megatron orders ranks TP innermost, then CP, then DP, then PP; the
expert layers re-fold the same ranks ETP innermost, then EP, then EDP (Megatron-Core's MoE
parallel folding, Liu et al. 2025), so an EP group has stride etp. A group of ``size`` ranks
with rank ``stride`` has k = domain/stride of its ranks in one NVLink domain (at least 1).
A group inside one domain runs at the NVLink bandwidth; a group spanning domains runs NCCL's
rings over all k NICs of its domain, so its bus bandwidth is min(NVLink, k · NIC bandwidth)
(NCCL's multi-ring design: one ring per NIC).
"""

from __future__ import annotations

import numpy as np

from flopcast.specs.efficiency import Efficiency


def ranks_per_domain(size, stride, domain: int):
    """Ranks of a group (``size`` ranks spaced ``stride`` apart) inside one NVLink domain."""
    size = np.asarray(size, dtype=float)
    per = np.floor(domain / np.asarray(stride, dtype=float))
    return np.clip(per, 1, size)


def group_bandwidth(size, stride, domain: int, scale_up_bw: float, network_bw: float,
                    eff: Efficiency):
    """Achieved bus bandwidth (bytes/s) of a collective group, as described in the module doc."""
    k = ranks_per_domain(size, stride, domain)
    inside = np.asarray(size) <= k
    fast = scale_up_bw * eff.nvlink_fraction
    spanning = np.minimum(fast, k * network_bw * eff.network_fraction)
    return np.where(inside, fast, spanning)


def group_latency(size, stride, domain: int, nvlink_latency: float, network_latency: float):
    """Per-step latency: NVLink latency inside a domain, network latency across."""
    inside = np.asarray(size) <= ranks_per_domain(size, stride, domain)
    return np.where(inside, nvlink_latency, network_latency)


def all_reduce_time(num_bytes, size, bandwidth, latency):
    """Ring all-reduce of a ``num_bytes`` buffer over ``size`` ranks."""
    n = np.asarray(size, dtype=float)
    t = 2 * (n - 1) / n * np.asarray(num_bytes, dtype=float) / bandwidth + 2 * (n - 1) * latency
    return np.where(n > 1, t, 0.0)


def all_gather_time(num_bytes, size, bandwidth, latency):
    """Ring all-gather (or reduce-scatter) whose gathered buffer has ``num_bytes``."""
    n = np.asarray(size, dtype=float)
    t = (n - 1) / n * np.asarray(num_bytes, dtype=float) / bandwidth + (n - 1) * latency
    return np.where(n > 1, t, 0.0)


reduce_scatter_time = all_gather_time


def all_to_all_time(num_bytes, size, bandwidth, latency):
    """All-to-all where each rank holds ``num_bytes`` and keeps 1/size of it."""
    n = np.asarray(size, dtype=float)
    t = (n - 1) / n * np.asarray(num_bytes, dtype=float) / bandwidth + (n - 1) * latency
    return np.where(n > 1, t, 0.0)


def p2p_time(num_bytes, bandwidth, latency):
    """Point-to-point send of ``num_bytes`` (pipeline stage hand-off)."""
    return np.asarray(num_bytes, dtype=float) / bandwidth + latency


def all_to_all_two_level_time(num_bytes, size, per_domain, scale_up_bw, network_bw,
                              eff: Efficiency, nvlink_latency: float, network_latency: float):
    """All-to-all where ``per_domain`` of the ``size`` ranks share an NVLink domain.

    Each rank sends (k-1)/n of its buffer over NVLink and (n-k)/n over its NIC; the two
    proceed in parallel, so the slower one sets the time (Rajbhandari et al. 2022,
    DeepSpeed-MoE §5: hierarchical all-to-all).
    """
    n = np.asarray(size, dtype=float)
    k = np.minimum(np.asarray(per_domain, dtype=float), n)
    s = np.asarray(num_bytes, dtype=float)
    intra = s * (k - 1) / n / (scale_up_bw * eff.nvlink_fraction) + (k - 1) * nvlink_latency
    inter = s * (n - k) / n / (network_bw * eff.network_fraction) + np.where(
        n > k, network_latency * (n - k) / np.maximum(k, 1), 0.0
    )
    return np.where(n > 1, np.maximum(intra, inter), 0.0)


def exposed_time(communication, hiding_compute, floor_fraction):
    """Communication time left exposed when overlapped with ``hiding_compute``: it can hide
    only behind the compute it runs beside, so at least max(0, communication − compute) shows,
    and at least ``floor_fraction`` of it does (communication kernels take SMs and HBM
    bandwidth from the compute they overlap; the first chunk's transfer waits)."""
    c = np.asarray(communication, dtype=float)
    return np.maximum(c - np.asarray(hiding_compute, dtype=float), floor_fraction * c)
