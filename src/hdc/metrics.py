"""The metrics a classifier logs: torchmetrics collections, and the wide term's mix losses summed over
batches and ranks."""

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from hdc.models.wide import MIXES, SCALES, mix_losses


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """{prefix}acc and {prefix}f1 (macro)."""
    metrics = {"acc": MulticlassAccuracy(num_classes, average="micro"),
               "f1": MulticlassF1Score(num_classes, average="macro")}  # fmt: skip
    return MetricCollection(metrics, prefix=prefix)


def part_metrics(num_classes: int, prefix: str, parts: tuple[str, ...]) -> MetricCollection:
    """{prefix}acc_{part}: each part's accuracy alone."""
    return MetricCollection({f"acc_{part}": MulticlassAccuracy(num_classes, average="micro") for part in parts},
                            prefix=prefix)  # fmt: skip


class MixLosses(Metric):
    """The mean cross-entropy of every mix of the wide term at every scale: (mixes, scales), over
    documents and ranks (hdc.models.wide.mix_losses)."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.zeros(len(MIXES), len(SCALES)), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, net: torch.Tensor, bag: torch.Tensor, labels: torch.Tensor) -> None:
        self.total += mix_losses(net, bag, labels)
        self.count += len(labels)

    def compute(self) -> torch.Tensor:
        return self.total / self.count
