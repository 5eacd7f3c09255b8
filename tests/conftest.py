from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "measurements"


@pytest.fixture(scope="session")
def training_csv() -> Path:
    path = SHARED / "training.csv"
    if not path.exists():
        pytest.skip(f"published measurements not found at {path} (shared/ sits beside checkout)")
    return path


@pytest.fixture(scope="session")
def inference_csv() -> Path:
    path = SHARED / "inference.csv"
    if not path.exists():
        pytest.skip(f"published measurements not found at {path}")
    return path
