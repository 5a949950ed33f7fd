"""hdc checkpoints, read and written: Lightning's checkpoint plus what using the model again needs.

- "hdc" (written by the LightningModule): the tokenizer and its caps, and the best validation accuracy
  so far (torchmetrics keep their state out of state_dict);
- "datamodule_hyper_parameters" (written by Lightning from the datamodule's save_hyperparameters): the
  data settings of training, so that eval.py finds the test split by itself.
Files are written whole or not at all (AtomicCheckpointIO); reading never runs pickled code, refuses
foreign or damaged files in one line, and brings checkpoints of earlier versions to today's form.
"""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.plugins.io import TorchCheckpointIO
from tokenizers import Tokenizer

from hdc.data.vocab import DocumentEncoder
from hdc.errors import HdcError
from hdc.paths import written_atomically

DATA_KEY = LightningDataModule.CHECKPOINT_HYPER_PARAMS_KEY  # "datamodule_hyper_parameters"


def encoder_record(encoder: DocumentEncoder, val_acc_best: float) -> dict:
    """The checkpoint's "hdc" entry: plain values only (the file loads with weights_only=True)."""
    return {
        "tokenizer": encoder.tokenizer.to_str(),
        "max_sentences": encoder.max_sentences,
        "max_words": encoder.max_words,
        "val_acc_best": val_acc_best,
    }


def encoder_from(checkpoint: dict) -> DocumentEncoder:
    saved = checkpoint["hdc"]
    return DocumentEncoder(Tokenizer.from_str(saved["tokenizer"]), saved["max_sentences"], saved["max_words"])


def data_settings(checkpoint: dict) -> dict:
    """The data config a checkpoint was trained with ({} if it does not say): the datamodule's
    hyperparameters, which Lightning saves; a checkpoint without them may carry a copy in its "hdc"
    entry (hdc wrote one there until 2026-11-26)."""
    return dict(checkpoint.get(DATA_KEY) or checkpoint["hdc"].get("data", {}))


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """An hdc checkpoint's content, read without executing pickled code (weights_only).

    A missing, truncated or foreign file is an HdcError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise HdcError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise HdcError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})".split("\n")[0]) from None
    if not isinstance(checkpoint, dict) or "hdc" not in checkpoint or "state_dict" not in checkpoint:
        raise HdcError(f"{path}: not an hdc checkpoint (no tokenizer inside); train one with train.py")
    if checkpoint.get("hyper_parameters", {}).get("net") == "fasttext" and "net.idf" not in checkpoint["state_dict"]:
        raise HdcError(
            f"{path}: a fastText checkpoint from before its bags were TF-IDF weighted (no net.idf): train it again"
        )
    return checkpoint


def with_levels(checkpoint: dict) -> dict:
    """A checkpoint from before `levels` (a word and a sentence level, or one with flat=True), in
    today's form: its sizes as levels, its weights renamed (net.words -> net.levels.0, net.sentences
    -> net.levels.1). The same computation: earlier checkpoints keep evaluating and predicting."""
    hparams = checkpoint["hyper_parameters"]
    if "levels" in hparams or "word_hidden_size" not in hparams:
        return checkpoint
    old = {key: hparams.pop(key) for key in _BEFORE_LEVELS if key in hparams}
    shared = {"attention_size": old.get("attention_size", 100), "heads": old.get("transformer_heads", 4),
              "layers": old.get("transformer_layers", 1)}  # fmt: skip

    def level(prefix: str, unit: str, hidden_size: int) -> dict:
        encoding = {
            "encoder": old.get(f"{prefix}_encoder", "gru"),
            "pooling": old.get(f"{prefix}_pooling", "attention"),
        }
        return {"unit": unit, **encoding, "hidden_size": hidden_size, **shared}

    if old.get("flat"):
        levels = [level("word", "document", old["word_hidden_size"])]
    else:
        levels = [level("word", "sentence", old["word_hidden_size"]),
                  level("sentence", "document", old.get("sentence_hidden_size", 50))]  # fmt: skip
    levels[-1]["segment_length"] = old.get("segment_length")
    hparams["levels"] = levels
    renamed = (("net.words.", "net.levels.0."), ("net.sentences.", "net.levels.1."))
    checkpoint["state_dict"] = {
        next((new + key[len(prefix) :] for prefix, new in renamed if key.startswith(prefix)), key): value
        for key, value in checkpoint["state_dict"].items()
    }
    return checkpoint


_BEFORE_LEVELS = (  # the HAN's arguments that `levels` replaced
    "word_hidden_size", "sentence_hidden_size", "attention_size", "word_pooling", "sentence_pooling", "flat",
    "word_encoder", "sentence_encoder", "transformer_heads", "transformer_layers", "segment_length",
)  # fmt: skip


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's save goes through an fsspec transaction that writes to the system temp folder and
    then moves the file: across file systems that move is a copy, which a kill can cut short. Here
    the checkpoint is written beside its target, flushed to disk, then renamed over it (atomic on
    POSIX). A failed write (disk full) leaves the previous checkpoint in place and stops training
    with one line that says so."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        try:
            with written_atomically(path) as partial, open(partial, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
        except OSError as error:
            raise HdcError(
                f"Could not save checkpoint {path}: {error.strerror or error} (disk full?); "
                f"the previous checkpoint there, if any, is intact"
            ) from None
