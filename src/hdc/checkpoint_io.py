"""Checkpoint files that are whole or absent: never a truncated last.ckpt after a kill or a full disk."""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hdc.errors import HdcError
from hdc.paths import written_atomically


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's save goes through an fsspec transaction that writes to the system temp folder and
    then moves the file: across file systems that move is a copy, which a kill can cut short. Here
    the checkpoint is written beside its target, flushed to disk, then renamed over it (atomic on
    POSIX). A failed write (disk full) leaves the previous checkpoint in place and stops training
    with one line that says so."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        try:
            with written_atomically(path) as partial, open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
        except OSError as error:
            raise HdcError(
                f"Could not save checkpoint {path}: {error.strerror or error} (disk full?); "
                f"the previous checkpoint there, if any, is intact"
            ) from None
