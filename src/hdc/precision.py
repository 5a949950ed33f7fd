"""Numeric precision: the Trainer precisions hdc takes, and autocast for inference outside a Trainer.

Trainer precisions are Lightning's names. Models keep their weights in fp32 under each;
hdc.models.han keeps softmax and pooled sums in fp32.
"""

import contextlib

import torch

from hdc.errors import HdcError

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def checked(precision: str) -> str:
    """A Trainer precision, or one line saying which ones there are."""
    if precision not in PRECISIONS:
        raise HdcError(f"precision={precision!r}: expected one of {list(PRECISIONS)}")
    return precision


def autocast(device: str | torch.device, precision: str) -> contextlib.AbstractContextManager:
    """What a Lightning Trainer of this precision runs the forward pass in, for use outside one."""
    if checked(precision) == "32-true":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float16
    return torch.autocast(torch.device(device).type, dtype)
