"""hdc checkpoints, read and written: Lightning's checkpoint plus what using the model again needs.

- "hyper_parameters": the classifier's options, its parts as specs (hdc.models.spec) and label names;
- "hdc" (written by the LightningModule): the checkpoint format, the tokenizer and its caps;
- "datamodule_hyper_parameters" (written by Lightning from the datamodule's save_hyperparameters): the
  data settings of training, so that eval.py finds the test split by itself.
This module is the one place that reads a checkpoint and builds what it holds (load_classifier,
datamodule_for). Files are written whole or not at all (AtomicCheckpointIO); reading never runs
pickled code, and refuses foreign, damaged or older files in one line.
"""

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hdc.classifier.module import CHECKPOINT_FORMAT, DocumentClassifier, expanded
from hdc.data.datamodule import HFDataModule
from hdc.data.vocab import DocumentEncoder
from hdc.errors import HdcError
from hdc.models import from_spec
from hdc.paths import written_atomically

DATA_KEY = LightningDataModule.CHECKPOINT_HYPER_PARAMS_KEY  # "datamodule_hyper_parameters"


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """An hdc checkpoint's content, read without executing pickled code (weights_only); or a model
    folder's (hdc.classifier.hub: a local folder, or a name on the Hugging Face Hub such as "user/name").

    A missing, truncated or foreign file, or one of another format, is an HdcError naming the file.
    """
    if Path(path).is_dir() or is_hub_name(str(path)):
        from hdc.classifier.hub import read_folder  # huggingface_hub and safetensors load only for a folder

        return read_folder(path)
    path = Path(path)
    if not path.is_file():
        raise HdcError(f"{path}: no such checkpoint file or model folder")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise HdcError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})".split("\n")[0]) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or not checkpoint.get("hdc"):
        raise HdcError(f"{path}: not an hdc checkpoint; train one with train.py")
    if (found := checkpoint["hdc"].get("format")) != CHECKPOINT_FORMAT:
        raise HdcError(f"{path}: an hdc checkpoint of format {found}; this hdc reads format {CHECKPOINT_FORMAT}: "
                       f"train it again")  # fmt: skip
    if not checkpoint["hdc"].get("encoder"):
        raise HdcError(f"{path}: an hdc checkpoint without its tokenizer (saved by a model without an encoder)")
    return checkpoint


def is_hub_name(path: str) -> bool:
    """Whether a path that is not here names a model on the Hub: "user/name" (no file suffix)."""
    parts = path.split("/")
    return (
        not Path(path).exists()
        and len(parts) == 2
        and all(parts)
        and not path.startswith(".")
        and "." not in parts[1][-5:]
    )


def load_classifier(checkpoint: str | Path | dict, map_location: str | torch.device = "cpu") -> DocumentClassifier:
    """The trained classifier a checkpoint holds (a file, or its content from read_checkpoint), in eval mode."""
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint, map_location)
    options = dict(checkpoint["hyper_parameters"])
    try:
        net, wide = from_spec(options.pop("net")), from_spec(options.pop("wide"))
    except (KeyError, ValueError, ImportError) as error:
        raise HdcError(f"not a model this hdc can build ({error})") from None
    encoder = DocumentEncoder.from_dict(checkpoint["hdc"]["encoder"])
    model = DocumentClassifier(net=net, wide=wide, encoder=encoder, **options)
    try:
        model.load_state_dict(expanded(checkpoint["state_dict"]))
    except RuntimeError as error:  # torch lists every key and shape: its first two lines say what is wrong
        lines = [line.strip() for line in str(error).splitlines()[:2]]
        raise HdcError(f"weights that do not match the model's config: {' '.join(lines)}") from None
    return model.to(map_location).eval()


def data_settings(checkpoint: dict) -> dict:
    """The data config a checkpoint was trained with: the datamodule's hyperparameters, which Lightning saves."""
    return dict(checkpoint.get(DATA_KEY) or {})


def datamodule_for(
    checkpoint: dict, model: DocumentClassifier, stage: str, data_dir: str | Path, cache_dir: str | Path, **changes
) -> HFDataModule:
    """The data a checkpoint was trained on (its settings, with `changes`: another path, split, ...), read
    with the model's own tokenizer, caps and label names, set up for `stage`."""
    settings = data_settings(checkpoint) | changes
    if "path" not in settings:
        raise HdcError("the checkpoint does not say which data it was trained on: set data.path=")
    datamodule = HFDataModule(**settings | {"data_dir": str(data_dir), "cache_dir": str(cache_dir)})
    datamodule.use_encoder(model.encoder, model.label_names, model.task.multi_label)
    datamodule.setup(stage)
    return datamodule


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
