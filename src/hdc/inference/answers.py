"""The one inference loop: a classifier's Answers to batches, in their order, without gradients and under a
precision's autocast. Predictor (raw text), eval.py (a split) and the faithfulness measures read a model
through it."""

from collections.abc import Iterable, Iterator

import torch

from hdc.classifier.module import Answer, DocumentClassifier
from hdc.data.batching import Batch
from hdc.precision import autocast


def answers(
    model: DocumentClassifier,
    batches: Iterable[Batch],
    device: str | torch.device = "cpu",
    precision: str = "32-true",
    explained: bool = False,
) -> Iterator[tuple[Batch, Answer]]:
    """(batch on `device`, the model's Answer) for each batch; `explained`: with the wide term's n-grams.
    The contexts close before each yield, so that what the caller does with an answer (gradients, fp32
    sums) runs outside them."""
    for batch in batches:
        batch = batch.to(device)
        with torch.no_grad(), autocast(device, precision):
            answer = model(batch, explained=explained)
        yield batch, answer
