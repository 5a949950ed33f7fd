import itertools
import logging
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hdc.data import datamodule as datamodule_module
from hdc.data.batching import BucketedBatches, collate, padding_fractions
from hdc.data.datamodule import HFDataModule
from hdc.data.encoded import EncodedDocuments, encode_chunks, encode_documents, write_encoded
from hdc.data.source import DatasetNotFound, load_streaming
from hdc.data.vocab import DocumentEncoder, caps_keeping, sentence_lengths
from hdc.errors import DataError
from tests.conftest import ROOT


def imdb(imdb_dir, tmp_path, **overrides) -> HFDataModule:
    settings = dict(path=str(imdb_dir), data_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), num_workers=0)
    dm = HFDataModule(**{**settings, **overrides})
    dm.setup()
    return dm


@pytest.fixture(scope="module")
def imdb_module(imdb_dir, tmp_path_factory):
    return imdb(imdb_dir, tmp_path_factory.mktemp("imdb"))


def test_validation_is_a_disjoint_deterministic_tenth_of_train(imdb_module):
    train = [text for text, _ in imdb_module.train_documents()]
    val = [text for text, _ in imdb_module.val_documents()]
    assert len(train) + len(val) == 25_000
    assert 2_300 <= len(val) <= 2_700
    assert not set(train) & set(val)
    assert val == [text for text, _ in imdb_module.val_documents()]  # same on every pass
    labels = [label for _, label in imdb_module.val_documents()]
    assert 0.4 < sum(labels) / len(labels) < 0.6  # a fair sample, although the file is sorted by label


@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader"])
def test_batches_are_the_same_with_workers(imdb_module, loader):
    def labels(num_workers):
        imdb_module.hparams.num_workers = num_workers
        return torch.cat([b.labels for b in itertools.islice(getattr(imdb_module, loader)(), 40)])

    assert torch.equal(labels(0), labels(2))
    imdb_module.hparams.num_workers = 0


def test_training_stream_yields_every_document_once_shuffled_per_epoch(imdb_dir, tmp_path):
    dm = imdb(imdb_dir, tmp_path, train_fraction=0.1, batch_size=32, bucket_size=256)
    expected = sorted(label for _, label in dm.train_documents())

    def epoch(number):
        cpu = SimpleNamespace(root_device=torch.device("cpu"))
        dm.trainer = SimpleNamespace(current_epoch=number, global_rank=0, world_size=1, strategy=cpu)
        return list(dm.train_dataloader())

    first, again, second = epoch(0), epoch(0), epoch(1)
    assert sorted(torch.cat([b.labels for b in first]).tolist()) == expected
    assert 0.3 < sum(expected) / len(expected) < 0.7
    assert all(torch.equal(a.word_ids, b.word_ids) for a, b in zip(first, again, strict=True))  # seeded
    assert not torch.equal(first[0].word_ids, second[0].word_ids)  # a new order each epoch
    # first batches already mix both classes (the file is sorted by label)
    assert 0 < torch.cat([b.labels for b in first[:4]]).float().mean() < 1


def test_bucketing_keeps_padding_small(imdb_module):
    documents = encode_documents(itertools.islice(imdb_module.train_documents(), 1024), imdb_module.encoder)

    def sentence_padding(bucket_size):
        return padding_fractions(BucketedBatches(documents, 64, bucket_size, seed=0))[1]

    assert sentence_padding(1024) < 0.2 < 0.5 < sentence_padding(64)  # 64: each batch alone, no bucketing


def test_token_budget_batches_hold_about_that_many_words_each(imdb_module):
    documents = encode_documents(itertools.islice(imdb_module.train_documents(), 3000), imdb_module.encoder)
    words = documents.token_counts
    batches = BucketedBatches(documents, 64, 1024, seed=0, batch_tokens=8000).batches
    assert sorted(np.concatenate(batches).tolist()) == list(range(3000))  # every document once
    totals = np.array([words[b].sum() for b in batches])
    longest = words.max()
    assert (totals[:-1] < 8000 + longest).all() and np.median(totals) > 8000 - longest
    sizes = [len(b) for b in batches]
    assert min(sizes) < 20 < 60 < max(sizes)  # long documents in small batches, short ones in large


DOCUMENTS = [[[[5, 6]], [[7]]], [[[8, 9, 10]]], [[[11], [12]], [[13]]]]  # paragraphs of sentences of word ids


