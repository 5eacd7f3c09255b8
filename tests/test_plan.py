import json
import os
import subprocess
import sys

import numpy as np
import pytest

from flopcast.catalog import load_gpu, load_model
from flopcast.errors import FlopcastError
from flopcast.specs import Parallelism, System, TrainingJob, precision
from flopcast.specs.plan import PlanRequest
from flopcast.workloads.training import estimate_training
from flopcast.workloads.training.plan import plan_training
from flopcast.workloads.training.search import config_at, pareto_front, search


def request(**kw):
    base = dict(model=load_model("llama-3.1-8b"), gpus=["h100-sxm"], gpu_counts=[16],
                seq_len=4096, global_batch=64)
    return PlanRequest(**{**base, **kw})


def test_search_agrees_with_train_for_every_top_configuration():
    r = request()
    result = search(r.model, System(gpu=load_gpu("h100-sxm"), num_gpus=16), r.precision,
                    r.seq_len, r.batch)
    assert result.evaluated > 1000
    assert "does not fit in GPU memory" in result.rejected or result.feasible.all()
    for i in result.order()[:10]:
        job = TrainingJob(model=r.model, system=System(gpu=load_gpu("h100-sxm"), num_gpus=16),
                          parallelism=Parallelism(**config_at(result, int(i), r.batch)),
                          seq_len=r.seq_len)
        est = estimate_training(job)
        assert est.step_time_s == pytest.approx(result.results["step_time_s"][i], rel=1e-9)
        assert est.fits


def test_best_is_best_and_rejections_are_counted():
    r = request()
    result = search(r.model, System(gpu=load_gpu("h100-sxm"), num_gpus=16), r.precision,
                    r.seq_len, r.batch)
    order = result.order()
    steps = result.results["step_time_s"]
    assert steps[order[0]] <= steps[result.feasible].min() * (1 + 1e-9)
    assert all(count > 0 for count in result.rejected.values())


def test_plan_answer_shape_matches_train_json():
    answer = plan_training(request(tokens=1e11))
    assert set(answer) >= {"evaluated", "rejected", "top", "pareto", "clusters"}
    top = answer["top"]
    assert len(top) == 5
    assert [t["step_time_s"] for t in top] == sorted(t["step_time_s"] for t in top)
    for key in ("tokens_per_s", "tokens_per_s_per_gpu", "step_time_s", "mfu", "memory", "fits"):
        assert key in top[0]


def test_pareto_front_is_not_dominated():
    x = np.array([1.0, 2.0, 3.0, 2.5, 0.5])
    y = np.array([5.0, 4.0, 1.0, 0.5, 6.0])
    front = set(pareto_front(x, y).tolist())
    assert front == {0, 1, 2, 4}
    answer = plan_training(request())
    pts = [(p["tokens_per_s"], p["memory_headroom_gib"]) for p in answer["pareto"]]
    for a in pts:
        assert not any(b[0] >= a[0] and b[1] >= a[1] and b != a for b in pts)


def test_cluster_comparison_and_deadline():
    answer = plan_training(request(gpu_counts=[8, 16, 32], gpus=["h100-sxm", "a100-80gb"],
                                   tokens=1e11, deadline_days=10, objective="cost"))
    assert len(answer["clusters"]) == 6
    assert answer["pareto"] and all("usd_per_million_tokens" in p for p in answer["pareto"])
    best = answer["cheapest_within_deadline"]
    assert best is None or best["time_to_train_days"] <= 10


def test_pinned_axes_restrict_the_search():
    answer = plan_training(request(options={"tp": [2], "pp": [1]}))
    assert {(t["config"]["tp"], t["config"]["pp"]) for t in answer["top"]} == {(2, 1)}


def test_model_that_fits_nowhere_is_refused():
    with pytest.raises(FlopcastError, match="no configuration of llama-3.1-405b fits"):
        plan_training(request(model=load_model("llama-3.1-405b"), gpu_counts=[8],
                              options={"offload": [0]}))


def test_unknown_options_axis_is_refused():
    with pytest.raises(ValueError, match="unknown axes"):
        request(options={"tpx": [1]})


def assert_ray_equals_local(plan, arg):
    """``plan(arg, use_ray=True)`` gives exactly ``plan(arg)``."""
    ray = pytest.importorskip("ray", reason="ray not installed (pip install 'flopcast[ray]')")
    local = plan(arg)
    try:
        distributed = plan(arg, use_ray=True)
    finally:
        ray.shutdown()
    assert json.dumps(distributed, sort_keys=True) == json.dumps(local, sort_keys=True)


def test_ray_run_equals_local_run():
    assert_ray_equals_local(plan_training, request(gpu_counts=[8, 16]))


def test_ray_sweep_equals_local_sweep():
    from flopcast.workloads.training.distributed import plan_sweep

    reqs = [request(model=load_model(m), seq_len=s, gpu_counts=[8, 16])
            for m in ("llama-3.1-8b", "mistral-7b") for s in (2048, 4096)]
    assert_ray_equals_local(plan_sweep, reqs)


