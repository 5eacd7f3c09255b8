"""plan_training(request): search each cluster, rank, report top configurations and fronts.

The per-cluster work is :func:`search` (one array evaluation of every valid configuration);
the top configurations are re-estimated with :func:`estimate_training` so each is the very
object ``flopcast train --json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flopcast.catalog import load_gpu
from flopcast.catalog.loader import DEFAULT_FRAMEWORK
from flopcast.errors import FlopcastError
from flopcast.specs import Parallelism, System, TrainingJob
from flopcast.specs.plan import PlanRequest
from flopcast.specs.training import (
    check_attention_backend,
    check_context_parallel_attention,
    fused_attention_allows_cp,
)
from flopcast.workloads.training.estimate import estimate_training
from flopcast.workloads.training.search import SearchResult, config_at, pareto_front, search

GIB = 2**30


@dataclass(frozen=True)
class Cluster:
    gpu: str
    num_gpus: int


def _framework_id(request: PlanRequest) -> str:
    """The framework whose calibrated whole-run values the plan's GPUs carry."""
    return request.framework.id if request.framework else DEFAULT_FRAMEWORK


def clusters(request: PlanRequest) -> list[Cluster]:
    return [Cluster(g, n) for g in request.gpus for n in request.gpu_counts]


def search_cluster(request: PlanRequest, cluster: Cluster, calibration: str | None = None,
                   progress=None) -> SearchResult:
    """Evaluate every configuration of one cluster (the unit a Ray task runs)."""
    system = System(gpu=load_gpu(cluster.gpu, calibration, _framework_id(request)),
                    num_gpus=cluster.num_gpus)
    framework = request.priced_framework
    options = request.options
    if framework is not None and not fused_attention_allows_cp(framework):
        options = {**options, "cp": [1]}  # its context parallelism needs a fused kernel
    return search(request.model, system, request.precision, request.seq_len, request.batch,
                  options, progress=progress, framework=framework,
                  step_keywords=request.step_keywords)


def check_plan_attention(request: PlanRequest, calibration: str | None = None) -> None:
    """The attention kernel asked for exists on every candidate GPU (with ``calibration``'s
    kernels), and eager attention is not pinned to context parallelism a framework cannot
    run with it (whether asked for or the framework's own); one line (FlopcastError)
    otherwise."""
    try:
        if request.attention_backend:
            for gpu in request.gpus:
                check_attention_backend(request.attention_backend,
                                        load_gpu(gpu, calibration, _framework_id(request)))
        if request.priced_framework is not None:
            check_context_parallel_attention(request.priced_framework,
                                             max(request.options.get("cp") or [1]))
    except ValueError as e:
        raise FlopcastError(str(e)) from None


def objective_per_token(objective: str, gpu, num_gpus: int, seconds_per_token,
                        board_power_w=None):
    """Seconds, $ or joules per trained token (lower is better); energy needs the
    configuration's average board power (training_step's ``board_power_w``)."""
    if objective == "time":
        return seconds_per_token
    if objective == "cost":
        return seconds_per_token * num_gpus * gpu.price_per_gpu_hour_usd / 3600
    return seconds_per_token * num_gpus * board_power_w


def _score(request: PlanRequest, cluster: Cluster, step_time_s, board_power_w,
           calibration=None):
    """Objective per configuration of one cluster."""
    return objective_per_token(request.objective, load_gpu(cluster.gpu, calibration),
                               cluster.num_gpus, step_time_s / (request.batch * request.seq_len),
                               board_power_w)


def _estimate(request: PlanRequest, cluster: Cluster, result: SearchResult, i: int,
              calibration=None) -> dict:
    job = TrainingJob(
        model=request.model,
        system=System(gpu=load_gpu(cluster.gpu, calibration, _framework_id(request)),
                      num_gpus=cluster.num_gpus),
        parallelism=Parallelism(**config_at(result, int(i), request.batch)),
        seq_len=request.seq_len, precision=request.precision, tokens=request.tokens,
        **({"framework": request.framework} if request.framework else {}),
        **request.step_keywords,
    )
    return estimate_training(job).to_dict()


def summarize_cluster(request: PlanRequest, cluster: Cluster, result: SearchResult,
                      calibration=None) -> dict:
    """Best configurations, rejections and the tokens/s-vs-headroom front of one cluster."""
    order = result.order()
    out = {"gpu": cluster.gpu, "num_gpus": cluster.num_gpus, "evaluated": result.evaluated,
           "rejected": dict(result.rejected), "feasible": int(result.feasible.sum()),
           "offload_searched": result.offload_searched}
    if len(order) == 0:
        out.update(top=[], pareto=[], best=None)
        return out
    score = _score(request, cluster, result.results["step_time_s"][order],
                   result.results["board_power_w"][order], calibration)
    order = order[np.argsort(score, kind="stable")]
    out["top"] = [_estimate(request, cluster, result, i, calibration)
                  for i in order[:request.top]]
    out["best"] = out["top"][0]
    feasible = np.flatnonzero(result.feasible)
    tokens_per_s = request.batch * request.seq_len / result.results["step_time_s"][feasible]
    headroom = (result.results["memory_capacity_bytes"][feasible]
                - result.results["memory_total_bytes"][feasible])
    front = feasible[pareto_front(tokens_per_s, headroom)]
    out["pareto"] = [
        {"tokens_per_s": float(request.batch * request.seq_len
                               / result.results["step_time_s"][i]),
         "memory_headroom_gib": float((result.results["memory_capacity_bytes"][i]
                                       - result.results["memory_total_bytes"][i]) / GIB),
         "config": config_at(result, int(i), request.batch)}
        for i in front
    ]
    return out


