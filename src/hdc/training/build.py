"""A run's parts from its config: the data module, the classifier, the trainer. train.py builds through
here, and so do the benchmark and the scaling scripts, so that what they measure is what trains.

Data flows one way: build_data sets the data up (and names the task's metric in the config: what
${monitor} and ${net_monitor} follow), build_model makes the classifier for that data and starts it on
the training split, build_trainer sizes the run to the corpus and makes the trainer.
"""

import logging
import math
import time

import lightning as L
import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from hdc.classifier.module import DocumentClassifier
from hdc.classifier.task import Task
from hdc.data.datamodule import HFDataModule
from hdc.data.vectors import file_dimension
from hdc.errors import HdcError
from hdc.models.fasttext import FastText
from hdc.training.loggers import instantiate_loggers

log = logging.getLogger(__name__)


def build_data(cfg: DictConfig) -> HFDataModule:
    """The data module, set up for training (tokenizer trained or read from the cache, labels known)."""
    datamodule = instantiate(cfg.data, _convert_="all")  # plain lists: the settings ride in checkpoints
    datamodule.setup("fit")
    cfg.metric = Task(len(datamodule.label_names), datamodule.multi_label).metric
    return datamodule


def build_model(cfg: DictConfig, datamodule: HFDataModule, fit: bool = True) -> DocumentClassifier:
    """The classifier for `datamodule`'s vocabulary and labels; with `fit` (not for a resumed run, whose
    checkpoint holds them) started on the training split: word vectors (start_from_word_vectors), then
    fit_to_training_split."""
    fit_embedding_to_vectors(cfg)
    wide = cfg.model.get("wide")
    if wide is not None and "_target_" not in wide:  # e.g. experiment=imdb's wide-term options, model=fasttext
        log.info(f"model.wide: {OmegaConf.to_container(wide)} are options of a wide term, and this model has none "
                 f"(model.wide=null): not used")  # fmt: skip
        cfg.model.wide = None
    try:
        model = instantiate(
            cfg.model,
            vocab_size=datamodule.encoder.tokenizer.get_vocab_size(),
            label_names=datamodule.label_names,
            multi_label=datamodule.multi_label,
            encoder=datamodule.encoder,
            _convert_="all",
        )
    except InstantiationException as error:  # an architecture the model refuses: its reason, in one line
        if isinstance(error.__cause__, ValueError):
            raise HdcError(f"model: {error.__cause__}") from None
        raise
    if fit:
        start_from_word_vectors(model, datamodule, dict(cfg.get("vectors") or {}), cfg.seed)
        fit_to_training_split(model, datamodule)
    return model


def start_from_word_vectors(model: DocumentClassifier, datamodule: HFDataModule, vectors: dict, seed: int) -> None:
    """The embedding's start: the vectors of vectors.path, or word2vec (vectors.train) on the training
    split and data.unlabelled's text. vectors=auto (min_words set) trains them where they pay: on
    millions of training words, or when data.unlabelled brings more text; never for fastText's bag."""
    min_words = vectors.pop("min_words", None)
    if min_words is not None and not (type(min_words) is int and min_words >= 0):  # not a bool either
        raise HdcError(f"vectors.min_words={min_words!r}: a number of training words (0 or more), or null")
    if min_words is not None and vectors.get("path"):  # auto, and a file of vectors given: the file
        vectors["train"] = None
    if not (vectors.get("train") or vectors.get("path")):
        return
    if min_words is not None and vectors.get("train") and (reason := _auto_trains_none(model, datamodule, min_words)):
        log.info(f"vectors=auto: none trained, {reason}; vectors=skipgram trains them anyway")
        return
    embedding = model.net.embedding.weight
    table, found = datamodule.word_vectors(embedding.size(1), seed, **vectors)
    embedding.data[found] = torch.from_numpy(table[found])
    source = vectors["path"] or f"{vectors['train']} trained here"
    log.info(f"Embedding started from word vectors ({source}) for {found.sum()} of {len(found)} words")


