from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "measurements"


def _measurements(name: str) -> Path:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"published measurements not found at {path} (shared/ sits beside checkout)")
    return path


@pytest.fixture(scope="session")
def training_csv() -> Path:
    return _measurements("training.csv")


@pytest.fixture(scope="session")
def inference_csv() -> Path:
    return _measurements("inference.csv")


@pytest.fixture(scope="session")
def serving_csv() -> Path:
    return _measurements("serving.csv")


@pytest.fixture(scope="session")
def training_hf_csv() -> Path:
    return _measurements("training-hf.csv")


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(columns, rows) -> the path of a CSV in tmp_path with those rows (cells a row
    leaves out are empty)."""
    import csv

    def write(columns, rows, name="rows.csv"):
        path = tmp_path / name
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows({c: r.get(c, "") for c in columns} for r in rows)
        return path

    return write
