"""`python eval.py ckpt_path=PATH`: a checkpoint's metrics on a labelled split (by default, its test split).

The tokenizer, caps and label names come from the checkpoint; so does the dataset, unless `data.*`
names another. Writes metrics.json (the names train.py logs, e.g. test/acc, plus per-class scores
and the confusion matrix) and confusion_matrix.png into the run directory, and prints a table.
"""

import json
import logging
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from hdc.checkpoint import datamodule_for, load_classifier, read_checkpoint
from hdc.errors import reported_as_one_line
from hdc.module import DocumentClassifier
from hdc.paths import CONFIG_DIR
from hdc.precision import autocast, checked
from hdc.viz.confusion import confusion_matrix_png

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_logits(
    model: DocumentClassifier, batches, device: str, precision: str = "32-true"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every document in `batches`, in their order (forward under `precision`'s autocast)."""
    logits, labels = [], []
    for batch in batches:
        with autocast(device, precision):
            logits.append(model(batch.to(device))[0].float().cpu())
        labels.append(batch.labels)
    return torch.cat(logits), torch.cat(labels)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, label_names: list[str]) -> dict:
    """The test metrics train.py logs (same names and definitions), plus per-class scores and the
    confusion matrix (rows: true label, columns: predicted)."""
    classes = len(label_names)
    predicted = logits.argmax(-1)

    def per_class(metric) -> dict[str, float]:
        return dict(zip(label_names, metric(predicted, labels, classes, average=None).tolist(), strict=True))

    return {
        "test/acc": multiclass_accuracy(predicted, labels, classes, average="micro").item(),
        "test/f1": multiclass_f1_score(predicted, labels, classes, average="macro").item(),
        "test/loss": F.cross_entropy(logits, labels).item(),
        "test/precision_per_class": per_class(multiclass_precision),
        "test/recall_per_class": per_class(multiclass_recall),
        "test/f1_per_class": per_class(multiclass_f1_score),
        "test/confusion_matrix": multiclass_confusion_matrix(predicted, labels, classes).tolist(),
        "test/documents": len(labels),
        "label_names": label_names,
    }


def table(metrics: dict) -> str:
    names = metrics["label_names"]
    width = max(12, *map(len, names)) + 2
    lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'documents':>11}"]
    for i, name in enumerate(names):
        support = sum(metrics["test/confusion_matrix"][i])
        scores = [metrics[f"test/{m}_per_class"][name] for m in ("precision", "recall", "f1")]
        lines.append(f"{name:<{width}}" + "".join(f"{x:>10.4f}" for x in scores) + f"{support:>11}")
    lines.append(f"{'accuracy':<{width}}{metrics['test/acc']:>30.4f}{metrics['test/documents']:>11}")
    lines.append(f"{'macro f1':<{width}}{metrics['test/f1']:>30.4f}")
    return "\n".join(lines)


def evaluate(cfg: DictConfig) -> dict:
    checked(cfg.precision)  # an unknown precision: one line, before any work
    checkpoint = read_checkpoint(cfg.ckpt_path, cfg.device)
    model = load_classifier(checkpoint, cfg.device)
    chosen = {k: v for k, v in cfg.data.items() if v is not None and k != "split"}
    datamodule = datamodule_for(
        checkpoint, model, "test", cfg.paths.data_dir, cfg.paths.cache_dir, **chosen, test_split=cfg.data.split
    )
    logits, labels = predict_logits(model, datamodule.test_dataloader(), cfg.device, cfg.precision)
    metrics = classification_metrics(logits, labels, model.label_names)
    metrics |= {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "data": datamodule.hparams.path,
        "split": cfg.data.split,
    }

    output_dir = Path(cfg.paths.output_dir)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    confusion_matrix_png(metrics["test/confusion_matrix"], model.label_names, output_dir / "confusion_matrix.png")
    print(f"{metrics['data']} [{cfg.data.split}], {cfg.ckpt_path}\n{table(metrics)}")
    log.info(f"Wrote {output_dir / 'metrics.json'} and {output_dir / 'confusion_matrix.png'}")
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    with reported_as_one_line(log):
        evaluate(cfg)
