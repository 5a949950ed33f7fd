"""Loggers from config; Weights & Biases runs offline unless an API key is available."""

import logging
import netrc
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def wandb_api_key_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def sweep_grouping() -> dict[str, str]:
    """In a Hydra multirun, a W&B group per sweep (its folder's name) and a run name per job."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return {}
    hydra = HydraConfig.get()
    sweep = Path(hydra.sweep.dir).name
    return {"group": sweep, "name": f"{sweep}-{hydra.job.num}"}


def instantiate_loggers(config: DictConfig | None, resumed_step: int | None = None) -> list[Logger]:
    """`resumed_step`: this run resumes a checkpoint of that step. File loggers then write a new
    version folder beside the earlier one (Lightning's CSVLogger would delete an existing metrics.csv)."""
    loggers = []
    for logger_config in (config or {}).values():
        if logger_config is None:
            continue
        settings = {}
        if resumed_step is not None and "version" in logger_config:
            settings["version"] = f"resumed_at_step_{resumed_step}"
        if "Wandb" in logger_config._target_:
            if not wandb_api_key_available() and "WANDB_MODE" not in os.environ:
                log.info("No W&B API key found: logging offline (sync later with `wandb sync`)")
                os.environ["WANDB_MODE"] = "offline"
            settings |= {k: v for k, v in sweep_grouping().items() if not logger_config.get(k)}
        loggers.append(instantiate(logger_config, **settings))
    return loggers


def finish(loggers: list[Logger]) -> None:
    """End this job's W&B run, so that the next job of a multirun (same process) starts its own."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()
