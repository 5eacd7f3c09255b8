"""Reasoning workloads: accuracy of repeated sampling from per-problem sample counts."""
