"""Tiny runs of the benchmark scripts, so that `make bench` and `make time-to-accuracy` cannot rot."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from tests.conftest import ROOT, compose


def run_script(*arguments, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_benchmark_writes_its_json(small_imdb, tmp_path):
    out = tmp_path / "bench.json"
    # all 1,000 reviews: debug=fast keeps 5% of a training split, too few batches for the profile's 10 steps
    overrides = ["debug=fast", f"data.path={small_imdb}", "data.train_fraction=1.0", f"paths.cache_dir={tmp_path}"]
    result = run_script("scripts/benchmark.py", *overrides, "--batches", "2", "--repeats", "2", "--out", str(out),
                        "--precisions", "fp32,bf16", "--profile", str(tmp_path / "profile.txt"))  # fmt: skip
    assert "train" in result.stdout and "data wait" in result.stdout
    bench = json.loads(out.read_text())
    assert list(bench) == ["default", "paper_adamw", "machine"]  # a row per model, then the machine
    for row in ("default", "paper_adamw"):
        profile = (tmp_path / f"profile_{row}.txt").read_text()
        assert "aten::" in profile and "per step" in profile
        timed = bench[row]
        for key in ("train_docs_per_s", "infer_docs_per_s", "data_docs_per_s", "data_raw_docs_per_s", "peak_rss_mb"):
            assert timed[key] > 0, (row, key)
        assert 0 <= timed["padding_fraction"] < 1 and 0 <= timed["data_wait_fraction"] < 1
        assert timed["train_bf16_docs_per_s"] > 0 and timed["infer_bf16_docs_per_s"] > 0
        assert 0 < timed["bf16_max_gap_from_fp32"]["probability"] < 0.1  # computed in bf16, and close to fp32
        assert set(timed["step_split_ms"]) == {"collate", "copy", "forward", "backward", "optimizer"}
        assert all(timed["step_split_ms"][phase] > 0 for phase in ("collate", "forward", "backward", "optimizer"))
        assert timed["encode_s"] > 0  # a first run encodes the training split...
        assert timed["config"]["data"]["max_sentences"] == 8  # the user's overrides reached every row
        assert timed["config"]["model"]["_target_"] == "hdc.classifier.module.DocumentClassifier"
    default, paper = bench["default"], bench["paper_adamw"]
    assert default["config"]["model"]["wide"] is not None and default["wide_fit_s"] > 0  # the default recipe's
    assert paper["config"]["model"]["wide"] is None and paper["config"]["data"]["min_frequency"] == 6  # the paper's
    assert paper["overrides"][-1] == "recipe=paper_adamw"
    run_script("scripts/benchmark.py", *overrides, "--rows", "paper_adamw", "--batches", "2", "--repeats", "2",
               "--out", str(out))  # fmt: skip
    again = json.loads(out.read_text())
    assert list(again) == ["paper_adamw", "machine"]
    assert again["paper_adamw"]["encode_s"] < paper["encode_s"] / 5  # ... a second reads the cache
    assert bench["machine"]["torch"] == torch.__version__


@pytest.mark.slow
def test_time_to_accuracy_reports_the_whole_run(small_imdb, tmp_path):
    out = tmp_path / "tta.json"
    result = run_script("scripts/time_to_accuracy.py", "debug=fast", f"data.path={small_imdb}", "--out", str(out))
    timed = json.loads(out.read_text())
    assert timed["seconds"] > 0 and 0 <= timed["test_acc"] <= 1 and timed["peak_rss_mb"] > 100
    assert "s from raw text to a tested model" in result.stdout


@pytest.mark.parametrize("name", ["imdb", "paper", "proxies", "multilabel", "smoke"])
def test_every_run_of_a_reproduce_list_composes(name, tmp_path):
    """Each row of scripts/reproduce/<name>.yaml is a config train.py accepts (composed, not trained)."""
    spec = yaml.safe_load((ROOT / "scripts" / "reproduce" / f"{name}.yaml").read_text())
    assert spec["runs"] and len({run["slug"] for run in spec["runs"]}) == len(spec["runs"])
    for run in spec["runs"]:
        for seed in run.get("seeds", spec["seeds"]):
            cfg = compose("train.yaml", tmp_path, *run["overrides"], f"seed={seed}")
            assert cfg.seed == seed and cfg.model._target_ == "hdc.classifier.module.DocumentClassifier"


@pytest.mark.slow
def test_reproduce_runs_a_list_skips_finished_runs_and_lists_what_could_not_run(small_imdb, tmp_path):
    results, runs = tmp_path / "RESULTS.md", tmp_path / "runs"
    arguments = ["scripts/reproduce.py", "smoke", "--results", str(results), "--runs-dir", str(runs)]
    env_overrides = [f"data.path={small_imdb}", f"paths.cache_dir={tmp_path / 'cache'}"]
    offline = os.environ | {"HF_HUB_OFFLINE": "1"}  # the missing dataset fails at once instead of retrying
    run_script(*arguments, *env_overrides, env=offline)
    table = results.read_text()
    assert table.count("(2 of 2 seeds)") == 1 and table.count("(1 of 1 seeds)") == 1  # a row's own seeds
    assert "| HN-ATT | IMDB binary |" in table and "| 90.4 |" in table
    assert "not run: " in table and "nobody/nothing" in table  # listed, not dropped
    finished = sorted(runs.glob("smoke/*/metrics.json"))
    assert [path.parent.name for path in finished] == ["han_ave_seed1", "han_seed1", "han_seed2"]
    stamps = [path.stat().st_mtime_ns for path in finished]
    run_script(*arguments, *env_overrides, env=offline)  # everything finished: nothing trains again
    assert [path.stat().st_mtime_ns for path in finished] == stamps
    shutil.rmtree(finished[1].parent)  # one seed of HN-ATT undone
    run_script(*arguments, "--table-only", *env_overrides, env=offline)  # rewrites the table, trains nothing
    table = results.read_text()
    assert table.count("(1 of 2 seeds)") == 1 and table.count("(1 of 1 seeds)") == 1 and "| pending |" in table
    assert not finished[1].parent.exists()
    kept = "| HN-AVE | IMDB binary | 12.34 (a row from an earlier reproduction) | - | - | - | - |"
    results.write_text("\n".join(kept if line.startswith("| HN-AVE |") else line for line in table.splitlines()))
    run_script(*arguments, "--table-only", "--only", "han", *env_overrides, env=offline)  # just HN-ATT's row
    table = results.read_text()
    assert kept in table and table.count("(1 of 2 seeds)") == 1 and "| pending |" in table


@pytest.mark.slow
def test_scaling_measures_the_named_models_and_keeps_the_others(tmp_path):
    out = tmp_path / "scaling.json"
    out.write_text(
        json.dumps([{"model": "flat BiGRU", "words": 100, "seconds": 9.0, "peak_rss_mb": 500, "pass_mb": 9}])
    )
    models = ["HAN (BiGRU levels)", "3-level HAN (BiGRU levels: sentences, paragraphs)"]
    run_script("scripts/scaling.py", "--words", "100", "400", "--models", *models, "--out", str(out))
    records = json.loads(out.read_text())
    assert [(r["model"], r["words"]) for r in records] == [(m, w) for m in models for w in (100, 400)] + [
        ("flat BiGRU", 100)
    ]
    assert all(r["seconds"] > 0 and r["peak_rss_mb"] > 100 for r in records[:4])
    assert out.with_suffix(".png").stat().st_size > 10_000


def test_wide_alone_scores_each_setting_on_validation(data):
    """scripts/wide_alone.py: one line per setting, the wide term's validation score as training logs it."""
    result = run_script("scripts/wide_alone.py", *data, "--", "", "model.wide.ngrams=3")
    lines = [line for line in result.stdout.splitlines() if "val/acc_wide" in line]
    assert [line.split(":")[0] for line in lines] == ["as composed", "model.wide.ngrams=3"]
    assert all(50 < float(line.split()[-4].rstrip(",")) <= 100 for line in lines)  # better than chance on reviews
