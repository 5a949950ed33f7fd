"""The parts a classifier is made of: nets that read a Batch's tensors (han.HAN, fasttext.FastText) and
the wide term beside them (wide.WideTerm). Plain torch: nothing here knows of Hydra, files or Lightning.

A part is given as a factory that takes vocab_size and num_classes (a functools.partial, what Hydra's
`_partial_: true` makes); a checkpoint names it as a spec, {"_target_": "hdc.models.han.HAN", **options}.
"""

import functools
import importlib
from collections.abc import Callable

from torch import nn

Factory = Callable[..., nn.Module]


def spec(factory: functools.partial | None) -> dict | None:
    """A part's factory as plain values."""
    if factory is None:
        return None
    if not isinstance(factory, functools.partial) or factory.args:
        raise ValueError(f"a part is a functools.partial with keyword options only, not {factory!r}")
    return {"_target_": f"{factory.func.__module__}.{factory.func.__qualname__}", **factory.keywords}


def from_spec(spec: dict | None) -> functools.partial | None:
    """The factory a spec names; only this package's parts (a checkpoint cannot name other code to run)."""
    if spec is None:
        return None
    options = dict(spec)
    module, _, name = options.pop("_target_").rpartition(".")
    if not module.startswith(__name__ + "."):
        raise ValueError(f"{module}.{name} is not one of hdc's models")
    return functools.partial(getattr(importlib.import_module(module), name), **options)
