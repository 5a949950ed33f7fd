"""Optimizer, learning-rate schedule, gradient clipping and the guards of a diverging run, for a
LightningModule: Lightning's own forms, with the cases where torch or Lightning would fail mid-run
handled or refused up front."""

from collections.abc import Callable

import lightning as L
import torch

from hdc.errors import HdcError


def optimizers(
    optimizer: Callable[..., torch.optim.Optimizer] | None, scheduler: dict | None, module: L.LightningModule
) -> torch.optim.Optimizer | dict:
    """What configure_optimizers returns. `scheduler` is Lightning's lr_scheduler config (interval,
    monitor, ...) with the scheduler as a factory; one planned over the whole run (whole_run: true) is
    told the run's number of optimizer steps."""
    if optimizer is None:
        raise ValueError("no optimizer configured: set model/optimizer (e.g. model/optimizer=adamw)")
    built = optimizer(params=module.parameters())
    if scheduler is None:
        return built
    if not isinstance(scheduler, dict):
        raise HdcError(
            "model.scheduler is Lightning's scheduler config: {scheduler: <partial>, interval: step|epoch, "
            "whole_run: true|false, monitor: ...} (see configs/model/scheduler/)"
        )
    config = dict(scheduler)
    build, whole_run = config.pop("scheduler"), config.pop("whole_run", False)
    steps = {"total_steps": _schedule_steps(build, int(module.trainer.estimated_stepping_batches))} if whole_run else {}
    return {"optimizer": built, "lr_scheduler": {"scheduler": build(optimizer=built, **steps), **config}}


def _schedule_steps(build: Callable, steps: int) -> int:
    # torch's OneCycleLR divides by zero when its warm-up is exactly one step (pct_start x steps == 1,
    # e.g. 10 steps at 0.1): plan one more step then (never stepped), every other run as it takes.
    keywords = getattr(build, "keywords", {})
    return steps + 1 if "max_lr" in keywords and float(keywords.get("pct_start", 0.3) * steps) == 1.0 else steps


def check_resumed_schedule(trainer: L.Trainer) -> None:
    """A resumed one-cycle schedule keeps the length it was planned for; run longer and torch stops it
    mid-epoch with a stack trace. Say so before the first step."""
    steps = int(trainer.estimated_stepping_batches)
    for config in trainer.lr_scheduler_configs:
        planned = getattr(config.scheduler, "total_steps", None)
        if planned is not None and planned < steps:
            raise HdcError(
                f"the checkpoint's one-cycle schedule was planned for {planned} steps and this run takes {steps}: "
                f"resume with the run's own trainer.max_epochs, or start a new run (the schedule cannot be stretched)"
            )


def clip_gradients(trainer: L.Trainer, optimizer: torch.optim.Optimizer, value: float | None, algorithm: str | None):
    """Clip as Lightning does, also for a fused optimizer under mixed precision, which Lightning refuses
    ("performs unscaling of gradients internally"): bf16 has no loss scale, and fp16's is undone here
    first (torch's fused step accepts gradients unscaled before it)."""
    if not value:
        return
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
        scaler.unscale_(optimizer)  # Lightning unscales the other optimizers itself
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(parameters, value)
    else:
        torch.nn.utils.clip_grad_norm_(parameters, value)


def check_finite(module: L.LightningModule, loss: torch.Tensor | None = None) -> None:
    """Stop training in one line when the loss (checked before the update) or the weights are not finite.
    A finite loss can still take a step that overflows the weights (a huge learning rate): the next loss
    is NaN and stops training, but a checkpoint written in between must not keep them."""
    where = f"at epoch {module.current_epoch}, step {module.global_step}"
    advice = ("checkpoints/last.ckpt holds the last good state. Lower model.optimizer.lr (or check the data), "
              "then resume with ckpt_path=last")  # fmt: skip
    if loss is not None and not torch.isfinite(loss):
        raise HdcError(f"train/loss is {loss.item()} {where}: training stopped before updating the weights; {advice}")
    if loss is None and not all(torch.isfinite(value).all() for value in module.state_dict().values()):
        raise HdcError(f"the weights became non-finite {where}: training stopped without saving them; {advice}")
