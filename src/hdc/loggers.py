"""Loggers from config; Weights & Biases runs offline unless an API key is available."""

import logging
import netrc
import os

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def wandb_api_key_available() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def instantiate_loggers(config: DictConfig | None) -> list[Logger]:
    loggers = []
    for logger_config in (config or {}).values():
        if logger_config is None:
            continue
        if "Wandb" in logger_config._target_ and not wandb_api_key_available() and "WANDB_MODE" not in os.environ:
            log.info("No W&B API key found: logging offline (sync later with `wandb sync`)")
            os.environ["WANDB_MODE"] = "offline"
        loggers.append(instantiate(logger_config))
    return loggers
