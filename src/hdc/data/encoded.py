"""Raw documents -> an encoded split: word ids in flat arrays, built once and cached as a folder of
memory-mapped arrays.

Tokenizing is by far the costliest step between raw text and a batch (a few thousand IMDB reviews per
second and core), so each split is encoded once per tokenizer and caps, like a `datasets` map cache,
by all cores and in chunks (memory bounded by a few chunks, not by the split); every epoch then reads
ids from memory-mapped files and batching costs almost nothing.
"""

import json
import multiprocessing
import os
import shutil
import sys
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from itertools import chain, islice
from pathlib import Path

import numpy as np

from hdc.data.vocab import UNK_ID, Document, DocumentEncoder


class EncodedDocuments:
    """Documents as flat arrays of offsets, as Arrow stores nested lists.

    Sentence s is token_ids[sentence_starts[s]:sentence_starts[s + 1]]; document d owns sentences
    document_starts[d]:document_starts[d + 1], and paragraph p sentences
    paragraph_starts[p]:paragraph_starts[p + 1] (every document starts a paragraph); its label ids are
    labels[label_starts[d]:label_starts[d + 1]]: one id each for a single-label split, a set (possibly
    empty) for a multi-label one.
    """

    def __init__(
        self,
        token_ids: np.ndarray,
        sentence_starts: np.ndarray,
        document_starts: np.ndarray,
        paragraph_starts: np.ndarray,
        labels,
        label_starts: np.ndarray | None = None,
    ):
        self.token_ids, self.sentence_starts, self.document_starts = token_ids, sentence_starts, document_starts
        self.paragraph_starts = paragraph_starts
        self.labels = np.asarray(labels, dtype=np.int64)
        self.label_starts = np.arange(len(self.labels) + 1) if label_starts is None else label_starts

    @classmethod
    def from_lengths(
        cls, token_ids: np.ndarray, sentence_lengths, paragraph_sizes, paragraph_counts, labels, label_counts=None
    ):
        """From the words per sentence, sentences per paragraph, paragraphs per document and the flat
        label ids with their number per document (None: one each)."""
        paragraph_starts = _starts(paragraph_sizes)
        return cls(token_ids, _starts(sentence_lengths), paragraph_starts[_starts(paragraph_counts)], paragraph_starts,
                   labels, None if label_counts is None else _starts(label_counts))  # fmt: skip

    @classmethod
    def from_documents(cls, documents: Sequence[Document], labels: Sequence) -> "EncodedDocuments":
        """`labels`: an id per document, or a sequence of ids (a multi-label set) per document."""
        paragraphs = list(chain.from_iterable(documents))
        sentences = list(chain.from_iterable(paragraphs))
        token_ids = np.fromiter(chain.from_iterable(sentences), dtype=np.int32)
        sets = [label for label in labels if not isinstance(label, int | np.integer)]
        if not sets:
            flat, counts = labels, None
        else:
            if len(sets) != len(labels):
                raise ValueError("labels mix ids and sets of ids")
            flat, counts = [*chain.from_iterable(labels)], [*map(len, labels)]
        return cls.from_lengths(token_ids, [*map(len, sentences)], [*map(len, paragraphs)], [*map(len, documents)],
                                flat, counts)  # fmt: skip

    def __len__(self) -> int:
        return len(self.document_starts) - 1

    @property
    def label_counts(self) -> np.ndarray:
        return np.diff(self.label_starts)

    @property
    def sentence_counts(self) -> np.ndarray:
        return np.diff(self.document_starts)

    @property
    def token_counts(self) -> np.ndarray:
        return np.diff(self.sentence_starts[self.document_starts])

    def empty_documents(self) -> int:
        """How many documents are the encoder's stand-in for no words: one sentence of one [UNK]."""
        single = self.token_counts == 1
        return int((self.token_ids[self.sentence_starts[self.document_starts[:-1]][single]] == UNK_ID).sum())

    @property
    def paragraph_counts(self) -> np.ndarray:
        return np.diff(np.searchsorted(self.paragraph_starts, self.document_starts))

    @classmethod
    def load(cls, path: Path) -> "EncodedDocuments":
        """A cache folder written by write_encoded, memory-mapped: a split of any size costs the pages
        that batches touch, not its size in memory."""
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path}: not an encoded split of format {_FORMAT}")
        arrays = {  # an empty file cannot be mapped (a multi-label split whose every set is empty)
            name: np.memmap(path / name, dtype=dtype, mode="r", shape=(n,)) if (n := meta["lengths"][name]) else
            np.zeros(0, dtype)
            for name, dtype in _ARRAYS.items()
        }  # fmt: skip
        return cls(**arrays)


