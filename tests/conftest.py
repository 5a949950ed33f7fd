from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMDB = ROOT.parent / "shared" / "data" / "imdb"  # the real dataset, beside the project (see data/README.md)


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    if not (IMDB / "train.parquet").exists():
        pytest.fail(f"real IMDB not found at {IMDB}: these tests need it (see data/README.md)")
    return IMDB
