"""Config values checked against the type hints of what they configure, before anything is built:
`trainer.max_epochs=abc` is one line naming the key and the expected type, not a traceback from
inside Lightning."""

import collections.abc
import inspect
import types
import typing
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from hdc.errors import HdcError


def _accepts(hint: Any, value: Any) -> bool:
    """Whether `value` fits `hint`, for the plain types configs hold; anything more complex passes."""
    origin = typing.get_origin(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin in (list, tuple, typing.Sequence, collections.abc.Sequence) or hint in (list, tuple):
        return isinstance(value, list | tuple | ListConfig)
    if inspect.isclass(hint) and isinstance(value, str | int | float | bool):
        return isinstance(value, hint)  # a plain value where an object (e.g. a Tensor) is expected
    return True  # callables, dicts, nested configs: left to the code that uses them


def check_config_types(cfg: DictConfig, keys: list[str]) -> None:
    """Raise an HdcError for the first value under cfg[key] (for each key, recursively through nodes
    with a `_target_`) that its target's signature rejects."""
    for key in keys:
        node = cfg.get(key)
        if isinstance(node, DictConfig):
            _check_node(node, key)


def _check_node(node: DictConfig, path: str) -> None:
    for key, value in node.items():
        if isinstance(value, DictConfig):
            _check_node(value, f"{path}.{key}")
    if "_target_" not in node:
        return
    try:
        target = get_object(node._target_)
        hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    except Exception:  # an unimportable target is Hydra's error to report; odd annotations: no check
        return
    for key, hint in hints.items():
        if key in node and not OmegaConf.is_missing(node, key):
            value = node[key]
            value = OmegaConf.to_container(value) if isinstance(value, DictConfig | ListConfig) else value
            if not _accepts(hint, value):
                raise HdcError(f"{path}.{key}={value!r}: expected {_name(hint)}")


def _name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
