"""The export.py command: a checkpoint as a model folder in the Hugging Face layout (hdc.classifier.hub), with the
run's metrics in its model card, written whole or not at all; optionally uploaded to the Hub.
Command line (Hydra, configs/export.yaml): `python export.py ckpt_path=PATH out=DIR [push_to=user/name]`.
"""

import json
import logging
import shutil
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hdc.classifier.checkpoint import read_checkpoint
from hdc.classifier.hub import Pretrained
from hdc.errors import HdcError, reported_as_one_line
from hdc.paths import CONFIG_DIR

log = logging.getLogger(__name__)


def run_metrics(ckpt_path: str | Path, given: str | Path | None = None) -> dict:
    """The metrics of the run that wrote a checkpoint: `given`, or <run>/metrics.json beside
    <run>/checkpoints/; {} if there is none."""
    path = Path(given) if given else Path(ckpt_path).resolve().parent.parent / "metrics.json"
    if not path.is_file():
        if given:
            raise HdcError(f"metrics={given}: no such file")
        log.warning(f"No metrics.json beside {ckpt_path}: the model card will show no scores (set metrics=FILE)")
        return {}
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise HdcError(f"{path}: not JSON ({error.msg})") from None
    return {name: value for name, value in metrics.items() if isinstance(value, int | float)}


def export(ckpt_path: str | Path, out: str | Path, metrics: str | Path | None = None) -> Pretrained:
    """Write the folder; an existing one at `out` is replaced only once the new one is complete."""
    if Path(ckpt_path).is_dir():
        raise HdcError(f"ckpt_path={ckpt_path} is a model folder already; give the .ckpt it was exported from")
    checkpoint = read_checkpoint(ckpt_path)
    model = Pretrained.from_checkpoint(checkpoint, run_metrics(ckpt_path, metrics))
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, model_card_kwargs={"repo": str(out)})
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    log.info(f"Exported {ckpt_path} -> {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))
    return model


def export_and_push(cfg: DictConfig) -> None:
    """export.py's work: the folder, then (push_to) the same folder to the Hub in one commit."""
    model = export(cfg.ckpt_path, cfg.out, cfg.metrics)
    if cfg.push_to:
        url = model.push_to_hub(cfg.push_to, private=cfg.private, model_card_kwargs={"repo": cfg.push_to})
        log.info(f"Uploaded to {url}")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export.yaml")
def main(cfg: DictConfig) -> None:
    with reported_as_one_line(log):
        export_and_push(cfg)
