"""Planner speed: valid configurations evaluated per second, and the wall time of big searches.

Run: python benchmarks/plan_speed.py
Each search is repeated and the best wall time is reported (the first run warms caches).
"""

from __future__ import annotations

import os
import time

from flopcast.catalog import load_gpu, load_model
from flopcast.specs import System, precision
from flopcast.specs.plan import PlanRequest
from flopcast.workloads.training.plan import plan_training
from flopcast.workloads.training.search import search

CASES = [
    ("llama-3.1-405b", "h100-sxm", 16384, 8192, 2048),
    ("llama-3.1-70b", "h100-sxm", 1024, 8192, 512),
    ("deepseek-v3", "h100-sxm", 2048, 4096, 4096),
    ("gpt-3-175b", "a100-80gb", 1024, 2048, 1536),
]


def best_time(fn, repeats: int = 5):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    print(f"cores: {os.cpu_count()}")
    for model_id, gpu, n, seq, batch in CASES:
        model = load_model(model_id)
        system = System(gpu=load_gpu(gpu), num_gpus=n)
        args = (model, system, precision("bf16"), seq, batch)
        dt, result = best_time(lambda args=args: search(*args))
        print(f"{model_id} on {n:,} {gpu}, seq {seq}, batch {batch}: "
              f"{result.evaluated:,} valid configurations in {dt * 1e3:.0f} ms = "
              f"{result.evaluated / dt:,.0f} configurations/s")
    request = PlanRequest(model=load_model("llama-3.1-405b"), gpus=["h100-sxm"],
                          gpu_counts=[16384], seq_len=8192, global_batch=2048, tokens=15e12)
    dt, answer = best_time(lambda: plan_training(request), repeats=3)
    print(f"flopcast plan train (405B x 16,384 H100, top 5 with full estimates): "
          f"{answer['evaluated']:,} configurations, {dt:.2f} s wall")


if __name__ == "__main__":
    main()