def test_collate_lays_sentences_out_flat():
    batch = collate(EncodedDocuments.from_documents(DOCUMENTS, [1, 0, 1]), np.array([1, 0]))
    assert batch.word_ids.tolist() == [[8, 9, 10], [5, 6, 0], [7, 0, 0]]
    assert batch.word_counts.tolist() == [3, 2, 1]
    assert batch.sentence_counts.tolist() == [1, 2]
    assert batch.paragraph_sizes.tolist() == [1, 1, 1]
    assert batch.labels.tolist() == [0, 1]
    assert padding_fractions([batch]) == pytest.approx((3 / 9, 1 / 4))  # 3 of 9 word slots, 1 of 4 sentence slots
    batch = collate(EncodedDocuments.from_documents(DOCUMENTS, [1, 0, 1]), np.array([2, 0]))
    assert batch.sentence_counts.tolist() == [3, 2] and batch.paragraph_sizes.tolist() == [2, 1, 1, 1]


def test_bucketed_batches_cover_each_document_once_in_a_seeded_order():
    documents = EncodedDocuments.from_documents(DOCUMENTS * 50, list(range(150)))

    def order(seed):
        return torch.cat([batch.labels for batch in BucketedBatches(documents, 8, 32, seed)]).tolist()

    assert sorted(order([0, 0])) == list(range(150))
    assert order([0, 0]) == order([0, 0]) != order([0, 1])
    assert sorted(order(None)[:32]) == list(range(32))  # no seed: buckets keep the split's order


@pytest.mark.parametrize("world_size", [2, 3, 7])
def test_ranks_share_the_documents_once_each_in_equal_numbers_of_batches(world_size):
    documents = EncodedDocuments.from_documents(DOCUMENTS * 50, list(range(150)))
    ranks = [BucketedBatches(documents, 8, 32, [0, 1], rank, world_size) for rank in range(world_size)]
    assert len({len(batches) for batches in ranks}) == 1
    seen = [batch.positions for batches in ranks for batch in batches]
    assert sorted(torch.cat(seen).tolist()) == list(range(150))
    assert all(torch.equal(b.positions, b.labels) for batches in ranks for b in batches)
    with pytest.raises(DataError, match="cannot be shared evenly by 4 processes"):
        BucketedBatches(EncodedDocuments.from_documents(DOCUMENTS, [0, 1, 0]), 8, 32, None, 0, 4)


def same_documents(a: EncodedDocuments, b: EncodedDocuments) -> bool:
    arrays = ("token_ids", "sentence_starts", "document_starts", "paragraph_starts", "labels")
    return all(np.array_equal(getattr(a, name), getattr(b, name)) for name in arrays)


def test_encoded_documents_survive_the_cache_folder_written_chunk_by_chunk(tmp_path):
    documents = EncodedDocuments.from_documents(DOCUMENTS * 3, [1, 0, 1] * 3)
    chunks = [EncodedDocuments.from_documents(DOCUMENTS * 3, [1, 0, 1] * 3)]  # one chunk
    chunks.append(EncodedDocuments.from_documents(DOCUMENTS[:2], [1, 0]))  # and three more
    chunks += [EncodedDocuments.from_documents(DOCUMENTS[2:] + DOCUMENTS, [1, 1, 0, 1])]
    chunks += [EncodedDocuments.from_documents(DOCUMENTS, [1, 0, 1])]
    assert write_encoded(chunks[:1], tmp_path / "whole") == 9
    assert write_encoded(chunks[1:], tmp_path / "chunked") == 9
    whole, chunked = EncodedDocuments.load(tmp_path / "whole"), EncodedDocuments.load(tmp_path / "chunked")
    assert isinstance(whole.token_ids, np.memmap)  # read from disk as batches need it, not loaded whole
    assert same_documents(whole, documents) and same_documents(chunked, documents)
    assert torch.equal(collate(chunked, np.arange(9)).word_ids, collate(documents, np.arange(9)).word_ids)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked", "whole"]  # no partial folders left

    def interrupted():
        yield chunks[1]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_encoded(interrupted(), tmp_path / "interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked", "whole"]


