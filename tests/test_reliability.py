"""Checkpoint writes that are whole or absent; safety of logs and data loading."""

import errno

import pytest
import torch

from hdc import checkpoint_io
from hdc.checkpoint_io import AtomicCheckpointIO
from hdc.errors import HdcError


def test_a_failed_checkpoint_write_keeps_the_previous_one_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "weights": torch.ones(3)}, path)

    def disk_full(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_io.torch, "save", disk_full)
    with pytest.raises(HdcError, match=r"Could not save checkpoint .*last.ckpt: No space left on device .* intact"):
        io.save_checkpoint({"global_step": 2, "weights": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1  # the previous checkpoint, whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left behind
