"""`python train.py`: compose data, model, callbacks, loggers and trainer from config; fit, test, write metrics.json."""

import importlib.metadata
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hdc.checkpoint import read_checkpoint
from hdc.config_types import check_config_types
from hdc.data.datamodule import HFDataModule
from hdc.errors import HdcError, reported_as_one_line
from hdc.loggers import finish, instantiate_loggers
from hdc.models.fasttext import FastText
from hdc.module import DocumentClassifier
from hdc.paths import CONFIG_DIR, PROJECT_ROOT
from hdc.task import Task

log = logging.getLogger(__name__)


def warn_if_few_steps(cfg: DictConfig, documents: int) -> None:
    """A few hundred documents at the default recipe's epochs are a few dozen optimizer steps: too few
    for the bag's rare n-grams or the HAN to learn (results/recipe_probes.md, "A few hundred documents")."""
    if cfg.trainer.get("limit_train_batches") or cfg.trainer.get("max_steps", -1) not in (None, -1):
        return  # the user chose the run's length in batches
    steps = math.ceil(documents / cfg.data.batch_size) * (cfg.trainer.max_epochs or 1)
    if steps < 300:
        log.warning(
            f"{documents} training documents at batch {cfg.data.batch_size} for {cfg.trainer.max_epochs} epochs are "
            f"only about {steps} optimizer steps: too few to learn from; raise trainer.max_epochs (and consider "
            f"callbacks.early_stopping=null when validation is a few dozen documents)"
        )


def follow_the_task(cfg: DictConfig, monitor: str) -> None:
    """What follows val/acc by default (checkpointing, early stopping, pruning, a plateau schedule,
    a sweep's optimized_metric) follows the task's monitor instead; a monitor the user chose stays."""
    with open_dict(cfg):
        for node in [*(cfg.get("callbacks") or {}).values(), cfg.model.get("scheduler")]:
            if isinstance(node, DictConfig) and node.get("monitor") == "val/acc":
                node.monitor = f"val/{monitor}"
        if cfg.get("optimized_metric") == "val/acc_best":
            cfg.optimized_metric = f"val/{monitor}_best"
    log.info(f"Multi-label: checkpoints, early stopping and sweeps follow val/{monitor}")


def stop_on_the_net(cfg: DictConfig) -> None:
    """With a wide term, early stopping watches the net's own score (val/acc_net), not the answer's:
    while the fitted wide term carries the answer its score stays flat, and patience would stop the net
    before it could earn a share of the mix (results/MULTILABEL.md). Checkpoints still keep the best answer."""
    stopping = (cfg.get("callbacks") or {}).get("early_stopping")
    if cfg.model.get("wide") is None or not isinstance(stopping, DictConfig):
        return
    if stopping.get("monitor") in ("val/acc", "val/f1_micro"):  # the task's monitor; one a user chose stays
        with open_dict(cfg):
            stopping.monitor = f"{stopping.monitor}_net"
        log.info(f"With a wide term, early stopping follows the net's own {stopping.monitor}")


def fit_bags(model: DocumentClassifier, datamodule: HFDataModule) -> None:
    """Bags of n-grams weigh them by IDF in the training split; a wide term is then fitted exactly,
    once, before the net trains."""
    train = datamodule.encoded("train")
    for bag in (module for module in model.modules() if isinstance(module, FastText)):
        bag.set_idf(train.token_ids, train.sentence_starts, train.document_starts)
    if model.wide is not None:
        start = time.perf_counter()
        model.wide.fit(datamodule.train_dataloader(), model.task.targets, model.task.loss)
        log.info(f"Wide term: a linear model on the TF-IDF bags fitted in {time.perf_counter() - start:.0f} s")


def checkpoint_to_resume(ckpt_path: str | None, output_dir: Path, task_dir: Path) -> tuple[str | None, int]:
    """`ckpt_path=last`: this run folder's checkpoints/last.ckpt (with hydra.run.dir=<that run>),
    else the newest last.ckpt of this task's runs; any other path as given. Checked readable first;
    returned with its global step."""
    if not ckpt_path:
        return None, 0
    if ckpt_path == "last":
        here = output_dir / "checkpoints" / "last.ckpt"
        found = [here] if here.exists() else sorted(task_dir.glob("**/checkpoints/last.ckpt"), key=os.path.getmtime)
        if not found:
            raise HdcError(f"ckpt_path=last: no checkpoints/last.ckpt in {output_dir} or under {task_dir}")
        ckpt_path = str(found[-1])
        log.info(f"Resuming from {ckpt_path}")
    try:  # a missing, truncated, foreign or older file: one clear error, before any work
        checkpoint = read_checkpoint(ckpt_path)
    except HdcError as error:
        raise HdcError(f"ckpt_path={error}") from None
    return ckpt_path, checkpoint.get("global_step", 0)


