"""A run killed mid-epoch and resumed with ckpt_path=last ends exactly where an uninterrupted run ends."""

import json

import pytest
import torch

from hdc.classifier.module import expanded
from hdc.errors import HdcError
from tests.conftest import metrics, train, train_in_process

# 2 epochs of 30 steps with dropout (so the RNG matters), the latest state saved every 10 steps.
RUN = ["trainer.limit_train_batches=30", "trainer.max_epochs=2", "callbacks.resume_checkpoint.every_n_train_steps=10",
       "model.net.dropout=0.3", "data.batch_size=8"]  # fmt: skip


def test_killed_mid_epoch_and_resumed_gives_the_same_model_and_metrics(tmp_path, data):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train(whole, data, *RUN)
    killed = train(resumed, data, *RUN, "+callbacks.kill._target_=tests.recorders.KillAt", "+callbacks.kill.step=45",
                   check=False)  # fmt: skip
    assert killed.returncode == -9 and not (resumed / "metrics.json").exists()
    assert torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 40  # mid-epoch 2

    result = train(resumed, data, *RUN, "ckpt_path=last")
    assert "Resuming from" in result.stdout + result.stderr
    expected, got = metrics(whole), metrics(resumed)
    for key in ("val/acc", "val/loss", "val/acc_best", "test/acc", "test/loss", "lr-AdamW"):
        assert got[key] == expected[key], key
    assert (resumed / "csv" / "metrics.csv").exists()  # the killed run's history is kept beside the new one
    assert (resumed / "csv" / "resumed_at_step_40" / "metrics.csv").exists()
    final = [torch.load(run / "checkpoints" / "last.ckpt", weights_only=True) for run in (whole, resumed)]
    assert final[0]["global_step"] == final[1]["global_step"] == 60
    whole_state, resumed_state = (expanded(checkpoint["state_dict"]) for checkpoint in final)
    for name, weights in whole_state.items():
        assert torch.equal(weights, resumed_state[name]), name


def test_ckpt_path_last_without_a_checkpoint_is_one_clear_error(tmp_path, data):
    with pytest.raises(HdcError, match="ckpt_path=last: no checkpoints/last.ckpt in .*fresh or under"):
        train_in_process(tmp_path / "fresh", *data, "ckpt_path=last", "task_name=nothing_yet")


def test_a_run_records_versions_and_commit(debug_run):
    record = json.loads((debug_run / "run.json").read_text())
    assert (
        record["packages"]["torch"] == torch.__version__.split("+")[0]
        or record["packages"]["torch"] == torch.__version__
    )
    assert len(record["git_commit"] or "") == 40 and (debug_run / ".hydra" / "config.yaml").exists()
