"""The task a label column sets: one label per document (softmax, cross-entropy, accuracy), or a set of
labels per document (multi-label: a sigmoid per label, binary cross-entropy, micro-F1, a decision
threshold chosen on validation). The one place where the two differ; everything else reads a Task.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)
from torchmetrics.functional import classification as functional

from hdc.data.batching import Batch
from hdc.models.wide import MIXES, SCALES, choose_mix, mix_losses

# Decision thresholds a multi-label model may take, chosen on validation: probabilities from 0.05 to 0.95.
THRESHOLDS = torch.arange(1, 20) / 20


@dataclass(frozen=True)
class Task:
    num_labels: int
    multi_label: bool = False

    @property
    def metric(self) -> str:
        """The metric that checkpointing, early stopping and sweeps follow (train.yaml's `metric`)."""
        return "f1_micro" if self.multi_label else "acc"

    def targets(self, batch: Batch) -> torch.Tensor:
        """Class ids [documents], or multi-hot label sets [documents, labels] (floats: BCE's targets)."""
        if not self.multi_label:
            return batch.labels
        counts = batch.label_counts
        owners = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts,
                                         output_size=len(batch.labels))  # known: no host sync  # fmt: skip
        hot = torch.zeros(len(counts), self.num_labels, device=counts.device)
        hot[owners, batch.labels] = 1.0
        return hot

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0, reduction="mean"):
        """Cross-entropy, or binary cross-entropy summed over labels (mean or sum over documents). Label
        smoothing moves each target toward the uniform answer by `label_smoothing`: torch's for one label,
        each label's 0/1 toward 1/2 for sets."""
        if not self.multi_label:
            return F.cross_entropy(logits, targets, label_smoothing=label_smoothing, reduction=reduction)
        targets = targets * (1 - label_smoothing) + label_smoothing / 2
        per_document = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
        return per_document.sum() if reduction == "sum" else per_document.mean()

    def prior_logits(self, label_ids: torch.Tensor, documents: int) -> torch.Tensor:
        """The logits [labels] that answer every document with the training split's label frequencies
        (`label_ids`: every document's label ids, flat): the log prior, or each label's log-odds for sets.
        A classifier's bias starts here: at zero, a label set's first hundreds of steps only push every
        sigmoid down to its label's rarity. Add-one (add-half) smoothed: a label no document holds stays finite."""
        counts = torch.bincount(label_ids, minlength=self.num_labels).double()
        if not self.multi_label:
            return ((counts + 1) / (documents + self.num_labels)).log().float()
        frequency = (counts + 0.5) / (documents + 1)
        return (frequency / (1 - frequency)).log().float()

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().sigmoid() if self.multi_label else logits.float().softmax(-1)

    def decisions(self, logits: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
        """What metrics read: the logits (single-label: the argmax is the answer), or 0/1 per label."""
        return (self.probabilities(logits) >= thresholds).int() if self.multi_label else logits

    def scores(self, logits: torch.Tensor, targets: torch.Tensor, names: list[str], thresholds: torch.Tensor) -> dict:
        """What eval.py reports: the test metrics train.py logs (same names and definitions), each
        label's precision, recall, F1 and support (documents holding it), the documents; single-label,
        the confusion matrix too (rows: true label, columns: predicted)."""
        k, decided = self.num_labels, self.decisions(logits, thresholds)
        kind, task = ("multilabel", {"num_labels": k}) if self.multi_label else ("multiclass", {"num_classes": k})

        def per_label(name: str) -> dict[str, float]:
            metric = getattr(functional, f"{kind}_{name}")
            return dict(zip(names, metric(decided, targets, **task, average=None).tolist(), strict=True))

        support = targets.sum(0) if self.multi_label else torch.bincount(targets, minlength=k)
        scores = {f"test/{name}_per_class": per_label(name) for name in ("precision", "recall", "f1_score")}
        scores["test/f1_per_class"] = scores.pop("test/f1_score_per_class")
        scores["test/support_per_class"] = dict(zip(names, support.int().tolist(), strict=True))
        scores |= {"test/loss": self.loss(logits, targets).item(), "test/documents": len(targets), "label_names": names}
        metrics = self.metrics("test/")
        metrics.update(decided, targets)
        scores |= {name: value.item() for name, value in metrics.compute().items()}
        if not self.multi_label:
            scores["test/confusion_matrix"] = functional.multiclass_confusion_matrix(logits, targets, k).tolist()
        return scores

    def metrics(self, prefix: str) -> MetricCollection:
        """acc and f1 (macro); multi-label: f1_micro, f1_macro, precision_micro, recall_micro and
        subset_acc (every label of a document right)."""
        k = self.num_labels
        if not self.multi_label:
            metrics = {"acc": MulticlassAccuracy(k, average="micro"), "f1": MulticlassF1Score(k, average="macro")}
        else:
            metrics = {"f1_micro": MultilabelF1Score(k, average="micro"),
                       "f1_macro": MultilabelF1Score(k, average="macro"),
                       "precision_micro": MultilabelPrecision(k, average="micro"),
                       "recall_micro": MultilabelRecall(k, average="micro"),
                       "subset_acc": MultilabelExactMatch(k)}  # fmt: skip
        return MetricCollection(metrics, prefix=prefix)

    def part_metrics(self, prefix: str, parts: tuple[str, ...]) -> MetricCollection:
        """{prefix}{metric}_{part}: each part's answer alone."""
        k = self.num_labels
        one = (
            (lambda: MultilabelF1Score(k, average="micro"))
            if self.multi_label
            else (lambda: MulticlassAccuracy(k, average="micro"))
        )
        return MetricCollection({f"{self.metric}_{part}": one() for part in parts}, prefix=prefix)


class ThresholdCounts(Metric):
    """True positives, false positives and false negatives of every label at every threshold of
    THRESHOLDS: (thresholds, labels) counts, summed over batches and ranks."""

    full_state_update = False

    def __init__(self, num_labels: int):
        super().__init__()
        for name in ("tp", "fp", "fn"):
            self.add_state(name, torch.zeros(len(THRESHOLDS), num_labels), dist_reduce_fx="sum")

    def update(self, probabilities: torch.Tensor, targets: torch.Tensor) -> None:
        predicted = (
            probabilities[None] >= THRESHOLDS.to(probabilities.device)[:, None, None]
        )  # (thresholds, docs, labels)
        truth = targets[None].bool()
        self.tp += (predicted & truth).sum(1)
        self.fp += (predicted & ~truth).sum(1)
        self.fn += (~predicted & truth).sum(1)

    def compute(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.tp, self.fp, self.fn

    def choose(self, answers: Iterable[tuple[torch.Tensor, torch.Tensor]], per_label: bool) -> torch.Tensor:
        """Thresholds [labels] (choose_thresholds) for (logits, multi-hot targets) batches, counted afresh."""
        self.reset()
        for logits, targets in answers:
            self.update(logits.float().sigmoid(), targets)
        return choose_thresholds(*(counts.cpu() for counts in self.compute()), per_label=per_label)


def choose_thresholds(
    tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, per_label: bool = False, min_positives: int = 5
) -> torch.Tensor:
    """Thresholds [labels] from (thresholds, labels) counts: the one of THRESHOLDS with the best micro-F1
    over all labels (ties: the nearest 0.5); with `per_label`, each label's own best F1 where validation holds
    at least `min_positives` documents with it (fewer: too few to choose by, so the global one)."""
    f1 = 2 * tp.sum(1) / (2 * tp.sum(1) + fp.sum(1) + fn.sum(1)).clamp(min=1)
    best = _best(f1)
    thresholds = torch.full((tp.size(1),), float(best))
    if per_label:
        own = torch.stack([_best(f1) for f1 in (2 * tp / (2 * tp + fp + fn).clamp(min=1)).T])
        enough = (tp + fn)[0] >= min_positives  # positives do not depend on the threshold
        thresholds = torch.where(enough, own, thresholds)
    return thresholds


def _best(f1: torch.Tensor) -> torch.Tensor:
    """The threshold of the highest F1 (one per threshold of THRESHOLDS); ties: the one nearest 0.5."""
    tied = torch.isclose(f1, f1.max())
    return THRESHOLDS[int(torch.where(tied, -(THRESHOLDS - 0.5).abs(), -float("inf")).argmax())]


class MixLosses(Metric):
    """The wide term's mix losses (hdc.models.wide.mix_losses) under the task's loss, mean over
    documents: (mixes, scales), summed over batches and ranks."""

    full_state_update = False

    def __init__(self, task: Task):
        super().__init__()
        self.task = task
        self.add_state("total", torch.zeros(len(MIXES), len(SCALES)), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, net: torch.Tensor, bag: torch.Tensor, targets: torch.Tensor) -> None:
        self.total += mix_losses(net, bag, targets, lambda logits, y: self.task.loss(logits, y, reduction="sum"))
        self.count += len(targets)

    def compute(self) -> torch.Tensor:
        return self.total / self.count

    def choose(self, outputs: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> tuple[tuple, float]:
        """The mix (hdc.models.wide.choose_mix) and its calibrated loss, for (net, bag, targets) batches
        counted afresh."""
        self.reset()
        for net, bag, targets in outputs:
            self.update(net, bag, targets)
        losses = self.compute()
        return choose_mix(losses), float(losses.nan_to_num(nan=float("inf")).min())
