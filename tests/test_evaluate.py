"""eval.py: a checkpoint's numbers on a labelled split, equal to what training recorded."""

import json

import pytest
import torch

from hdc.classifier.checkpoint import DATA_KEY
from hdc.errors import HdcError
from tests.conftest import evaluate_in_process, metrics, run_entry_point, train


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, small_imdb):
    """A short training run whose test covers the whole (small) test split."""
    run_dir = tmp_path_factory.mktemp("small_run")
    cache = tmp_path_factory.mktemp("cache")
    train(run_dir, [f"data.path={small_imdb}", f"paths.cache_dir={cache}"], "trainer.limit_test_batches=null")
    return run_dir, cache


def test_eval_reproduces_the_test_metrics_of_training(small_run, tmp_path):
    run_dir, cache = small_run
    best = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    result = run_entry_point("eval.py", tmp_path, f"ckpt_path={best}", f"paths.cache_dir={cache}")
    assert "accuracy" in result.stdout  # the printed table
    evaluated, trained = metrics(tmp_path), metrics(run_dir)
    assert evaluated["test/documents"] == 400
    for name in ("test/acc", "test/f1", "test/loss"):
        assert evaluated[name] == pytest.approx(trained[name], abs=1e-6), name
    confusion = torch.tensor(evaluated["test/confusion_matrix"])
    assert confusion.sum() == 400 and confusion.trace() / 400 == pytest.approx(evaluated["test/acc"])
    assert set(evaluated["test/f1_per_class"]) == {"neg", "pos"}
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000


def test_a_checkpoint_keeps_its_data_settings_once(small_run, small_imdb, tmp_path):
    """The datamodule's hyperparameters, as Lightning saves them, and nowhere else; without them eval.py
    asks for data.path in one line, and with it evaluates as before."""
    run_dir, cache = small_run
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert set(checkpoint["hdc"]) == {"format", "encoder"}
    settings = checkpoint.pop(DATA_KEY)
    assert settings["path"] == str(small_imdb) and DATA_KEY == "datamodule_hyper_parameters"
    torch.save(checkpoint, tmp_path / "no_data.ckpt")
    with pytest.raises(HdcError, match="does not say which data it was trained on: set data.path="):
        evaluate_in_process(tmp_path / "asks", f"ckpt_path={tmp_path}/no_data.ckpt", f"paths.cache_dir={cache}")
    now = evaluate_in_process(
        tmp_path / "now", f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"paths.cache_dir={cache}"
    )
    told = evaluate_in_process(tmp_path / "told", f"ckpt_path={tmp_path}/no_data.ckpt", f"paths.cache_dir={cache}",
                               f"data.path={small_imdb}")  # fmt: skip
    assert now["test/documents"] == told["test/documents"] == 400
    assert now["test/confusion_matrix"] == told["test/confusion_matrix"] and now["data"] == told["data"]


def test_eval_on_another_split_and_file(small_run, tmp_path, capsys):
    run_dir, _ = small_run
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,stars\nA wonderful film.,pos\nDreadful.,neg\nFine.,pos\n")
    overrides = [f"data.path={csv}", "data.split=train", "data.text_column=review", "data.label_column=stars"]
    evaluated = evaluate_in_process(tmp_path / "csv", f"ckpt_path={run_dir}/checkpoints/last.ckpt", *overrides)
    assert evaluated["test/documents"] == 3 and evaluated["data"] == str(csv)
    assert json.loads((tmp_path / "csv" / "metrics.json").read_text()) == evaluated
    assert f"{csv} [train]" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "foreign"])
def test_a_bad_checkpoint_is_one_clear_line(small_run, tmp_path, damage):
    path = tmp_path / "model.ckpt"
    good = (small_run[0] / "checkpoints" / "last.ckpt").read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(3)}, path)
    reason = {"missing": "no such checkpoint file", "garbage": "not a readable checkpoint",
              "truncated": "not a readable checkpoint", "foreign": "not an hdc checkpoint"}[damage]  # fmt: skip
    if damage == "garbage":  # as a user sees it: one line, exit status 1
        result = run_entry_point("eval.py", tmp_path / "run", f"ckpt_path={path}", check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"{path}: {reason}" in result.stdout + result.stderr
    with pytest.raises(HdcError) as error:
        evaluate_in_process(tmp_path / "run", f"ckpt_path={path}")
    assert str(error.value).startswith(f"{path}: {reason}") and "\n" not in str(error.value)
