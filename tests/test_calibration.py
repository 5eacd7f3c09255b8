"""Calibration must recover known parameters from synthetic measurements (so it can fail)."""

import pytest

pytest.importorskip("scipy")

from flopcast.calibration.joint import calibrate_joint  # noqa: E402
from flopcast.catalog import load_gpu, load_model  # noqa: E402
from flopcast.specs import Efficiency, Parallelism, System, TrainingJob  # noqa: E402
from flopcast.validate.training import TrainingCase, predict_case  # noqa: E402


def synthetic_cases(truth: Efficiency, gpu_id: str = "a100-80gb"):
    cases = []
    gpu = load_gpu(gpu_id)
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


@pytest.mark.parametrize("gpu_id, family, scale", [
    ("a100-80gb", "ampere", "training_kernel_scale"),  # kernels measured (kernels-ampere.yaml)
    ("l40s", "ada", "kernel_fraction_scale"),  # priors only: the scale stands for the profile
])
def test_fit_recovers_predictions_of_a_known_efficiency(gpu_id, family, scale):
    truth = Efficiency(**{scale: 0.75}, layer_overhead_s=1.2e-4)
    cases = synthetic_cases(truth, gpu_id)
    fit = calibrate_joint(cases, prior=Efficiency())
    prior = Efficiency()
    for c in cases:
        assert predict_case(c, fit.efficiency(c)) == pytest.approx(c.measured, rel=0.05)
    fitted = Efficiency(**fit.families[family])
    # the fit moves toward the truth, away from the prior it started from
    assert abs(getattr(fitted, scale) - 0.75) < abs(getattr(prior, scale) - 0.75) / 2


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


def test_training_kernel_scale_slows_training_compute_only():
    """A family's training_kernel_scale prices a training step's GEMMs and attention below
    the kernel benchmarks; inference, which does not read it, is unchanged."""
    from flopcast.catalog.loader import load_engine
    from flopcast.specs.inference import InferenceJob
    from flopcast.workloads.inference.estimate import estimate_inference
    from flopcast.workloads.training.step import sustained

    shipped = load_gpu("h100-sxm")
    base, slow = (shipped.model_copy(update={"efficiency": shipped.efficiency.updated(
        training_kernel_scale=scale)}) for scale in (1.0, 0.8))
    model = load_model("llama-2-7b")
    times = []
    for gpu in (base, slow):
        job = TrainingJob(model=model, system=System(gpu=gpu, num_gpus=8),
                          parallelism=Parallelism(micro_batch=1, global_batch=64), seq_len=4096)
        case = TrainingCase("S:1", "S", "step_time_s", 1.0, "model", job, None)
        times.append(predict_case(case))
    assert times[1] > 1.1 * times[0]  # compute-bound: most of the 1/0.8 shows
    assert times[1] < times[0] / 0.8 * 1.01  # never more than the scale itself
    scaled = sustained(System(gpu=slow, num_gpus=1))
    assert scaled.gpu.efficiency.kernel_fraction_scale == pytest.approx(
        0.8 * base.efficiency.kernel_fraction_scale)
    assert sustained(scaled) == scaled  # applied once
    infer = [estimate_inference(InferenceJob(model=model, engine=load_engine("vllm"),
                                             system=System(gpu=g, num_gpus=1), input_len=2048,
                                             output_len=128, batch=8)).ttft_ms
             for g in (base, slow)]
    assert infer[0] == infer[1]


def test_megatron_runs_its_documented_attention_kernel_not_a_fitted_one():
    """Transformer Engine picks cuDNN on Hopper and FlashAttention-2 on Ampere; a calibrated
    kernel applies only to frameworks that run the model code's attention (FSDP)."""
    from flopcast.catalog import load_framework
    from flopcast.workloads.training.step import training_attention_backend

    megatron, fsdp = load_framework("megatron"), load_framework("fsdp")
    for gpu_id, expected in (("h100-sxm", "cudnn"), ("a100-80gb", "flash-attention-2")):
        gpu = load_gpu(gpu_id)
        fitted = gpu.model_copy(update={"efficiency": gpu.efficiency.updated(
            training_attention_backend="flash-attention-triton")})
        assert training_attention_backend(fitted, None, megatron) == expected
        assert training_attention_backend(fitted, None, fsdp) == "flash-attention-triton"
        assert training_attention_backend(fitted, "cudnn", fsdp) == "cudnn"  # the job's own


