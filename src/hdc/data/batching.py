"""Encoded documents -> length-bucketed batches of tensors: the one place where arrays become tensors."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch.utils.data import Dataset

from hdc.data.encoded import EncodedDocuments
from hdc.data.vocab import PAD_ID, Document
from hdc.errors import DataError


@dataclass
class Batch:
    """All sentences of a batch stacked in one tensor, document after document.

    word_ids[n, :word_counts[n]] are the words of sentence n; document b owns the next
    sentence_counts[b] rows, cut into paragraphs of paragraph_sizes sentences. Padding is PAD_ID.
    """

    word_ids: torch.Tensor  # [sentences, max words] int64
    word_counts: torch.Tensor  # [sentences] int64
    sentence_counts: torch.Tensor  # [documents] int64
    paragraph_sizes: torch.Tensor  # [paragraphs] int64: sentences per paragraph, document after document
    labels: torch.Tensor  # [labels] int64: each document's label ids, document after document
    positions: torch.Tensor  # [documents] int64: each document's position in its split
    label_counts: torch.Tensor  # [documents] int64: 1 each in a single-label split (labels[b] is b's label)

    def __len__(self) -> int:
        return len(self.sentence_counts)

    @property
    def inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """What a net reads (hdc.models): the batch without its labels and positions."""
        return self.word_ids, self.word_counts, self.sentence_counts, self.paragraph_sizes

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    def pin_memory(self) -> "Batch":
        """Page-locked copies (what a DataLoader with pin_memory=True calls): copies to a GPU then
        run asynchronously, overlapping the step before."""
        return Batch(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})


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


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The concatenation of arange(start, end) over the pairs, without a Python loop."""
    lengths = ends - starts
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())


def collate(documents: EncodedDocuments, indices: np.ndarray) -> Batch:
    """The documents at `indices` as one Batch (vectorised: no loop over documents or sentences)."""
    first, last = documents.document_starts[indices], documents.document_starts[indices + 1]
    sentences = _ranges(first, last)
    word_starts, word_ends = documents.sentence_starts[sentences], documents.sentence_starts[sentences + 1]
    word_counts = word_ends - word_starts
    word_ids = np.full((len(sentences), word_counts.max()), PAD_ID, dtype=np.int64)
    word_ids[np.arange(word_ids.shape[1]) < word_counts[:, None]] = documents.token_ids[_ranges(word_starts, word_ends)]
    paragraphs = _ranges(*np.searchsorted(documents.paragraph_starts, [first, last]))
    return Batch(
        torch.from_numpy(word_ids),
        torch.from_numpy(word_counts),
        torch.from_numpy(last - first),
        torch.from_numpy(documents.paragraph_starts[paragraphs + 1] - documents.paragraph_starts[paragraphs]),
        torch.from_numpy(documents.labels[_ranges(*documents.label_starts[[indices, indices + 1]])]),
        torch.from_numpy(indices.astype(np.int64)),
        torch.from_numpy(documents.label_starts[indices + 1] - documents.label_starts[indices]),
    )


def batch_of(documents: Sequence[Document], labels: Sequence) -> Batch:
    """A Batch of documents encoded just now (e.g. for prediction), in their order."""
    return collate(EncodedDocuments.from_documents(documents, labels), np.arange(len(documents)))


class BucketedBatches(Dataset):
    """Batches of documents of similar length (the HAN paper's bucketing), as a map-style dataset.

    Documents are taken `bucket_size` at a time, sorted by length within the bucket and cut into
    batches, so that a batch is padded only up to its own longest sentence and document. With a
    `seed` (e.g. [seed, epoch]) documents are first shuffled over the whole split and the batches
    shuffled again; without one the split keeps its order (evaluation). The order is fixed when the
    object is made, so every data loader worker and process agrees on it.

    With `batch_tokens`, a batch holds documents until their words reach about that many (at most one
    document more) instead of `batch_size` documents: batches of long documents get fewer of them,
    batches of short ones more, and every step does about the same work (what a GPU wants).

    With `world_size` > 1 (distributed training) rank `rank` keeps every world_size-th batch. Ranks
    must step in lockstep, so the largest batches are first halved until the count divides evenly:
    every document is seen once per epoch, on one rank (no DistributedSampler-style repeats).
    """

    def __init__(
        self,
        documents: EncodedDocuments,
        batch_size: int,
        bucket_size: int,
        seed: int | Sequence[int] | None = None,
        rank: int = 0,
        world_size: int = 1,
        batch_tokens: int | None = None,
    ):
        self.documents = documents
        rng = np.random.default_rng(seed)
        order = np.arange(len(documents)) if seed is None else rng.permutation(len(documents))
        sentences, tokens = documents.sentence_counts, documents.token_counts
        self.batches: list[np.ndarray] = []
        for start in range(0, len(order), max(bucket_size, batch_size)):
            bucket = order[start : start + max(bucket_size, batch_size)]
            bucket = bucket[np.lexsort((tokens[bucket], sentences[bucket]))]
            if batch_tokens is None:
                self.batches += np.split(bucket, range(batch_size, len(bucket), batch_size))
            else:  # a new batch where the running word count enters the next multiple of batch_tokens
                budget = (np.cumsum(tokens[bucket]) - 1) // batch_tokens
                self.batches += np.split(bucket, np.flatnonzero(np.diff(budget)) + 1)
        if seed is not None:
            self.batches = [self.batches[i] for i in rng.permutation(len(self.batches))]
        while len(self.batches) % world_size:
            largest = max(range(len(self.batches)), key=lambda i: len(self.batches[i]))
            if len(self.batches[largest]) < 2:
                raise DataError(f"{len(documents)} documents cannot be shared evenly by {world_size} processes")
            self.batches[largest : largest + 1] = np.array_split(self.batches[largest], 2)
        self.batches = self.batches[rank::world_size]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Batch:
        return collate(self.documents, self.batches[index])
