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
