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
    """Documents as flat arrays of offsets, as Arrow stores nested lists.

    Sentence s is token_ids[sentence_starts[s]:sentence_starts[s + 1]]; document d owns sentences
    document_starts[d]:document_starts[d + 1], and paragraph p sentences
    paragraph_starts[p]:paragraph_starts[p + 1] (every document starts a paragraph); labels[d] is its
    label id.
    """

    def __init__(
        self,
        token_ids: np.ndarray,
        sentence_starts: np.ndarray,
        document_starts: np.ndarray,
        paragraph_starts: np.ndarray,
        labels,
    ):
        self.token_ids, self.sentence_starts, self.document_starts = token_ids, sentence_starts, document_starts
        self.paragraph_starts = paragraph_starts
        self.labels = np.asarray(labels, dtype=np.int64)

    @classmethod
    def from_lengths(cls, token_ids: np.ndarray, sentence_lengths, paragraph_sizes, paragraph_counts, labels):
        """From the words per sentence, sentences per paragraph and paragraphs per document."""
        paragraph_starts = _starts(paragraph_sizes)
        return cls(token_ids, _starts(sentence_lengths), paragraph_starts[_starts(paragraph_counts)], paragraph_starts,
                   labels)  # fmt: skip

    @classmethod
    def from_documents(cls, documents: Sequence[Document], labels: Sequence[int]) -> "EncodedDocuments":
        paragraphs = list(chain.from_iterable(documents))
        sentences = list(chain.from_iterable(paragraphs))
        token_ids = np.fromiter(chain.from_iterable(sentences), dtype=np.int32)
        return cls.from_lengths(token_ids, [*map(len, sentences)], [*map(len, paragraphs)], [*map(len, documents)],
                                labels)  # fmt: skip

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sentence_counts(self) -> np.ndarray:
        return np.diff(self.document_starts)

    @property
    def token_counts(self) -> np.ndarray:
        return np.diff(self.sentence_starts[self.document_starts])

    @property
    def paragraph_counts(self) -> np.ndarray:
        return np.diff(np.searchsorted(self.paragraph_starts, self.document_starts))

    def to_arrow(self) -> pa.Table:
        sentences = pa.ListArray.from_arrays(self.sentence_starts, pa.array(self.token_ids, pa.int32()))
        paragraph_sizes = pa.array(np.diff(self.paragraph_starts), pa.int32())
        return pa.table(
            {
                "ids": pa.ListArray.from_arrays(self.document_starts, sentences),
                "paragraph_sizes": pa.ListArray.from_arrays(_starts(self.paragraph_counts), paragraph_sizes),
                "label": self.labels,
            }
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> "EncodedDocuments":
        documents = table.column("ids").combine_chunks()
        if documents.offset or documents.values.offset:  # a sliced array: start its offsets at 0
            documents = pa.concat_arrays([pa.array([], documents.type), documents])
        sentences = documents.values
        paragraph_sizes = table.column("paragraph_sizes").combine_chunks().flatten().to_numpy()
        return cls(
            sentences.values.to_numpy(),
            sentences.offsets.to_numpy().astype(np.int64),
            documents.offsets.to_numpy().astype(np.int64),
            _starts(paragraph_sizes),
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


def _starts(lengths) -> np.ndarray:
    """Offsets [len + 1] of consecutive runs of the given lengths."""
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def encode_documents(
    documents: Iterable[tuple[str, int]], encoder: DocumentEncoder, chunk_size: int = 2048
) -> EncodedDocuments:
    """Encode a stream of (text, label) in chunks (one tokenizer call per chunk)."""
    stream = iter(documents)
    parts = []
    while chunk := list(islice(stream, chunk_size)):
        texts, labels = zip(*chunk, strict=True)
        parts.append(EncodedDocuments.from_documents(encoder.encode(list(texts)), labels))

    def joined(lengths) -> np.ndarray:
        return np.concatenate([np.zeros(0, np.int64), *(lengths(part) for part in parts)])

    return EncodedDocuments.from_lengths(
        np.concatenate([np.zeros(0, np.int32), *(part.token_ids for part in parts)]),
        joined(lambda part: np.diff(part.sentence_starts)),
        joined(lambda part: np.diff(part.paragraph_starts)),
        joined(lambda part: part.paragraph_counts),
        joined(lambda part: part.labels),
    )
