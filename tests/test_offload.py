"""Offload tiers (ZeRO-Offload, ZeRO-Infinity) and the GPU entries the seed papers run on."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.specs import Parallelism, System, TrainingJob
from flopcast.specs.parallelism import parse_offload
from flopcast.specs.plan import PlanRequest
from flopcast.workloads.training import estimate_training
from flopcast.workloads.training.phases import PHASES
from flopcast.workloads.training.plan import plan_training

NEW_GPUS = ("v100-16gb", "v100-32gb", "rtx-3090", "rtx-a6000", "gh200", "h100-nvl")
TIERS = ("gpu", "cpu", "nvme")
KINDS = ("optimizer", "gradients", "params", "activations")


def placements():
    """Every placement: optimizer, gradients, parameters on gpu/cpu/nvme, activations gpu/cpu."""
    for o, g, p, a in itertools.product(TIERS, TIERS, TIERS, ("gpu", "cpu")):
        yield dict(offload_optimizer=o, offload_gradients=g, offload_params=p,
                   offload_activations=a)


def job(model="llama-2-7b", gpu="a100-80gb", gpus=8, framework="megatron", seq_len=4096,
        system=None, **par):
    par = {"micro_batch": 1, **par}
    return TrainingJob(model=load_model(model),
                       system=System(gpu=load_gpu(gpu), num_gpus=gpus, **(system or {})),
                       parallelism=Parallelism(**par), seq_len=seq_len, framework=framework,
                       precision="fp16" if gpu.startswith("v100") else "bf16")


@pytest.mark.parametrize("gpu", NEW_GPUS)
def test_new_gpu_entries_estimate(gpu):
    g = load_gpu(gpu)
    assert g.sources and g.price_date and "bf16" not in g.peak_flops or gpu[:4] != "v100"
    est = estimate_training(job(gpu=gpu, zero_stage=3, recompute="full", seq_len=2048))
    assert 0.05 < est.mfu < 0.8 and est.step_time_s > 0


def test_volta_has_no_bf16_and_its_own_kernel_priors():
    g = load_gpu("v100-32gb")
    assert "bf16" not in g.peak_flops and g.kernels_source.startswith("priors:volta")
    assert g.calibration_fallback == "ampere"
    with pytest.raises(ValueError, match="no bf16"):
        TrainingJob(model=load_model("llama-2-7b"), system=System(gpu=g, num_gpus=8))


def _phase_totals(est):
    return np.array([est.memory_phases_by_stage[s][p]["total"]
                     for s in ("first", "last") for p in PHASES])


@pytest.mark.parametrize("framework,zero", [("megatron", 1), ("deepspeed", 3),
                                            ("hf-transformers", 0), ("fsdp", 3)])
def test_offloading_never_increases_gpu_memory(framework, zero):
    base = estimate_training(job(framework=framework, zero_stage=zero, global_batch=16))
    for place in placements():
        est = estimate_training(job(framework=framework, zero_stage=zero, global_batch=16,
                                    **place))
        assert est.memory["total"] <= base.memory["total"] * (1 + 1e-12), place
        assert np.all(_phase_totals(est) <= _phase_totals(base) * (1 + 1e-12)), place
    everything = estimate_training(job(framework=framework, zero_stage=zero, global_batch=16,
                                       offload_optimizer="cpu", offload_gradients="cpu",
                                       offload_params="cpu", offload_activations="cpu"))
    assert everything.memory["total"] < 0.6 * base.memory["total"]


def _step(**kw):
    return estimate_training(job(zero_stage=3, global_batch=32, **kw)).step_time_s


def test_offloading_never_beats_the_gpu_only_step_when_it_fits():
    for model, gpu in (("llama-2-7b", "a100-80gb"), ("llama-2-13b", "h100-sxm")):
        base = estimate_training(job(model, gpu, zero_stage=3, global_batch=32))
        assert base.fits
        for place in placements():
            est = estimate_training(job(model, gpu, zero_stage=3, global_batch=32, **place))
            assert est.step_time_s >= base.step_time_s, place


def test_a_slower_tier_is_never_faster():
    """For each state, moving it gpu → cpu → nvme with the rest fixed never shortens the
    step, except the parameters' gpu → cpu move with the optimizer already on the host: the
    CPU update then writes them in place and skips the upload (ZeRO-Infinity's design), so
    only the fetches beyond the compute are paid (offload.py docstring)."""
    for place in placements():
        for kind in KINDS:
            field = f"offload_{kind}"
            tiers = ("gpu", "cpu") if kind == "activations" else TIERS
            steps = [_step(**{**place, field: t}) for t in tiers]
            for i in range(len(steps) - 1):
                host_update = place["offload_optimizer"] != "gpu"
                if kind == "params" and tiers[i] == "gpu" and host_update:
                    continue
                assert steps[i + 1] >= steps[i] * (1 - 1e-12), (place, kind, tiers[i])


def test_fits_agrees_with_phases_and_offload_capacity():
    cases = [dict(), dict(offload_optimizer="cpu"),
             dict(offload_optimizer="nvme", offload_params="nvme", offload_gradients="cpu"),
             dict(offload_optimizer="cpu", offload_params="cpu", offload_activations="cpu")]
    for model, gpus in (("llama-2-7b", 1), ("llama-2-13b", 1), ("llama-2-70b", 8)):
        for place in cases:
            for host_gib in (16, 512):
                est = estimate_training(job(model, "a100-80gb", gpus, zero_stage=3,
                                            system={"host_memory_bytes": host_gib * 2**30},
                                            **place))
                peaks = _phase_totals(est)
                off = est.offload
                within = (off["host_bytes"] <= off["host_capacity_bytes"]
                          and off["nvme_bytes"] <= off["nvme_capacity_bytes"])
                assert est.fits == bool(np.all(peaks <= est.memory["capacity"]) and within)
                if est.fits:
                    assert peaks.max() <= est.memory["capacity"]


def test_offloaded_bytes_land_on_their_tier():
    est = estimate_training(job(offload_optimizer="nvme", offload_params="cpu", zero_stage=1))
    assert est.offload["nvme_bytes"] > 0 and est.offload["host_bytes"] > 0
    assert est.offload["optimizer"] == "nvme" and est.config["offload"]["params"] == "cpu"
    legacy = estimate_training(job(cpu_offload_optimizer=True))
    assert legacy.offload["optimizer"] == "cpu" and legacy.memory["optimizer"] == 0


def _cli(*args):
    env = {**os.environ, "COLUMNS": "160", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def test_cli_offload_option_and_its_errors():
    ok = _cli("train", "-m", "llama-2-7b", "--gpus", "1", "--offload",
              "optimizer=cpu,params=nvme", "--json")
    assert ok.returncode == 0, ok.stderr
    for bad in ("params=disk", "weights=cpu", "activations=nvme", "optimizer"):
        r = _cli("train", "-m", "llama-2-7b", "--offload", bad)
        assert r.returncode == 2 and "--offload" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def _plan(model, gpu, n):
    return plan_training(PlanRequest(model=load_model(model), gpus=[gpu], gpu_counts=[n],
                                     seq_len=2048, global_batch=8, top=1))


def test_planner_offloads_only_when_nothing_fits():
    fits = _plan("llama-2-7b", "a100-80gb", 8)
    assert not fits["clusters"][0]["offload_searched"]
    assert set(fits["top"][0]["config"]["offload"].values()) == {"gpu"}
    tight = _plan("llama-2-13b", "rtx-4090", 1)
    assert tight["clusters"][0]["offload_searched"]
    best = tight["top"][0]
    assert best["fits"] and set(best["config"]["offload"].values()) != {"gpu"}


# Superpipeline layer streaming (stream_window_layers) and Deep Optimizer States
# (interleave_optimizer): workloads/training/offload.py's docstring.
STREAMED = (dict(offload_params="cpu"), dict(offload_params="nvme", offload_optimizer="cpu"),
            dict(offload_activations="cpu"),
            dict(offload_params="cpu", offload_activations="cpu", offload_gradients="cpu"))


@pytest.mark.parametrize("place", STREAMED)
def test_streaming_never_increases_gpu_memory_and_a_wider_window_never_slows(place):
    """A window of k resident layers holds no more than the GPU-only run, more layers hold
    more memory, and a window of one (nothing prefetched) is the slowest."""
    gpu_only = estimate_training(job(zero_stage=3, global_batch=32))
    runs = [estimate_training(job(zero_stage=3, global_batch=32, stream_window_layers=k,
                                  **place)) for k in (1, 2, 4, 8, 32)]
    mem = [r.memory["total"] for r in runs]
    steps = [r.step_time_s for r in runs]
    assert all(m <= gpu_only.memory["total"] * (1 + 1e-12) for m in mem)
    assert all(a <= b * (1 + 1e-12) for a, b in zip(mem, mem[1:], strict=False))
    assert all(a >= b * (1 - 1e-12) for a, b in zip(steps, steps[1:], strict=False))
    assert mem[0] < mem[-1] or place == dict(offload_activations="cpu")
    assert steps[0] > steps[1]
    assert all(s >= gpu_only.step_time_s for s in steps)


def test_default_window_is_the_existing_two_layer_stream():
    place = dict(zero_stage=3, offload_params="cpu", offload_activations="cpu")
    plain, two = (estimate_training(job(**place, **w)) for w in ({}, dict(stream_window_layers=2)))
    assert plain.step_time_s == two.step_time_s and plain.memory == two.memory


def _dos(model="llama-2-13b", gpu="a100-80gb", gpus=1, **par):
    par = dict(zero_stage=3, recompute="full", global_batch=4 * gpus) | dict(
        offload_optimizer="cpu") | par
    return estimate_training(job(model, gpu, gpus, framework="deepspeed", seq_len=2048,
                                 system={"host_memory_bytes": 1024 * 2**30}, **par))


@pytest.mark.parametrize(("model", "gpu", "gpus"), [("llama-2-13b", "a100-80gb", 1),
                                                    ("llama-2-7b", "h100-sxm", 4),
                                                    ("llama-2-70b", "a100-40gb", 8)])
def test_deep_optimizer_states_never_slower_than_zero_offload(model, gpu, gpus):
    """Over every placement of the other states: interleaving the update never lengthens the
    step, uses a GPU share in [0, 1), and its GPU memory stays at or below the GPU-only run."""
    gpu_only = _dos(model, gpu, gpus, offload_optimizer="gpu")
    for g, p, a in itertools.product(TIERS, TIERS, ("gpu", "cpu")):
        place = dict(offload_gradients=g, offload_params=p, offload_activations=a)
        plain = _dos(model, gpu, gpus, **place)
        dos = _dos(model, gpu, gpus, interleave_optimizer=True, **place)
        assert dos.step_time_s <= plain.step_time_s * (1 + 1e-12), place
        assert 0 <= dos.offload["optimizer_gpu_fraction"] < 1
        assert dos.memory["total"] <= gpu_only.memory["total"] * (1 + 1e-12), place
        if dos.offload["optimizer_gpu_fraction"] > 0:
            assert dos.step_time_s < plain.step_time_s and dos.breakdown_s["optimizer_s"] < \
                plain.breakdown_s["optimizer_s"]


def test_deep_optimizer_states_chooses_the_best_fraction():
    """The closed-form share is no worse than any pinned one (T(f) is V-shaped in f)."""
    best = _dos(interleave_optimizer=True)
    f_best = best.offload["optimizer_gpu_fraction"]
    assert 0.05 < f_best < 0.95
    for f in np.linspace(0, 1, 21):
        pinned = _dos(interleave_optimizer=True, optimizer_gpu_fraction=float(f))
        assert pinned.step_time_s >= best.step_time_s * (1 - 1e-12), f
    assert _dos(interleave_optimizer=True, optimizer_gpu_fraction=0.0).step_time_s == \
        _dos().step_time_s


def test_deep_optimizer_states_equals_zero_offload_without_spare_gpu_memory():
    """One subgroup as large as the 13B shard: its optimizer states (156 GB) cannot sit on the
    80 GB GPU even when the activations are gone, so there is no GPU share and step and
    memory are ZeRO-Offload's. With the default subgroup (1e8) the same job interleaves, its
    buffer only in the optimizer-step phase."""
    plain = _dos()
    huge = _dos(interleave_optimizer=True, optimizer_subgroup_params=1e11)
    assert huge.offload["optimizer_gpu_fraction"] == 0
    assert huge.step_time_s == plain.step_time_s and huge.memory == plain.memory
    small = _dos(interleave_optimizer=True)
    assert small.offload["optimizer_gpu_fraction"] > 0
    assert small.memory_phases["optimizer_step"]["optimizer"] == pytest.approx(2 * 1e8 * 12)
    assert small.memory_phases["backward"] == plain.memory_phases["backward"]


def test_more_offload_with_streaming_or_interleaving_never_beats_gpu_only():
    for model, gpu in (("llama-2-7b", "a100-80gb"), ("llama-2-13b", "h100-sxm")):
        base = estimate_training(job(model, gpu, zero_stage=3, global_batch=32))
        assert base.fits
        for extra in (dict(offload_optimizer="cpu", interleave_optimizer=True),
                      dict(offload_optimizer="cpu", interleave_optimizer=True,
                           offload_params="cpu", stream_window_layers=4),
                      dict(offload_params="cpu", stream_window_layers=1),
                      dict(offload_activations="cpu", stream_window_layers=8)):
            est = estimate_training(job(model, gpu, zero_stage=3, global_batch=32, **extra))
            assert est.step_time_s >= base.step_time_s, extra


def test_offload_grammar_of_the_spec():
    assert parse_offload("optimizer=cpu-interleaved,params=cpu,window=4") == dict(
        offload_optimizer="cpu", interleave_optimizer=True, offload_params="cpu",
        stream_window_layers=4)
    assert parse_offload("optimizer=cpu, params=nvme") == dict(offload_optimizer="cpu",
                                                               offload_params="nvme")
    assert parse_offload(None) == {}
    for bad in ("window=0", "window=x", "params=cpu-interleaved", "activations=nvme",
                "optimizer", "weights=cpu"):
        with pytest.raises(ValueError, match="--offload") as err:
            parse_offload(bad)
        assert "\n" not in str(err.value)
    for bad in (dict(interleave_optimizer=True), dict(interleave_optimizer=True,
                                                      offload_optimizer="nvme"),
                dict(stream_window_layers=4), dict(optimizer_gpu_fraction=0.5,
                                                   offload_optimizer="cpu"),
                dict(offload_params="cpu", stream_window_layers=0)):
        with pytest.raises(ValueError):
            Parallelism(**bad)


def test_cli_offload_reaches_streaming_and_interleaving():
    """`train --offload` takes the spec's grammar: Deep Optimizer States is never slower than
    the plain CPU optimizer, a smaller streaming window never needs more GPU memory, and a bad
    window is one line with exit status 2."""
    import json

    from typer.testing import CliRunner

    from flopcast.cli import app

    def run(offload: str):
        args = ["train", "--model", "llama-3.1-8b", "--gpus", "1", "--global-batch", "8",
                "--seq-len", "2048", "--zero", "0", "--offload", offload, "--json"]
        return CliRunner().invoke(app, args)

    plain, interleaved = (json.loads(run(o).stdout) for o in
                          ("optimizer=cpu", "optimizer=cpu-interleaved"))
    assert interleaved["step_time_s"] <= plain["step_time_s"]
    narrow, wide = (json.loads(run(f"params=cpu,optimizer=cpu,window={k}").stdout)
                    for k in (1, 8))
    assert narrow["memory"]["total"] <= wide["memory"]["total"]
    bad = subprocess.run([sys.executable, "-m", "flopcast.cli", "train", "--model",
                          "llama-3.1-8b", "--offload", "window=0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "window" in bad.stderr and bad.stderr.count("\n") == 1


# The host the node's offloading GPUs share (physics/host.py).
def _host_rate(gpus, gpu="a100-80gb", **eff):
    """Parameters per second each GPU's rank updates on the host: its shard over the host
    optimizer's update (ZeRO-1, optimizer on the host, nothing else offloaded)."""
    from flopcast.physics.host import cpu_adam_time

    g = load_gpu(gpu)
    g = g.model_copy(update={"efficiency": g.efficiency.updated(**eff)}) if eff else g
    return 1e9 / cpu_adam_time(System(gpu=g, num_gpus=gpus), 1e9, 30.0)


def test_more_offloading_gpus_per_host_never_make_each_cpu_optimizer_faster():
    """Each rank's CPU-Adam shares the host's DRAM and cores with the host's other offloading
    GPUs: its rate per GPU never rises with more of them, and falls once DRAM is shared; the
    whole host's rate never exceeds what one rank alone gets with all of it. End to end, the
    host optimizer step of a fixed-size shard never shortens with more GPUs per host."""
    for gpu in ("a100-80gb", "h100-sxm", "gb200", "rtx-4090"):
        rates = [_host_rate(n, gpu) for n in (1, 2, 3, 4, 8, 16)]
        assert all(b <= a * (1 + 1e-12) for a, b in zip(rates, rates[1:], strict=False))
        sharing = [System(gpu=load_gpu(gpu), num_gpus=n).gpus_per_host for n in (1, 2, 3, 4, 8, 16)]
        assert all(k * r <= rates[0] * (1 + 1e-12) for k, r in zip(sharing, rates, strict=False))
    assert _host_rate(8) < _host_rate(1)
    steps = []
    for gpus in (1, 2, 4, 8):
        est = estimate_training(job("llama-2-7b", "a100-80gb", gpus, zero_stage=0,
                                    offload_optimizer="cpu", global_batch=gpus,
                                    system={"host_memory_bytes": 1024 * 2**30}))
        steps.append(est.breakdown_s["optimizer_s"])
    assert all(b >= a * (1 - 1e-12) for a, b in zip(steps, steps[1:], strict=False))
    assert steps[-1] > steps[0]


def test_cpu_adam_rate_is_an_explicit_override_and_the_host_a_system_choice():
    """Efficiency.cpu_adam_params_per_s, when set, is the rate per GPU whatever the host; a
    System's own host replaces the GPU entry's (half the DRAM: half the DRAM-bound rate)."""
    from flopcast.physics.host import cpu_adam_time

    assert _host_rate(1, cpu_adam_params_per_s=2e9) == pytest.approx(2e9)
    assert _host_rate(8, cpu_adam_params_per_s=2e9) == pytest.approx(2e9)
    g = load_gpu("a100-80gb")
    half = g.host.model_copy(update={"memory_bandwidth": g.host.memory_bandwidth / 2})
    full_t = cpu_adam_time(System(gpu=g, num_gpus=4), 1e9, 30.0)
    half_t = cpu_adam_time(System(gpu=g, num_gpus=4, host=half), 1e9, 30.0)
    assert half_t == pytest.approx(2 * full_t)
    assert System(gpu=load_gpu("rtx-4090"), num_gpus=2).host.gpus == 8  # default host
