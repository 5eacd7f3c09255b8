"""Memory of a training step by phase: what is live at the worst moment of the forward pass,
of the backward pass and of the optimizer step, on the first and the last pipeline stage, and
what it is made of.

The framework profile (specs/framework.py) says which tensors exist and in which dtype;
physics/memory.py counts their bytes. Moments (every term per GPU):

- forward, when the last micro-batch in flight reaches the loss: weights (and the autocast
  cache of 16-bit copies of every GEMM weight, held until the forward's autocast exits),
  optimizer states, gradients that already exist (kept between steps, or left by earlier
  micro-batches), every layer's saved activations for the micro-batches in flight, the head's
  and model-level saved tensors, the loss buffers of the forward, ZeRO-3's gathered weights;
- backward at the loss: the same with the loss buffers of its backward (under full recompute
  the layers' weight copies are gone with the cache, only the LM head's is saved);
- backward through the layers, at its start (all activations still held, the recompute
  working set of one layer, the head's gradient) and at its end (all gradients, one layer's
  activations): the activations a layer frees and the gradients it produces trade places
  linearly, so the worst moment is one of the two ends;
- optimizer step: weights, gradients and optimizer states (with Deep Optimizer States, also
  the GPU buffer of the subgroups it updates there: memory.interleaved_optimizer_bytes).

Offloaded states (physics/memory.offloaded_state_bytes, ZeRO-Offload / ZeRO-Infinity) leave on
the GPU only the units in flight (Superpipeline's window of k layers when parameters stream:
Layout.stream_window); offloaded activations only the layers being computed or copied
(memory.resident_layers, the same window); ``memory_offload_host_bytes`` / ``_nvme_bytes``
are what the larger stage places on the host (per GPU) and on NVMe (per GPU).

The runtime reserve (CUDA context, NCCL buffers, allocator slack; Efficiency
runtime_reserved_bytes) is part of every phase's total, which ``fits`` compares with the
capacity; ``allocated`` leaves it out, which is what torch.cuda.max_memory_allocated reports.
"""

from __future__ import annotations

import numpy as np

from flopcast.physics import memory
from flopcast.specs.framework import Framework
from flopcast.specs.model import Model
from flopcast.specs.precision import Precision
from flopcast.workloads.training.layout import Layout

#: What a phase's memory is made of, and the kind (TrainingEstimate.memory) each part adds to.
PARTS = {
    "parameters": "weights", "weight_casts": "weights", "gradients": "gradients",
    "optimizer": "optimizer", "activations": "activations", "head_activations": "activations",
    "recompute": "activations", "loss": "activations", "zero_gathered": "temporary",
    "reserved": "temporary",
}
KINDS = ("weights", "gradients", "optimizer", "activations", "temporary")
PHASES = ("forward", "backward", "optimizer_step")
#: The moments of the backward pass whose worst is the backward phase.
BACKWARD = ("backward_at_loss", "backward_layers_start", "backward_layers_end")
MOMENTS = ("forward", *BACKWARD, "optimizer_step")


def kinds_of(parts: dict) -> dict:
    """Bytes by kind (weights, gradients, optimizer, activations, temporary) of a phase."""
    out: dict = {k: None for k in KINDS}
    for name, kind in PARTS.items():
        v = parts[name]
        if isinstance(v, float) and v == 0.0:  # adding an exact zero changes nothing
            continue
        out[kind] = v if out[kind] is None else out[kind] + v
    return {k: 0.0 if v is None else v for k, v in out.items()}


def total_of(parts: dict):
    """A phase's total: its kinds summed in KINDS order."""
    kinds = kinds_of(parts)
    total = kinds[KINDS[0]]
    for k in KINDS[1:]:
        total = total + kinds[k]
    return total


def worst(moments: list[dict], detail: bool = True) -> dict:
    """Per configuration, the parts of the moment with the largest total (the first on ties)
    and that total, under ``"total"``; without ``detail`` the total alone."""
    totals = [m["total"] if "total" in m else total_of(m) for m in moments]
    if not detail:
        return {"total": np.maximum.reduce(np.broadcast_arrays(*totals))}
    best, best_total = {name: moments[0][name] for name in PARTS}, totals[0]
    for m, t in zip(moments[1:], totals[1:], strict=True):
        better = t > best_total
        if np.any(better):
            best = {name: np.where(better, m[name], best[name]) for name in PARTS}
            best_total = np.where(better, t, best_total)
    return best | {"total": best_total}


