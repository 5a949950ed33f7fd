"""A tiny run of scripts/benchmark.py, so that `make bench` cannot rot."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_benchmark_writes_its_json(imdb_dir, tmp_path):
    out = tmp_path / "bench.json"
    command = [
        sys.executable, "scripts/benchmark.py", "debug=fast", f"data.path={imdb_dir}",
        f"paths.cache_dir={tmp_path}", "--batches", "2", "--repeats", "2", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training" in result.stdout or "train" in result.stdout
    bench = json.loads(out.read_text())
    for key in ("train_docs_per_s", "infer_docs_per_s", "data_docs_per_s", "peak_rss_mb"):
        assert bench[key] > 0, key
    assert 0 <= bench["padding_fraction"] < 1 and 0 <= bench["data_wait_fraction"] < 1
    assert bench["config"]["data"]["max_sentences"] == 8  # the overrides reached the config
    assert bench["machine"]["torch"] == __import__("torch").__version__
