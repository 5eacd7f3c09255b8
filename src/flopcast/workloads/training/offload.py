"""Time of offloaded training states: host-link and NVMe traffic and the CPU optimizer.

Tiers (Layout offload codes): 0 gpu, 1 cpu (host memory over the GPU's host link, PCIe or
NVLink-C2C), 2 nvme (the node's drives, shared by its GPUs, reached through the host).

- Optimizer on the host (ZeRO-Offload, Ren et al. 2021 §4.1-4.2): the rank's gradient shard
  goes to the host as the last micro-batch's backward produces it (overlapped with that
  backward), CPU-Adam updates the shard on the host the node's offloading GPUs share (its
  DRAM bandwidth and vector cores, physics/host.py; Efficiency.cpu_adam_params_per_s
  overrides the rate), and the updated 16-bit parameters go back to where the parameters
  live (the GPU over the host link; NVMe; nothing to move when they live in host memory).
  With the optimizer states on NVMe (ZeRO-Infinity, Rajbhandari et al. 2021 §6.2) they are
  read and written once per step, overlapped with the CPU update: that part of the step
  lasts the longer of the two.
- Parameters off the GPU (ZeRO-Infinity; Superpipeline layer streaming): every forward,
  backward and recomputed forward of each micro-batch fetches the rank's parameters, each
  unit prefetched behind the previous unit's compute: the exposed part is what the transfer
  takes beyond the pass's compute, plus the first unit, which has nothing to hide behind.
  With the optimizer on the GPU, the updated parameters are written back once per step.
- Gradients off the GPU: each micro-batch's gradients leave during its backward (exposed
  beyond the backward's compute); a GPU optimizer reads them back once per step.
- Activations on the host (ZeRO-Infinity activation-checkpoint offload, §5.1.2): each
  micro-batch's saved activations go out during its forward and come back during its
  backward, each hidden behind that pass's compute.

- Streaming window (Superpipeline, Abbasi & Lim 2024, arXiv:2410.08791: k layers resident,
  Layout.stream_window): with two or more layers resident the next one is prefetched behind
  the current one's compute, as above; with one, nothing can be in flight beside the compute
  and every parameter and activation transfer is exposed whole. A larger window holds more
  GPU memory and hides no more than the compute there is.
- Deep Optimizer States (Maurya et al. 2024, arXiv:2410.21316, Layout.interleave): with the
  optimizer on the host, a fraction f of its subgroups is updated on the GPU: their states
  come in and go back over the host link (each direction counted one after the other),
  plus their gradients when those live off the GPU and their parameters' write-back when
  parameters do; the GPU update itself is the GPU optimizer step's share. Meanwhile the CPU
  updates the other 1 − f, whose 16-bit parameters then go to their tier as under
  ZeRO-Offload. The copies and CPU-Adam compete for the host's DRAM (the paper's performance
  model charges this contention): the DMA of the GPU share's states and gradients and
  CPU-Adam's own streams together take at least their bytes over the DRAM bandwidth STREAM
  reaches, for all the host's offloading GPUs at once (physics/host.host_memory_time). With
  a = the CPU update of the shard, c = the GPU path for the whole shard, u = the parameter
  upload and m, h = the DRAM time of the CPU path and of the GPU path's DMA,
  T(f) = max((1 − f)·a, f·c, (1 − f)·m + f·h) + (1 − f)·u. Without the DRAM term this falls
  until the first two paths balance and rises after (c > u: the states are larger than the
  16-bit parameters), so the best fraction is f* = a / (a + c), T(f*) = c·(a + u)/(a + c) <
  a + u = T(0); with it, T is still convex and piecewise linear, so the best fraction is the
  best of the ends and the crossings of the three lines (the paper's performance model picks
  the split the same way; flopcast solves it in closed form). A pinned fraction is taken as
  given. training_step turns interleaving off (f = 0: plain ZeRO-Offload) where its
  GPU buffer does not fit.

Every exposed term is max(traffic − compute beside it, 0) (plus the first unit for
parameters), so no offload ever takes less time than the traffic it adds minus the compute
it can hide behind.
"""

from __future__ import annotations

import numpy as np

from flopcast.physics.host import cpu_adam_time, host_memory_time
from flopcast.specs.system import System
from flopcast.workloads.training.layout import Layout


def tier_bandwidth(system: System, tier):
    """Bytes/s one GPU moves to or from ``tier`` (1 cpu: its host link at the achieved
    fraction; 2 nvme: its share of the node's NVMe bandwidth, never above the host link it
    also crosses); tier 0 (gpu) gets the host link too, unused."""
    host = system.host_bandwidth * system.gpu.efficiency.host_link_fraction
    return np.where(np.asarray(tier) == 2, np.minimum(system.nvme_bandwidth_per_gpu, host),
                    host)


def exposed(transfer, compute):
    """What a transfer overlapped with ``compute`` adds to the step: max(transfer −
    compute, 0)."""
    return np.maximum(transfer - compute, 0.0)


