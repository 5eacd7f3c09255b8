"""The host CPU and DRAM a node's offloading GPUs share: CPU-Adam and host-memory traffic.

CPU-Adam (ZeRO-Offload, Ren et al. 2021 §4.1; DeepSpeed csrc/includes/cpu_adam.h
``Step_AVX``: AVX-512/AVX2 vectors, OpenMP threads over tiles) streams each parameter's
fp32 gradient, master weight, first and second moment in and writes the weight and both
moments back, then writes the 16-bit copy that goes to the GPU (ZeRO-Offload §3, Fig. 2:
p32 → p16 on the CPU): ``framework.optimizer_update_bytes_per_param`` (28 with fp32
gradients, the same loop as a fused GPU Adam) plus the 16-bit weight. Its FLOPs per parameter
are those of ``Step_AVX`` with decoupled weight decay: 3 multiplies, 5 FMAs (2 FLOPs each), a
square root and a division = 15.

The host's G GPUs that offload (System.gpus_per_host: each runs its own rank's CPU-Adam on
its shard at the same time) share its DRAM and its cores, so one GPU's update of N
parameters takes the longer of

    N·bytes·G / (DRAM peak · cpu_adam_memory_fraction)        (DRAM-bound)
    N·15·G / (cores · clock · FLOPs/cycle · cpu_adam_vector_fraction)   (core-bound)

(the roofline of Williams et al. 2009 applied to the host). Everything else that moves through
the host's DRAM at the same time (the DMA of states copied to and from the GPUs) shares the
bandwidth STREAM reaches (``host_memory_fraction``): ``host_memory_time``.
"""

from __future__ import annotations

import numpy as np

from flopcast.specs.system import System

#: FLOPs of one CPU-Adam parameter update (module docstring: DeepSpeed Step_AVX, AdamW).
ADAM_FLOPS_PER_PARAM = 15.0


def cpu_adam_time(system: System, params, bytes_per_param):
    """Seconds one GPU's rank spends in CPU-Adam updating ``params`` parameters, each moving
    ``bytes_per_param`` through host DRAM, beside the host's other offloading GPUs (module
    docstring); Efficiency.cpu_adam_params_per_s, when set, is the rate per GPU instead."""
    eff = system.gpu.efficiency
    params = np.asarray(params, dtype=float)
    if eff.cpu_adam_params_per_s is not None:
        return params / eff.cpu_adam_params_per_s
    dram = host_memory_time(system, params * bytes_per_param, eff.cpu_adam_memory_fraction)
    cores = params * ADAM_FLOPS_PER_PARAM * system.gpus_per_host / (
        system.host.vector_flops * eff.cpu_adam_vector_fraction)
    return np.maximum(dram, cores)


def host_memory_time(system: System, num_bytes, fraction: float | None = None):
    """Seconds the host's DRAM needs for ``num_bytes`` per GPU moved by each of its offloading
    GPUs at once, at ``fraction`` of its peak (default: the share STREAM reaches, module
    docstring)."""
    eff = system.gpu.efficiency
    share = eff.host_memory_fraction if fraction is None else fraction
    return (np.asarray(num_bytes, dtype=float) * system.gpus_per_host
            / (system.host.memory_bandwidth * share))
