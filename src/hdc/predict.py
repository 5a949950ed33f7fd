"""Classify new text with a checkpoint, with the attention behind each prediction.

Python: `hdc.load("model.ckpt").predict(["text", ...])`. Command line (Hydra, configs/predict.yaml):
`python predict.py ckpt_path=PATH input=FILE|- output=FILE|- [html=FILE]`; plain-text input holds one
document per line (or, with `blocks=true`, per blank-line-separated block); `.jsonl` input holds one
JSON object with a `text` field (and optionally a `label`) per line. Output is JSONL, one prediction
per document. Input bytes that are not UTF-8 are replaced by U+FFFD, never an error.
"""

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from hdc.data.batching import batch_of
from hdc.errors import HdcError, reported_as_one_line
from hdc.module import HANClassifier, load_classifier
from hdc.paths import CONFIG_DIR
from hdc.precision import autocast, checked

log = logging.getLogger(__name__)


@dataclass
class Sentence:
    """A sentence as the model read it (long sentences are wrapped into several), with its attention:
    `weight` is its share of the document, `paragraph` the index of its paragraph."""

    weight: float
    words: list[str]
    word_weights: list[float]
    paragraph: int = 0


@dataclass
class Prediction:
    label: str
    probabilities: dict[str, float]
    sentences: list[Sentence]

    def to_dict(self) -> dict:
        return asdict(self)


class Predictor:
    """A trained HAN that reads raw text: the checkpoint's own tokenizer, caps and label names.
    `precision` is a Trainer's ("32-true", "bf16-mixed", "16-mixed"): the forward pass runs under the
    same autocast; probabilities and attention weights come out in fp32."""

    def __init__(
        self, model: HANClassifier, device: str | torch.device = "cpu", batch_size: int = 64, precision: str = "32-true"
    ):
        self.precision = checked(precision)  # an unknown precision: one line, before any work
        self.model, self.device, self.batch_size = model.to(device).eval(), device, batch_size

    @property
    def label_names(self) -> list[str]:
        return self.model.label_names

    @torch.no_grad()
    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text. Work per text is bounded by the caps (max_sentences x max_words):
        a 1 MB text costs about as much as a long review; an empty or blank text is read as a single
        unknown word (its sentence has the one word "") and gets the model's prior."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of texts; wrap a single text in a list")
        predictions = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [str(text) for text in texts[start : start + self.batch_size]]
            documents, words = self.model.encoder.encode_with_words(chunk)
            with autocast(self.device, self.precision):
                logits, word_weights, sentence_weights = self.model(
                    batch_of(documents, [0] * len(chunk)).to(self.device)
                )
            probabilities = logits.float().softmax(-1).cpu().tolist()
            word_weights, sentence_weights = word_weights.cpu().tolist(), sentence_weights.cpu().tolist()
            row = 0  # sentences of all documents are stacked in one tensor, document after document
            for paragraphs, probs, weights in zip(words, probabilities, sentence_weights, strict=True):
                sentences = []
                in_order = ((p, sentence) for p, paragraph in enumerate(paragraphs) for sentence in paragraph)
                for (paragraph, sentence_words), weight in zip(in_order, weights, strict=False):  # weights: padded
                    sentences.append(
                        Sentence(weight, sentence_words, word_weights[row][: len(sentence_words)], paragraph)
                    )
                    row += 1
                label = self.label_names[max(range(len(probs)), key=probs.__getitem__)]
                predictions.append(Prediction(label, dict(zip(self.label_names, probs, strict=True)), sentences))
        return predictions


def load(path: str | Path, device: str | torch.device = "cpu", precision: str = "32-true") -> Predictor:
    """A Predictor from an hdc checkpoint (read with weights_only=True: no pickled code runs)."""
    return Predictor(load_classifier(path, device), device, precision=precision)


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
    predictor = Predictor(load_classifier(cfg.ckpt_path, cfg.device), cfg.device, cfg.batch_size, cfg.precision)
    texts, labels = read_documents(cfg.input, cfg.blocks)
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
