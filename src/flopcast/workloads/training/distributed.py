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


def map_clusters(request, todo, calibration=None) -> list[dict]:
    """Summaries of every cluster in ``todo``, computed by Ray tasks (local Ray if none runs)."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)

    @ray.remote
    def one(req_json: str, gpu: str, num_gpus: int, calibration):
        from flopcast.specs.plan import PlanRequest
        from flopcast.workloads.training.plan import Cluster, search_cluster, summarize_cluster

        req = PlanRequest.model_validate_json(req_json)
        cluster = Cluster(gpu, num_gpus)
        return summarize_cluster(req, cluster, search_cluster(req, cluster, calibration),
                                 calibration)

    payload = request.model_dump_json()
    futures = [one.remote(payload, c.gpu, c.num_gpus, calibration) for c in todo]
    return ray.get(futures)


def plan_sweep(requests, calibration=None, use_ray: bool = False) -> list[dict]:
    """Plan many requests (models × clusters × sequence lengths); Ray spreads the clusters."""
    from flopcast.workloads.training.plan import plan_training

    return [plan_training(r, calibration, use_ray=use_ray) for r in requests]
