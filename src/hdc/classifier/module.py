"""The LightningModule: a document classifier with its loss, metrics and optimizer, and the encoder that feeds it."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from hdc.classifier.optim import check_finite, check_resumed_schedule, clip_gradients, optimizers
from hdc.classifier.task import MixLosses, Task, ThresholdCounts
from hdc.data.batching import Batch
from hdc.data.vocab import DocumentEncoder
from hdc.models import Factory, NetOutput, spec

CHECKPOINT_FORMAT = 4  # the "hdc" entry's "format": hdc.classifier.checkpoint reads this one and refuses any other


@dataclass(frozen=True)
class Answer:
    """A classifier's answer to a batch: its logits [documents, labels], each part's own (parts["net"],
    and parts["wide"] with a wide term) and the net's output, whose attention explains it."""

    logits: torch.Tensor
    parts: dict[str, torch.Tensor]
    net: NetOutput
    occurrences: tuple[torch.Tensor, ...] | None = None  # asked for (explained=True): the wide term's n-grams


class DocumentClassifier(L.LightningModule):
    """A net that reads Batches (hdc.models: the HAN, or fastText's bag) and optionally a wide term
    beside it (hdc.models.wide.WideTerm: fitted before training, never trained, so the loss and train/*
    are the net's alone), for one label per document or a set (`multi_label`; hdc.classifier.task.Task says what
    differs). Validation and test answers are kept to the epoch's end, where the mix and a label set's
    `threshold` ("global", "per_label", or a fixed number) are chosen on validation and the epoch's
    metrics computed with them, each part's alone too (acc_net, acc_wide: whether the hierarchy pays)."""

    def __init__(
        self,
        vocab_size: int,
        label_names: list[str],
        net: Factory,
        wide: Factory | None = None,
        label_smoothing: float = 0.0,
        multi_label: bool = False,
        threshold: Literal["global", "per_label"] | float = "global",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: dict | None = None,
        encoder: DocumentEncoder | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False, ignore=["net", "wide", "encoder", "optimizer", "scheduler"])
        self.hparams.update(net=spec(net), wide=spec(wide))  # plain values: checkpoints load with weights_only=True
        self.optimizer, self.scheduler, self.encoder = optimizer, scheduler, encoder
        self.label_names = list(label_names)
        self.task = task = Task(len(self.label_names), multi_label)
        self.net = net(vocab_size=vocab_size, num_classes=task.num_labels)
        self.wide = wide(vocab_size=vocab_size, num_classes=task.num_labels) if wide else None
        self.train_metrics, self.val_metrics, self.test_metrics = map(task.metrics, ("train/", "val/", "test/"))
        self.part_names = parts = ("net", "wide") if wide else ("net",)  # the net's own score, always
        self.val_parts, self.test_parts = task.part_metrics("val/", parts), task.part_metrics("test/", parts)
        self.mix_losses, self.threshold_counts = MixLosses(task), ThresholdCounts(task.num_labels)
        chosen = threshold in ("global", "per_label")  # a label set's decisions: chosen on validation, or fixed
        if not chosen and not (isinstance(threshold, int | float) and 0 < threshold < 1):
            raise ValueError(f"threshold={threshold!r}: global, per_label, or a probability between 0 and 1")
        fixed = 0.5 if chosen else float(threshold)
        self.register_buffer("thresholds", torch.full((task.num_labels,), fixed))
        # Each part's own, chosen on its own answers: a part is judged at its best, not at the answer's.
        self.register_buffer("part_thresholds", torch.full((len(parts), task.num_labels), fixed))
        self.register_buffer("val_best", torch.tensor(0.0))  # in the state_dict: a resumed run keeps its best
        self.val_confusion = None if multi_label else MulticlassConfusionMatrix(task.num_labels)  # for the heatmaps
        self._outputs: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []

    @torch.no_grad()
    def start_at_prior(self, label_ids: torch.Tensor, documents: int) -> None:
        """Start the net's output bias at the training split's label prior (hdc.classifier.task.Task.prior_logits)."""
        self.net.output_bias.copy_(self.task.prior_logits(label_ids, documents))

    def forward(self, batch: Batch, explained: bool = False) -> Answer:
        """The answer, each part's logits and the net's output (its attention); `explained`: also the wide
        term's n-gram occurrences (WideTerm.explained), read in the same pass over the bag."""
        net, occurrences = self.net(*batch.inputs), None
        parts = {"net": net.logits}
        if self.wide is not None and explained:
            parts["wide"], occurrences = self.wide.explained(*batch.inputs)
        elif self.wide is not None:
            parts["wide"] = self.wide(*batch.inputs)
        return Answer(self.answer(parts), parts, net, occurrences)

    def answer(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The answer's logits from the parts': the wide term's mix of them, or the net's alone."""
        return self.wide.answer(parts["net"], parts["wide"]) if "wide" in parts else parts["net"]

    def _loss(self, logits: torch.Tensor, batch: Batch, stage: str) -> torch.Tensor:
        loss = self.task.loss(logits, self.task.targets(batch), self.hparams.label_smoothing)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(batch),
                 sync_dist=stage != "train")  # fmt: skip
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        logits = self.net(*batch.inputs).logits
        loss = self._loss(logits, batch, "train")
        check_finite(self, loss)  # before the update: weights and checkpoints stay good
        self.train_metrics.update(self.task.decisions(logits.detach(), self.thresholds), self.task.targets(batch))
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._keep(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._keep(batch, "test")

    def _keep(self, batch: Batch, stage: str) -> None:
        parts = self(batch).parts
        self._loss(parts["net"], batch, stage)
        self._outputs.append(({name: logits.detach() for name, logits in parts.items()}, self.task.targets(batch)))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._outputs = []
            return
        # Chosen on this epoch's answers, over all ranks; an empty validation loader keeps them as they are.
        if self.wide is not None and self._outputs:
            mix, loss = self.mix_losses.choose(
                (parts["net"], parts["wide"], targets) for parts, targets in self._outputs
            )
            self.wide.mix.copy_(torch.tensor(mix))
            self.log_dict({"val/mix_net": mix[0], "val/mix_loss": loss})  # the chosen mix's calibrated loss
        if self._outputs and self.task.multi_label and isinstance(self.hparams.threshold, str):
            per_label = self.hparams.threshold == "per_label"
            answers = ((self.answer(parts), targets) for parts, targets in self._outputs)
            self.thresholds.copy_(self.threshold_counts.choose(answers, per_label))
            self.log("val/threshold", self.thresholds.mean())
            for i, name in enumerate(self.part_names):
                answers = ((parts[name], targets) for parts, targets in self._outputs)
                self.part_thresholds[i] = self.threshold_counts.choose(answers, per_label)
        self._score("val")
        metric = self.task.metric
        self.val_best.copy_(torch.maximum(self.val_best, self.val_metrics[metric].compute()))
        self.log(f"val/{metric}_best", self.val_best, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        if self.wide is not None:  # the tested weights' own mix: the best epoch's, not the last validation's
            self.log("test/mix_net", self.wide.mix[0])
        self._score("test")

    def _score(self, stage: str) -> None:
        """The epoch's metrics, of the answers with the mix and thresholds chosen now."""
        metrics, parts_metrics = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_parts")
        confusion = self.val_confusion if stage == "val" else None
        if confusion is not None:
            confusion.reset()
        for parts, targets in self._outputs:
            metrics.update(self.task.decisions(self.answer(parts), self.thresholds), targets)
            for i, name in enumerate(self.part_names):  # each part alone too, at its own thresholds
                parts_metrics[f"{self.task.metric}_{name}"].update(
                    self.task.decisions(parts[name], self.part_thresholds[i]), targets
                )
            if confusion is not None:
                confusion.update(self.answer(parts), targets)
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
        checkpoint["state_dict"] = compact(checkpoint["state_dict"])

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = expanded(checkpoint["state_dict"])  # before Lightning loads the weights


def compact(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state with each large table that is mostly zero rows stored by its nonzero rows (a sparse
    tensor): the bags' rows for n-grams no training document weighs stay 0, and dense they are most of a
    checkpoint (a million bigram buckets x the labels). expanded() gives the tables back."""
    result = {}
    for name, value in state.items():
        if value.is_floating_point() and not value.is_sparse and value.numel() >= 100_000:
            used = value.reshape(len(value), -1).ne(0).any(1).sum()
            if used < len(value) // 2:
                value = value.to_sparse(sparse_dim=1)
        result[name] = value
    return result


def expanded(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """compact()'s state as the module holds it: every table dense."""
    return {name: value.to_dense() if value.is_sparse else value for name, value in state.items()}