def test_calibration_chooses_no_kernel_for_a_framework_that_documents_its_own():
    from flopcast.calibration.joint import choose_backends

    cases = synthetic_cases(Efficiency())  # Megatron rows (the schema's default framework)
    assert choose_backends(cases) == {"megatron": None}


def test_a_kernel_calibration_file_is_taken_by_calibration(tmp_path):
    """`flopcast calibrate kernels.csv -o FILE` writes kernel profiles; `--calibration FILE`
    then prices with them (in place of the shipped kernel fit), not as efficiency values."""
    import yaml

    from flopcast.catalog.loader import KERNEL_CALIBRATION_FILE, load_gpu

    data = yaml.safe_load(KERNEL_CALIBRATION_FILE.read_text())
    data["families"]["hopper"]["profile"]["gemm_fraction"]["bf16"] *= 0.5
    slow = tmp_path / "kcal.yaml"
    slow.write_text(yaml.safe_dump(data))
    shipped, halved = load_gpu("h100-sxm"), load_gpu("h100-sxm", str(slow))
    assert halved.kernels.gemm_fraction["bf16"] == pytest.approx(
        0.5 * shipped.kernels.gemm_fraction["bf16"])
    assert halved.efficiency == shipped.efficiency  # the training calibration stays in force
    assert "--calibration file" in halved.kernels_source
    # a family the file does not fit keeps the shipped kernel fit
    data["families"] = {"ampere": {"gpu": "a100-80gb", "profile": {"launch_s": 9e-6}}}
    other = tmp_path / "ampere-only.yaml"
    other.write_text(yaml.safe_dump(data))
    assert load_gpu("h100-sxm", str(other)).kernels == shipped.kernels


def test_link_fractions_are_one_value_for_every_family():
    """NCCL's share of the NVLink and network bandwidth is fitted once for all families the
    rows cover (joint.SHARED_PARAMETERS), not per family, and reaches every family's cases."""
    from flopcast.calibration.joint import JointFit, identifiable

    ampere = synthetic_cases(Efficiency())
    h100 = load_gpu("h100-sxm")
    hopper = [TrainingCase(c.id + "h", "S", c.metric, c.measured, "model", c.job.model_copy(
        update={"system": c.job.system.model_copy(update={"gpu": h100})}), None)
        for c in ampere]
    scoped = identifiable(ampere + hopper)
    links = [p for p in scoped if p.name in ("nvlink_fraction", "network_fraction")]
    assert sorted(p.name for p in links) == ["network_fraction", "nvlink_fraction"]
    assert [(p.kind, p.key) for p in links] == [("shared", "")] * 2
    assert {p.key for p in scoped if p.kind == "family"} == {"ampere", "hopper"}
    fit = JointFit({"ampere": {"layer_overhead_s": 1e-4}}, {}, {},
                   shared={"nvlink_fraction": 0.37})
    for case in (ampere[0], hopper[0]):
        assert fit.efficiency(case).nvlink_fraction == 0.37
    assert fit.family_values("ampere") == {"nvlink_fraction": 0.37, "layer_overhead_s": 1e-4}


def test_fit_recovers_a_shared_link_fraction():
    """A known, non-prior NVLink share is what the joint fit puts in ``shared``; no family
    holds its own copy."""
    from flopcast.calibration.joint import fit_joint

    truth, gpu = Efficiency(nvlink_fraction=0.35), load_gpu("a100-80gb")
    cases = []
    for i, (model, tp, seq) in enumerate([("llama-2-7b", 2, 2048), ("llama-2-7b", 8, 1024),
                                          ("llama-2-13b", 4, 4096), ("llama-2-13b", 8, 2048),
                                          ("mistral-7b", 4, 1024), ("gpt-j-6b", 8, 4096)]):
        job = TrainingJob(model=load_model(model), system=System(gpu=gpu, num_gpus=8),
                          parallelism=Parallelism(tp=tp, micro_batch=1, global_batch=64,
                                                  tp_comm_overlap=False), seq_len=seq)
        case = TrainingCase(f"S:{i}", "S", "step_time_s", 1.0, "model", job, None)
        cases.append(TrainingCase(f"S:{i}", "S", "step_time_s", predict_case(case, truth),
                                  "model", job, None))
    fit = fit_joint(cases, {"megatron": None}, Efficiency())
    assert "nvlink_fraction" not in fit.families.get("ampere", {})
    # moved well toward the truth (the pull toward the 0.8 prior keeps it ~0.55 here)
    assert abs(fit.shared["nvlink_fraction"] - 0.35) < abs(0.8 - 0.35) * 2 / 3
    assert fit.efficiency(cases[0]).nvlink_fraction == fit.shared["nvlink_fraction"]


