"""Calibration must recover known parameters from synthetic measurements (so it can fail)."""

import pytest

pytest.importorskip("scipy")

from flopcast.calibration.joint import calibrate_joint  # noqa: E402
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
    fit = calibrate_joint(cases, prior=Efficiency())
    prior = Efficiency()
    for c in cases:
        assert predict_case(c, fit.efficiency(c)) == pytest.approx(c.measured, rel=0.05)
    fitted = Efficiency(**fit.families["ampere"])
    # the fit moves toward the truth, away from the prior it started from
    assert abs(fitted.kernel_fraction_scale - 0.75) < abs(prior.kernel_fraction_scale - 0.75) / 2


def test_framework_values_lay_over_the_family_values():
    """The shipped calibration's framework section reaches the GPU a job runs on."""
    from flopcast.catalog.loader import _calibration_frameworks

    frameworks = _calibration_frameworks(None)
    megatron, fsdp = load_gpu("h100-sxm"), load_gpu("h100-sxm", framework="fsdp")
    for name, value in frameworks.get("fsdp", {}).items():
        assert getattr(fsdp.efficiency, name) == value
    assert megatron.efficiency.nvlink_fraction == fsdp.efficiency.nvlink_fraction
    assert megatron.efficiency.elementwise_traffic_factor == 1.0  # fused: never fitted


def test_rows_sharding_gradients_or_parameters_ran_fsdp_unless_named():
    from flopcast.validate.training import framework_of_row

    assert framework_of_row({"zero_stage": "3"}) == "fsdp"
    assert framework_of_row({"zero_stage": "2"}) == "fsdp"
    assert framework_of_row({"zero_stage": "1"}) == "megatron"
    assert framework_of_row({}) == "megatron"
    assert framework_of_row({"zero_stage": "3", "framework": "deepspeed"}) == "deepspeed"
