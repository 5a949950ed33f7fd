"""Word vectors to start the embedding from: trained on the training split's ids (and unlabelled text),
deterministic, cached; or read from a file a user has; used by train.py; bad files are one line."""

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdc.data.datamodule import HFDataModule
from hdc.data.encoded import EncodedDocuments
from hdc.data.vectors import file_vectors, trained_vectors
from hdc.errors import DataError, HdcError
from tests.conftest import train_in_process

DOCUMENTS = [[[[2, 3, 4], [5, 2]]], [[[3, 4, 6, 2]]]] * 20  # paragraphs of sentences of word ids


def test_vectors_cover_the_training_words_and_repeat_for_a_seed():
    documents = EncodedDocuments.from_documents(DOCUMENTS, [0, 1] * 20)
    vectors, found = trained_vectors([documents], vocab_size=9, vector_size=8, seed=3)
    assert vectors.shape == (9, 8) and found.tolist() == [False, False, True, True, True, True, True, False, False]
    assert np.all(vectors[~found] == 0) and np.all(np.abs(vectors[found]).sum(1) > 0)
    again, _ = trained_vectors([documents], vocab_size=9, vector_size=8, seed=3)
    other, _ = trained_vectors([documents], vocab_size=9, vector_size=8, seed=4)
    assert np.array_equal(vectors, again) and not np.array_equal(vectors, other)


def test_train_py_initialises_the_embedding_from_cached_vectors(tmp_path, data, caplog):
    with caplog.at_level(logging.INFO, logger="hdc.training.build"):
        train_in_process(tmp_path / "run", *data, "vectors=skipgram", "test=false")
    assert "Embedding started from word vectors (skipgram trained here)" in caplog.text
    cache = Path(next(arg.split("=", 1)[1] for arg in data if arg.startswith("paths.cache_dir=")))
    assert list(cache.glob("vectors/*.npz"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "training words teach word2vec noise (it pays from vectors.min_words=2,000,000, or with data.unlabelled)"),
        (["vectors.min_words=1"], "Embedding started from word vectors (skipgram trained here)"),
        (["data.unlabelled={more}"], "Embedding started from word vectors (skipgram trained here)"),
        (["vectors.min_words=1", "model=fasttext"], "vectors=auto: none trained, fastText keeps its own start"),
    ],
)
def test_vectors_auto_trains_them_only_on_enough_words_and_never_for_fasttext(
    tmp_path, data, overrides, message, caplog
):
    """The default, vectors=auto: word2vec where the training split holds vectors.min_words words (or
    data.unlabelled gives more text), the embedding's own start below that and for fastText's bag (a smoke
    run sets vectors=none: vectors=auto puts the default back)."""
    more = tmp_path / "more.parquet"  # text without labels: a reason to train vectors on a small corpus
    pq.write_table(pa.table({"text": ["A quiet film. A loud film."] * 50}), more)
    overrides = [override.format(more=more) for override in overrides]
    with caplog.at_level(logging.INFO, logger="hdc.training.build"):
        train_in_process(tmp_path / "run", *data, "vectors=auto", *overrides, "test=false")
    assert message in caplog.text
    assert ("Embedding started" in caplog.text) == message.startswith("Embedding")


def reviews_folder(tmp_path) -> Path:
    """A dataset with train, test and an unlabelled split, in the hub's file names."""
    reviews = {
        "train": ["Good film. Bad plot."] * 30,
        "test": ["Bad film."] * 5,
        "unsupervised": ["Good plot. Good film."] * 30,
    }
    (tmp_path / "data").mkdir()
    for split, texts in reviews.items():  # any split name is read as a split
        table = pa.table({"text": texts, "label": [0] * len(texts)})
        pq.write_table(table, tmp_path / "data" / f"{split}-00000-of-00001.parquet")
    return tmp_path


def module(tmp_path, **settings) -> HFDataModule:
    dm = HFDataModule(str(tmp_path), str(tmp_path), str(tmp_path / "cache"), label_names=["neg", "pos"],
                      min_frequency=1, **settings)  # fmt: skip
    dm.setup()
    return dm


