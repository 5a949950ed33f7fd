"""Word2vec initialisation: trained on the training split's ids, deterministic, cached, used by train.py."""

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hdc.data.datamodule import HFDataModule
from hdc.data.encoded import EncodedDocuments
from hdc.data.word2vec import word2vec_vectors
from hdc.errors import DataError
from tests.conftest import train_in_process

DOCUMENTS = [[[[2, 3, 4], [5, 2]]], [[[3, 4, 6, 2]]]] * 20  # paragraphs of sentences of word ids


def test_vectors_cover_the_training_words_and_repeat_for_a_seed():
    documents = EncodedDocuments.from_documents(DOCUMENTS, [0, 1] * 20)
    vectors, found = word2vec_vectors([documents], vocab_size=9, vector_size=8, seed=3)
    assert vectors.shape == (9, 8) and found.tolist() == [False, False, True, True, True, True, True, False, False]
    assert np.all(vectors[~found] == 0) and np.all(np.abs(vectors[found]).sum(1) > 0)
    again, _ = word2vec_vectors([documents], vocab_size=9, vector_size=8, seed=3)
    other, _ = word2vec_vectors([documents], vocab_size=9, vector_size=8, seed=4)
    assert np.array_equal(vectors, again) and not np.array_equal(vectors, other)


def test_train_py_initialises_the_embedding_from_cached_vectors(tmp_path, data, caplog):
    with caplog.at_level(logging.INFO, logger="hdc.build"):
        train_in_process(tmp_path / "run", *data, "word2vec=skipgram", "test=false")
    assert "Embedding initialised by word2vec" in caplog.text
    cache = Path(next(arg.split("=", 1)[1] for arg in data if arg.startswith("paths.cache_dir=")))
    assert list(cache.glob("word2vec/*.npz"))


def test_an_unlabelled_split_adds_sentences_but_never_an_evaluation_split(tmp_path):
    reviews = {
        "train": ["Good film. Bad plot."] * 30,
        "test": ["Bad film."] * 5,
        "unsupervised": ["Good plot. Good film."] * 30,
    }
    (tmp_path / "data").mkdir()
    for split, texts in reviews.items():  # the hub's file names: any split name is read as a split
        table = pa.table({"text": texts, "label": [0] * len(texts)})
        pq.write_table(table, tmp_path / "data" / f"{split}-00000-of-00001.parquet")
    dm = HFDataModule(
        str(tmp_path), str(tmp_path), str(tmp_path / "cache"), label_names=["neg", "pos"], min_frequency=1
    )
    dm.setup()
    alone, found = dm.word2vec(8, seed=0)
    with_unlabelled, found_too = dm.word2vec(8, seed=0, unlabelled_split="unsupervised")
    assert np.array_equal(found, found_too) and not np.array_equal(alone, with_unlabelled)
    assert len(list((tmp_path / "cache" / "word2vec").glob("*.npz"))) == 2  # cached apart
    for wrong in ("test", "validation_typo"):
        with pytest.raises(DataError, match=f"unlabelled_split={wrong!r}"):
            dm.word2vec(8, seed=0, unlabelled_split=wrong)