def test_encoding_in_several_processes_gives_the_same_split(imdb_module):
    documents = list(itertools.islice(imdb_module.train_documents(), 700))
    serial = encode_documents(documents, imdb_module.encoder, chunk_size=100)
    chunks = list(encode_chunks(documents, imdb_module.encoder, chunk_size=100, workers=2))
    assert len(chunks) == 7 and [len(c) for c in chunks] == [100] * 7
    assert np.array_equal(np.concatenate([c.labels for c in chunks]), [label for _, label in documents])
    assert np.array_equal(np.concatenate([c.token_ids for c in chunks]), serial.token_ids)


def test_encoded_splits_are_cached(imdb_dir, tmp_path, monkeypatch):
    first = imdb(imdb_dir, tmp_path, train_fraction=0.05).encoded("train")
    monkeypatch.setattr(datamodule_module, "encode_chunks", lambda *a, **k: pytest.fail("encoded again"))
    second = imdb(imdb_dir, tmp_path, train_fraction=0.05).encoded("train")
    assert np.array_equal(first.token_ids, second.token_ids) and np.array_equal(first.labels, second.labels)
    with pytest.raises(pytest.fail.Exception):
        imdb(imdb_dir, tmp_path, train_fraction=0.05, max_words=7).encoded("train")  # other caps: encoded anew


def test_tokenizer_is_cached(imdb_dir, tmp_path, monkeypatch):
    first = imdb(imdb_dir, tmp_path, train_fraction=0.05)
    monkeypatch.setattr(datamodule_module, "train_tokenizer", lambda *a, **k: pytest.fail("retrained"))
    second = imdb(imdb_dir, tmp_path, train_fraction=0.05)
    assert first.encoder.tokenizer.get_vocab() == second.encoder.tokenizer.get_vocab()
    with pytest.raises(pytest.fail.Exception):
        imdb(imdb_dir, tmp_path, train_fraction=0.05, min_frequency=3)  # other settings: a new tokenizer


def test_a_moved_project_keeps_its_caches(tmp_path, monkeypatch):
    """The same files (names, sizes, times) in another folder: the tokenizer and splits come from the cache."""
    first = tmp_path / "project" / "data"
    first.mkdir(parents=True)
    (first / "reviews.csv").write_text("text,label\nGreat fun.,1\nDull.,0\n" * 20)
    moved = tmp_path / "moved" / "data"
    shutil.copytree(first, moved)  # copy2: times kept, as a move or a checkout of the same files keeps them
    module = HFDataModule("reviews.csv", str(first), str(tmp_path / "cache"), min_frequency=1)
    module.setup()
    module.encoded("train")
    monkeypatch.setattr(datamodule_module, "train_tokenizer", lambda *a, **k: pytest.fail("retrained"))
    monkeypatch.setattr(datamodule_module, "encode_chunks", lambda *a, **k: pytest.fail("encoded again"))
    again = HFDataModule("reviews.csv", str(moved), str(tmp_path / "cache"), min_frequency=1)
    again.setup()
    assert np.array_equal(again.encoded("train").token_ids, module.encoded("train").token_ids)


def csv_reviews(tmp_path, rows: str, **settings) -> HFDataModule:
    """A module over a local CSV file with string labels named in config."""
    path = tmp_path / "reviews.csv"
    path.write_text("review,sentiment\n" + rows)
    columns = dict(text_column="review", label_column="sentiment", label_names=["bad", "good"])
    return HFDataModule(str(path), str(tmp_path), str(tmp_path / "cache"), **(columns | settings))


def test_local_csv_with_string_labels_from_config(tmp_path):
    dm = csv_reviews(tmp_path, "Great fun.,good\nDull.,bad\n" * 20, min_frequency=1, val_fraction=0.0)
    dm.setup()
    assert dm.label_names == ["bad", "good"]
    assert list(dm.train_documents()) == [("Great fun.", 1), ("Dull.", 0)] * 20


def test_a_csv_without_the_label_column_or_without_rows_is_one_line(tmp_path):
    (tmp_path / "reviews.csv").write_text("review,sentiment\nGreat fun.,good\n")
    dm = HFDataModule(
        str(tmp_path / "reviews.csv"), str(tmp_path), str(tmp_path / "cache"), text_column="review", label_column="nope"
    )
    with pytest.raises(
        DataError, match=r"label column 'nope' not in the dataset \(columns: \['review', 'sentiment'\]\)"
    ):
        dm.setup()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "train.csv").write_text("")
    with pytest.raises(DataError, match="cannot read the data: EmptyDataError"):
        HFDataModule(str(tmp_path / "empty"), str(tmp_path), str(tmp_path / "cache")).setup()


