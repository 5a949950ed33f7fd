"""The LightningModule: a document classifier with its loss, metrics and optimizer, and the encoder that feeds it."""

from collections.abc import Callable

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix

from hdc.data.batching import Batch
from hdc.data.vocab import DocumentEncoder
from hdc.metrics import MixLosses, classification_metrics, part_metrics
from hdc.models import Factory, spec
from hdc.models.wide import choose_mix
from hdc.optim import check_finite, check_resumed_schedule, clip_gradients, optimizers

CHECKPOINT_FORMAT = 2  # the "hdc" entry's "format": hdc.checkpoint reads this one and refuses any other


class DocumentClassifier(L.LightningModule):
    """A net that reads Batches (hdc.models: the HAN, or fastText's bag), trained by cross-entropy, and
    optionally a wide term beside it (hdc.models.wide.WideTerm), fitted before training and mixed with
    the net's answer by the mix chosen on validation after each epoch.

    The loss and train/* are the net's alone: the fitted wide term is not trained, and it knows its
    training documents by heart. Validation and test answers are kept until the epoch's end, where the
    mix is chosen (validation) and the epoch's metrics are computed with it; with a wide term, each
    part's accuracy too (acc_net, acc_wide: whether the hierarchy pays, in one run). A checkpoint holds
    the parts as specs, the label names and the encoder: hdc.checkpoint.load_classifier builds it again.
    """

    def __init__(
        self,
        vocab_size: int,
        label_names: list[str],
        net: Factory,
        wide: Factory | None = None,
        label_smoothing: float = 0.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: dict | None = None,
        encoder: DocumentEncoder | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "wide", "encoder", "optimizer", "scheduler"])
        self.hparams.update(net=spec(net), wide=spec(wide))  # plain values: checkpoints load with weights_only=True
        self.optimizer, self.scheduler, self.encoder = optimizer, scheduler, encoder
        self.label_names = list(label_names)
        classes = len(self.label_names)
        self.net = net(vocab_size=vocab_size, num_classes=classes)
        self.wide = wide(vocab_size=vocab_size, num_classes=classes) if wide else None
        self.train_metrics = classification_metrics(classes, "train/")
        self.val_metrics = classification_metrics(classes, "val/")
        self.test_metrics = classification_metrics(classes, "test/")
        parts = ("net", "wide") if wide else ()
        self.val_parts, self.test_parts = part_metrics(classes, "val/", parts), part_metrics(classes, "test/", parts)
        self.mix_losses = MixLosses()
        self.register_buffer("val_acc_best", torch.tensor(0.0))  # in the state_dict: a resumed run keeps its best
        self.val_confusion = MulticlassConfusionMatrix(classes)  # drawn by the AttentionHeatmaps callback
        self._outputs: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The answer's logits, word weights, sentence weights."""
        parts, words, sentences = self._parts(batch)
        return self._answer(parts), words, sentences

    def _parts(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Each part's logits ({"net": ...} and, with a wide term, "wide"), word and sentence weights."""
        logits, words, sentences = self.net(*batch.inputs)
        parts = {"net": logits} if self.wide is None else {"net": logits, "wide": self.wide(*batch.inputs)}
        return parts, words, sentences

    def _answer(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.wide.answer(parts["net"], parts["wide"]) if "wide" in parts else parts["net"]

    def _loss(self, logits: torch.Tensor, batch: Batch, stage: str) -> torch.Tensor:
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.hparams.label_smoothing)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(batch),
                 sync_dist=stage != "train")  # fmt: skip
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        logits = self.net(*batch.inputs)[0]
        loss = self._loss(logits, batch, "train")
        check_finite(self, loss)  # before the update: weights and checkpoints stay good
        self.train_metrics.update(logits, batch.labels)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._keep(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._keep(batch, "test")

    def _keep(self, batch: Batch, stage: str) -> None:
        parts = self._parts(batch)[0]
        self._loss(parts["net"], batch, stage)
        self._outputs.append(({name: logits.detach() for name, logits in parts.items()}, batch.labels))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._outputs = []
            return
        if self._outputs and "wide" in self._outputs[0][0]:  # no batches (limit_val_batches=0): keep the mix
            self.mix_losses.reset()
            for parts, labels in self._outputs:
                self.mix_losses.update(parts["net"], parts["wide"], labels)
            losses = self.mix_losses.compute()  # summed over ranks
            self.wide.mix.copy_(torch.tensor(choose_mix(losses)))
            self.log("val/mix_net", self.wide.mix[0])
            self.log("val/mix_loss", losses.nan_to_num(nan=float("inf")).min())  # the chosen mix's: the lowest
        self.val_confusion.reset()
        self._score("val")
        self.val_acc_best.copy_(torch.maximum(self.val_acc_best, self.val_metrics["acc"].compute()))
        self.log("val/acc_best", self.val_acc_best, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self._score("test")

    def _score(self, stage: str) -> None:
        """The epoch's metrics, of the answers with the mix chosen now."""
        metrics, parts_metrics = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_parts")
        for parts, labels in self._outputs:
            answer = self._answer(parts)
            metrics.update(answer, labels)
            if parts_metrics:  # with a wide term: each part alone too
                for name, logits in parts.items():
                    parts_metrics[f"acc_{name}"].update(logits, labels)
            if stage == "val":
                self.val_confusion.update(answer, labels)
        self._outputs = []
        self.log_dict(metrics, prog_bar=True)
        self.log_dict(parts_metrics)

    def configure_optimizers(self):
        return optimizers(self.optimizer, self.scheduler, self)

    def on_train_start(self) -> None:
        check_resumed_schedule(self.trainer)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        clip_gradients(self.trainer, optimizer, gradient_clip_val, gradient_clip_algorithm)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        check_finite(self)  # a checkpoint never keeps weights that a step overflowed
        checkpoint["hdc"] = {"format": CHECKPOINT_FORMAT, "encoder": self.encoder and self.encoder.to_dict()}
