"""Would flopcast predict the rows it has not seen? Each public measurement file has siblings
measured the same way on other models, GPUs and engines; this sweep makes such rows from the
public ones (the GPU, and where the file names them the model and engine, swapped for
catalog entries at random), validates them, and counts what is refused, by reason, and what
is predicted but not a finite positive number. A refusal is not a failure when the
configuration cannot run (a model that does not fit, FP8 on a GPU without FP8 tensor cores);
the reasons say which.

Run: python benchmarks/sibling_sweep.py [MEASUREMENTS_DIR] [--variants N] [--seed S]
(default ../shared/measurements, 3 variants per row, seed 0).
"""

from __future__ import annotations

import argparse
import collections
import csv
import math
import random
import sys
import tempfile
from pathlib import Path

from flopcast.validate import validate_file

FILES = ("training.csv", "training-hf.csv", "inference.csv", "serving.csv", "kernels.csv")
GPUS = ("a100-80gb", "a100-40gb", "h100-sxm", "h100-pcie", "h200", "b200", "b300", "gb200",
        "mi300x", "mi325x", "l40s", "rtx-pro-6000", "l4", "h20", "a10g", "rtx-4090")
MODELS = ("llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "qwen2.5-72b", "mixtral-8x7b",
          "mixtral-8x22b", "deepseek-v3", "deepseek-v2", "gpt-oss-120b", "gpt-oss-20b",
          "qwen3-30b-a3b", "qwen3-235b-a22b", "llama-4-scout", "mistral-7b", "gemma-2-27b",
          "gemma-3-27b", "phi-4", "qwen3-32b", "deepseek-v2-lite", "falcon-40b", "llama-2-7b",
          "opt-13b", "kimi-k2", "glm-4.5-air", "llama-3.1-405b", "qwen3-8b")
ENGINES = ("TensorRT-LLM", "vLLM", "SGLang", "NVIDIA NIM")


def variants(rows: list[dict], count: int, rng: random.Random) -> list[dict]:
    """``count`` copies of each row with the GPU (and a catalog model, the engine) swapped."""
    out = []
    for row in rows:
        for k in range(count):
            new = dict(row, id=f"{row['id']}~{k}", gpu=rng.choice(GPUS))
            if new.get("model") and not new["model"].endswith(".json") and not new.get("layers"):
                new["model"] = rng.choice(MODELS)
            if new.get("engine"):
                new["engine"] = rng.choice(ENGINES)
                if "engine_version" in new:
                    new["engine_version"] = ""
            out.append(new)
    return out


def sweep(path: Path, count: int, seed: int) -> None:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), list(reader)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        if (path.parent / "hf_configs").is_dir():  # training-hf names configs by path
            (Path(tmp) / "hf_configs").symlink_to((path.parent / "hf_configs").resolve())
        with copy.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header)
            writer.writeheader()
            writer.writerows(variants(rows, count, random.Random(seed)))
        result = validate_file(copy)
    reasons: collections.Counter[str] = collections.Counter()
    bad = []
    for r in result["rows"]:
        if r.get("skipped"):
            reasons[" ".join(str(r["skipped"]).split()[:14])] += 1
        elif not (isinstance(r.get("predicted"), float) and math.isfinite(r["predicted"])
                  and r["predicted"] > 0):
            bad.append(r["id"])
    total = len(result["rows"])
    print(f"## {path.name}: {total} rows, {sum(reasons.values())} refused, "
          f"{len(bad)} predicted but not a finite positive number")
    for reason, n in reasons.most_common(12):
        print(f"- {n:4d}  {reason}")
    for row_id in bad[:10]:
        print(f"- not finite/positive: {row_id}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default="../shared/measurements")
    parser.add_argument("--variants", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in FILES:
        path = Path(args.directory) / name
        if path.exists():
            sweep(path, args.variants, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
