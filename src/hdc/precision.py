"""Numeric precision: which mixed precision a GPU trains in, and autocast for inference outside a Trainer.

Trainer precisions are Lightning's names. `trainer=gpu` asks for `${mixed_precision:}`: bf16 where the
GPU computes in it natively (Ampere and later), else fp16 with loss scaling. Models keep their weights
in fp32 either way; hdc.models.han keeps softmax and pooled sums in fp32.
"""

import contextlib

import torch
from omegaconf import OmegaConf

from hdc.errors import HdcError

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def mixed_precision() -> str:
    """bf16-mixed, or 16-mixed on a CUDA GPU without native bf16 (emulated bf16 is slower than fp32)."""
    if torch.cuda.is_available() and not torch.cuda.is_bf16_supported(including_emulation=False):
        return "16-mixed"
    return "bf16-mixed"


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


OmegaConf.register_new_resolver("mixed_precision", mixed_precision, replace=True)
