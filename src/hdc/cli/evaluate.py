"""`python eval.py ckpt_path=PATH`: a checkpoint's metrics on a labelled split (by default, its test split).

The tokenizer, caps and label names come from the checkpoint; so does the dataset, unless `data.*`
names another. Writes metrics.json (the names train.py logs, e.g. test/acc or test/f1_micro, plus
each label's precision, recall, F1 and support, and a single-label model's confusion matrix, also as
confusion_matrix.png) into the run directory, and prints a table.
"""

import json
import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from hdc.classifier.checkpoint import datamodule_for, load_classifier, read_checkpoint
from hdc.classifier.module import DocumentClassifier
from hdc.errors import reported_as_one_line
from hdc.inference.answers import answers
from hdc.paths import CONFIG_DIR
from hdc.precision import checked
from hdc.viz.confusion import confusion_matrix_png

log = logging.getLogger(__name__)


def predict_logits(
    model: DocumentClassifier, batches, device: str, precision: str = "32-true"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and targets (hdc.classifier.task.Task.targets) of every document in `batches`, in their
    order (hdc.inference.answers)."""
    logits, labels = [], []
    for batch, answer in answers(model, batches, device, precision):
        logits.append(answer.logits.float().cpu())
        labels.append(model.task.targets(batch).cpu())
    return torch.cat(logits), torch.cat(labels)


def table(metrics: dict) -> str:
    """Per class: precision, recall, F1 and documents (holding it); then the summary scores."""
    names = metrics["label_names"]
    width = max(16, *map(len, names)) + 2
    lines = [f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'documents':>11}"]
    for name in names:
        scores = [metrics[f"test/{m}_per_class"][name] for m in ("precision", "recall", "f1")]
        support = metrics["test/support_per_class"][name]
        lines.append(f"{name:<{width}}" + "".join(f"{x:>10.4f}" for x in scores) + f"{support:>11}")
    summary = {"accuracy": "test/acc", "macro f1": "test/f1", "micro f1": "test/f1_micro",
               "macro f1 (labels)": "test/f1_macro", "subset accuracy": "test/subset_acc"}  # fmt: skip
    for title, key in summary.items():
        if key in metrics:
            lines.append(f"{title:<{width}}{metrics[key]:>30.4f}")
    lines.append(f"{'documents':<{width}}{metrics['test/documents']:>41}")
    return "\n".join(lines)


def evaluate(cfg: DictConfig) -> dict:
    checked(cfg.precision)  # an unknown precision: one line, before any work
    checkpoint = read_checkpoint(cfg.ckpt_path, cfg.device)
    model = load_classifier(checkpoint, cfg.device)
    chosen = {k: v for k, v in cfg.data.items() if v is not None and k != "split"}
    if chosen.get("label_separator") == "":  # unset the checkpoint's: this file's label column holds lists
        chosen["label_separator"] = None
    datamodule = datamodule_for(
        checkpoint, model, "test", cfg.paths.data_dir, cfg.paths.cache_dir, **chosen, test_split=cfg.data.split
    )
    logits, labels = predict_logits(model, datamodule.test_dataloader(), cfg.device, cfg.precision)
    metrics = model.task.scores(logits, labels, model.label_names, model.thresholds.cpu())
    metrics |= {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "data": datamodule.hparams.path,
        "split": cfg.data.split,
    }

    output_dir = Path(cfg.paths.output_dir)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    written = [output_dir / "metrics.json"]
    if "test/confusion_matrix" in metrics:  # single-label
        written.append(output_dir / "confusion_matrix.png")
        confusion_matrix_png(metrics["test/confusion_matrix"], model.label_names, written[-1])
    print(f"{metrics['data']} [{cfg.data.split}], {cfg.ckpt_path}\n{table(metrics)}")
    log.info(f"Wrote {' and '.join(map(str, written))}")
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    with reported_as_one_line(log):
        evaluate(cfg)
