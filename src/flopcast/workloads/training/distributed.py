"""Spread a planning sweep over a Ray cluster (optional extra: pip install 'flopcast[ray]').

Each cluster's search runs as one Ray task calling the same functions as the local path, so
the answer is identical; only where the arithmetic happens changes.
"""

from __future__ import annotations

from flopcast.errors import FlopcastError


def _ray():
    try:
        import ray
    except ImportError:
        raise FlopcastError("--ray needs Ray: pip install 'flopcast[ray]'") from None
    return ray


def _ray_task(ray):
    @ray.remote
    def one(req_json: str, gpu: str, num_gpus: int, calibration):
        from flopcast.specs.plan import PlanRequest
        from flopcast.workloads.training.plan import Cluster, search_cluster, summarize_cluster

        req = PlanRequest.model_validate_json(req_json)
        cluster = Cluster(gpu, num_gpus)
        return summarize_cluster(req, cluster, search_cluster(req, cluster, calibration),
                                 calibration)

    return one


def _init(ray):
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)


def map_clusters(request, todo, calibration=None) -> list[dict]:
    """Summaries of every cluster in ``todo``, computed by Ray tasks (local Ray if none runs)."""
    return _map(request_clusters=[(request, todo)], calibration=calibration)[0]


def _map(request_clusters, calibration=None) -> list[list[dict]]:
    """Submit every (request, cluster) pair at once; gather per request, in order."""
    ray = _ray()
    _init(ray)
    one = _ray_task(ray)
    futures = [[one.remote(req.model_dump_json(), c.gpu, c.num_gpus, calibration) for c in todo]
               for req, todo in request_clusters]
    return [ray.get(f) for f in futures]


def plan_sweep(requests, calibration=None, use_ray: bool = False) -> list[dict]:
    """Plan many requests (models × clusters × sequence lengths). With ``use_ray`` every
    (request, cluster) search is one Ray task, all submitted before any is awaited; the
    answers are identical to the local run."""
    from flopcast.workloads.training.plan import clusters, combine, plan_training

    if not use_ray:
        return [plan_training(r, calibration) for r in requests]
    summaries = _map([(r, clusters(r)) for r in requests], calibration)
    return [combine(r, s) for r, s in zip(requests, summaries, strict=True)]
