"""`python train.py`: compose data, model, callbacks, loggers and trainer from config; fit, test, write metrics.json."""

import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hdc.classifier.checkpoint import read_checkpoint
from hdc.config_types import check_config_types
from hdc.errors import HdcError, reported_as_one_line
from hdc.paths import CONFIG_DIR, PROJECT_ROOT
from hdc.training.build import build_data, build_model, build_trainer
from hdc.training.loggers import finish

log = logging.getLogger(__name__)


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
    if "optimizer_states" not in checkpoint:
        raise HdcError(
            f"ckpt_path={ckpt_path}: holds the model's weights only (a best epoch's checkpoint), not a training "
            f"state to resume: resume from the run's checkpoints/last.ckpt (ckpt_path=last)"
        )
    return ckpt_path, checkpoint.get("global_step", 0)


def train(cfg: DictConfig) -> dict[str, float]:
    output_dir = Path(cfg.paths.output_dir)
    ckpt_path, resumed_step = checkpoint_to_resume(
        cfg.get("ckpt_path"), output_dir, Path(cfg.paths.log_dir) / cfg.task_name
    )
    check_config_types(cfg, ["data", "model", "trainer", "vectors"])
    L.seed_everything(cfg.seed, workers=True)

    datamodule = build_data(cfg)  # sets cfg.metric: what ${monitor} names
    if rank_zero_only.rank == 0:
        datamodule.encoder.tokenizer.save(str(output_dir / "tokenizer.json"))
    log.info(f"Vocabulary: {datamodule.encoder.tokenizer.get_vocab_size()} words; labels: {datamodule.label_names}")
    write_run_record(output_dir, cfg.get("optimized_metric"))
    if cfg.get("test"):  # the test split's labels checked (it is encoded and cached) before any training
        if datamodule.test_documents() is None:
            log.warning(f"{cfg.data.path} has no {cfg.data.test_split!r} split: the run will not be tested")
        else:
            datamodule.encoded("test")
    model = build_model(cfg, datamodule, fit=not ckpt_path)  # a resumed run has its fit in its checkpoint
    trainer = build_trainer(cfg, datamodule, resumed_step if ckpt_path else None)
    loggers = trainer.loggers
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


def write_run_record(output_dir: Path, optimized_metric: str | None) -> None:
    """run.json beside Hydra's .hydra/config.yaml: what else a rerun needs (package versions, git commit),
    and the metric a sweep reads from this run (its name follows the task: hdc.training.sweep.write_summary)."""
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
        "optimized_metric": optimized_metric,
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