def token_bytes(model: Model, framework: Framework, precision: Precision, seq_len,
                lay: Layout, moe_fraction: float) -> dict:
    """Bytes per token on one rank: a layer's stored activations (``stored``), all its
    activations without recompute (``full``), the head's and model-level saved tensors, and
    the loss buffers of the forward and of the backward."""
    ab = precision.activation_bytes

    def per_layer(recompute):
        a = memory.layer_saved_bytes_per_token(model, framework, seq_len, lay.tp, lay.sp,
                                               recompute, ab)
        if model.is_moe:
            a_moe = memory.layer_saved_bytes_per_token(model, framework, seq_len, lay.tp,
                                                       lay.sp, recompute, ab, moe_layer=True)
            a = (1 - moe_fraction) * a + moe_fraction * a_moe
        return a

    def listed(tensors):
        return memory.saved_bytes_per_token(tensors, model, framework, ab, lay.tp, lay.sp)

    return dict(stored=per_layer(lay.recompute), full=per_layer(np.zeros_like(lay.recompute)),
                head=listed(framework.head_saved), model=listed(framework.model_saved),
                loss_fwd=listed(framework.loss_forward), loss_bwd=listed(framework.loss_backward))


def stage_moments(framework: Framework, lay: Layout, tok: dict, states: dict, stage: dict,
                  reserved: float) -> dict:
    """Parts of each moment of MOMENTS on one stage (module docstring).

    ``tok``: :func:`token_bytes` × tokens per micro-batch; ``states``: weights, gradients,
    optimizer, zero_w, zero_g (gathered ZeRO units), head_grad (the LM head's gradient) and
    casts_all / casts_head / casts_layer (autocast weight copies) on this stage; ``stage``:
    layers, in_flight (micro-batches whose activations it holds), head (holds the LM head).
    """
    w, g, o = states["weights"], states["gradients"], states["optimizer"]
    layers, in_flight, head = stage["layers"], stage["in_flight"], stage["head"]
    full = lay.recompute == 2
    stored = tok["stored"] * memory.resident_layers(layers * in_flight, lay.offload_act,
                                                    lay.stream_window)
    work = np.where(full, tok["full"] - tok["stored"], 0.0)
    loss_fwd, loss_bwd = (np.where(head, tok[k], 0.0) for k in ("loss_fwd", "loss_bwd"))
    g_before = np.where(framework.gradients_persist | (lay.num_micro_batches > 1), g, 0.0)
    c_all, c_head, c_layer = states["casts_all"], states["casts_head"], states["casts_layer"]
    model_saved = tok["model"] * in_flight
    gathered = states["zero_w"] + states["zero_g"]
    base = dict(parameters=w, optimizer=o, reserved=reserved, zero_gathered=gathered,
                recompute=0.0, head_activations=model_saved, loss=0.0)
    forward = base | dict(weight_casts=c_all, gradients=g_before, activations=stored,
                          head_activations=model_saved + np.where(head, tok["head"], 0.0),
                          loss=loss_fwd, zero_gathered=states["zero_w"])
    at_loss = forward | dict(weight_casts=np.where(full, c_head, c_all), loss=loss_bwd,
                             zero_gathered=gathered)
    layers_start = base | dict(
        weight_casts=np.where(full, c_layer, c_all - c_head),
        gradients=np.maximum(g_before, states["head_grad"]), activations=stored,
        recompute=work, loss=0.0 if framework.loss_freed_before_layers else loss_bwd)
    layers_end = layers_start | dict(
        weight_casts=c_layer, gradients=g,
        activations=tok["stored"] * memory.resident_layers(layers * (in_flight - 1) + 1,
                                                           lay.offload_act, lay.stream_window))
    optimizer = base | dict(weight_casts=0.0, gradients=g, activations=0.0,
                            head_activations=0.0, zero_gathered=0.0,
                            optimizer=o + states["interleave_buffer"])
    moments = dict(forward=forward, backward_at_loss=at_loss,
                   backward_layers_start=layers_start, backward_layers_end=layers_end,
                   optimizer_step=optimizer)
    for parts in moments.values():
        parts["gradients"] = parts["gradients"] + states["bucket"]
    return moments


