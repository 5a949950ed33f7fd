import inspect
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
def data(small_imdb, tmp_path_factory) -> list[str]:
    """Overrides that read small_imdb (real reviews, a folder of 1,400) and share one cache (tokenizers,
    encoded splits) across tests: what most tests need, read in a second. Half its training reviews, 28
    batches of debug=fast's 16 (its own 5% would be 3): a test's own data.train_fraction comes after it."""
    cache = tmp_path_factory.mktemp("cache")
    return [f"data.path={small_imdb}", "data.train_fraction=0.5", f"paths.cache_dir={cache}"]


@pytest.fixture(scope="session")
def imdb_data(imdb_dir, tmp_path_factory) -> list[str]:
    """Overrides that read all of real IMDB (25k + 25k reviews): for what needs its size."""
    return [f"data.path={imdb_dir}", f"paths.cache_dir={tmp_path_factory.mktemp('imdb_cache')}"]


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


def synthetic_corpus(folder: Path, documents: dict[str, int], seed: int = 0) -> Path:
    """A corpus with a known answer, written as folder/<split>.parquet (text, label: "neg" or "pos").
    Each document is 2 paragraphs of 2-3 sentences of 4-8 filler words; exactly one sentence, anywhere,
    also holds one cue word of its label. Nothing else tells the labels apart, so a model that learns has
    found the cue (and a HAN's sentence attention should find its sentence: `cue_sentence` says which)."""
    import random

    rng = random.Random(seed)
    filler = [f"w{i}" for i in range(300)]
    cues = {"neg": ["awful", "dull", "poor"], "pos": ["great", "superb", "lovely"]}
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in documents.items():
        texts, labels, cue_sentences = [], [], []
        for _ in range(count):
            label = rng.choice(["neg", "pos"])
            paragraphs = [[rng.sample(filler, rng.randint(4, 8)) for _ in range(rng.randint(2, 3))] for _ in range(2)]
            sentences = [sentence for paragraph in paragraphs for sentence in paragraph]
            cue = rng.randrange(len(sentences))
            sentences[cue].insert(rng.randrange(len(sentences[cue]) + 1), rng.choice(cues[label]))
            texts.append("\n\n".join(" ".join(" ".join(s).capitalize() + "." for s in p) for p in paragraphs))
            labels.append(label)
            cue_sentences.append(cue)
        table = pa.table({"text": texts, "label": labels, "cue_sentence": cue_sentences})
        pq.write_table(table, folder / f"{split}.parquet")
    return folder


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Path:
    """synthetic_corpus with 2,000 training and 200 test documents: learnt in seconds, no download (with fewer,
    fastText memorises the unique filler bigrams of each document and reads the cue by chance, on some seeds)."""
    return synthetic_corpus(tmp_path_factory.mktemp("synthetic"), {"train": 2000, "test": 200})


SPAWNS = {"run_entry_point", "train", "run_script", "subprocess", "optuna_sweep"}  # helpers that start an interpreter
SERVES = {"server", "chromium", "Server"}  # what starts a server or a browser
WHOLE_IMDB = {"imdb_dir", "imdb_data", "imdb"}  # what reads all of real IMDB (small_imdb reads 1,400 reviews once)


def _names(code) -> set[str]:
    """The names a function's code reads (globals and attributes alike: a test is marked when in doubt), its
    nested functions' included."""
    found = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            found |= _names(constant)
    return found


def pytest_collection_modifyitems(items):
    """Tiers (Makefile): a test is `server` if it or a fixture it uses starts a server or a browser, `entry`
    if one starts an interpreter (an entry point, a script, a training run's CLI), `imdb` if it reads all of
    real IMDB itself; make test-fast leaves these out, and `slow`."""
    for item in items:
        if not hasattr(item, "function"):
            continue
        functions = [item.function] + [d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
        names = set().union(*(_names(f.__code__) for f in functions if hasattr(f, "__code__")))
        arguments = set(inspect.signature(item.function).parameters)
        if SERVES & (names | set(item.fixturenames)):
            item.add_marker(pytest.mark.server)
        if SPAWNS & names:
            item.add_marker(pytest.mark.entry)
        if WHOLE_IMDB & (arguments | (names - {"imdb_dir"})):
            item.add_marker(pytest.mark.imdb)
