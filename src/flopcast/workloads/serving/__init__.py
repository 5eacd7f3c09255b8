"""Serving simulation: requests arrive, a scheduler batches them on replicas, every iteration
is priced by the one layer-cost model (physics/layer.py), and latency percentiles come out.

Package by concept, after Vidur (Agrawal et al. 2024): entities, workload (arrivals and
lengths), cost (per-iteration price), schedulers (one file each + a registry), simulator,
metrics, capacity search.
"""
