"""Tiny runs of the benchmark scripts, so that `make bench` and `make time-to-accuracy` cannot rot."""

import json
import subprocess
import sys

import torch

from tests.conftest import ROOT


def run_script(*arguments) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_benchmark_writes_its_json(imdb_dir, tmp_path):
    out = tmp_path / "bench.json"
    overrides = ["debug=fast", f"data.path={imdb_dir}", f"paths.cache_dir={tmp_path}"]
    result = run_script("scripts/benchmark.py", *overrides, "--batches", "2", "--repeats", "2", "--out", str(out))
    assert "train" in result.stdout and "data wait" in result.stdout
    bench = json.loads(out.read_text())
    for key in ("train_docs_per_s", "infer_docs_per_s", "data_docs_per_s", "data_raw_docs_per_s", "peak_rss_mb"):
        assert bench[key] > 0, key
    assert 0 <= bench["padding_fraction"] < 1 and 0 <= bench["data_wait_fraction"] < 1
    assert bench["encode_s"] > 0  # a first run encodes the training split...
    run_script("scripts/benchmark.py", *overrides, "--batches", "2", "--repeats", "2", "--out", str(out))
    assert json.loads(out.read_text())["encode_s"] < bench["encode_s"] / 5  # ... a second reads the cache
    assert bench["config"]["data"]["max_sentences"] == 8  # the overrides reached the config
    assert bench["machine"]["torch"] == torch.__version__


def test_time_to_accuracy_reports_the_whole_run(imdb_dir, tmp_path):
    out = tmp_path / "tta.json"
    result = run_script("scripts/time_to_accuracy.py", "debug=fast", f"data.path={imdb_dir}", "--out", str(out))
    timed = json.loads(out.read_text())
    assert timed["seconds"] > 0 and 0 <= timed["test_acc"] <= 1 and timed["peak_rss_mb"] > 100
    assert "s from raw text to a tested model" in result.stdout