def dominated(framework: Framework, tok: dict) -> set[str]:
    """Moments that can never hold more than another one under ``framework``, so the peak can
    skip them (the planner's speed; every moment is still reported with detail):
    the optimizer step holds a subset of the end of the backward; with gradients kept between
    steps and no autocast copies, the end of the backward holds a subset of its start; when the
    loss buffers also stay through the layers' backward and the head saves nothing, so does
    the moment at the loss; and the forward holds no more than the moment at the loss when
    its loss buffers are no larger."""
    out = {"optimizer_step"}
    plain = framework.weight_casts == "none"
    if plain and framework.gradients_persist:
        out.add("backward_layers_end")
        if not framework.loss_freed_before_layers and not framework.head_saved:
            out.add("backward_at_loss")
    if plain and np.all(tok["loss_fwd"] <= tok["loss_bwd"]):
        out.add("forward")
    return out


def _states(model, framework, precision, lay, non_expert, expert_p, extra, n_layers, head,
            trained_share=1.0):
    """Model states of one stage (stage_phases' ``states``); gradients, optimizer states and
    their buffers exist for the ``trained_share`` of the parameters only."""
    dense_shards = lay.dp * lay.cp
    expert_shards = np.maximum(lay.tp * dense_shards / (lay.etp * lay.ep), 1)  # edp
    w_all, g_all, o_all = memory.model_state_bytes(non_expert, expert_p, precision, lay.zero,
                                                   dense_shards, expert_shards, False, framework)
    # ZeRO-2/3: the sharded gradients (and ZeRO-3 weights) of the units in flight are
    # materialised whole (physics/memory.zero_transient_bytes).
    other, expert = memory.layer_param_counts(model)
    layer_p = other / lay.tp + expert / (lay.etp * lay.ep)
    share = memory.zero_units_in_flight_fraction(layer_p, extra, non_expert + expert_p)
    # Streamed parameters keep the rank's part of a window of layers resident (stream_window,
    # 2 by default: the share above); ZeRO-3's gathers stay two units whatever the window.
    streamed = memory.zero_units_in_flight_fraction(layer_p, extra, non_expert + expert_p,
                                                    np.where(lay.offload_param > 0,
                                                             lay.stream_window,
                                                             memory.ZERO_UNITS_IN_FLIGHT))
    w, g, o = memory.offloaded_state_bytes((w_all, g_all, o_all), streamed, lay.offload_param,
                                           lay.offload_grad, lay.offload)
    zero_w, zero_g = memory.zero_transient_bytes(non_expert, expert_p, precision, lay.zero,
                                                 dense_shards, expert_shards, share)
    stage_p = np.asarray(non_expert + expert_p, dtype=float)
    head_p = memory.gemm_weight_params(model, lay.tp, 0, head)
    head_grad = g * np.minimum(head_p / np.where(stage_p > 0, stage_p, 1.0), 1.0)
    # autocast's 16-bit weight copies; under ZeRO-3 only the gathered units exist to cast.
    cast = precision.activation_bytes * np.where(
        framework.weight_casts == "autocast", np.where(lay.zero >= 3, share, 1.0), 0.0)
    bucket = np.where(framework.ddp_bucket_copy & (lay.zero == 0) & (dense_shards > 1), g, 0.0)
    buffer = 0.0
    if np.any(lay.interleave > 0):
        buffer = memory.interleaved_optimizer_bytes(
            (w_all, g_all, o_all), lay.subgroup_params,
            memory.state_bytes_per_param(precision, framework), lay.interleave, lay.offload_grad)
    t = np.asarray(trained_share, dtype=float)
    frozen_head = np.where(t < 1.0, 0.0, 1.0)
    return dict(weights=w, gradients=g * t, optimizer=o * t, zero_w=zero_w, zero_g=zero_g * t,
                all=(w_all, g_all * t, o_all * t), interleave_buffer=buffer * t,
                head_grad=head_grad * frozen_head, bucket=bucket * t,
                casts_all=cast * memory.gemm_weight_params(model, lay.tp, n_layers, head),
                casts_head=cast * head_p,
                casts_layer=cast * memory.gemm_weight_params(model, lay.tp, 1, False))


