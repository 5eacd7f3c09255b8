"""Calibration must recover known parameters from synthetic measurements (so it can fail)."""

import pytest

pytest.importorskip("scipy")

from flopcast.calibration.fit import fit_family  # noqa: E402
from flopcast.catalog import load_gpu, load_model  # noqa: E402
from flopcast.specs import Efficiency, Parallelism, System, TrainingJob  # noqa: E402
from flopcast.validate.training import TrainingCase, predict_case  # noqa: E402


def synthetic_cases(truth: Efficiency):
    cases = []
    gpu = load_gpu("a100-80gb")
    shapes = [
        ("llama-2-7b", 8, 1, 2048, 1), ("llama-2-7b", 8, 1, 8192, 1),
        ("llama-2-13b", 16, 2, 4096, 2), ("llama-2-70b", 64, 8, 4096, 1),
        ("gpt-j-6b", 8, 1, 2048, 4), ("llama-2-7b", 32, 4, 16384, 1),
        ("mistral-7b", 8, 2, 1024, 8), ("llama-2-13b", 128, 8, 2048, 1),
    ]
    shapes += [(m, g, t, s // 2, 2 * mb) for m, g, t, s, mb in shapes]
    for i, (model, gpus, tp, seq, mb) in enumerate(shapes):
        job = TrainingJob(model=load_model(model), system=System(gpu=gpu, num_gpus=gpus),
                          parallelism=Parallelism(tp=tp, micro_batch=mb,
                                                  global_batch=mb * gpus // tp * 4),
                          seq_len=seq)
        case = TrainingCase(f"S:{i}", "S", "tokens_per_s_per_gpu", 1.0, "model", job, None)
        measured = predict_case(case, truth)
        cases.append(TrainingCase(f"S:{i}", "S", "tokens_per_s_per_gpu", measured, "model", job,
                                  None))
    return cases


def test_fit_recovers_predictions_of_a_known_efficiency():
    truth = Efficiency(kernel_fraction_scale=0.75, layer_overhead_s=1.2e-4)
    cases = synthetic_cases(truth)
    fitted = fit_family(cases, prior=Efficiency())
    prior = Efficiency()
    for c in cases:
        assert predict_case(c, fitted) == pytest.approx(c.measured, rel=0.05)
    # the fit moves toward the truth, away from the prior it started from
    assert abs(fitted.kernel_fraction_scale - 0.75) < abs(prior.kernel_fraction_scale - 0.75) / 2