def test_plan_cli_sweep_json():
    p = run("plan", "train", "--model", "llama-3.1-8b,mistral-7b", "--seq-lens", "2048,4096",
            "--gpus", "8", "--global-batch", "64", "--top", "1", "--json")
    assert p.returncode == 0, p.stderr
    sweep = json.loads(p.stdout)["sweep"]
    assert [(s["model"], s["seq_len"]) for s in sweep] == [
        ("llama-3.1-8b", 2048), ("llama-3.1-8b", 4096), ("mistral-7b", 2048), ("mistral-7b", 4096)]


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (flopcast[plot])")
    from flopcast.report.plots import plot_plan

    path = plot_plan(plan_training(request()), tmp_path / "plan.png")
    assert path.stat().st_size > 10_000


def run(*args):
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "flopcast.cli", *args], capture_output=True,
                          text=True, env=env)


def test_plan_cli_json():
    p = run("plan", "train", "--model", "llama-3.1-8b", "--gpus", "8..16", "--seq-len", "4096",
            "--global-batch", "64", "--top", "3", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["evaluated"] > 0 and len(d["top"]) == 3 and len(d["clusters"]) == 2


@pytest.mark.parametrize("args, fragment", [
    # (405B on 8 H100 fits since the planner offloads to NVMe as ZeRO-Infinity does.)
    (["--model", "llama-3.1-405b", "--gpu", "rtx-4090", "--gpus", "1", "--global-batch", "8"],
     "fits"),
    (["--model", "llama-3.1-8b", "--gpus", "0"], "at least 1"),
    (["--model", "llama-3.1-8b", "--gpu", "h1000"], "unknown id 'h1000'"),
    (["--model", "llama-3.1-8b", "--gpus", "lots"], "gpus: expected"),
])
def test_plan_bad_requests_one_line_exit_2(args, fragment):
    p = run("plan", "train", *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in p.stderr


def test_planner_beats_or_matches_published_megatron_configs(training_csv):
    from flopcast.validate.training import job_from_row, read_rows
    from flopcast.workloads.training.plan import Cluster, search_cluster

    rows = [r for r in read_rows(training_csv)
            if r["id"].split(":")[0] in ("MEGATRON_README_2021", "MEGATRON_README_2024")]
    assert rows
    for row in rows:
        job = job_from_row(row)
        p = job.parallelism
        published = estimate_training(job).step_time_s
        req = PlanRequest(model=job.model, gpus=[job.system.gpu.id],
                          gpu_counts=[job.system.num_gpus], seq_len=job.seq_len,
                          global_batch=p.global_batch, precision=job.precision)
        result = search_cluster(req, Cluster(job.system.gpu.id, job.system.num_gpus))
        best = result.results["step_time_s"][result.order()[0]]
        assert best <= published * (1 + 1e-9), row["id"]


def test_precision_is_validated():
    with pytest.raises(FlopcastError):
        precision("fp7")


@pytest.mark.parametrize("backend", ["eager", "flash-attention-2"])
def test_plan_prices_the_attention_kernel_asked_for(backend):
    """--attention-backend reaches every searched configuration: the best one reports the
    kernel, agrees with `train` given the same kernel, and is slower than with the
    framework's calibrated cuDNN kernel; eager attention also keeps the scores."""
    default = plan_training(request())["top"][0]
    asked = plan_training(request(attention_backend=backend))["top"][0]
    assert asked["config"]["attention_backend"] == backend
    assert asked["step_time_s"] > default["step_time_s"]
    c = asked["config"]
    job = TrainingJob(model=load_model("llama-3.1-8b"),
                      system=System(gpu=load_gpu("h100-sxm"), num_gpus=16),
                      parallelism=Parallelism(**{k: c[k] for k in (
                          "tp", "pp", "cp", "vp", "micro_batch", "zero_stage", "recompute",
                          "sp", "schedule")}, global_batch=64),
                      seq_len=4096, attention_backend=backend)
    assert estimate_training(job).step_time_s == pytest.approx(asked["step_time_s"], rel=1e-9)


def test_plan_refuses_an_attention_kernel_a_gpu_lacks():
    with pytest.raises(FlopcastError, match="attention_backend 'nope'"):
        plan_training(request(attention_backend="nope"))


def test_eager_attention_plans_no_context_parallelism_where_the_framework_cannot():
    """Megatron-Core runs context parallelism only with TE's fused attention: an eager plan
    searches cp = 1 only, and a pinned cp > 1 is refused; DeepSpeed-Ulysses may keep it."""
    answer = plan_training(request(attention_backend="eager", seq_len=16384, global_batch=16))
    assert all(t["config"]["cp"] == 1 for t in answer["top"])
    with pytest.raises(FlopcastError, match="cp 2"):
        plan_training(request(attention_backend="eager", options={"cp": [2]}))
    job = dict(model=load_model("llama-3.1-8b"), system=System(gpu=load_gpu("h100-sxm"),
               num_gpus=8), parallelism=Parallelism(cp=2, global_batch=8), seq_len=8192,
               attention_backend="eager")
    with pytest.raises(ValueError, match="fused attention"):
        TrainingJob(**job)
    assert TrainingJob(**job, framework="deepspeed").parallelism.cp == 2
