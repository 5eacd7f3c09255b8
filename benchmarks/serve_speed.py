"""Serving simulator speed and memory (issue 8's bar).

Run: python benchmarks/serve_speed.py [--quick] [--repeats N]

1. The whole `flopcast serve` process for 10,000 ShareGPT requests on one Llama-3.1-8B H100
   replica at 20 req/s: wall and CPU seconds and peak RSS of the child process (best of
   ``--repeats``), and the same process for 10 requests (start-up: imports, catalog, tables).
   Simulated requests per second net of start-up = 9,990 / (10,000-request run − 10-request
   run).
2. In-process: ``serve()`` (simulation + metrics) for 10,000 requests (best of 3), and how it
   scales to 1 M requests on one replica at 20 req/s (``--quick``: 100,000) and to 64 replicas
   at 64 × 20 req/s with 10,000 requests each (least-outstanding-tokens routing).

Wall time depends on what else the machine runs; CPU time less so: both are printed.
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

# one draw: the 10-request run measures start-up, not nine tiny simulations (serving.draws)
CLI = ["flopcast", "serve", "-m", "llama-3.1-8b", "--gpu", "h100-sxm", "--request-rate", "20",
       "--dataset", "sharegpt", "--draws", "1", "--json", "--num-requests"]


def whole_process(n: int, repeats: int) -> tuple[float, float, float]:
    """Best (wall s, CPU s, peak RSS MB) of ``repeats`` `flopcast serve` child processes."""
    best = (float("inf"), float("inf"), float("inf"))
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen([*CLI, str(n)], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if status:
            raise SystemExit(f"flopcast serve failed (status {status})")
        cpu = usage.ru_utime + usage.ru_stime
        best = (min(best[0], wall), min(best[1], cpu), min(best[2], usage.ru_maxrss / 1024))
    return best


def simulated(n: int, gpus: int, rate: float, repeats: int = 1) -> tuple[float, float]:
    """(best wall s, best CPU s) of ``serve()`` on n ShareGPT requests."""
    job = InferenceJob(model=load_model("llama-3.1-8b"), engine=load_engine("vllm"),
                       system=System(gpu=load_gpu("h100-sxm"), num_gpus=gpus))
    dep = deployment_for(job, router="least-outstanding-tokens")
    reqs = make_requests(LengthSpec(kind="dataset", dataset="sharegpt"),
                         ArrivalSpec(kind="poisson", rate=rate), n, seed=0)
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        serve(dep, reqs)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    quick = "--quick" in sys.argv
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 3
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    wall, cpu, rss = whole_process(10_000, repeats)
    wall0, cpu0, rss0 = whole_process(10, repeats)
    print(f"flopcast serve, 10,000 ShareGPT requests, 1x H100, 20 req/s: {wall:.2f} s wall "
          f"({cpu:.2f} s CPU), peak RSS {rss:.0f} MB")
    print(f"  the same for 10 requests (start-up): {wall0:.2f} s wall ({cpu0:.2f} s CPU), "
          f"peak RSS {rss0:.0f} MB")
    print(f"  net of start-up: {9_990 / (wall - wall0):,.0f} simulated requests/s wall "
          f"({9_990 / (cpu - cpu0):,.0f} per CPU second)")
    cases = [(10_000, 1, 20.0), (100_000 if quick else 1_000_000, 1, 20.0),
             (10_000 * 64, 64, 64 * 20.0)]
    for n, gpus, rate in cases:
        w, c = simulated(n, gpus, rate, repeats=3 if n <= 10_000 else 1)
        print(f"serve() {n:>9,} requests, {gpus:>2} replica(s) at {rate:g} req/s: {w:7.2f} s "
              f"wall, {n / w:,.0f} simulated requests/s ({n / c:,.0f} per CPU second)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (largest case): {peak:.0f} MB")


if __name__ == "__main__":
    main()