def _auto_trains_none(model: DocumentClassifier, datamodule: HFDataModule, min_words: int) -> str | None:
    """Why vectors=auto trains no vectors for this model and data, if it does not."""
    if isinstance(model.net, FastText):
        return "fastText keeps its own start"
    if datamodule.hparams.unlabelled is None and (words := len(datamodule.encoded("train").token_ids)) < min_words:
        return (f"{words:,} training words teach word2vec noise (it pays from vectors.min_words={min_words:,}, or "
                "with data.unlabelled)")  # fmt: skip
    return None


def fit_embedding_to_vectors(cfg: DictConfig) -> None:
    """A vectors file sets the embedding's width: a file of 300-d vectors makes a 300-d embedding."""
    path = (cfg.get("vectors") or {}).get("path")
    if not path or "embedding_dim" not in cfg.model.net:
        return
    if (dimension := file_dimension(path)) != cfg.model.net.embedding_dim:
        log.info(f"vectors.path={path} holds {dimension}-d vectors: model.net.embedding_dim={dimension} "
                 f"(was {cfg.model.net.embedding_dim})")  # fmt: skip
        cfg.model.net.embedding_dim = dimension


def fit_to_training_split(model: DocumentClassifier, datamodule: HFDataModule) -> None:
    """What a new model takes from the training split before its first step: the net's output bias
    starts at the label prior, bags of n-grams weigh them by IDF, and a wide term is fitted exactly."""
    train = datamodule.encoded("train")
    model.start_at_prior(torch.from_numpy(np.array(train.labels)), len(train))
    for bag in (module for module in model.modules() if isinstance(module, FastText)):
        bag.set_idf(train.token_ids, train.sentence_starts, train.document_starts)
    if model.wide is not None:
        start = time.perf_counter()
        model.wide.fit(datamodule.train_dataloader(), model.task.targets, model.task.loss)
        log.info(f"Wide term: a linear model on the TF-IDF bags fitted in {time.perf_counter() - start:.0f} s")


def build_trainer(cfg: DictConfig, datamodule: HFDataModule, resumed_step: int | None = None) -> L.Trainer:
    """The trainer with the config's callbacks and loggers (continuing a resumed run's step count), its
    epochs scaled to the corpus (scale_epochs)."""
    scale_epochs(cfg, len(datamodule.train_dataloader()))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = instantiate_loggers(cfg.get("logger"), resumed_step)
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def scale_epochs(cfg: DictConfig, steps_per_epoch: int) -> None:
    """A run of at least `min_optimizer_steps` (the default recipe's) on any corpus: a small one has
    trainer.max_epochs and check_val_every_n_epoch multiplied by one factor, so that validation,
    early stopping's patience and checkpoints keep their rhythm in steps while the net gets the updates
    it needs (a few hundred documents at 8 epochs are a few dozen steps: too few for the HAN).
    A run whose length the user chose in steps or batches is left as it is. Steps are counted for one
    process: under DDP each rank takes its share of the batches, so a run takes about floor / ranks."""
    floor, trainer = cfg.get("min_optimizer_steps"), cfg.trainer
    if not floor or trainer.get("limit_train_batches") or trainer.get("max_steps", -1) not in (None, -1):
        return
    epochs = trainer.max_epochs or 1
    factor = math.ceil(floor / (steps_per_epoch * epochs))
    if factor <= 1:
        return
    with open_dict(cfg):
        trainer.max_epochs = epochs * factor
        trainer.check_val_every_n_epoch = (trainer.get("check_val_every_n_epoch") or 1) * factor
    log.info(
        f"{steps_per_epoch} optimizer steps an epoch: {trainer.max_epochs} epochs, validated every "
        f"{trainer.check_val_every_n_epoch}, to reach min_optimizer_steps={floor}"
    )
