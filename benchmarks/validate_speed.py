"""Speed of `flopcast validate` per schema: seconds per 1,000 rows and rows per second.

Each published measurement file (../shared/measurements/) is tiled, with fresh row ids, into a
temporary folder until it holds at least ``--rows`` rows (folders beside the CSV, such as
hf_configs/, are linked in so relative paths still resolve), and validated once in this
process; the time includes everything validate does (reading, building the jobs, the
predictions, serving simulations, the summary). Duplicated rows share their simulations, as
rows that differ only in the metric do in a real file.

Run: python benchmarks/validate_speed.py [--rows N] [--shared DIR] [FILE ...]
Prints the machine's core count with the numbers; speed is shown here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

from flopcast.validate import validate_file

SHARED = Path(__file__).resolve().parents[2] / "shared" / "measurements"
FILES = ("training", "inference", "serving", "kernels", "training-hf")


def tiled(source: Path, rows: int, folder: Path) -> tuple[Path, int]:
    """``source`` repeated to at least ``rows`` rows in ``folder`` (ids made unique)."""
    with source.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header, body = list(reader.fieldnames or []), list(reader)
    for entry in source.parent.iterdir():
        if entry.is_dir() and not (folder / entry.name).exists():
            (folder / entry.name).symlink_to(entry, target_is_directory=True)
    copies = -(-rows // max(len(body), 1))
    out = folder / source.name
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        for copy in range(copies):
            for row in body:
                writer.writerow({**row, "id": f"{row.get('id', '')}~{copy}"})
    return out, copies * len(body)


def time_file(source: Path, rows: int) -> tuple[int, float, int]:
    """(rows validated, seconds, rows predicted) for ``source`` tiled to ``rows`` rows."""
    with tempfile.TemporaryDirectory() as tmp:
        path, n = tiled(source, rows, Path(tmp))
        t0 = time.perf_counter()
        result = validate_file(path)
        dt = time.perf_counter() - t0
    return n, dt, result["summary"]["predicted"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=list(FILES),
                        help="schemas (file stems) to time: " + ", ".join(FILES))
    parser.add_argument("--rows", type=int, default=1000, help="rows per file, at least")
    parser.add_argument("--shared", type=Path, default=SHARED, help="measurements folder")
    args = parser.parse_args()
    validate_file(args.shared / "kernels.csv")  # warm-up: imports and catalog caches
    print(f"cores: {os.cpu_count()}")
    print("once = the published file as it is; tiled = repeated to at least --rows rows; "
          "per added row = (tiled - once) / (rows added): the cost of a row beyond the "
          "distinct simulations the file needs")
    print(f"{'file':<12} {'rows':>5} {'once s':>7} {'rows':>5} {'tiled s':>8} {'rows/s':>7} "
          f"{'s/1000 rows':>11} {'s/1000 added':>12}")
    for stem in args.files:
        source = args.shared / f"{stem}.csv"
        if not source.exists():
            print(f"{stem:<12} not found at {source}")
            continue
        n0, t0, _ = time_file(source, 1)
        n, dt, _ = time_file(source, args.rows)
        added = 1000 * (dt - t0) / (n - n0) if n > n0 else float("nan")
        print(f"{stem:<12} {n0:>5} {t0:>7.2f} {n:>5} {dt:>8.2f} {n / dt:>7.0f} "
              f"{1000 * dt / n:>11.2f} {added:>12.2f}")


if __name__ == "__main__":
    main()