def offload_times(system: System, lay: Layout, sizes: dict, compute: dict) -> dict:
    """Seconds per step of offloaded states, by part.

    ``sizes`` (bytes per GPU): ``params`` (the rank's 16-bit parameters, all units),
    ``grads`` (the gradients it offloads per micro-batch), ``grad_shard`` and ``param_shard``
    (the gradient and 16-bit parameter bytes of the optimizer shard), ``states`` (its
    optimizer states), ``activations`` (saved activations of one micro-batch), ``shard_params``
    (parameters of the optimizer shard), ``units`` (sharding units on the stage),
    ``update_bytes`` (host DRAM bytes CPU-Adam moves per parameter, physics/host.py).
    ``compute`` (seconds per micro-batch): ``fwd``, ``bwd``, ``gpu_adam`` (the GPU optimizer
    step the host one replaces).

    Returns ``optimizer_s`` (the optimizer step, GPU or host), ``offload_s`` (exposed
    parameter, gradient and activation traffic of the micro-batches) and
    ``optimizer_gpu_fraction`` (the share of a host optimizer's update run on the GPU),
    module docstring.
    """
    host_bw = tier_bandwidth(system, 1)
    m = lay.num_micro_batches
    opt, par, grd, act = lay.offload, lay.offload_param, lay.offload_grad, lay.offload_act
    fwd, bwd = compute["fwd"], compute["bwd"]
    # Optimizer step on the host: gradients in (unless already there), CPU-Adam on the host
    # the node's offloading GPUs share (physics/host.py) beside the NVMe reads and writes of
    # its states, updated parameters out to their tier.
    grads_in = np.where(grd > 0, 0.0, exposed(sizes["grad_shard"] / host_bw, bwd))
    update_bytes = sizes["shard_params"] * sizes["update_bytes"]
    cpu_adam = cpu_adam_time(system, sizes["shard_params"], sizes["update_bytes"])
    nvme_io = np.where(opt == 2, 2 * sizes["states"] / tier_bandwidth(system, 2), 0.0)
    params_out = np.where(par == 0, sizes["param_shard"] / host_bw,
                          np.where(par == 2, sizes["param_shard"] / tier_bandwidth(system, 2),
                                   0.0))
    # Updated parameters written back to their tier when they live off the GPU.
    params_back = np.where(par > 0, sizes["param_shard"] / tier_bandwidth(system, par), 0.0)
    # The GPU share's states (and host-resident gradients) cross the host's DRAM by DMA.
    gpu_dma = 2 * sizes["states"] + np.where(grd > 0, sizes["grad_shard"], 0.0)
    host_step, fraction = interleaved_update(
        lay, np.maximum(cpu_adam, nvme_io), params_out,
        gpu_path=gpu_dma / host_bw + compute["gpu_adam"] + params_back,
        dram=(host_memory_time(system, update_bytes), host_memory_time(system, gpu_dma)))
    host_step = grads_in + host_step
    # Optimizer on the GPU with offloaded gradients or parameters: read them in, write back.
    gpu_step = compute["gpu_adam"] + np.where(
        grd > 0, sizes["grad_shard"] / tier_bandwidth(system, grd), 0.0) + params_back
    optimizer = np.where(opt > 0, host_step, gpu_step)
    # Per micro-batch streams.
    fetch = sizes["params"] / tier_bandwidth(system, par)
    first_unit = fetch / np.maximum(sizes["units"], 1.0)
    passes = np.where(lay.recompute == 2, 2.0, 1.0)  # forwards per micro-batch
    param_stream = passes * exposed(fetch, fwd) + exposed(fetch, bwd) + (1 + passes) * first_unit
    grad_stream = exposed(sizes["grads"] / tier_bandwidth(system, grd), bwd)
    act_move = sizes["activations"] / host_bw
    act_stream = exposed(act_move, fwd) + exposed(act_move, bwd)
    # A window of one layer leaves nothing to prefetch into: every transfer is exposed.
    serial = lay.stream_window < 2
    param_stream = np.where(serial, np.maximum((1 + passes) * fetch, param_stream), param_stream)
    act_stream = np.where(serial, 2 * act_move, act_stream)
    per_micro = (np.where(par > 0, param_stream, 0.0) + np.where(grd > 0, grad_stream, 0.0)
                 + np.where(act > 0, act_stream, 0.0))
    return dict(optimizer_s=optimizer, offload_s=m * per_micro,
                optimizer_gpu_fraction=np.where(opt > 0, fraction, 0.0))


def interleaved_update(lay: Layout, cpu_update, upload, gpu_path, dram=(0.0, 0.0)):
    """(seconds, GPU fraction) of the host optimizer's update and parameter upload under Deep
    Optimizer States (module docstring): ``cpu_update`` a, ``upload`` u, ``gpu_path`` c and
    ``dram`` = (m, h), the host-DRAM time of the CPU path and of the GPU path's DMA, all for
    the whole shard. T(f) = max((1 − f)·a, f·c, (1 − f)·m + f·h) + (1 − f)·u is convex and
    piecewise linear in f, so its minimum over [0, 1] lies at an end or where two of the
    three lines cross: the fraction is the best of those (Layout.gpu_fraction where pinned);
    0 where interleaving is off, which gives ZeRO-Offload's max(a, m) + u."""
    a, u, c = (np.asarray(x, dtype=float) for x in (cpu_update, upload, gpu_path))
    m, h = (np.asarray(x, dtype=float) for x in dram)

    def step(f):
        return np.maximum.reduce([(1 - f) * a, f * c, (1 - f) * m + f * h]) + (1 - f) * u

    def cross(num, den):  # where two lines meet, kept inside [0, 1]
        return np.clip(num / np.where(den > 0, den, np.inf), 0.0, 1.0)

    shape = np.broadcast(a, u, c, m, h, lay.interleave, lay.gpu_fraction).shape
    candidates = np.stack([np.broadcast_to(f, shape) for f in (
        0.0, 1.0, cross(a, a + c), cross(a - m, a - m + h), cross(m, m + c - h))])
    best = np.take_along_axis(candidates, np.argmin(step(candidates), axis=0)[None], 0)[0]
    f = np.where(lay.interleave > 0, np.where(np.isnan(lay.gpu_fraction), best,
                                              lay.gpu_fraction), 0.0)
    return step(f), f