def test_shipped_calibration_gives_every_family_the_same_link_fractions():
    import yaml

    from flopcast.catalog.loader import CALIBRATION_FILE

    shared = yaml.safe_load(CALIBRATION_FILE.read_text())["shared"]["efficiency"]
    for gpu in ("a100-80gb", "h100-sxm"):
        eff = load_gpu(gpu).efficiency
        assert (eff.nvlink_fraction, eff.network_fraction) == (
            shared["nvlink_fraction"], shared["network_fraction"])


def _megatron_2021_rows(training_csv, tmp_path):
    """A training CSV of the Megatron-LM 2021 rows alone (10 rows: a fit in seconds)."""
    import csv

    with training_csv.open() as f:
        rows = [r for r in csv.DictReader(f) if r["id"].startswith("MEGATRON_README_2021")]
    path = tmp_path / "megatron-2021.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_calibrate_writes_shared_link_values_that_load_back(training_csv, tmp_path):
    """`flopcast calibrate` records the shared link values once under `shared` and in every
    family's entry, not as any family's own fitted value, and `--calibration FILE` prices
    with them."""

    import yaml

    from flopcast.calibration.fit import calibrate

    path = _megatron_2021_rows(training_csv, tmp_path)
    out = tmp_path / "cal.yaml"
    calibrate(path, out)
    doc = yaml.safe_load(out.read_text())
    shared = doc["shared"]["efficiency"]
    assert sorted(doc["shared"]["fitted"]) == ["network_fraction", "nvlink_fraction"]
    ampere = doc["families"]["ampere"]
    assert not set(ampere["fitted"]) & set(shared)
    assert all(ampere["efficiency"][n] == v for n, v in shared.items())
    assert load_gpu("a100-80gb", str(out)).efficiency.nvlink_fraction == shared["nvlink_fraction"]


def test_a_held_value_is_not_fitted_and_every_row_runs_with_it():
    """``held`` takes a parameter out of the fit in every scope; the rows are priced with the
    held value, and the fit records it among the values every family shares."""
    from flopcast.calibration.joint import fit_joint, identifiable

    truth = Efficiency(layer_overhead_s=2e-4)
    cases = synthetic_cases(truth)
    assert any(p.name == "layer_overhead_s" for p in identifiable(cases))
    held = {"layer_overhead_s": 7e-5}
    assert not any(p.name == "layer_overhead_s" for p in identifiable(cases, held))
    fit = fit_joint(cases, {"megatron": None}, Efficiency(), held)
    assert "layer_overhead_s" not in fit.families.get("ampere", {})
    assert fit.shared["layer_overhead_s"] == 7e-5
    assert fit.efficiency(cases[0]).layer_overhead_s == 7e-5
    free = fit_joint(cases, {"megatron": None}, Efficiency())
    assert abs(free.families["ampere"]["layer_overhead_s"] - 7e-5) > 1e-5
    # the fit prices its rows with the held value: holding another value moves the rest
    other = fit_joint(cases, {"megatron": None}, Efficiency(), {"layer_overhead_s": 3e-4})
    assert (other.families["ampere"]["training_kernel_scale"]
            != pytest.approx(fit.families["ampere"]["training_kernel_scale"], rel=1e-3))