def test_an_empty_label_cell_is_one_line_naming_the_row(tmp_path):
    dm = csv_reviews(tmp_path, "Great fun.,good\nDull.,\nFine.,good\n", val_fraction=0.0, label_names=None)
    with pytest.raises(DataError, match="Label column 'sentiment', row 1: empty; every document needs a label"):
        dm.setup()


def test_unknown_label_is_a_clear_error(tmp_path):
    dm = csv_reviews(tmp_path, "Great fun.,good\nOdd.,meh\n", val_fraction=0.0)
    message = r"Unknown labels in split 'train', column 'sentiment': 'meh' \(1 documents\); the model knows \["
    with pytest.raises(DataError, match=message + r"'bad', 'good'\] \("):  # no index offered for a string
        dm.setup()


def test_documents_without_words_are_kept_and_counted(tmp_path, caplog):
    # an empty cell, a blank one and punctuation alone: trained and tested on, but said, every run
    dm = csv_reviews(tmp_path, 'Great fun.,good\n,bad\n"  ",good\n...,bad\nFine.,good\n', val_fraction=0.0)
    dm.setup()
    with caplog.at_level(logging.WARNING, logger="hdc.data.datamodule"):
        train = dm.encoded("train")
    assert len(train) == 5 and train.empty_documents() == 3
    assert "3 of 5 train documents have no words (an empty text column 'review'?); they are kept" in caplog.text


def test_missing_column_is_a_clear_error(imdb_dir, tmp_path):
    with pytest.raises(DataError, match="text column 'review' not in the dataset"):
        imdb(imdb_dir, tmp_path, text_column="review")
    with pytest.raises(DataError, match="label column 'stars' not in the dataset"):
        imdb(imdb_dir, tmp_path, label_column="stars")


def test_labels_without_class_names_are_the_training_splits_values(imdb_dir, tmp_path):
    """IMDB's rating column (1-4, 7-10, no ClassLabel): the 8 classes that imdb_rating names by hand."""
    dm = imdb(imdb_dir, tmp_path, label_column="rating", train_fraction=0.2)
    assert dm.label_names == ["1", "2", "3", "4", "7", "8", "9", "10"]
    assert dm.hparams.label_names == dm.label_names  # saved with the data settings in checkpoints
    texts = {text: label for text, label in itertools.islice(dm.val_documents(), 200)}
    ratings = {row["text"]: row["rating"] for row in load_streaming(str(imdb_dir), tmp_path)["train"].take(25_000)}
    assert all(dm.label_names[label] == str(ratings[text]) for text, label in texts.items())


