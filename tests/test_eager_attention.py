"""Unfused (eager) attention: the score matrix goes through HBM, in time and in memory."""

from __future__ import annotations

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_framework
from flopcast.physics import kernels
from flopcast.specs import Parallelism, System, TrainingJob
from flopcast.specs.framework import PYTORCH_EAGER_SCORE_TRAFFIC as HF
from flopcast.workloads.training import Layout, training_step

H100 = load_gpu("h100-sxm")


def eager(seq, direction="fwd", heads=32, sequences=1):
    score_bytes, score_kernels = ((HF.fwd_bytes, HF.fwd_kernels) if direction == "fwd"
                                  else (HF.bwd_bytes, HF.bwd_kernels))
    return float(kernels.eager_attention_time(
        seq * sequences, seq, heads, 128, 128, H100, "bf16", direction, sequences,
        score_bytes, score_kernels))


def test_scores_cost_their_bytes_and_grow_with_the_square_of_the_sequence():
    """Never faster than the score traffic at the measured HBM speed; memory-bound at long
    sequences, so doubling the sequence about quadruples the time."""
    for seq in (512, 2048, 8192):
        floor = 32 * seq * seq * HF.fwd_bytes / H100.hbm_bandwidth
        assert eager(seq) > floor
    assert 3.5 < eager(8192) / eager(4096) < 4.5
    assert eager(4096, "bwd") > eager(4096)  # four GEMMs and more score traffic
    assert eager(4096, sequences=4) == pytest.approx(4 * eager(4096), rel=0.05)


def test_eager_is_slower_than_the_fused_kernel_it_replaces():
    for seq in (1024, 4096):
        fused = float(kernels.attention_time(seq, (seq + 1) / 2, 32, 128, 128, H100))
        assert eager(seq) > 2 * fused


def _job(**extra):
    return TrainingJob(model=load_model("llama-3.1-8b"), system=System(gpu=H100, num_gpus=8),
                       parallelism=Parallelism(tp=1, global_batch=8), seq_len=4096, **extra)


def _step(job):
    return training_step(job.model, job.system, job.precision, job.seq_len, Layout.from_job(job),
                         job.attention_backend, job.framework)


def test_training_with_eager_attention_pays_in_time_and_memory_alike():
    """--attention-backend eager and a framework whose attention is eager are one mechanism:
    the step is slower by the score traffic and the scores are kept for the backward."""
    flash, asked = _step(_job()), _step(_job(attention_backend="eager"))
    framework = load_framework("megatron").model_copy(update={"attention": "eager"})
    own = _step(_job(framework=framework))
    assert float(asked["step_time_s"][0]) > 1.15 * float(flash["step_time_s"][0])
    assert float(asked["step_time_s"][0]) == pytest.approx(float(own["step_time_s"][0]))
    kept = float(asked["memory_allocated_bytes"][0]) - float(flash["memory_allocated_bytes"][0])
    # Megatron's count keeps the 16-bit softmax output per score (no dropout): 2 bytes
    scores = 32 * 4096 * 4096 * 32 * 2
    assert kept == pytest.approx(scores, rel=0.05)
    assert np.isfinite(float(own["step_time_s"][0]))


def test_gemm_shapes_and_chunk_keys():
    """Without score traffic the forward is exactly S = QKᵀ (q×keys, contracted over d) and
    O = PV (q×d, contracted over keys) per (sequence, head); a prefill chunk of c rows at
    offset o scores o + c keys."""
    from flopcast.physics import layer

    q, keys, d, groups = 512.0, 3000.0, 128.0, 2 * 32
    alone = kernels.eager_attention_time(2 * q, keys, 32, d, d, H100, "bf16", "fwd", 2)
    pinned = (kernels.gemm_time(q, keys, d, H100, groups=groups)
              + kernels.gemm_time(q, d, keys, H100, groups=groups))
    assert float(alone) == pytest.approx(float(pinned))
    model = load_model("llama-3.1-8b")
    place = layer.Placement(tp=1)
    num = layer.Numerics("bf16", "bf16", 2.0, 2.0, 2.0)
    c, offset = 1000.0, 5000.0
    chunk = layer.Batch(prefill_tokens=c, prefill_context=offset + (c + 1) / 2)
    t = layer.attention_time(model, H100, place, num, chunk, backend="eager")
    direct = kernels.eager_attention_time(c, offset + c, 32, 128, 128, H100, "bf16", "fwd", 1,
                                          HF.fwd_bytes, HF.fwd_kernels)
    assert float(t) == pytest.approx(float(direct))


def test_memory_follows_the_kernel_asked_for():
    """An eager framework asked for a fused kernel keeps no scores; a copy asked for eager
    keeps them (copies realign too)."""
    eager_hf = load_framework("hf-transformers").model_copy(update={"attention": "eager"})
    fused = _job(framework=eager_hf, attention_backend="cudnn")
    assert fused.framework.attention == "flash"
    assert fused.model_copy(update={"attention_backend": "eager"}).framework.attention == "eager"


def test_the_python_api_takes_eager():
    from flopcast.api.train import TrainRequest, run_train

    flash = run_train(TrainRequest(model="llama-3.1-8b", seq_len=4096))
    eager_run = run_train(TrainRequest(model="llama-3.1-8b", seq_len=4096,
                                       attention_backend="eager"))
    assert eager_run.step_time_s > flash.step_time_s
    assert eager_run.config["attention_backend"] == "eager"
