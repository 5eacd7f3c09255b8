"""For each published Megatron-LM row, run the planner on the same model, GPU type, GPU count,
sequence length and global batch; compare with flopcast's prediction for the published
configuration, and check whether the published (TP, PP) is among the planner's top 5.

Run: python benchmarks/plan_vs_published.py [../shared/measurements/training.csv]
"""

from __future__ import annotations

import sys
from pathlib import Path

from flopcast.specs.plan import PlanRequest
from flopcast.validate.training import job_from_row, read_rows
from flopcast.workloads.training import estimate_training
from flopcast.workloads.training.plan import Cluster, search_cluster
from flopcast.workloads.training.search import config_at

SOURCES = ("MEGATRON_README_2021", "MEGATRON_README_2024")


def compare(row: dict) -> dict:
    job = job_from_row(row)
    published = estimate_training(job)
    p = job.parallelism
    request = PlanRequest(model=job.model, gpus=[job.system.gpu.id],
                          gpu_counts=[job.system.num_gpus], seq_len=job.seq_len,
                          global_batch=p.global_batch, precision=job.precision)
    result = search_cluster(request, Cluster(job.system.gpu.id, job.system.num_gpus))
    order = result.order()
    best = config_at(result, int(order[0]), p.global_batch)
    best_step = float(result.results["step_time_s"][order[0]])
    top5 = [config_at(result, int(i), p.global_batch) for i in order[:5]]
    pairs = []
    for i in order:
        c = config_at(result, int(i), p.global_batch)
        if (c["tp"], c["pp"]) not in pairs:
            pairs.append((c["tp"], c["pp"]))
        if len(pairs) == 5:
            break
    return dict(
        id=row["id"], model=row["model"], gpus=job.system.num_gpus,
        published=(p.tp, p.pp), published_fits=published.fits,
        published_step=published.step_time_s, best_step=best_step,
        gain=published.step_time_s / best_step - 1, best=best,
        in_top5=any((c["tp"], c["pp"]) == (p.tp, p.pp) for c in top5),
        in_top5_pairs=(p.tp, p.pp) in pairs, pairs=pairs,
    )


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else
                Path(__file__).resolve().parents[2] / "shared/measurements/training.csv")
    rows = [r for r in read_rows(path) if r["id"].split(":")[0] in SOURCES]
    results = [compare(r) for r in rows]
    for r in results:
        b = r["best"]
        print(f"{r['id']:25s} {r['model']:9s} n={r['gpus']:<5d} published tp{r['published'][0]}"
              f"/pp{r['published'][1]} (fits: {r['published_fits']}) -> best tp{b['tp']} "
              f"pp{b['pp']}"
              f" vp{b['vp']} cp{b['cp']} mb{b['micro_batch']} zero{b['zero_stage']} "
              f"rc={b['recompute']}: {100 * r['gain']:+.1f}% faster; published (TP,PP) in top-5 "
              f"configs: {r['in_top5']}, in top-5 (TP,PP) pairs: {r['in_top5_pairs']} "
              f"{r['pairs']}")
    n = len(results)
    print(f"planner >= published prediction: {sum(r['gain'] >= -1e-9 for r in results)}/{n}")
    print(f"published (TP,PP) among top-5 configurations: {sum(r['in_top5'] for r in results)}/{n}")
    print(f"published (TP,PP) among top-5 distinct (TP,PP): "
          f"{sum(r['in_top5_pairs'] for r in results)}/{n}")


if __name__ == "__main__":
    main()