def train(cfg: DictConfig) -> dict[str, float]:
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path, resumed_step = checkpoint_to_resume(
        cfg.get("ckpt_path"), output_dir, Path(cfg.paths.log_dir) / cfg.task_name
    )
    check_config_types(cfg, ["data", "model", "trainer", "word2vec"])
    L.seed_everything(cfg.seed, workers=True)
    write_run_record(output_dir)

    datamodule = instantiate(cfg.data, _convert_="all")  # plain lists: the settings ride in checkpoints
    datamodule.setup("fit")
    if rank_zero_only.rank == 0:
        datamodule.encoder.tokenizer.save(str(output_dir / "tokenizer.json"))
    log.info(f"Vocabulary: {datamodule.encoder.tokenizer.get_vocab_size()} words; labels: {datamodule.label_names}")
    if datamodule.multi_label:
        follow_the_task(cfg, Task(len(datamodule.label_names), multi_label=True).monitor)
    stop_on_the_net(cfg)

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
    if cfg.get("word2vec"):  # the paper's initialisation of the embedding
        embedding = model.net.embedding.weight
        vectors, found = datamodule.word2vec(embedding.size(1), cfg.seed, **cfg.word2vec)
        embedding.data[found] = torch.from_numpy(vectors[found])
        log.info(f"Embedding initialised by word2vec for {found.sum()} of {len(found)} words")
    warn_if_few_steps(cfg, len(datamodule.encoded("train")))
    if not ckpt_path:  # a resumed run has these from its checkpoint
        fit_bags(model, datamodule)
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = instantiate_loggers(cfg.get("logger"), resumed_step if ckpt_path else None)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    try:
        with multirun_ddp_job(trainer.world_size, output_dir):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            if cfg.get("test") and datamodule.test_documents() is not None:
                best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
                if not best:
                    log.warning("No best checkpoint was saved: testing the current weights")
                trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
                metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    finally:
        finish(loggers)

    if trainer.is_global_zero:
        (output_dir / "metrics.json").write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")
    log.info(f"Metrics: {json.dumps(metrics, indent=1, sort_keys=True)}")
    return metrics


def git(*args: str) -> str | None:
    """A git command's output in the project folder; None outside a checkout or without git."""
    try:
        result = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def write_run_record(output_dir: Path) -> None:
    """run.json beside Hydra's .hydra/config.yaml: what else a rerun needs (package versions, git commit)."""
    if rank_zero_only.rank != 0:
        return
    packages = ["torch", "lightning", "hydra-core", "datasets", "tokenizers", "torchmetrics", "torchdata", "numpy"]
    commit, status = git("rev-parse", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    record = {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: importlib.metadata.version(name) for name in packages},
        "command": sys.argv,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")


@contextmanager
def multirun_ddp_job(world_size: int, output_dir: Path) -> Iterator[None]:
    """A DDP job inside a Hydra multirun, where jobs share one process. Lightning starts the other
    DDP processes by re-running the command line with hydra.run.dir set: that would start the whole
    sweep again, in the wrong folder; they get this job's overrides, as a single run, in this job's
    folder instead. Afterwards the process group and the environment Lightning set are undone, so
    that the next job starts its own processes."""
    hydra_config = HydraConfig.get()
    if world_size == 1 or hydra_config.mode != RunMode.MULTIRUN:
        yield
        return
    argv, environment = list(sys.argv), dict(os.environ)
    sys.argv = [sys.argv[0], *hydra_config.overrides.task, "hydra.mode=RUN"]
    with read_write(hydra_config), open_dict(hydra_config):
        hydra_config.run.dir = str(output_dir)
    try:
        yield
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        sys.argv = argv
        os.environ.clear()
        os.environ.update(environment)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    with reported_as_one_line(log):
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric", ""))  # what a hyperparameter sweep maximises


if __name__ == "__main__":
    main()
