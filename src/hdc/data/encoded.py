"""Raw documents -> an encoded split: word ids in flat arrays, built once and cached as an Arrow file.

Tokenizing is by far the costliest step between raw text and a batch (a few thousand IMDB reviews per
second), so each split is encoded once per tokenizer and caps, like a `datasets` map cache; every
epoch then reads ids from a memory-mapped file and batching costs almost nothing.
"""

from collections.abc import Iterable, Sequence
from itertools import chain, islice
from pathlib import Path

import numpy as np
import pyarrow as pa

from hdc.data.vocab import Document, DocumentEncoder
from hdc.paths import written_atomically


class EncodedDocuments:
    """Documents as the flat arrays of Arrow's list<list<int32>>.

    Sentence s is token_ids[sentence_starts[s]:sentence_starts[s + 1]]; document d owns sentences
    document_starts[d]:document_starts[d + 1]; labels[d] is its label id.
    """

    def __init__(self, token_ids: np.ndarray, sentence_starts: np.ndarray, document_starts: np.ndarray, labels):
        self.token_ids, self.sentence_starts, self.document_starts = token_ids, sentence_starts, document_starts
        self.labels = np.asarray(labels, dtype=np.int64)

    @classmethod
    def from_documents(cls, documents: Sequence[Document], labels: Sequence[int]) -> "EncodedDocuments":
        sentences = list(chain.from_iterable(documents))
        return cls(
            np.fromiter(chain.from_iterable(sentences), dtype=np.int32),
            np.cumsum([0, *map(len, sentences)], dtype=np.int64),
            np.cumsum([0, *map(len, documents)], dtype=np.int64),
            labels,
        )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sentence_counts(self) -> np.ndarray:
        return np.diff(self.document_starts)

    @property
    def token_counts(self) -> np.ndarray:
        return np.diff(self.sentence_starts[self.document_starts])

    def to_arrow(self) -> pa.Table:
        sentences = pa.ListArray.from_arrays(self.sentence_starts, pa.array(self.token_ids, pa.int32()))
        return pa.table({"ids": pa.ListArray.from_arrays(self.document_starts, sentences), "label": self.labels})

    @classmethod
    def from_arrow(cls, table: pa.Table) -> "EncodedDocuments":
        documents = table.column("ids").combine_chunks()
        if documents.offset or documents.values.offset:  # a sliced array: start its offsets at 0
            documents = pa.concat_arrays([pa.array([], documents.type), documents])
        sentences = documents.values
        return cls(
            sentences.values.to_numpy(),
            sentences.offsets.to_numpy().astype(np.int64),
            documents.offsets.to_numpy().astype(np.int64),
            table.column("label").to_numpy(),
        )

    def save(self, path: Path) -> None:
        """Write atomically: an interrupted run never leaves a truncated cache behind."""
        table = self.to_arrow()
        with written_atomically(path) as partial, pa.ipc.new_file(str(partial), table.schema) as writer:
            writer.write_table(table)

    @classmethod
    def load(cls, path: Path) -> "EncodedDocuments":
        return cls.from_arrow(pa.ipc.open_file(pa.memory_map(str(path))).read_all())


def encode_documents(
    documents: Iterable[tuple[str, int]], encoder: DocumentEncoder, chunk_size: int = 2048
) -> EncodedDocuments:
    """Encode a stream of (text, label) in chunks (one tokenizer call per chunk)."""
    stream = iter(documents)
    token_ids, sentence_lengths, sentence_counts, labels = [], [], [], []
    while chunk := list(islice(stream, chunk_size)):
        texts, chunk_labels = zip(*chunk, strict=True)
        part = EncodedDocuments.from_documents(encoder.encode(list(texts)), chunk_labels)
        token_ids.append(part.token_ids)
        sentence_lengths.append(np.diff(part.sentence_starts))
        sentence_counts.append(part.sentence_counts)
        labels.append(part.labels)

    def starts(lengths: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(np.concatenate(lengths or [[]]), dtype=np.int64)]).astype(np.int64)

    return EncodedDocuments(
        np.concatenate(token_ids or [np.zeros(0, np.int32)]),
        starts(sentence_lengths),
        starts(sentence_counts),
        np.concatenate(labels or [np.zeros(0, np.int64)]),
    )