def training_memory(model: Model, framework: Framework, precision: Precision, seq_len,
                    lay: Layout, params: tuple, n_layers_stage, in_flight, moe_fraction: float,
                    reserved: float, capacity: float, detail: bool = True,
                    trained_share=1.0) -> dict:
    """Bytes per GPU by phase and part on the first and last pipeline stage, the peak of each
    stage by kind, and the largest stage's (the training_step dict's ``memory_*`` keys).
    ``params``: (first-stage non-expert, last-stage non-expert, expert) parameters per GPU.
    Without ``detail`` (the planner's search) only the totals are kept. ``trained_share``:
    the share of the parameters that are trained (LoRA: the adapters); frozen ones keep
    their weights only."""
    first_p, last_p, expert_p = params
    tokens = lay.micro_batch * np.asarray(seq_len, dtype=float) / lay.cp
    tok = {k: v * tokens for k, v in token_bytes(model, framework, precision, seq_len, lay,
                                                 moe_fraction).items()}
    extra_first, extra_last = memory.stage_extra_unit_params(model, lay.tp, lay.pp)
    single = lay.pp == 1
    out, peaks, offloaded = {}, {}, {}
    skip = set() if detail else dominated(framework, tok)
    if np.any(lay.interleave > 0):  # the interleaved update's buffer lives in this moment
        skip.discard("optimizer_step")
    for name, non_expert, extra, flight, head in (
            ("first", first_p, extra_first, in_flight, single),
            ("last", last_p, extra_last, 1.0, np.ones_like(single))):
        states = _states(model, framework, precision, lay, non_expert, expert_p, extra,
                         n_layers_stage, head, trained_share)
        moments = stage_moments(framework, lay, tok, states,
                                dict(layers=n_layers_stage, in_flight=flight, head=head),
                                reserved)
        acts = tok["stored"] * n_layers_stage * flight
        placed_by_tier = memory.offloaded_bytes(states["all"], acts, lay) if lay.offloads else (
            0.0, 0.0)
        for tier, placed in zip(("host", "nvme"), placed_by_tier, strict=True):
            key = f"memory_offload_{tier}_bytes"
            offloaded[key] = placed if key not in offloaded else np.maximum(offloaded[key],
                                                                            placed)
        if not detail:
            peaks[name] = worst([m for k, m in moments.items() if k not in skip], False)
            continue
        phases = {"forward": moments["forward"],
                  "backward": worst([moments[k] for k in BACKWARD]),
                  "optimizer_step": moments["optimizer_step"]}
        peaks[name] = worst([phases[p] for p in PHASES])
        out |= _phase_keys(name, phases, peaks[name]["total"])
    return out | offloaded | _largest(peaks, lay, reserved, capacity, detail)


def _phase_keys(stage: str, phases: dict, peak) -> dict:
    """``memory_<stage>_<phase>_<part>_bytes`` and the index in PHASES of the first phase
    reaching the stage's peak (``memory_<stage>_peak_phase``)."""
    out = {f"memory_{stage}_{p}_{part}_bytes": parts[part]
           for p, parts in phases.items() for part in PARTS}
    phase = float(len(PHASES) - 1)
    for i in reversed(range(len(PHASES))):
        phase = np.where(total_of(phases[PHASES[i]]) >= peak, float(i), phase)
    out[f"memory_{stage}_peak_phase"] = phase
    return out


def _largest(peaks: dict, lay: Layout, reserved: float, capacity: float,
             detail: bool = True) -> dict:
    """Kinds of each stage's peak and of the larger one (first on ties), its total, the
    allocated part of it (total less the runtime reserve) and which stage it is."""
    total = {name: p["total"] for name, p in peaks.items()}
    first_is_max = total["first"] >= total["last"]
    out = {"memory_total_bytes": np.maximum(total["first"], total["last"]),
           "memory_capacity_bytes": capacity}
    out["memory_allocated_bytes"] = out["memory_total_bytes"] - reserved
    if not detail:
        return out
    kinds = {name: kinds_of(parts) for name, parts in peaks.items()}
    out |= {f"memory_{k}_bytes": np.where(first_is_max, kinds["first"][k], kinds["last"][k])
            for k in KINDS}
    for name in ("first", "last"):
        for k, v in kinds[name].items():
            out[f"memory_{name}_stage_{k}_bytes"] = v
    out["memory_largest_stage"] = np.where(first_is_max, 0.0, lay.pp - 1.0)
    return out
