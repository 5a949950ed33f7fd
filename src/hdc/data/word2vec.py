"""Word2vec vectors for the vocabulary: the HAN paper's embedding initialisation.

Trained with gensim (skip-gram by default) on the training split as the model reads it (the cached
word ids, sentence by sentence), and optionally on an unlabelled split, so every vector belongs to
exactly one row of the embedding; never on validation or test. Deterministic for a seed: one worker
thread and a fixed hash for the initial vectors.
"""

import zlib
from collections.abc import Iterator

import numpy as np

from hdc.data.encoded import EncodedDocuments
from hdc.data.vocab import PAD_ID


class _Sentences:
    """Each sentence of each corpus as a list of word ids in text form (what gensim reads), pass after pass."""

    def __init__(self, corpora: list[EncodedDocuments]):
        self.corpora = corpora

    def __iter__(self) -> Iterator[list[str]]:
        for documents in self.corpora:
            ids = documents.token_ids.astype(str)
            starts = documents.sentence_starts
            for start, end in zip(starts[:-1], starts[1:], strict=True):
                yield ids[start:end].tolist()


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode())


def word2vec_vectors(
    corpora: list[EncodedDocuments],
    vocab_size: int,
    vector_size: int,
    seed: int,
    skip_gram: bool = True,
    window: int = 5,
    epochs: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors [vocab_size, vector_size] and a mask of the ids that got one (ids never seen in the
    corpora, and [PAD], keep the model's own initialisation)."""
    from gensim.models import Word2Vec

    model = Word2Vec(
        _Sentences(corpora), vector_size=vector_size, window=window, min_count=1, sg=int(skip_gram),
        epochs=epochs, seed=seed, workers=1, hashfxn=_stable_hash,
    )  # fmt: skip
    vectors = np.zeros((vocab_size, vector_size), dtype=np.float32)
    found = np.zeros(vocab_size, dtype=bool)
    for word, index in model.wv.key_to_index.items():
        vectors[int(word)], found[int(word)] = model.wv.vectors[index], True
    found[PAD_ID] = False
    return vectors, found
