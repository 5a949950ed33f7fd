"""The catalogue of bad inputs and failures (docs/RELIABILITY.md): each has a defined, tested outcome."""

import errno
import os

import pytest
import torch

from hdc.classifier import checkpoint
from hdc.classifier.checkpoint import AtomicCheckpointIO
from hdc.classifier.module import expanded
from hdc.data.datamodule import HFDataModule
from hdc.data.source import load_streaming
from hdc.errors import DataError, HdcError
from tests.conftest import train, train_in_process


def test_a_failed_checkpoint_write_keeps_the_previous_one_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "weights": torch.ones(3)}, path)

    def disk_full(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(HdcError, match=r"Could not save checkpoint .*last.ckpt: No space left on device .* intact"):
        io.save_checkpoint({"global_step": 2, "weights": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1  # the previous checkpoint, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left behind


def test_a_non_finite_loss_stops_training_in_one_line_and_keeps_finite_checkpoints(tmp_path, data):
    huge_steps = ["model.optimizer.lr=1e30", "callbacks.resume_checkpoint.every_n_train_steps=1"]
    stopped = r"(train/loss is (nan|inf)|the weights became non-finite) at epoch 0, step \d+: training stopped"
    with pytest.raises(HdcError, match=stopped):
        train_in_process(tmp_path, *data, *huge_steps)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.isfinite(weights).all() for weights in expanded(last["state_dict"]).values())
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc': expected Optional[int]"),
        ("data.batch_size=ten", "data.batch_size='ten': expected int"),
        ("model.optimizer.lr=fast", "model.optimizer.lr='fast': expected"),
        ("model.net.embedding_dim=wide", "model.net.embedding_dim='wide': expected int"),
    ],
)
def test_a_config_value_of_the_wrong_type_is_a_clear_error(tmp_path, data, override, message):
    """(A key that does not exist is Hydra's one line: test_train.py::test_config_typo_is_a_clear_error.)"""
    with pytest.raises(HdcError) as error:
        train_in_process(tmp_path, *data, override)
    assert message in str(error.value)


def csv_dataset(tmp_path, rows: str) -> HFDataModule:
    (tmp_path / "reviews.csv").write_text("text,label\n" + rows)
    return HFDataModule(str(tmp_path / "reviews.csv"), str(tmp_path), str(tmp_path / "cache"),
                        label_names=["neg", "pos"], val_fraction=0.0, min_frequency=1)  # fmt: skip


def test_an_empty_split_is_a_clear_error(tmp_path):
    dm = csv_dataset(tmp_path, "")
    with pytest.raises(DataError, match="has no documents"):
        dm.setup()
        dm.encoded("train")


@pytest.mark.parametrize("label", ["0.5", "2", "-1", "positive"])
def test_a_label_of_the_wrong_type_or_outside_the_set_is_a_clear_error(tmp_path, label):
    dm = csv_dataset(tmp_path, f"Great fun.,{label}\n")
    with pytest.raises(DataError, match=r"Unknown labels in split 'train', column 'label': .* \(1 documents\)"):
        dm.setup()
        dm.encoded("train")


def test_no_code_from_a_dataset_folder_runs(tmp_path):
    """A folder with a loading script (named after it, as datasets looks for one) is refused in one line
    that names the script, and the script has not run; without the script, the folder's data loads."""
    folder = tmp_path / "shady"
    folder.mkdir()
    (folder / "shady.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('executed')\n")
    (folder / "train.csv").write_text("text,label\nFine.,0\n")
    with pytest.raises(DataError, match=r"comes with a loading script \(shady.py\), and hdc never runs code"):
        load_streaming(str(folder), tmp_path)
    assert not (tmp_path / "ran").exists()
    (folder / "shady.py").unlink()
    assert list(load_streaming(str(folder), tmp_path)["train"]) == [{"text": "Fine.", "label": 0}]


def test_an_api_key_is_never_written_to_the_run(tmp_path, data):
    secret = "fake-wandb-key-0123456789abcdef0123456789abcdef"
    env = {**os.environ, "WANDB_API_KEY": secret, "WANDB_MODE": "offline"}
    train(tmp_path, data, "logger=wandb", env=env)
    leaks = [path for path in tmp_path.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]
    assert leaks == [] and list(tmp_path.glob("wandb/offline-run-*"))
