"""The parts a classifier is made of: nets that read a Batch's tensors (han.HAN, fasttext.FastText) and
the wide term beside them (wide.WideTerm). Plain torch: nothing here knows of Hydra, files or Lightning.

A part is given as a factory that takes vocab_size and num_classes (a functools.partial, what Hydra's
`_partial_: true` makes); a checkpoint names it as a spec, {"_target_": "hdc.models.han.HAN", **options}.
"""

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class NetOutput:
    """What a net gives for a batch of documents (hdc.data.batching.Batch's inputs).

    logits [documents, labels]; word_weights [sentences, words]: each word's weight in its sentence
    (0 on padding); sentence_weights: each sentence's share of its document, [documents, sentences]
    (0 on padding), or with label attention one row per label, [documents, labels, sentences].
    """

    logits: torch.Tensor
    word_weights: torch.Tensor
    sentence_weights: torch.Tensor

    @property
    def per_label(self) -> bool:
        """Whether each label weighs the sentences its own way (label attention)."""
        return self.sentence_weights.dim() == 3

    def sentences_for(self, labels: torch.Tensor) -> torch.Tensor:
        """[documents, sentences]: each document's sentence weights for its label in `labels`
        [documents] (label attention), or the shared ones."""
        if not self.per_label:
            return self.sentence_weights
        return self.sentence_weights[torch.arange(len(labels), device=labels.device), labels]


def spec(factory: functools.partial | None) -> dict | None:
    """A part's factory as plain values."""
    if factory is None:
        return None
    if not isinstance(factory, functools.partial) or factory.args:
        raise ValueError(f"a part is a functools.partial with keyword options only, not {factory!r}")
    return {"_target_": f"{factory.func.__module__}.{factory.func.__qualname__}", **_plain(factory.keywords)}


def _plain(value):
    """Nested mappings and sequences (a config's, say) as dicts and lists: what weights_only loading reads."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value


def from_spec(spec: dict | None) -> functools.partial | None:
    """The factory a spec names; only this package's parts (a checkpoint cannot name other code to run)."""
    if spec is None:
        return None
    options = dict(spec)
    module, _, name = str(options.pop("_target_", "")).rpartition(".")
    part = getattr(importlib.import_module(module), name, None) if module.startswith(__name__ + ".") else None
    if not (isinstance(part, type) and issubclass(part, nn.Module)):
        raise ValueError(f"{module}.{name} is not one of hdc's models")
    return functools.partial(part, **options)
