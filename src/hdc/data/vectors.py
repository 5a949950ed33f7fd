"""Word vectors for the vocabulary, to start the embedding from: trained here, or read from a file.

- trained_vectors: word2vec (gensim; skip-gram by default, the HAN paper's) on the training split as the
  model reads it (the cached word ids, sentence by sentence), and on unlabelled text if given, so every
  vector belongs to exactly one row of the embedding; never on validation or test. Deterministic for a
  seed: one worker thread and a fixed hash for the initial vectors.
- file_vectors: vectors a user already has, through gensim's reader: word2vec text or binary (.bin),
  GloVe text (no header line) and fastText's .vec. Words are matched lower-cased, as the vocabulary is.
Both give (vectors [vocab_size, dim], found: the ids that got one); the others, and [PAD], keep the
model's own initialisation.
"""

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hdc.data.encoded import EncodedDocuments
from hdc.data.vocab import PAD_ID
from hdc.errors import DataError


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


def trained_vectors(
    corpora: list[EncodedDocuments],
    vocab_size: int,
    vector_size: int,
    seed: int,
    algorithm: str = "skipgram",
    window: int = 5,
    epochs: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """Word2vec vectors trained on `corpora` (skipgram or cbow)."""
    from gensim.models import Word2Vec

    if algorithm not in ("skipgram", "cbow"):
        raise DataError(f"vectors.train={algorithm!r}: skipgram or cbow (or null: none trained)")
    model = Word2Vec(
        _Sentences(corpora), vector_size=vector_size, window=window, min_count=1, sg=int(algorithm == "skipgram"),
        epochs=epochs, seed=seed, workers=1, hashfxn=_stable_hash,
    )  # fmt: skip
    vectors = np.zeros((vocab_size, vector_size), dtype=np.float32)
    found = np.zeros(vocab_size, dtype=bool)
    for word, index in model.wv.key_to_index.items():
        vectors[int(word)], found[int(word)] = model.wv.vectors[index], True
    found[PAD_ID] = False
    return vectors, found


def _first_line(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"vectors.path={path}: no such file")
    try:
        with path.open("rb") as file:
            line = file.readline(1_000_000)
    except OSError as error:
        raise DataError(f"vectors.path={path}: cannot read it ({error.strerror})") from None
    if not line.strip():
        raise DataError(f"vectors.path={path}: empty; expected word vectors (word2vec, GloVe or fastText .vec)")
    return line


def _layout(path: Path) -> tuple[bool, bool, int]:
    """(binary, with a header line, dimension) of a vectors file, from its first line: word2vec and
    fastText files start with "<words> <dimension>", GloVe files with a first vector."""
    fields = _first_line(path).split()
    header = len(fields) == 2 and all(field.isdigit() for field in fields)
    binary = path.suffix == ".bin"
    if binary and not header:
        raise DataError(f"vectors.path={path}: a .bin file without word2vec's '<words> <dimension>' header")
    dimension = int(fields[1]) if header else len(fields) - 1
    if dimension < 1:
        raise DataError(f"vectors.path={path}: its first line holds no vector; expected word2vec, GloVe or .vec")
    return binary, header, dimension


def file_dimension(path: str | Path) -> int:
    """The dimension of a vectors file's vectors, read from its first line."""
    return _layout(Path(path))[2]


def file_vectors(path: str | Path, vocabulary: dict[str, int], vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The file's vector for each vocabulary word it holds: its own lower-case form first, else the first
    cased form it lists (e.g. "Paris" for "paris")."""
    from gensim.models import KeyedVectors

    path = Path(path)
    binary, header, dimension = _layout(path)
    try:
        vectors = KeyedVectors.load_word2vec_format(str(path), binary=binary, no_header=not header,
                                                    unicode_errors="replace")  # fmt: skip
    except Exception as error:  # gensim and numpy raise many kinds for a malformed file
        raise DataError(f"vectors.path={path}: not a word2vec, GloVe or fastText vectors file "
                        f"({type(error).__name__}: {error})".split("\n")[0]) from None  # fmt: skip
    table = np.zeros((vocab_size, dimension), dtype=np.float32)
    found = np.zeros(vocab_size, dtype=bool)
    exact = np.zeros(vocab_size, dtype=bool)
    for word, index in vectors.key_to_index.items():
        lower = word.lower()
        row = vocabulary.get(lower)
        if row is None or row == PAD_ID or exact[row] or (found[row] and word != lower):
            continue
        table[row], found[row], exact[row] = vectors.vectors[index], True, word == lower
    if not found.any():
        raise DataError(f"vectors.path={path}: none of its {len(vectors.key_to_index)} words is in the "
                        f"vocabulary of {vocab_size} words (another language, or another tokenisation?)")  # fmt: skip
    return table, found
