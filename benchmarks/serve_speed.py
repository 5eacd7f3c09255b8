"""Serving simulator speed and memory.

Run: python benchmarks/serve_speed.py [--quick]

1. The whole `flopcast serve` process for 10,000 ShareGPT requests on one Llama-3.1-8B H100
   replica at 20 req/s: wall time and peak RSS (of the child process).
2. Simulated requests per second net of start-up (in-process, best of 3), and how it scales
   to 1 M requests (one replica at 20 req/s) and to 64 replicas (at 64 × 20 req/s).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from flopcast.catalog import load_gpu, load_model
from flopcast.catalog.loader import load_engine
from flopcast.specs import System
from flopcast.specs.inference import InferenceJob
from flopcast.workloads.serving.run import deployment_for, serve
from flopcast.workloads.serving.workload import ArrivalSpec, LengthSpec, make_requests

CLI = ["flopcast", "serve", "-m", "llama-3.1-8b", "--gpu", "h100-sxm", "--request-rate", "20",
       "--dataset", "sharegpt", "--num-requests", "10000", "--json"]


def whole_process() -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `flopcast serve` run in a child process."""
    t0 = time.perf_counter()
    subprocess.run(CLI, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, rss_kb / 1024


def simulated_per_s(n: int, gpus: int, rate: float, repeats: int = 3) -> tuple[float, float]:
    """(best simulation seconds, simulated requests/s) for n ShareGPT requests."""
    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                       system=System(gpu=load_gpu("h100-sxm"), num_gpus=gpus))
    dep = deployment_for(job, router="least-outstanding-tokens")
    reqs = make_requests(LengthSpec(kind="dataset", dataset="sharegpt"),
                         ArrivalSpec(kind="poisson", rate=rate), n, seed=0)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        serve(dep, reqs)
        best = min(best, time.perf_counter() - t0)
    return best, n / best


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"cores: {os.cpu_count()}")
    wall, rss = whole_process()
    print(f"flopcast serve, 10,000 ShareGPT requests, 1x H100, 20 req/s: {wall:.2f} s wall, "
          f"peak RSS {rss:.0f} MB")
    cases = [(10_000, 1, 20.0), (100_000, 1, 20.0), (10_000 * 64, 64, 64 * 20.0)]
    if not quick:
        cases.insert(2, (1_000_000, 1, 20.0))
    for n, gpus, rate in cases:
        seconds, per_s = simulated_per_s(n, gpus, rate, repeats=1 if n > 10_000 else 3)
        print(f"{n:>9,} requests, {gpus:>2} replica(s) at {rate:g} req/s: {seconds:7.2f} s, "
              f"{per_s:,.0f} simulated requests/s")


if __name__ == "__main__":
    main()
