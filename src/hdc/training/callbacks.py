"""Training callbacks: attention heatmaps of fixed validation documents, epoch after epoch; RNG state in
checkpoints; the latest state as checkpoints/last.ckpt."""

from itertools import islice
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from hdc.inference.predictor import Predictor
from hdc.viz.confusion import confusion_matrix_png
from hdc.viz.heatmap import attention_html


class AttentionHeatmaps(L.Callback):
    """At the end of every validation epoch, writes the attention of the first `num_documents`
    validation documents to `dirpath/epoch_N.html`, and the validation confusion matrix to
    `dirpath/confusion_epoch_N.png`; with a W&B logger, logs both (wandb.Html, wandb.Image), so
    that one watches attention sharpen as training goes."""

    def __init__(self, dirpath: str, num_documents: int = 8):
        self.dirpath, self.num_documents = Path(dirpath), num_documents
        self.documents: list[tuple[str, int]] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # At the end, not the epoch's end: after the module's on_validation_epoch_end, which fills the
        # confusion matrix once it has chosen the wide term's mix (hdc.classifier.module.DocumentClassifier).
        if trainer.sanity_checking or self.num_documents <= 0:
            return
        confusion = pl_module.val_confusion  # single-label only; computed on every rank (a sum over ranks)
        confusion = confusion.compute().tolist() if confusion is not None else None
        if not trainer.is_global_zero:
            return
        if self.documents is None:  # the same documents every epoch
            self.documents = list(islice(trainer.datamodule.val_documents(), self.num_documents))
        texts, labels = zip(*self.documents, strict=True)
        predictions = Predictor(pl_module, pl_module.device).predict(list(texts))
        names = [pl_module.label_names[label] if isinstance(label, int) else [pl_module.label_names[i] for i in label]
                 for label in labels]  # fmt: skip
        epoch = trainer.current_epoch
        self.dirpath.mkdir(parents=True, exist_ok=True)
        html_path, confusion_path = self.dirpath / f"epoch_{epoch}.html", self.dirpath / f"confusion_epoch_{epoch}.png"
        html = attention_html(predictions, names, f"Validation attention after epoch {epoch}")
        html_path.write_text(html, encoding="utf-8")
        media = {"val/attention": html}
        if confusion is not None:
            confusion_matrix_png(confusion, pl_module.label_names, confusion_path)
            media["val/confusion_matrix"] = confusion_path
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                wrapped = {k: wandb.Html(v) if k == "val/attention" else wandb.Image(str(v)) for k, v in media.items()}
                logger.experiment.log(wrapped, step=trainer.global_step)


class RngState(L.Callback):
    """Keeps torch's random state in checkpoints: after a resume, dropout draws what an uninterrupted
    run would have drawn (Lightning restores weights, optimizer, loops and data position, not this)."""

    def state_dict(self) -> dict:
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class LatestCheckpoint(ModelCheckpoint):
    """`dirpath/<filename>.ckpt` (last.ckpt) holds the latest state: every `every_n_train_steps` steps,
    so a killed run loses at most that many, and when training ends, so a finished run keeps its final
    weights whether or not its last epoch was its best (Lightning's save_last writes only beside a new
    best checkpoint)."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.dirpath is not None and trainer.global_step > 0:
            trainer.save_checkpoint(Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}")