def _refused(capsys, *args: str) -> str:
    """The one error line of `flopcast ARGS`, which must exit with status 2."""
    from flopcast.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("option, says", [
    ("bogus=1", "not a fitted training parameter"),
    ("nvlink_fraction=1.5", "outside its bounds"),
    ("nvlink_fraction=nan", "outside its bounds"),
    ("nvlink_fraction", "not NAME=VALUE"),
    ("nvlink_fraction=high", "not NAME=VALUE"),
    ("kernel_fraction_scale=0.9", "cannot be held for every family"),
    ("training_kernel_scale=0.9", "cannot be held for every family"),
])
def test_calibrate_refuses_a_bad_hold_in_one_line(training_csv, tmp_path, capsys, option, says):
    line = _refused(capsys, "calibrate", str(training_csv), "--hold", option,
                    "-o", str(tmp_path / "c.yaml"))
    assert says in line and "--hold" in line
    assert not (tmp_path / "c.yaml").exists()


def test_calibrate_refuses_hold_for_an_inference_file(inference_csv, tmp_path, capsys):
    line = _refused(capsys, "calibrate", str(inference_csv), "--hold", "nvlink_fraction=0.5",
                    "-o", str(tmp_path / "c.yaml"))
    assert "holds inference rows" in line


def test_calibrate_records_held_values_apart_from_fitted_ones(training_csv, tmp_path):
    """`flopcast calibrate --hold nvlink_fraction=V` (how the shipped file is made): the
    held value is in every family's entry and under `shared.held`, never among the fitted."""

    import yaml

    from flopcast.calibration.fit import calibrate

    path = _megatron_2021_rows(training_csv, tmp_path)
    out = tmp_path / "cal.yaml"
    doc = calibrate(path, out, {"nvlink_fraction": 0.33})
    assert doc == yaml.safe_load(out.read_text())
    assert doc["shared"]["held"] == {"nvlink_fraction": 0.33}
    assert doc["shared"]["fitted"] == ["network_fraction"]
    assert doc["families"]["ampere"]["efficiency"]["nvlink_fraction"] == 0.33
    assert "nvlink_fraction" not in doc["families"]["ampere"]["fitted"]
    assert "nvlink_fraction = 0.33" in doc["description"]
    assert load_gpu("a100-80gb", str(out)).efficiency.nvlink_fraction == 0.33


def test_calibrate_refuses_a_parameter_held_twice(training_csv, tmp_path, capsys):
    line = _refused(capsys, "calibrate", str(training_csv), "--hold", "nvlink_fraction=0.4",
                    "--hold", "nvlink_fraction=0.5", "-o", str(tmp_path / "c.yaml"))
    assert "given twice" in line


def _assert_same_values(fresh: dict, kept: dict) -> None:
    """Every value of a shipped fit, nested ones included, equals a fresh fit's."""
    assert fresh.keys() == kept.keys()
    for key, value in kept.items():
        if isinstance(value, dict):
            _assert_same_values(fresh[key], value)
        else:
            assert fresh[key] == pytest.approx(value, rel=1e-5), key


