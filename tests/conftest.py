import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N (make test): N workers share the cores, one thread each
    os.environ["OMP_NUM_THREADS"] = "1"  # the entry points and scripts the tests start inherit it
    import torch

    torch.set_num_threads(
        1
    )  # two threads in each of two workers on two cores oversubscribe them: GRU training slows many times over
# The real dataset: $HDC_IMDB_DIR, else ../shared/data/imdb beside the project (see data/README.md).
IMDB = Path(os.environ.get("HDC_IMDB_DIR") or ROOT.parent / "shared" / "data" / "imdb")


@pytest.fixture(scope="session")
def imdb_dir() -> Path:
    if not (IMDB / "train.parquet").exists():
        pytest.fail(f"real IMDB not found at {IMDB}: set HDC_IMDB_DIR (see data/README.md)")
    return IMDB


@pytest.fixture(scope="session")
def small_imdb(imdb_dir, tmp_path_factory) -> Path:
    """A folder laid out like the hub's IMDB (label names kept) with 1,000 training and 400 test reviews."""
    folder = tmp_path_factory.mktemp("small_imdb")
    for split, per_class in (("train", 500), ("test", 200)):
        table = pq.read_table(imdb_dir / f"{split}.parquet")  # sorted by label: take both ends
        ends = pa.concat_tables([table.slice(0, per_class), table.slice(len(table) - per_class, per_class)])
        pq.write_table(ends, folder / f"{split}.parquet")
    return folder


@pytest.fixture(scope="session")
def data(imdb_dir, tmp_path_factory) -> list[str]:
    """Overrides that read real IMDB and share one cache (tokenizers, encoded splits) across tests."""
    return [f"data.path={imdb_dir}", f"paths.cache_dir={tmp_path_factory.mktemp('cache')}"]


def run_entry_point(script: str, run_dir: Path, *overrides: str, check=True, env=None, stdin=None):
    """`python <script> hydra.run.dir=<run_dir> <overrides>` from the project root, as a user runs it."""
    command = [sys.executable, script, f"hydra.run.dir={run_dir}", *overrides]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, input=stdin)
    if check and result.returncode != 0:
        pytest.fail(f"{script} failed:\n{result.stderr[-3000:]}")
    return result


def train(run_dir, data, *overrides, check=True, debug="fast", env=None) -> subprocess.CompletedProcess:
    debug_overrides = [f"debug={debug}"] if debug else []
    return run_entry_point(
        "train.py", run_dir, "recipe=paper_adamw", *data, *overrides, *debug_overrides, check=check, env=env
    )


def metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="session")
def debug_run(tmp_path_factory, data):
    run_dir = tmp_path_factory.mktemp("debug_run")
    train(run_dir, data)
    return run_dir


def compose(config: str, run_dir: Path, *overrides: str):
    """configs/<config> composed as its entry point would compose it from `overrides`, with run_dir as
    the run folder (Hydra's runtime config set, so that the entry's function runs in this process)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from hdc.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return cfg


def compose_train(run_dir: Path, *overrides: str, debug: str | None = "fast"):
    """train.yaml composed as `python train.py recipe=paper_adamw <overrides>` would be."""
    debug_overrides = [f"debug={debug}"] if debug else []
    return compose("train.yaml", run_dir, "recipe=paper_adamw", *overrides, *debug_overrides)


def train_in_process(run_dir: Path, *overrides: str, debug: str | None = "fast") -> dict:
    """Train as train.py does, in this process (no interpreter start-up, errors as exceptions)."""
    from hdc.cli.train import train as run_training

    return run_training(compose_train(run_dir, *overrides, debug=debug))


def evaluate_in_process(run_dir: Path, *overrides: str) -> dict:
    """eval.py's work in this process: its metrics (also written to run_dir/metrics.json)."""
    from hdc.cli.evaluate import evaluate

    return evaluate(compose("eval.yaml", run_dir, *overrides))
