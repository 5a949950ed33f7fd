"""A LightningDataModule that streams a Hugging Face dataset as bucketed HAN batches."""

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch
from tokenizers import Tokenizer
from torchdata.stateful_dataloader import StatefulDataLoader

from hdc.data.batching import BucketedBatches
from hdc.data.encoded import EncodedDocuments, encode_chunks, encode_documents, write_encoded
from hdc.data.source import (
    LabelledSplit,
    document_text,
    find_local,
    holds_label_sets,
    inferred_label_names,
    label_names_of,
    load_streaming,
    local_fingerprint,
    require_columns,
    text_columns,
)
from hdc.data.vectors import file_vectors, trained_vectors
from hdc.data.vocab import DocumentEncoder, caps_keeping, sentence_lengths, train_tokenizer
from hdc.errors import DataError
from hdc.paths import written_atomically

log = logging.getLogger(__name__)
# torchdata 0.11 calls a torch function that torch >= 2.7 deprecated, once per loader: noise, not news.
warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)


class HFDataModule(L.LightningDataModule):
    """Streams train/validation/test splits of `path` (a hub id, or a local folder or file).

    Validation is the dataset's own `val_split` when it has one; otherwise a seeded `val_fraction`
    of the training split, chosen by a hash of each text (so it is the same on every run and worker
    and never overlaps the rest). `train_fraction` keeps a fixed share of the remaining training
    documents, for quick runs. The tokenizer is trained on the training documents only; each split
    is then streamed once more and encoded. Both are cached under `cache_dir`, keyed by everything
    they depend on, so later epochs and runs skip the text processing.

    A label column of lists (or of strings split by `label_separator`) makes the split multi-label
    (`multi_label`): each document has a set of labels, possibly empty.

    `unlabelled` names text without labels: a split of the dataset (IMDB's `unsupervised`) or other
    files with the text column. It is read only where text alone helps (word vectors), never for
    validation or test.
    """

    def __init__(
        self,
        path: str,
        data_dir: str,
        cache_dir: str,
        name: str | None = None,
        text_column: str | list[str] = "text",
        label_column: str = "label",
        label_names: list[str] | None = None,
        label_separator: str | None = None,
        train_split: str = "train",
        val_split: str | None = "validation",
        test_split: str | None = "test",
        val_fraction: float = 0.1,
        train_fraction: float = 1.0,
        split_seed: int = 0,
        min_frequency: int = 2,
        max_sentences: int | str = "auto",
        max_words: int | str = 80,
        batch_size: int = 64,
        bucket_size: int = 2048,
        shuffle_seed: int = 0,
        num_workers: int = 0,
        encode_workers: int | None = None,
        batch_tokens: int | None = None,
        unlabelled: str | None = None,
    ):
        super().__init__()
        for cap, value in (("max_sentences", max_sentences), ("max_words", max_words)):
            if value != "auto" and not (isinstance(value, int) and value > 0):
                raise DataError(f"data.{cap}={value!r}: a positive number, or auto (keep 99% of the training words)")
        # Lightning keeps them in checkpoints: hdc.classifier.checkpoint.data_settings
        self.save_hyperparameters(logger=False)
        self.splits = None
        self.encoder: DocumentEncoder | None = None
        self.label_names: list[str] = []
        self.multi_label = False
        self._encoded: dict[str, EncodedDocuments] = {}

    def use_encoder(self, encoder: DocumentEncoder, label_names: list[str], multi_label: bool = False) -> None:
        """Encode with a trained model's tokenizer, caps, label names and task (evaluation) instead of
        training a tokenizer; the training split is then not needed."""
        self.encoder, self.label_names, self.multi_label = encoder, list(label_names), multi_label

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        hp = self.hparams
        self.splits = load_streaming(hp.path, hp.data_dir, hp.name)
        if self.encoder is not None:
            return
        if hp.train_split not in self.splits:
            raise DataError(f"split {hp.train_split!r} not in {hp.path!r} (splits: {list(self.splits)})")
        require_columns(self.splits[hp.train_split], hp.text_column, hp.label_column)
        self._check_unlabelled()
        self.multi_label = holds_label_sets(self.splits[hp.train_split], hp.label_column, hp.label_separator)
        self.label_names = label_names_of(self.splits[hp.train_split], hp.label_column, hp.label_names) or []
        auto_caps = "auto" in (hp.max_sentences, hp.max_words)
        tokenizer, facts = self._tokenizer(infer_labels=not self.label_names, auto_caps=auto_caps)
        if not self.label_names:  # kept with the data settings (checkpoints): labels matched by value everywhere
            self.label_names = hp.label_names = facts[self._labels_fact]
            sets = " (sets of them: multi-label)" if self.multi_label else ""
            log.info(f"Labels of column {hp.label_column!r}{sets}, from the training split: {self.label_names}")
        caps = (hp.max_sentences, hp.max_words)
        if auto_caps:
            found = facts[f"caps_{hp.max_words}"]
            caps = tuple(int(a if a != "auto" else b) for a, b in zip(caps, found, strict=True))
            log.info(f"Caps from the training split (keeping 99% of its words): max_sentences={caps[0]}, "
                     f"max_words={caps[1]}")  # fmt: skip
        self.encoder = DocumentEncoder(tokenizer, *caps)

    def _split(self, name: str, keep: tuple[float, float] = (0.0, 1.0)) -> LabelledSplit:
        hp = self.hparams
        columns = (hp.text_column, hp.label_column)
        names = self.label_names or None  # None while they are inferred: labels as they are
        return LabelledSplit(self.splits[name], *columns, names, keep, hp.split_seed, bool(hp.label_names),
                             self.multi_label, hp.label_separator, name)  # fmt: skip

    @property
    def _carves_validation(self) -> bool:
        return self.hparams.val_split not in self.splits

    def train_documents(self) -> LabelledSplit:
        hp = self.hparams
        low = hp.val_fraction if self._carves_validation else 0.0
        return self._split(hp.train_split, (low, low + hp.train_fraction * (1.0 - low)))

    def val_documents(self) -> LabelledSplit:
        hp = self.hparams
        if self._carves_validation:
            return self._split(hp.train_split, (0.0, hp.val_fraction))
        return self._split(hp.val_split)

    def test_documents(self) -> LabelledSplit | None:
        return self._split(self.hparams.test_split) if self.hparams.test_split in self.splits else None

    def _tokenizer(self, infer_labels: bool, auto_caps: bool) -> tuple[Tokenizer, dict]:
        """The tokenizer, trained on the training documents, and what the same pass learns of them:
        with `infer_labels` the label values seen ("labels_<column>"), with `auto_caps` the words of each
        document's sentences ("caps": (max_sentences, max_words) keeping 99% of the words); all cached."""
        cache = self._cache_path("tokenizers", "json")
        facts_cache = cache.with_suffix(".train.json")
        facts = json.loads(facts_cache.read_text()) if facts_cache.exists() else {}
        labels = self._labels_fact
        wanted = {labels} if infer_labels else set()
        if auto_caps:
            wanted.add(f"caps_{self.hparams.max_words}")  # auto max_words, or wrapped at a given one
        if cache.exists() and wanted <= facts.keys():
            log.info(f"Tokenizer from cache {cache}")
            return Tokenizer.from_file(str(cache)), facts
        log.info("Training the tokenizer on the training documents (cached for later runs)")
        values: set = set()
        lengths: list[list[int]] = []

        def texts():
            for text, label in self.train_documents():
                if self.multi_label:
                    values.update(label)
                else:
                    values.add(label)
                if auto_caps:
                    lengths.append(sentence_lengths(text))
                yield text

        tokenizer = train_tokenizer(texts(), self.hparams.min_frequency)
        if infer_labels:
            facts[labels] = inferred_label_names(values, self.hparams.label_column)
        if auto_caps:
            given = None if self.hparams.max_words == "auto" else int(self.hparams.max_words)
            facts[f"caps_{self.hparams.max_words}"] = caps_keeping(lengths, 0.99, given)
        with written_atomically(facts_cache) as partial:
            partial.write_text(json.dumps(facts))
        with written_atomically(cache) as partial:
            tokenizer.save(str(partial))
        return tokenizer, facts

    @property
    def _labels_fact(self) -> str:
        """The name of the label values in the tokenizer's facts: the tokenizer's cache key holds the
        text column only, so the facts name the label column (and separator) they were read from."""
        separator = self.hparams.label_separator
        return f"labels_{self.hparams.label_column}" + (f"_split_by_{separator}" if separator is not None else "")

    def encoded(self, stage: str) -> EncodedDocuments:
        """The "train", "val" or "test" documents as word ids: encoded on first use, then from the cache."""
        if stage not in self._encoded:
            cache = self._cache_path("encoded", "split", stage=stage, tokenizer=self.encoder.tokenizer.to_str())
            if not cache.exists():
                documents = {"train": self.train_documents, "val": self.val_documents, "test": self.test_documents}
                split = documents[stage]()
                if split is None:
                    raise DataError(f"split {self.hparams.test_split!r} not in {self.hparams.path!r} "
                                    f"(splits: {list(self.splits)})")  # fmt: skip
                start, workers = time.perf_counter(), self.hparams.encode_workers or available_cores()
                count = write_encoded(encode_chunks(split, self.encoder, workers=workers), cache)
                if not count:
                    shutil.rmtree(cache)
                    raise DataError(f"the {stage} split of {self.hparams.path!r} has no documents")
                log.info(f"Encoded {count} {stage} documents in {time.perf_counter() - start:.1f} s "
                         f"({workers} processes) -> {cache}")  # fmt: skip
            self._encoded[stage] = EncodedDocuments.load(cache)
            if empty := self._encoded[stage].empty_documents():
                # Kept, so that a test score counts every document: an empty one gets the answer to no text.
                log.warning(f"{empty} of {len(self._encoded[stage])} {stage} documents have no words (an empty "
                            f"text column {self.hparams.text_column!r}?); they are kept")  # fmt: skip
        return self._encoded[stage]

    def _check_unlabelled(self) -> None:
        """data.unlabelled names a split that is not an evaluation split, or files that exist; a dataset
        with an unlabelled split that is not used says so."""
        hp = self.hparams
        if hp.unlabelled is None:
            for name in self.splits:
                if name in UNLABELLED_SPLITS:
                    log.info(f"Split {name!r} holds text without labels: data.unlabelled={name} trains word "
                             f"vectors on it too (vectors=skipgram)")  # fmt: skip
            return
        if hp.unlabelled in (hp.train_split, hp.val_split, hp.test_split):
            raise DataError(f"data.unlabelled={hp.unlabelled!r} is a labelled split of {hp.path!r}: name a split "
                            f"or files of text without labels")  # fmt: skip
        if hp.unlabelled not in self.splits and find_local(hp.unlabelled, hp.data_dir) is None:
            raise DataError(f"data.unlabelled={hp.unlabelled!r}: neither a split of {hp.path!r} "
                            f"(splits: {list(self.splits)}) nor local files")  # fmt: skip

    def unlabelled_texts(self) -> Iterator[str]:
        """The texts of data.unlabelled: its split, or every split of its files."""
        hp = self.hparams
        if hp.unlabelled in self.splits:
            splits = [self.splits[hp.unlabelled]]
        else:
            splits = list(load_streaming(hp.unlabelled, hp.data_dir).values())
        for split in splits:
            if split.column_names is not None and not set(text_columns(hp.text_column)) <= set(split.column_names):
                raise DataError(f"data.unlabelled={hp.unlabelled!r}: no text column {hp.text_column!r} "
                                f"(columns: {split.column_names})")  # fmt: skip
            for row in split.select_columns(text_columns(hp.text_column)):
                yield document_text(row, hp.text_column)

    def word_vectors(
        self, vector_size: int, seed: int, train: str | None = None, path: str | None = None, **settings
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the vocabulary (and which ids have one): trained (`train`: skipgram or cbow) on the
        encoded training split and data.unlabelled's text, or read from the file at `path`; on first
        use, then from the cache."""
        hp, tokenizer = self.hparams, self.encoder.tokenizer
        if train and path:
            raise DataError(f"vectors.train={train} and vectors.path={path}: choose one (vectors=none resets both)")
        if path:
            source = {"path": str(path), "file": local_fingerprint(str(path), ".")}
        else:  # the unlabelled text's files too, when they are not a split of the dataset
            files = None if hp.unlabelled in self.splits else local_fingerprint(hp.unlabelled or "", hp.data_dir)
            source = {"train": train, "unlabelled": hp.unlabelled, "unlabelled_files": files}
        cache = self._cache_path("vectors", "npz", tokenizer=tokenizer.to_str(), size=vector_size, seed=seed,
                                 **source, **settings)  # fmt: skip
        if not cache.exists():
            start = time.perf_counter()
            if path:
                vectors, found = file_vectors(path, tokenizer.get_vocab(), tokenizer.get_vocab_size())
            else:
                corpora = [self.encoded("train")]
                if hp.unlabelled is not None:
                    texts = ((text, 0) for text in self.unlabelled_texts())
                    corpora.append(encode_documents(texts, self.encoder))
                vectors, found = trained_vectors(corpora, tokenizer.get_vocab_size(), vector_size, seed, train,
                                                 **settings)  # fmt: skip
            with written_atomically(cache) as partial:
                np.savez(partial, vectors=vectors, found=found)
            log.info(f"Vectors for {found.sum()} of {len(found)} words in {time.perf_counter() - start:.1f} s -> "
                     f"{cache}")  # fmt: skip
        saved = np.load(cache)
        return saved["vectors"], saved["found"]

    def _cache_path(self, kind: str, suffix: str, **extra) -> Path:
        """A file under cache_dir/kind named by a digest of what its content depends on: the data
        files and every setting that selects or encodes documents (and `extra`)."""
        settings = {k: v for k, v in self.hparams.items() if k not in _LOADING_SETTINGS}
        if kind == "tokenizers":  # the vocabulary depends on the training documents only
            settings = {k: settings[k] for k in _TOKENIZER_SETTINGS}
        payload = {
            "settings": settings,
            "extra": extra,
            "files": local_fingerprint(self.hparams.path, self.hparams.data_dir),
            "version": 6,  # the layout of what is cached: bumped when it changes (hdc.data.encoded._FORMAT)
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return Path(self.hparams.cache_dir) / kind / f"{digest}.{suffix}"

    def _loader(self, stage: str, seed: list[int] | None) -> StatefulDataLoader:
        hp = self.hparams
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        batches = BucketedBatches(self.encoded(stage), hp.batch_size, hp.bucket_size, seed, rank, world_size,
                                  hp.batch_tokens)  # fmt: skip
        # Stateful: Lightning saves how far an epoch got in every checkpoint, so that a run resumed
        # from a mid-epoch checkpoint continues with the next batch of the same epoch order.
        # Its own generator: making an iterator draws a seed, which must not move the global RNG
        # (dropout's), or a resumed run, which makes its iterators at other times, would diverge.
        generator = torch.Generator().manual_seed(hp.shuffle_seed)
        # Pinned batches on a GPU: Lightning copies them with non_blocking=True.
        on_gpu = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        return StatefulDataLoader(batches, batch_size=None, shuffle=False, num_workers=hp.num_workers,
                                  generator=generator, pin_memory=on_gpu)  # fmt: skip

    def train_dataloader(self) -> StatefulDataLoader:
        # Lightning reloads this every epoch (trainer.reload_dataloaders_every_n_epochs=1), so each
        # epoch gets its own seeded order; a resumed run gets the order of the epoch it resumes.
        epoch = self.trainer.current_epoch if self.trainer else 0
        return self._loader("train", seed=[self.hparams.shuffle_seed, epoch])

    def val_dataloader(self) -> StatefulDataLoader:
        return self._loader("val", seed=None)

    def test_dataloader(self) -> StatefulDataLoader:
        return self._loader("test", seed=None)


# Settings that change how batches are drawn or where files live, not what a cached file holds.
_LOADING_SETTINGS = ("data_dir", "cache_dir", "batch_size", "bucket_size", "shuffle_seed", "num_workers",
                     "encode_workers", "batch_tokens", "unlabelled")  # fmt: skip
UNLABELLED_SPLITS = ("unsupervised", "unlabelled", "unlabeled")  # names hub datasets give text without labels
_TOKENIZER_SETTINGS = ("path", "name", "text_column", "train_split", "val_split", "val_fraction", "train_fraction",
                       "split_seed", "min_frequency")  # fmt: skip


def available_cores() -> int:
    """The cores this process may run on (a container's or a job's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
