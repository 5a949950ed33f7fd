import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The real dataset: $HDC_IMDB_DIR, else ../shared/data/imdb beside the project (see data/README.md).
IMDB = Path(os.environ.get("HDC_IMDB_DIR") or ROOT.parent / "shared" / "data" / "imdb")


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    if not (IMDB / "train.parquet").exists():
        pytest.fail(f"real IMDB not found at {IMDB}: set HDC_IMDB_DIR (see data/README.md)")
    return IMDB
