"""The predict.py command: classify new text with a checkpoint, with the attention behind each prediction
(the Predictor of hdc.inference.predictor). Command line (Hydra, configs/predict.yaml):
`python predict.py ckpt_path=PATH input=FILE|- output=FILE|- [html=FILE]`; plain-text input holds one
document per line (or, with `blocks=true`, per blank-line-separated block); `.jsonl` input holds one
JSON object with a `text` field (and optionally a `label`) per line. Output is JSONL, one prediction
per document. Input bytes that are not UTF-8 are replaced by U+FFFD, never an error.
"""

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from hdc.classifier.checkpoint import load_classifier
from hdc.errors import HdcError, reported_as_one_line
from hdc.inference.predictor import Predictor
from hdc.paths import CONFIG_DIR
from hdc.prediction import Prediction

log = logging.getLogger(__name__)


def read_documents(source: str, blocks: bool = False) -> tuple[list[str], list[str | None]]:
    """Texts (and labels, where JSONL gives them) from a file or "-" (standard input)."""
    raw = sys.stdin.buffer.read() if source == "-" else _read_file(source)
    text = raw.decode("utf-8", errors="replace")
    if source.endswith(".jsonl"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise HdcError(f"{source}, line {number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise HdcError(f'{source}, line {number}: expected an object with a "text" string')
            rows.append(row)
        return [row["text"] for row in rows], [row.get("label") for row in rows]
    documents = text.split("\n\n") if blocks else text.splitlines()
    documents = [d.strip() for d in documents if d.strip()] or ([""] if not blocks and text else [])
    return documents, [None] * len(documents)


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise HdcError(f"input={path}: {error.strerror}") from None


def write_predictions(predictions: list[Prediction], target: str) -> None:
    lines = "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in predictions)
    if target == "-":
        sys.stdout.write(lines)
    else:
        Path(target).write_text(lines, encoding="utf-8")


def predict(cfg: DictConfig) -> list[Prediction]:
    checkpoint = cfg.ckpt_path  # required: asked for before the input is read
    texts, labels = read_documents(cfg.input, cfg.blocks)
    if not texts:
        raise HdcError(f"input={cfg.input}: no documents in it (empty input); nothing to predict")
    predictor = Predictor(load_classifier(checkpoint, cfg.device), cfg.device, cfg.batch_size, cfg.precision,
                          attribution=cfg.get("attribution", "attention"))  # fmt: skip
    predictions = predictor.predict(texts)
    write_predictions(predictions, cfg.output)
    if cfg.get("html"):
        from hdc.viz.heatmap import attention_html

        title = f"{Path(cfg.ckpt_path).name}: {len(texts)} documents"
        Path(cfg.html).write_text(attention_html(predictions, labels, title), encoding="utf-8")
        log.info(f"Attention heatmap: {cfg.html}")
    return predictions


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict.yaml")
def main(cfg: DictConfig) -> None:
    with reported_as_one_line(log):
        predict(cfg)
