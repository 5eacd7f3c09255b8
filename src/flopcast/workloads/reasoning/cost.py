"""What one problem costs under repeated sampling: three accounts that disagree on purpose.

- **FLOPs** (Kaplan et al. 2020 §2.1, as Wu et al. 2024 §4.2 use it): 2·N_params per token
  plus the attention term 2·n_layer·n_ctx·d_attn; sampling k answers costs k × one greedy
  answer (Wu et al. Table 4).
- **eFLOPs** (Kinetics, Sadhukhan et al. 2025, App. D Eq. 10 and ``cost_model/utils.py``
  ``dense_cost``): compute plus the hardware's arithmetic intensity I times the KV bytes read,
  with the prompt's KV read once and shared by the N trials. Long generations make the
  L_out² memory term dominate, which favours larger models with fewer samples.
- **Time, $ and energy on real hardware** from flopcast's inference model (``forward_step``):
  the prompt prefilled once, then N sequences decoding together over a context growing from
  L_in (see ``problem_cost``).

All functions broadcast over NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Kinetics' arithmetic intensity of a B200 (FLOPs per byte), ``E_flops = 562.5`` in their
#: cost model code.
KINETICS_B200_INTENSITY = 562.5


def _f(x):
    return np.asarray(x, dtype=float)


def kaplan_flops_per_token(params, n_layers, context, d_attn):
    """Forward FLOPs of one token at ``context`` (Kaplan et al. 2020 Table 1:
    C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn)."""
    return 2 * _f(params) + 2 * _f(n_layers) * _f(context) * _f(d_attn)


def sampling_flops(params, tokens_per_answer, samples):
    """FLOPs of k sampled answers at 2·N per generated token (Wu et al. 2024 §4.2: sampling
    FLOPs = k × greedy FLOPs, e.g. 32 × 3.4e12 ≈ 109e12 for Mistral-7B on MATH500)."""
    return _f(samples) * 2 * _f(params) * _f(tokens_per_answer)


@dataclass(frozen=True)
class Shape:
    """What the Kinetics cost needs of a model: active parameters, layers, query and KV
    heads and head dimension."""

    active_params: float
    n_layers: int
    q_heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, model) -> Shape:
        from flopcast.physics.params import active_parameters

        return cls(float(active_parameters(model)), model.num_layers,
                   model.num_attention_heads, model.kv_heads, model.head_dim_qk)


def kinetics_cost(shape: Shape, trials, prompt_len, out_len,
                  intensity: float = KINETICS_B200_INTENSITY) -> dict[str, np.ndarray]:
    """Kinetics' dense cost of N trials of ``out_len`` tokens after a ``prompt_len`` prompt
    (``cost_model/utils.py::dense_cost``, App. D Eq. 10 with L_out fixed), in FLOPs:
    compute = N·[2·P·L + 2·(2·L_in + L)·L·H_q·d], memory = I·2·(2·L_in + N·L)·L·H_kv·d with
    d = head_dim·n_layers (the prompt's KV read once per step, shared by the N trials; weight
    loads left out, as in their code). Returns compute, memory and eflops = their sum."""
    n, lin, lout = _f(trials), _f(prompt_len), _f(out_len)
    d = shape.head_dim * shape.n_layers
    compute = n * (2 * shape.active_params * lout + 2 * (2 * lin + lout) * lout
                   * shape.q_heads * d)
    memory = intensity * 2 * (2 * lin + n * lout) * lout * shape.kv_heads * d
    return {"compute_flops": compute, "memory_eflops": memory, "eflops": compute + memory}


def problem_cost(job, eff, trials: int, prompt_len: int, out_len: int) -> dict:
    """Seconds, GPU-hours, $ and joules for one problem on ``job``'s deployment, the problem
    having the replica to itself: the prompt prefilled once, its KV cache shared by the
    trials (prefix caching holds it once), then as many trials decoding together as the KV
    memory and the engine's batch limit allow, in waves. A decode step is affine in the
    context, so each wave costs out_len steps at the mean context L_in + L_out/2
    (workloads/inference/step.forward_step prices every step). Board power from the kernel
    profile: decode steps are HBM-bound, the prefill tensor-core-bound (physics/kernels)."""
    from flopcast.errors import FlopcastError
    from flopcast.physics.kernels import board_power_w
    from flopcast.physics.kv_cache import sequence_kv_bytes
    from flopcast.workloads.inference.step import (
        forward_step,
        kv_heads_per_gpu_share,
        max_sequences_in_flight,
        memory_plan,
    )

    if min(trials, prompt_len, out_len) < 1:
        raise FlopcastError(f"reason cost: trials, prompt and output lengths must be >= 1; got "
                            f"{trials}, {prompt_len}, {out_len}")
    plan = memory_plan(job, eff, out_len)
    prompt_bytes = float(sequence_kv_bytes(job.model, prompt_len, job.kv_element_bytes,
                                           job.engine.kv_block_tokens)
                         * kv_heads_per_gpu_share(job) / job.pp)
    room = float(plan["kv_budget_bytes"]) - prompt_bytes
    parallel = int(min(trials, max_sequences_in_flight(job, eff),
                       room // float(plan["kv_bytes_per_sequence"])))
    if parallel < 1:
        raise FlopcastError(_no_room("reason cost", job, plan, prompt_len, out_len))
    waves = -(-trials // parallel)
    prefill = float(forward_step(job, eff, prefill_tokens=prompt_len, prefill_len=prompt_len,
                                 logit_rows=1)["step_s"])
    last = trials - (waves - 1) * parallel
    step = forward_step(job, eff, decode_seqs=np.array([parallel, last]),
                        decode_context=prompt_len + out_len / 2,
                        logit_rows=np.array([parallel, last]))["step_s"]
    decode = out_len * ((waves - 1) * float(step[0]) + float(step[1]))
    seconds = prefill + decode
    gpus = job.system.num_gpus
    power = (prefill * board_power_w(job.system.gpu, 1.0, 0.0)
             + decode * board_power_w(job.system.gpu, 0.0, 1.0)) / seconds
    return {"seconds": seconds, "prefill_s": prefill, "decode_s": decode,
            "parallel_trials": parallel, "waves": waves,
            "gpu_hours": seconds * gpus / 3600,
            "usd": seconds * gpus / 3600 * job.system.gpu.price_per_gpu_hour_usd,
            "joules": seconds * gpus * power}


def _no_room(what: str, job, plan: dict, prompt_len: int, out_len: int) -> str:
    """Why not one trial runs: the weights leave no KV memory (inference.estimate's
    refusal), or one trial needs more than there is."""
    from flopcast.workloads.inference.estimate import does_not_fit

    if float(plan["kv_budget_bytes"]) <= 0:
        return f"{what}: {does_not_fit(job, plan, prompt_len + out_len)}"
    return (f"{what}: one {prompt_len}+{out_len}-token trial does not fit the KV memory of "
            f"{job.system.num_gpus}x {job.system.gpu.id}")


def batched_problem_cost(job, eff, trials: int, prompt_len: int, out_len: int) -> dict:
    """Replica-seconds, GPU-hours, $ and joules per problem when a benchmark of many problems
    keeps the replica full (the planner's account): problems in flight each hold their prompt's
    KV once (prefix caching) plus ``trials`` sequences of ``out_len`` tokens, so the replica
    decodes B = min(the engine's sequence limit, KV budget / (sequence KV + prompt KV /
    trials)) sequences per step (fewer when one problem's trials alone exceed the memory:
    B = what fits beside one prompt, the trials run in waves). Each problem costs its prefill
    plus trials·out_len/B decode steps at B sequences and the mean context L_in + L_out/2 (a
    decode step is affine in the context; ``forward_step`` prices it). The KV memory, not the
    FLOPs, bounds B: Kinetics' point (Sadhukhan et al. 2025 §3) in hardware terms."""
    from flopcast.errors import FlopcastError
    from flopcast.physics.kernels import board_power_w
    from flopcast.physics.kv_cache import sequence_kv_bytes
    from flopcast.workloads.inference.step import (
        forward_step,
        kv_heads_per_gpu_share,
        max_sequences_in_flight,
        memory_plan,
    )

    plan = memory_plan(job, eff, out_len)
    prompt_bytes = float(sequence_kv_bytes(job.model, prompt_len, job.kv_element_bytes,
                                           job.engine.kv_block_tokens)
                         * kv_heads_per_gpu_share(job) / job.pp)
    budget, per_seq = float(plan["kv_budget_bytes"]), float(plan["kv_bytes_per_sequence"])
    most = max_sequences_in_flight(job, eff)
    in_flight = min(most, budget // (per_seq + prompt_bytes / trials))
    if in_flight < trials:  # one problem's trials do not fit together: waves beside one prompt
        in_flight = min(most, (budget - prompt_bytes) // per_seq)
    if in_flight < 1:
        raise FlopcastError(_no_room("reason plan", job, plan, prompt_len, out_len))
    prefill = float(forward_step(job, eff, prefill_tokens=prompt_len, prefill_len=prompt_len,
                                 logit_rows=1)["step_s"])
    step = float(forward_step(job, eff, decode_seqs=in_flight,
                              decode_context=prompt_len + out_len / 2,
                              logit_rows=in_flight)["step_s"])
    decode = trials * out_len * step / in_flight
    seconds = prefill + decode
    gpus = job.system.num_gpus
    power = (prefill * board_power_w(job.system.gpu, 1.0, 0.0)
             + decode * board_power_w(job.system.gpu, 0.0, 1.0)) / seconds
    return {"seconds": seconds, "sequences_in_flight": int(in_flight),
            "gpu_hours": seconds * gpus / 3600,
            "usd": seconds * gpus / 3600 * job.system.gpu.price_per_gpu_hour_usd,
            "joules": seconds * gpus * power}
