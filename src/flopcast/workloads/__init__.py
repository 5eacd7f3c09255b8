"""Workloads built on the shared physics: training (estimate), later inference and serving."""