def unnamed(tmp_path, rows: list[tuple[str, object]], split_rows=None, **settings) -> HFDataModule:
    """A module over parquet files whose label column has no class names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "unnamed"
    for split, split_rows_ in (("train", rows), ("test", split_rows or rows[:2])) if not folder.exists() else ():
        folder.mkdir(parents=True, exist_ok=True)
        texts, labels = zip(*split_rows_, strict=True)
        pq.write_table(pa.table({"text": list(texts), "label": list(labels)}), folder / f"{split}.parquet")
    dm = HFDataModule(str(folder), str(tmp_path), str(tmp_path / "cache"), min_frequency=1, val_fraction=0.0,
                      **settings)  # fmt: skip
    dm.setup()
    return dm


def test_integer_and_string_labels_get_names_in_the_pass_that_trains_the_tokenizer(tmp_path, monkeypatch):
    numbers = unnamed(tmp_path / "int", [(f"Review {i}.", i % 3) for i in range(30)])
    assert numbers.label_names == ["0", "1", "2"]
    assert [label for _, label in numbers.train_documents()][:4] == [0, 1, 2, 0]
    words = unnamed(tmp_path / "str", [(f"Review {i}.", ["pos", "neg", "mixed"][i % 3]) for i in range(30)])
    assert words.label_names == ["mixed", "neg", "pos"]
    assert [label for _, label in words.train_documents()][:3] == [2, 1, 0]
    given = unnamed(tmp_path / "given", [(f"Review {i}.", i % 2) for i in range(30)], label_names=["no", "yes"])
    assert given.label_names == ["no", "yes"]  # config still wins
    monkeypatch.setattr(datamodule_module, "train_tokenizer", lambda *a, **k: pytest.fail("read again"))
    again = unnamed(tmp_path / "str", [(f"Review {i}.", ["pos", "neg", "mixed"][i % 3]) for i in range(30)])
    assert again.label_names == ["mixed", "neg", "pos"]  # from the cache, with the tokenizer


def test_a_label_training_never_saw_is_one_error_naming_it(tmp_path):
    dm = unnamed(tmp_path, [(f"Review {i}.", i % 2) for i in range(30)], split_rows=[("New.", 0), ("Odd.", 7)])
    # the split, each value with its documents, and (for an integer) the indices that would be read
    with pytest.raises(DataError, match=r"Unknown labels in split 'test', column 'label': 7 \(1 documents\); "
                       r"the model knows \['0', '1'\] or an index 0..1 \("):  # fmt: skip
        dm.encoded("test")
    with pytest.raises(DataError, match="holds float values: expected integers or strings"):
        unnamed(tmp_path / "float", [("A.", 1.0), ("B.", 0.5)])


def test_dataset_found_nowhere_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(DatasetNotFound, match=r"(?s)not found. Looked in: .*nobody/nothing.*data.path="):
        load_streaming("nobody/nothing", tmp_path)


def test_imdb_caps_keep_99_percent_of_imdb_words(imdb_module):
    config = OmegaConf.merge(OmegaConf.load(ROOT / "configs" / "data" / "imdb.yaml"),
                             OmegaConf.load(ROOT / "configs" / "recipe" / "paper.yaml").data)  # fmt: skip
    texts = [text for text, _ in imdb_module.train_documents()][::4]  # a quarter, spread over both labels
    capped = DocumentEncoder(imdb_module.encoder.tokenizer, config.max_sentences, config.max_words)
    uncapped = DocumentEncoder(imdb_module.encoder.tokenizer, 10**9, 10**9)

    def words(encoder):
        return sum(
            len(sentence) for document in encoder.encode(texts) for paragraph in document for sentence in paragraph
        )

    assert words(capped) / words(uncapped) >= 0.99


def test_numeric_labels_named_in_config_map_by_value(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("text,stars\nGreat.,7\nAwful.,1\nBest ever.,10\n")
    names = ["1", "2", "3", "4", "7", "8", "9", "10"]  # the ratings of data=imdb_rating
    dm = HFDataModule(str(path), str(tmp_path), str(tmp_path / "cache"), label_column="stars", label_names=names,
                      min_frequency=1, val_fraction=0.0)  # fmt: skip
    dm.setup()
    assert [label for _, label in dm.train_documents()] == [4, 0, 7]  # 7 is class "7", not index 7


def test_imdb_rating_config_reads_real_ratings(imdb_dir, tmp_path):
    config = OmegaConf.load(ROOT / "configs" / "data" / "imdb_rating.yaml")
    dm = imdb(imdb_dir, tmp_path, label_column=config.label_column, label_names=list(config.label_names))
    labels = [label for _, label in dm.val_documents()]
    assert dm.label_names == ["1", "2", "3", "4", "7", "8", "9", "10"] and set(labels) == set(range(8))


def test_auto_caps_come_from_the_training_words_in_the_tokenizer_pass(tmp_path, monkeypatch):
    rows = [(" ".join(["Short one."] * (i % 7 + 1) + ["A much longer sentence of many words here."]), i % 2)
            for i in range(40)]  # fmt: skip
    dm = unnamed(tmp_path, rows, max_sentences="auto", max_words="auto")
    lengths = [sentence_lengths(text) for text, _ in dm.train_documents()]
    assert (dm.encoder.max_sentences, dm.encoder.max_words) == caps_keeping(lengths, 0.99) == (8, 9)
    wrapped = unnamed(tmp_path / "given", rows, max_sentences="auto", max_words=3)
    assert (wrapped.encoder.max_sentences, wrapped.encoder.max_words) == caps_keeping(lengths, 0.99, 3)
    monkeypatch.setattr(datamodule_module, "train_tokenizer", lambda *a, **k: pytest.fail("read again"))
    again = unnamed(tmp_path, rows, max_sentences="auto", max_words="auto")
    assert (again.encoder.max_sentences, again.encoder.max_words) == (8, 9)  # from the cache
    with pytest.raises(DataError, match=r"data.max_words='lots': a positive number, or auto"):
        HFDataModule("x", str(tmp_path), str(tmp_path), max_words="lots")
