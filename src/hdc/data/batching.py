"""Encoded documents -> length-bucketed batches of tensors: the one place where lists become tensors."""

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from itertools import chain, islice

import torch
from torch.utils.data import IterableDataset

from hdc.data.vocab import PAD_ID, Document, DocumentEncoder


@dataclass
class Batch:
    """All sentences of a batch stacked in one tensor, document after document.

    word_ids[n, :word_counts[n]] are the words of sentence n; document b owns the next
    sentence_counts[b] rows. Padding is PAD_ID.
    """

    word_ids: torch.Tensor  # [sentences, max words] int64
    word_counts: torch.Tensor  # [sentences] int64
    sentence_counts: torch.Tensor  # [documents] int64
    labels: torch.Tensor  # [documents] int64

    def __len__(self) -> int:
        return len(self.sentence_counts)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(**{field.name: getattr(self, field.name).to(device) for field in fields(self)})


def padding_fractions(batches: Iterable[Batch]) -> tuple[float, float]:
    """Shares of padding over batches: of the word slots ([sentences, max words]) and of the sentence
    slots ([documents, max sentences]) that a document-major layout would need."""
    words = word_slots = sentences = sentence_slots = 0
    for batch in batches:
        words += int(batch.word_counts.sum())
        word_slots += batch.word_ids.numel()
        sentences += int(batch.sentence_counts.sum())
        sentence_slots += len(batch) * int(batch.sentence_counts.max())
    return 1 - words / word_slots, 1 - sentences / sentence_slots


def collate(documents: list[Document], labels: list[int]) -> Batch:
    sentences = list(chain.from_iterable(documents))
    word_counts = torch.tensor([len(s) for s in sentences])
    word_ids = torch.full((len(sentences), int(word_counts.max())), PAD_ID)
    word_ids[torch.arange(word_ids.size(1)) < word_counts[:, None]] = torch.tensor(list(chain.from_iterable(sentences)))
    return Batch(word_ids, word_counts, torch.tensor([len(d) for d in documents]), torch.tensor(labels))


class BucketedBatches(IterableDataset):
    """Streams batches of documents of similar length.

    Reads `bucket_size` documents at a time, encodes them in one call, sorts them by length and cuts
    them into batches, so that a batch is padded only up to its own longest sentence and document
    (the HAN paper's bucketing). With `shuffle_seed`, the batch order within a bucket is shuffled.
    """

    def __init__(
        self,
        documents: Iterable[tuple[str, int]],
        encoder: DocumentEncoder,
        batch_size: int,
        bucket_size: int,
        shuffle_seed: int | None = None,
    ):
        self.documents, self.encoder = documents, encoder
        self.batch_size, self.bucket_size = batch_size, max(bucket_size, batch_size)
        self.shuffle_seed = shuffle_seed

    def __iter__(self) -> Iterator[Batch]:
        rng = random.Random(self.shuffle_seed)
        stream = iter(self.documents)
        while bucket := list(islice(stream, self.bucket_size)):
            texts, labels = zip(*bucket, strict=True)
            encoded = self.encoder.encode(list(texts))
            order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i]), sum(map(len, encoded[i]))))
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            if self.shuffle_seed is not None:
                rng.shuffle(batches)
            for batch in batches:
                yield collate([encoded[i] for i in batch], [labels[i] for i in batch])
