"""Callbacks that tests add to a training run (`+callbacks.name._target_=tests.recorders....`) to see inside it."""

import json
import os
import signal
from pathlib import Path

import lightning as L


class SeenDocuments(L.Callback):
    """Writes <dirpath>/seen_rank<r>.json: the training documents (positions in the split) this rank
    trained on in the first epoch, and the size of the training split."""

    def __init__(self, dirpath: str):
        self.dirpath, self.positions = Path(dirpath), []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == 0:
            self.positions += batch.positions.tolist()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 0:
            record = {"positions": self.positions, "split_size": len(trainer.datamodule.encoded("train"))}
            (self.dirpath / f"seen_rank{trainer.global_rank}.json").write_text(json.dumps(record))


class KillAt(L.Callback):
    """SIGKILLs the training process when it is about to take step `step`: a crash mid-epoch, no cleanup."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