def test_blackwell_kernel_fit_is_what_calibrate_writes_from_the_published_file(tmp_path):
    """calibration/kernels-blackwell.yaml is exactly `flopcast calibrate` on the published
    B200 GEMM timings it names, and B200-class GPUs price with it (RTX PRO 6000, SM120,
    keeps its own measured FP4/FP8 fractions on top)."""
    import yaml
    from typer.testing import CliRunner

    from flopcast.catalog.loader import EXTRA_KERNEL_CALIBRATION_FILES, load_gpu
    from flopcast.cli import app

    shipped = EXTRA_KERNEL_CALIBRATION_FILES[0]
    data = shipped.parent / "published" / "b200-gemm.csv"
    out = tmp_path / "bw.yaml"
    result = CliRunner().invoke(app, ["calibrate", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    fresh = yaml.safe_load(out.read_text())["families"]["blackwell"]["profile"]
    kept = yaml.safe_load(shipped.read_text())["families"]["blackwell"]["profile"]
    _assert_same_values(fresh, kept)
    b200 = load_gpu("b200")
    assert "calibration:blackwell" in b200.kernels_source
    assert b200.kernels.gemm_fraction["fp4"] == pytest.approx(kept["gemm_fraction"]["fp4"])
    rtx = load_gpu("rtx-pro-6000")
    assert rtx.kernels_source.endswith("+ entry")
    # its own fractions reproduce CUTLASS PR 3272's 8192³ measurements on it (TFLOP/s)
    from flopcast.physics.kernels import gemm_time
    for dtype, measured, element in (("fp4", 1629, 0.5), ("fp8", 802, 1.0)):
        t = float(gemm_time(8192, 8192, 8192, rtx, dtype, act_bytes=element,
                            weight_bytes=element))
        assert 2 * 8192**3 / t / 1e12 == pytest.approx(measured, rel=0.02)


def test_ampere_kernel_fit_is_what_calibrate_writes_from_the_published_file(tmp_path):
    """calibration/kernels-ampere.yaml is exactly `flopcast calibrate` on the published A100
    timings it names (GEMMs, FlashAttention-2, copies, board power of A100 40 and 80 GB),
    A100s price with it, and the large cubes of the Azure table (cuBLASLt, 10,000 warm-up
    iterations: sustained) come out within 3 % although they are 2 of 747 rows."""
    import yaml
    from typer.testing import CliRunner

    from flopcast.catalog.loader import EXTRA_KERNEL_CALIBRATION_FILES, load_gpu
    from flopcast.cli import app
    from flopcast.physics.kernels import gemm_time

    shipped = next(p for p in EXTRA_KERNEL_CALIBRATION_FILES if p.name == "kernels-ampere.yaml")
    data = shipped.parent / "published" / "a100-kernels.csv"
    out = tmp_path / "amp.yaml"
    result = CliRunner().invoke(app, ["calibrate", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())["families"]["ampere"]
    kept = yaml.safe_load(shipped.read_text())["families"]["ampere"]
    assert doc["gpu"] == kept["gpu"] == ["a100-40gb", "a100-80gb"]
    _assert_same_values(doc["profile"], kept["profile"])
    a100 = load_gpu("a100-80gb")
    assert "calibration:ampere" in a100.kernels_source and a100.kernels_measured
    for size, measured in ((8192, 254), (16384, 256.5)):
        t = float(gemm_time(size, size, size, a100, "fp16", act_bytes=2, weight_bytes=2))
        assert 2 * size**3 / t / 1e12 == pytest.approx(measured, rel=0.03)
    assert yaml.safe_load(shipped.read_text())["families"]["ampere"]["fit"]["median_ape_pct"] < 6


def test_fp16_gemm_rows_inform_the_bf16_fraction_and_one_family_fits_several_parts():
    """fp16 and bf16 share the tensor-core rate (one datasheet peak), so fp16 rows set bf16's
    fraction; rows of an A100 40 GB and an 80 GB fit one Ampere profile, each row priced with
    its own part's bandwidth (the same copy fraction gives times in the bandwidth ratio)."""
    from flopcast.calibration.kernels import fit_kernel_profile
    from flopcast.catalog import load_gpu
    from flopcast.physics.kernels import gemm_time
    from flopcast.validate.kernels import predict_kernel_row

    big, small = load_gpu("a100-80gb"), load_gpu("a100-40gb")
    rows = []
    for i, (gpu, fraction) in enumerate(((big, 0.9), (small, 0.9), (big, 0.9))):
        nbytes = 2**33
        rows.append({"id": f"c{i}", "gpu": gpu.id, "op": "copy", "dtype": "bf16",
                     "bytes": str(nbytes), "metric": "time_ms",
                     "value": str(1e3 * nbytes / (gpu.hbm_bandwidth * fraction))})
    for m in (2048, 4096, 8192, 16384):
        t = 2 * m * 8192 * 8192 / (0.85 * big.peak("bf16"))
        rows.append({"id": f"g{m}", "gpu": big.id, "op": "gemm", "dtype": "fp16",
                     "m": str(m), "n": "8192", "k": "8192", "metric": "time_ms",
                     "value": str(1e3 * t)})
    profile, paths, summary = fit_kernel_profile(rows, big, {small.id: small})
    assert ("gemm_fraction", "bf16") in paths and ("gemm_fraction", "fp16") not in paths
    assert "fp16" not in profile.gemm_fraction
    assert profile.copy_fraction == pytest.approx(0.9, rel=0.02)
    fitted_big = big.model_copy(update={"kernels": profile})
    fitted_small = small.model_copy(update={"kernels": profile})
    ratio = predict_kernel_row(rows[1], fitted_small) / predict_kernel_row(rows[0], fitted_big)
    assert ratio == pytest.approx(big.hbm_bandwidth / small.hbm_bandwidth, rel=0.01)
    t = float(gemm_time(16384, 8192, 8192, fitted_big, "bf16", act_bytes=2, weight_bytes=2))
    assert t == pytest.approx(float(rows[-1]["value"]) / 1e3, rel=0.1)


def test_a_dtype_streams_at_its_own_fraction_only_where_the_family_declares_one():
    """Blackwell's small-m NVFP4 GEMMs stream at their own fitted fraction (below bf16's);
    RTX PRO 6000 undoes it (null: its other GEMMs' fraction), and Hopper has none."""
    from flopcast.catalog import load_gpu
    from flopcast.physics.kernels import gemm_time

    b200, rtx, h100 = load_gpu("b200"), load_gpu("rtx-pro-6000"), load_gpu("h100-sxm")
    fp4_stream = b200.kernels.gemm_stream_fraction_by_dtype["fp4"]
    assert fp4_stream < b200.kernels.gemm_stream_fraction
    assert rtx.kernels.gemm_stream_fraction_by_dtype["fp4"] is None
    assert h100.kernels.gemm_stream_fraction_by_dtype == {}
    nvfp4 = 0.5 + 1 / 16
    gemv = float(gemm_time(1, 28672, 4096, b200, "fp4", act_bytes=nvfp4, weight_bytes=nvfp4))
    weights = 28672 * 4096 * nvfp4
    assert gemv == pytest.approx(b200.kernels.launch_s + (weights + 4096 * nvfp4 + 28672 * 2)
                                 / (b200.hbm_bandwidth * fp4_stream), rel=1e-9)
    rtx_gemv = float(gemm_time(1, 28672, 4096, rtx, "fp4", act_bytes=nvfp4,
                               weight_bytes=nvfp4))
    assert rtx_gemv == pytest.approx(rtx.kernels.launch_s + (weights + 4096 * nvfp4 + 28672 * 2)
                                     / (rtx.hbm_bandwidth * rtx.kernels.gemm_stream_fraction),
                                     rel=1e-9)
    from flopcast.specs.kernels import KernelProfile
    with pytest.raises(ValueError):
        KernelProfile.model_validate({"gemm_stream_fraction_by_dtype": {"fp4": 1.5}})


def test_a_backend_known_by_its_ratio_follows_the_backend_it_names():
    """Triton FlashAttention is priced as 0.6x / 0.5x of FlashAttention-2 (FA2 paper,
    Fig. 4-6): when FA2 is measured (kernels.yaml on H100, kernels-ampere.yaml on A100) the
    Triton kernel moves with it; a fit on its own rows makes it absolute."""
    from flopcast.calibration.kernels import fit_kernel_profile
    from flopcast.catalog import load_gpu
    from flopcast.specs.kernels import KernelProfile

    for gpu_id in ("h100-sxm", "a100-80gb"):
        k = load_gpu(gpu_id).kernels
        fa2, triton = k.attention["flash-attention-2"], k.attention["flash-attention-triton"]
        assert triton.fwd_fraction == pytest.approx(0.6 * fa2.fwd_fraction)
        assert triton.bwd_fraction == pytest.approx(0.5 * fa2.bwd_fraction)
        assert triton.bwd_context_half == fa2.bwd_context_half
        # a GPU entry changing FA2 carries over; re-validating a dump changes nothing
        data = k.model_dump()
        data["attention"]["flash-attention-2"]["fwd_fraction"] = 0.5
        again = KernelProfile.model_validate(data)
        assert again.attention["flash-attention-triton"].fwd_fraction == pytest.approx(0.3)
        assert KernelProfile.model_validate(again.model_dump()) == again
    with pytest.raises(ValueError, match="relative_to"):
        KernelProfile.model_validate({"attention": {"x": {
            "relative_to": "missing", "fwd_ratio": 0.5, "bwd_ratio": 0.5}}})
    with pytest.raises(ValueError, match="relative_to"):  # the named backend is incomplete
        KernelProfile.model_validate({"attention": {"fa": {"fwd_fraction": 0.5}, "x": {
            "relative_to": "fa", "fwd_ratio": 0.5, "bwd_ratio": 0.5}}})
    with pytest.raises(ValueError, match="attention.x"):  # a null backend: pydantic names it
        KernelProfile.model_validate({"attention": {"x": None}})
    gpu = load_gpu("a100-80gb")
    rows = [{"id": f"t{s}", "gpu": gpu.id, "op": "attention", "dtype": "bf16",
             "backend": "flash-attention-triton", "batch": "8", "heads": "32",
             "kv_heads": "32", "seq_len": str(s), "head_dim": "128", "causal": "1",
             "pass": "fwd", "metric": "time_ms",
             "value": str(1e3 * 2 * 8 * s * s * 32 * 128 / (0.3 * gpu.peak("bf16")))}
            for s in (2048, 4096, 8192, 16384)]
    profile, paths, _ = fit_kernel_profile(rows, gpu)
    fitted = profile.attention["flash-attention-triton"]
    assert fitted.relative_to is None
    assert ("attention", "flash-attention-triton", "fwd_fraction") in paths
    assert fitted.fwd_fraction != pytest.approx(
        0.6 * profile.attention["flash-attention-2"].fwd_fraction, rel=0.02)


def test_a_kernel_fit_ignores_the_whole_run_scale_in_force_on_the_gpu(tmp_path):
    """Kernel timings are fitted by the profile alone: the same rows give the same profile
    whatever kernel_fraction_scale a training calibration puts on the GPU."""
    from flopcast.calibration.kernels import fit_kernel_profile
    from flopcast.catalog import load_gpu

    gpu = load_gpu("a100-80gb")
    rows = [{"id": f"g{m}", "gpu": gpu.id, "op": "gemm", "dtype": "bf16", "m": str(m),
             "n": "8192", "k": "8192", "metric": "time_ms",
             "value": str(1e3 * 2 * m * 8192 * 8192 / (0.8 * gpu.peak("bf16")))}
            for m in (1024, 2048, 4096, 8192, 16384)]
    scaled = gpu.model_copy(update={"efficiency": gpu.efficiency.updated(
        kernel_fraction_scale=0.9)})
    plain, _, _ = fit_kernel_profile(rows, gpu)
    other, _, _ = fit_kernel_profile(rows, scaled)
    assert other.gemm_fraction["bf16"] == pytest.approx(plain.gemm_fraction["bf16"], rel=1e-6)


def test_a_relative_backend_fitted_one_way_writes_a_file_that_loads(tmp_path):
    """Triton rows of the forward pass only: the written calibration gives the backend all
    four of its own values (the backward keeps what its ratio gave) and loads."""
    import csv

    import yaml

    from flopcast.calibration.kernels import calibrate_kernels
    from flopcast.catalog import load_gpu
    from flopcast.catalog.loader import _cached_families

    gpu = load_gpu("a100-80gb")
    path = tmp_path / "triton.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "source", "gpu", "op", "dtype", "backend", "batch", "heads",
                    "kv_heads", "seq_len", "head_dim", "causal", "pass", "metric", "value"])
        for s in (2048, 4096, 8192, 16384):
            ms = 1e3 * 2 * 8 * s * s * 32 * 128 / (0.3 * gpu.peak("bf16"))
            w.writerow([f"T:{s}", "synthetic", gpu.id, "attention", "bf16",
                        "flash-attention-triton", 8, 32, 32, s, 128, 1, "fwd", "time_ms", ms])
    out = tmp_path / "k.yaml"
    doc = calibrate_kernels(path, out)
    triton = doc["families"]["ampere"]["profile"]["attention"]["flash-attention-triton"]
    assert triton["relative_to"] is None and "bwd_fraction" in triton
    assert doc["parameters_fitted"] == 2
    _cached_families.cache_clear()
    loaded = load_gpu("a100-80gb", str(out)).kernels.attention["flash-attention-triton"]
    assert loaded.relative_to is None
    assert loaded.fwd_fraction == pytest.approx(triton["fwd_fraction"], rel=1e-5)
    assert yaml.safe_load(out.read_text())["families"]["ampere"]["fit"]["parameters"] == 2


def test_hopper_engine_attention_fit_is_what_calibrate_writes_and_merges_into_hopper(tmp_path):
    """calibration/kernels-hopper-engines.yaml is exactly `flopcast calibrate` on the engines'
    own H100 attention timings it names (FlashAttention-3 of vLLM and SGLang, TensorRT-LLM's
    context FMHA, vLLM's FA3 decode); Hopper GPUs take those backends from it and everything
    kernels.csv fits (GEMMs, cuDNN, FA2, the fixed cost) from kernels.yaml, unchanged."""
    import yaml
    from typer.testing import CliRunner

    from flopcast.catalog.loader import (
        EXTRA_KERNEL_CALIBRATION_FILES,
        KERNEL_CALIBRATION_FILE,
        load_gpu,
    )
    from flopcast.cli import app

    shipped = next(p for p in EXTRA_KERNEL_CALIBRATION_FILES
                   if p.name == "kernels-hopper-engines.yaml")
    out = tmp_path / "hop.yaml"
    data = shipped.parent / "published" / "h100-engine-attention.csv"
    result = CliRunner().invoke(app, ["calibrate", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    fresh = yaml.safe_load(out.read_text())["families"]["hopper"]["profile"]
    kept = yaml.safe_load(shipped.read_text())["families"]["hopper"]["profile"]
    _assert_same_values(fresh, kept)
    assert "launch_s" not in kept  # decode rows alone do not pin the fixed cost
    main = yaml.safe_load(KERNEL_CALIBRATION_FILE.read_text())["families"]["hopper"]["profile"]
    for gpu_id in ("h100-sxm", "h200"):
        prof = load_gpu(gpu_id).kernels
        fa3 = prof.attention["flash-attention-3"]
        assert fa3.fwd_fraction == pytest.approx(kept["attention"]["flash-attention-3"][
            "fwd_fraction"])
        assert prof.decode_attention["flash-attention-3"].stream_fraction == pytest.approx(
            kept["decode_attention"]["flash-attention-3"]["stream_fraction"])
        assert prof.launch_s == pytest.approx(main["launch_s"])
        assert prof.attention["cudnn"].fwd_fraction == pytest.approx(
            main["attention"]["cudnn"]["fwd_fraction"])


def test_sglang_prefills_with_flashinfer_before_0_4_6_and_fa3_after_on_hopper():
    """SGLang 0.4.1 (the release its entry describes) prefills with FlashInfer 0.1.6, whose
    kernels are FlashAttention-2-style on every family; 0.4.6 picks FA3 on Hopper."""
    from flopcast.catalog.loader import load_engine
    from flopcast.physics.kernels import attention_time

    sglang = load_engine("sglang")
    assert sglang.attention_backend == "flashinfer"
    assert sglang.at_version("0.4.6").attention_backend == "flash-attention-3"
    assert sglang.at_version("0.4.5").attention_backend == "flashinfer"
    for gpu_id in ("h100-sxm", "a100-80gb", "l40s"):
        gpu = load_gpu(gpu_id)
        args = (8 * 4096, 2048.5, 32, 128, 128, gpu)
        assert float(attention_time(*args, backend="flashinfer")) == pytest.approx(
            float(attention_time(*args, backend="flash-attention-2")))
    h100 = load_gpu("h100-sxm")
    args = (8 * 4096, 2048.5, 32, 128, 128, h100)
    assert float(attention_time(*args, backend="flash-attention-3")) < float(
        attention_time(*args, backend="flashinfer"))


def test_a_calibration_kernel_file_lays_over_the_shipped_fits():
    """--calibration with a kernel fit replaces what that file fits and keeps the rest of the
    shipped fits (here: kernels.yaml does not fit FlashAttention-3, so the engine fit stays)."""
    from flopcast.catalog.loader import KERNEL_CALIBRATION_FILE, load_gpu

    shipped = load_gpu("h100-sxm").kernels
    own = load_gpu("h100-sxm", calibration=str(KERNEL_CALIBRATION_FILE)).kernels
    assert own.attention["flash-attention-3"] == shipped.attention["flash-attention-3"]
    assert own.decode_attention["flash-attention-3"] == shipped.decode_attention[
        "flash-attention-3"]
    assert own.launch_s == shipped.launch_s