def test_unlabelled_text_adds_sentences_but_never_an_evaluation_split(tmp_path, caplog):
    folder = reviews_folder(tmp_path)
    with caplog.at_level(logging.INFO, logger="hdc.data.datamodule"):
        alone, found = module(folder).word_vectors(8, seed=0, train="skipgram")
    assert "Split 'unsupervised' holds text without labels: data.unlabelled=unsupervised" in caplog.text
    with_split, found_too = module(folder, unlabelled="unsupervised").word_vectors(8, seed=0, train="skipgram")
    assert np.array_equal(found, found_too) and not np.array_equal(alone, with_split)
    pq.write_table(pa.table({"text": ["Good plot. Good film."] * 30}), tmp_path / "more.parquet")
    with_files, _ = module(folder, unlabelled=str(tmp_path / "more.parquet")).word_vectors(8, seed=0, train="skipgram")
    assert np.array_equal(with_files, with_split)  # the same text from files: the same vectors
    assert len(list((tmp_path / "cache" / "vectors").glob("*.npz"))) == 3  # cached apart
    for wrong, message in (("test", "is a labelled split"), ("train", "is a labelled split"),
                           ("validation_typo", "neither a split of")):  # fmt: skip
        with pytest.raises(DataError, match=f"data.unlabelled={wrong!r}:? {message}"):
            module(folder, unlabelled=wrong)
    pq.write_table(pa.table({"review": ["x"]}), tmp_path / "other.parquet")
    with pytest.raises(DataError, match="no text column 'text'"):
        module(folder, unlabelled=str(tmp_path / "other.parquet")).word_vectors(8, seed=1, train="skipgram")


def write_vectors(path: Path, words: dict[str, list[float]], header: bool = True) -> Path:
    lines = [f"{len(words)} {len(next(iter(words.values())))}"] if header else []
    lines += [" ".join([word, *map(str, vector)]) for word, vector in words.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


VOCABULARY = {"[PAD]": 0, "[UNK]": 1, "good": 2, "film": 3, "paris": 4}
WORDS = {"Good": [1.0, 0.0, 0.0], "good": [0.0, 1.0, 0.0], "film": [0.5, 0.5, 0.5], "Paris": [2.0, 2.0, 2.0],
         "elsewhere": [9.0, 9.0, 9.0]}  # fmt: skip


@pytest.mark.parametrize("kind", ["word2vec text", "GloVe text", "fastText .vec", "word2vec binary"])
def test_a_vectors_file_gives_each_known_word_its_vector_lower_case_first(tmp_path, kind):
    if kind == "word2vec binary":
        from gensim.models import KeyedVectors

        vectors = KeyedVectors(3)
        vectors.add_vectors(list(WORDS), np.array(list(WORDS.values()), dtype=np.float32))
        path = tmp_path / "vectors.bin"
        vectors.save_word2vec_format(str(path), binary=True)
    else:
        name = {"word2vec text": "vectors.txt", "GloVe text": "glove.txt", "fastText .vec": "wiki.vec"}[kind]
        path = write_vectors(tmp_path / name, WORDS, header=kind != "GloVe text")
    table, found = file_vectors(path, VOCABULARY, 6)
    assert table.shape == (6, 3) and found.tolist() == [False, False, True, True, True, False]
    assert table[2].tolist() == [0.0, 1.0, 0.0]  # "good" itself, not "Good" listed before it
    assert table[4].tolist() == [2.0, 2.0, 2.0]  # "Paris" for "paris", which the file lacks


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("", "empty; expected word vectors"),
        ("2 3\ngood 1 2\nfilm 1 2 3\n", "not a word2vec, GloVe or fastText vectors file"),
        ("1 3\nelsewhere 1 2 3\n", "none of its 1 words is in the vocabulary"),
    ],
)
def test_a_bad_vectors_file_is_one_line(tmp_path, content, message):
    path = tmp_path / "vectors.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as error:
        file_vectors(path, VOCABULARY, 6)
    assert "\n" not in str(error.value)


def test_train_py_reads_a_vectors_file_and_takes_its_dimension(tmp_path, data, caplog):
    vectors = write_vectors(tmp_path / "mine.vec", {"the": [0.1] * 12, "film": [0.2] * 12, "Good": [0.3] * 12})
    with caplog.at_level(logging.INFO, logger="hdc.training.build"):
        train_in_process(tmp_path / "run", *data, f"vectors.path={vectors}", "test=false")
    assert f"vectors.path={vectors} holds 12-d vectors: model.net.embedding_dim=12 (was 200)" in caplog.text
    assert f"Embedding started from word vectors ({vectors}) for 3 of" in caplog.text
    with pytest.raises(DataError, match="vectors.train=skipgram and vectors.path=.*: choose one"):
        train_in_process(tmp_path / "both", *data, "vectors=skipgram", f"vectors.path={vectors}", "test=false")


@pytest.mark.parametrize("value", ["-1", "many", "true"])
def test_a_bad_vectors_min_words_is_one_line(tmp_path, data, value):
    with pytest.raises(HdcError, match=r"vectors.min_words=.*: a number of training words \(0 or more\), or null"):
        train_in_process(tmp_path, *data, "vectors=auto", f"vectors.min_words={value}")