_FORMAT = 5  # flat arrays in a folder, memory-mapped, labels as offsets
_ARRAYS = {"token_ids": np.int32, "sentence_starts": np.int64, "document_starts": np.int64,
           "paragraph_starts": np.int64, "labels": np.int64, "label_starts": np.int64}  # fmt: skip


def write_encoded(chunks: Iterable[EncodedDocuments], path: Path) -> int:
    """Append encoded chunks, in order, to one split's cache folder: a raw file per array, each
    chunk's offsets shifted past the chunks before it, so memory holds one chunk at a time however
    large the split. Written beside `path` and renamed into place when complete (an interrupted run
    leaves no half-written cache). Returns the number of documents."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    lengths = dict.fromkeys(_ARRAYS, 0)
    try:
        with ExitStack() as files:
            file = {name: files.enter_context(open(partial / name, "wb")) for name in _ARRAYS}

            def append(name: str, values) -> None:
                file[name].write(np.ascontiguousarray(values, dtype=_ARRAYS[name]).tobytes())
                lengths[name] += len(values)

            for name in ("sentence_starts", "document_starts", "paragraph_starts", "label_starts"):
                append(name, [0])
            tokens = sentences = labels = 0  # in the chunks written so far
            for chunk in chunks:
                append("token_ids", chunk.token_ids)
                append("sentence_starts", chunk.sentence_starts[1:] + tokens)
                append("document_starts", chunk.document_starts[1:] + sentences)
                append("paragraph_starts", chunk.paragraph_starts[1:] + sentences)
                append("labels", chunk.labels)
                append("label_starts", chunk.label_starts[1:] + labels)
                tokens, sentences = tokens + len(chunk.token_ids), sentences + len(chunk.sentence_starts) - 1
                labels += len(chunk.labels)
        (partial / "meta.json").write_text(json.dumps({"format": _FORMAT, "lengths": lengths}))
        if path.exists():  # another process wrote the same cache meanwhile: the same content
            shutil.rmtree(path)
        partial.rename(path)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return lengths["document_starts"] - 1


def _starts(lengths) -> np.ndarray:
    """Offsets [len + 1] of consecutive runs of the given lengths."""
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def encode_chunks(
    documents: Iterable[tuple[str, int]], encoder: DocumentEncoder, chunk_size: int = 2048, workers: int = 1
) -> Iterator[EncodedDocuments]:
    """Encode a stream of (text, label), `chunk_size` documents at a time, in order.

    With `workers` > 1 the chunks are encoded by that many processes (splitting sentences is Python,
    one core each), at most two chunks per process in flight: memory stays a few chunks however long
    the stream. The stream itself is read here, in this process.
    """
    stream = iter(documents)
    chunks = iter(lambda: list(islice(stream, chunk_size)), [])
    if workers <= 1:
        for chunk in chunks:
            yield _encode(encoder, chunk)
        return
    # fork, as torch's DataLoader workers: no re-import of the entry point; the workers use no torch.
    # Each worker tokenizes on one thread (TOKENIZERS_PARALLELISM, read when the pool forks).
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
    parallelism = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with ProcessPoolExecutor(workers, context, initializer=_set_worker_encoder, initargs=(encoder,)) as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(_encode_in_worker, chunk))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        if parallelism is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = parallelism


def encode_documents(
    documents: Iterable[tuple[str, int]], encoder: DocumentEncoder, chunk_size: int = 2048
) -> EncodedDocuments:
    """Encode a stream of (text, label) into memory (for caches of any size: write_encoded(encode_chunks(...)))."""
    parts = list(encode_chunks(documents, encoder, chunk_size))

    def joined(lengths) -> np.ndarray:
        return np.concatenate([np.zeros(0, np.int64), *(lengths(part) for part in parts)])

    return EncodedDocuments.from_lengths(
        np.concatenate([np.zeros(0, np.int32), *(part.token_ids for part in parts)]),
        joined(lambda part: np.diff(part.sentence_starts)),
        joined(lambda part: np.diff(part.paragraph_starts)),
        joined(lambda part: part.paragraph_counts),
        joined(lambda part: part.labels),
        joined(lambda part: part.label_counts),
    )


def _encode(encoder: DocumentEncoder, chunk: list[tuple[str, int | tuple[int, ...]]]) -> EncodedDocuments:
    texts, labels = zip(*chunk, strict=True)
    return EncodedDocuments.from_documents(encoder.encode(list(texts)), labels)


_worker_encoder: DocumentEncoder | None = None


def _set_worker_encoder(encoder: DocumentEncoder) -> None:
    global _worker_encoder
    _worker_encoder = encoder


def _encode_in_worker(chunk: list[tuple[str, int]]) -> EncodedDocuments:
    return _encode(_worker_encoder, chunk)