def plan_training(request: PlanRequest, calibration: str | None = None, use_ray: bool = False,
                  progress=None) -> dict:
    """Answer a planning request.

    Returns ``{"evaluated", "rejected", "top", "pareto", "clusters"}``: ``top`` holds the best
    ``request.top`` configurations over all clusters by the objective (each the object
    ``flopcast train --json`` prints); ``pareto`` is the tokens/s-vs-memory-headroom front for
    one cluster, or the time-vs-cost front over clusters when there are several.
    """
    check_plan_attention(request, calibration)
    todo = clusters(request)
    if use_ray:
        from flopcast.workloads.training.distributed import map_clusters

        summaries = map_clusters(request, todo, calibration)
    else:
        summaries = []
        for k, cluster in enumerate(todo):
            hook = None if progress is None else (
                lambda done, total, k=k: progress(k, len(todo), done, total))
            result = search_cluster(request, cluster, calibration, hook)
            summaries.append(summarize_cluster(request, cluster, result, calibration))
    return combine(request, summaries)


def combine(request: PlanRequest, summaries: list[dict]) -> dict:
    """Merge per-cluster summaries into the plan answer (same for local and Ray runs)."""
    evaluated = sum(s["evaluated"] for s in summaries)
    rejected: dict[str, int] = {}
    for s in summaries:
        for reason, count in s["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + count
    feasible = [s for s in summaries if s["best"] is not None]
    if not feasible:
        where = ", ".join(f"{s['num_gpus']}x {s['gpu']}" for s in summaries)
        raise FlopcastError(
            f"no configuration of {request.model.name} fits on {where} "
            f"(evaluated {evaluated:,}; rejected: "
            + "; ".join(f"{k}: {v:,}" for k, v in rejected.items()) + ")"
        )
    rows = []
    for s in feasible:
        for est in s["top"]:
            rows.append(est)
    rows.sort(key=lambda e: _objective_value(request, e))
    cluster_rows = [_cluster_row(request, s) for s in summaries]
    if request.deadline_days is not None and request.tokens:
        for c in cluster_rows:
            c["meets_deadline"] = (c["time_to_train_days"] is not None
                                   and c["time_to_train_days"] <= request.deadline_days)
    answer = {
        "evaluated": evaluated,
        "rejected": rejected,
        "top": rows[:request.top],
        "clusters": cluster_rows,
    }
    if len(summaries) == 1:
        answer["pareto"] = summaries[0]["pareto"]
    else:
        answer["pareto"] = _cluster_front(cluster_rows)
    if request.deadline_days is not None and request.tokens:
        ok = [c for c in cluster_rows if c.get("meets_deadline")]
        answer["cheapest_within_deadline"] = (min(ok, key=lambda c: c["cost_usd"])
                                              if ok else None)
    return answer


def _objective_value(request: PlanRequest, est: dict) -> float:
    return objective_per_token(request.objective, load_gpu(est["config"]["gpu"]),
                               est["num_gpus"], 1.0 / est["tokens_per_s"], est["board_power_w"])


def _cluster_row(request: PlanRequest, s: dict) -> dict:
    best = s["best"]
    row = {"gpu": s["gpu"], "num_gpus": s["num_gpus"], "evaluated": s["evaluated"],
           "feasible": s["feasible"], "fits": best is not None,
           "offload_searched": s.get("offload_searched", False)}
    if best is None:
        row.update(tokens_per_s=None, time_to_train_days=None, cost_usd=None, energy_mwh=None,
                   config=None, usd_per_million_tokens=None)
        return row
    gpu = load_gpu(s["gpu"])
    usd_per_s = s["num_gpus"] * gpu.price_per_gpu_hour_usd / 3600
    row.update(
        tokens_per_s=best["tokens_per_s"],
        usd_per_million_tokens=1e6 / best["tokens_per_s"] * usd_per_s,
        time_to_train_days=best["time_to_train_days"], cost_usd=best["cost_usd"],
        energy_mwh=best["energy_mwh"], mfu=best["mfu"], config=best["config"],
    )
    return row


def _cluster_front(rows: list[dict]) -> list[dict]:
    """Clusters not beaten on both time (per token) and cost (per token)."""
    ok = [r for r in rows if r["fits"]]
    if not ok:
        return []
    speed = np.array([r["tokens_per_s"] for r in ok])
    cheap = np.array([-r["usd_per_million_tokens"] for r in ok])
    return [{"gpu": ok[i]["gpu"], "num_gpus": ok[i]["num_gpus"],
             "tokens_per_s": ok[i]["tokens_per_s"],
             "usd_per_million_tokens": ok[i]["usd_per_million_tokens"],
             "time_to_train_days": ok[i]["time_to_train_days"], "cost_usd": ok[i]["cost_usd"]}
            for i in pareto_front(speed, cheap)]


__all__ = ["Cluster", "clusters", "combine", "objective_per_token", "plan_training",
           "search_cluster", "summarize_cluster"]
