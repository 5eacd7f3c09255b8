"""Speed of the training cost model: configurations evaluated per second, and validate time.

Run: python benchmarks/train_speed.py [--configs N]
Prints the machine's core count with the numbers; speed is shown here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from flopcast.catalog import load_gpu, load_model
from flopcast.specs import System, precision
from flopcast.workloads.training import Layout, training_step


def random_layouts(n: int, gpus: int, rng: np.random.Generator) -> Layout:
    """n configurations of tp, pp, micro-batch, ZeRO, recompute (validity is not the point)."""
    tp = rng.choice([1, 2, 4, 8], n)
    pp = rng.choice([1, 2, 4, 8, 16], n)
    dp = np.maximum(gpus // (tp * pp), 1)
    mb = rng.choice([1, 2, 4], n)
    ones = np.ones(n)
    return Layout(
        tp=tp, pp=pp, vp=ones, cp=ones, ep=ones, dp=dp, micro_batch=mb,
        num_micro_batches=np.maximum(1024 // (mb * dp), 1), sp=tp > 1,
        zero=rng.integers(0, 4, n), recompute=rng.integers(0, 3, n), schedule=np.zeros(n),
        tp_overlap=tp > 1, dp_overlap=np.ones(n, dtype=bool), offload=np.zeros(n, dtype=bool),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", type=int, default=1_000_000)
    args = parser.parse_args()
    model = load_model("llama-3.1-405b")
    system = System(gpu=load_gpu("h100-sxm"), num_gpus=16384)
    lay = random_layouts(args.configs, 16384, np.random.default_rng(0))
    training_step(model, system, precision("bf16"), 8192, random_layouts(10, 16384,
                  np.random.default_rng(1)))  # warm-up
    t0 = time.perf_counter()
    out = training_step(model, system, precision("bf16"), 8192, lay)
    dt = time.perf_counter() - t0
    assert out["step_time_s"].shape == (args.configs,)
    print(f"cores: {os.cpu_count()}")
    print(f"llama-3.1-405b on 16,384 h100-sxm: {args.configs:,} configurations in {dt:.2f} s "
          f"= {args.configs / dt:,.0f} configurations/s")

    from pathlib import Path

    from flopcast.validate import validate_file

    csv = Path(__file__).resolve().parents[2] / "shared" / "measurements" / "training.csv"
    if csv.exists():
        t0 = time.perf_counter()
        result = validate_file(csv)
        dt = time.perf_counter() - t0
        print(f"validate {csv.name}: {result['summary']['rows']} rows in {dt:.2f} s")


if __name__ == "__main__":
    main()
