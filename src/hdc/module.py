"""The LightningModule: a HAN with its loss, metrics and optimizer, and the encoder that feeds it.

A checkpoint carries everything needed to use the model again: the HAN's sizes (hyperparameters),
the label names, and the tokenizer with its caps (the "hdc" entry; see hdc.checkpoint).
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from hdc.checkpoint import encoder_from, encoder_record, read_checkpoint, with_levels
from hdc.data.batching import Batch
from hdc.data.vocab import DocumentEncoder
from hdc.errors import HdcError
from hdc.models.fasttext import FastText
from hdc.models.han import HAN, PAPER_LEVELS

# The weights (the net's, the wide term's) of the logits in the answer that HANClassifier(wide=True)
# chooses from on validation: from the bag alone to the net alone.
MIXES = [(round(t / 10, 1), round(1 - t / 10, 1)) for t in range(11)]
# Each mix is judged by its cross-entropy at the best of these scales of its logits (1 / temperature):
# its calibrated cross-entropy. Unscaled, a mix could win by sharpening an under-confident part (the
# fitted bag's logits are, on 20 Newsgroups: results/recipe_probes.md, "Choosing the mix") rather than
# by ranking the answers better.
SCALES = [2 ** (k / 2) for k in range(-4, 7)]  # 0.25 .. 8


class MixLosses(Metric):
    """The validation cross-entropy of every mix of MIXES at every scale of SCALES: a (mixes, scales)
    tensor, averaged over documents (and ranks)."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.zeros(len(MIXES), len(SCALES)), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, wide: torch.Tensor, labels: torch.Tensor) -> None:
        logits, wide = logits.float(), wide.float()  # fp32 sums under bf16/16-mixed autocast too
        for i, (a, b) in enumerate(MIXES):
            answer = (a * logits if a else 0) + (b * wide if b else 0)  # a part weighed 0 cannot spread a NaN
            for j, scale in enumerate(SCALES):
                self.total[i, j] += F.cross_entropy(scale * answer, labels, reduction="sum")
        self.count += len(labels)

    def compute(self) -> torch.Tensor:
        """The mean losses; a NaN (a diverged part) ranks last."""
        return (self.total / self.count).nan_to_num(nan=float("inf"))


class HANClassifier(L.LightningModule):
    def __init__(
        self,
        vocab_size: int,
        label_names: list[str],
        embedding_dim: int | None = 200,  # net fasttext: null for a linear model on the bag
        levels: Sequence[dict] | None = PAPER_LEVELS,
        dropout: float = 0.0,
        net: str = "han",
        buckets: int = 1_000_000,
        wide: int | bool | None = None,
        label_smoothing: float = 0.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: dict | None = None,
        encoder: DocumentEncoder | None = None,
    ):
        super().__init__()
        # Plain values only, so that checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        self.encoder = encoder
        self.label_names = list(label_names)
        # net "han": the HAN of `levels`; "fasttext": the baseline (a bag of words and hashed bigrams)
        if net == "han" and not embedding_dim:
            raise ValueError(f"net 'han' needs a positive embedding_dim, not {embedding_dim!r}")
        if net == "han":
            self.net = HAN(vocab_size, len(label_names), embedding_dim, levels, dropout=dropout)
        elif net == "fasttext":
            self.net = FastText(vocab_size, len(label_names), embedding_dim, buckets, dropout)
        else:
            raise ValueError(f"net {net!r} is not one of ['han', 'fasttext']")
        # wide: a TF-IDF bag of words and hashed bigrams beside the net: the linear model's memory of rare
        # n-grams plus the hierarchy's reading of context.
        # - true: a linear model on the bag (the TF-IDF + linear SVM's form), fitted exactly before the
        #   net trains (FastText.fit, called by hdc.train) and left as fitted (it is not in the loss).
        #   The answer is mix[0] x the net's logits + mix[1] x the bag's, the mix of MIXES with the lowest
        #   calibrated validation cross-entropy (MixLosses) after each epoch. Cross-entropy, not accuracy:
        #   on a small validation set (100-200 documents) accuracy rewards a half-trained net's lucky flips,
        #   while cross-entropy weighs every document's confidence and keeps such a net's weight near 0
        #   (results/recipe_probes.md, "Choosing the mix").
        # - an int: fastText's bag with rows this wide, trained with its own loss beside the net (neither
        #   can leave the other idle); the answer is the sum of their logits.
        width = None if wide is True else wide
        self.wide = None if not wide else FastText(vocab_size, len(label_names), width, buckets, dropout)
        self.val_mixes, self._val_outputs = None, []
        if wide is True:
            self.register_buffer("mix", torch.tensor([0.5, 0.5]))
            self.val_mixes = MixLosses()
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(len(label_names), average="micro"),
                "f1": MulticlassF1Score(len(label_names), average="macro"),
            }
        )
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # With a wide term, each part's accuracy alone too: whether the hierarchy pays, in one run.
        parts = MetricCollection({f"acc_{part}": MulticlassAccuracy(len(label_names), average="micro")
                                  for part in ("net", "wide")}) if wide else None  # fmt: skip
        self.val_parts = parts.clone(prefix="val/") if parts else None
        self.test_parts = parts.clone(prefix="test/") if parts else None
        self.val_acc_best = MaxMetric()
        self.val_confusion = MulticlassConfusionMatrix(len(label_names))  # drawn by the AttentionHeatmaps callback

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits (the net's, with the wide term's), word weights, sentence weights."""
        logits, words, sentences, wide = self._outputs(batch)
        return self._answer(logits, wide), words, sentences

    def _answer(self, logits: torch.Tensor, wide: torch.Tensor | None) -> torch.Tensor:
        if wide is None:
            return logits
        return logits + wide if self.val_mixes is None else self.mix[0] * logits + self.mix[1] * wide

    def _outputs(
        self, batch: Batch, wide: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        inputs = (batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
        logits, words, sentences = self.net(*inputs)
        return logits, words, sentences, self.wide(*inputs)[0] if self.wide is not None and wide else None

    def _step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        # A fitted wide term is not trained, and knows its training documents by heart (its answers there
        # are ~100% right): in training, the net alone, whose accuracy train/acc then reports.
        logits, _, _, wide = self._outputs(batch, wide=not (stage == "train" and self.val_mixes is not None))
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.hparams.label_smoothing)
        if wide is not None:
            if self.val_mixes is None:  # a bag trained beside the net (a fitted one stays as fitted)
                loss = loss + F.cross_entropy(wide, batch.labels, label_smoothing=self.hparams.label_smoothing)
            parts = getattr(self, f"{stage}_parts", None)
            if parts is not None:
                parts["acc_net"].update(logits, batch.labels)
                parts["acc_wide"].update(wide, batch.labels)
                self.log_dict(parts, on_step=False, on_epoch=True, batch_size=len(batch))
            if stage == "val" and self.val_mixes is not None:  # scored at the epoch's end, with its mix
                self.val_mixes.update(logits, wide, batch.labels)
                self._val_outputs.append((logits.detach(), wide.detach(), batch.labels))
            logits = self._answer(logits, wide)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(batch),
                 sync_dist=stage != "train")  # fmt: skip
        if not (stage == "val" and self.val_mixes is not None):
            metrics = getattr(self, f"{stage}_metrics")
            metrics.update(logits, batch.labels)
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))
        return loss, logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")[0]
        if not torch.isfinite(loss):  # checked before the update: weights and checkpoints stay good
            raise HdcError(
                f"train/loss is {loss.item()} at epoch {self.current_epoch}, step {self.global_step}: training "
                f"stopped before updating the weights; checkpoints/last.ckpt holds the last good state. "
                f"Lower model.optimizer.lr (or check the data), then resume with ckpt_path=last"
            )
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, logits = self._step(batch, "val")
        if self.val_mixes is None:
            self.val_confusion.update(logits, batch.labels)

    def on_validation_epoch_start(self) -> None:
        self.val_confusion.reset()
        self._val_outputs = []
        if self.val_mixes is not None:
            self.val_mixes.reset()

    def _choose_mix(self) -> None:
        """The mix with the lowest calibrated validation cross-entropy (over all ranks; ties: the most
        even), then the epoch's validation metrics with it."""
        if not self.val_mixes.update_count:  # no validation batches (limit_val_batches=0): keep the mix
            self._val_outputs = []
            return
        losses = self.val_mixes.compute().min(1).values.tolist()  # each mix at its best scale
        best = min(range(len(MIXES)), key=lambda i: (losses[i], abs(MIXES[i][0] - 0.5)))
        self.mix.copy_(torch.tensor(MIXES[best]))
        for logits, wide, labels in self._val_outputs:
            answer = self._answer(logits, wide)
            self.val_metrics.update(answer, labels)
            self.val_confusion.update(answer, labels)
        self._val_outputs = []
        self.log("val/mix_net", self.mix[0])
        self.log("val/mix_loss", losses[best])  # the chosen mix's calibrated validation cross-entropy
        self.log_dict(self.val_metrics, prog_bar=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._val_outputs = []
            return
        if self.val_mixes is not None:
            self._choose_mix()
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def configure_optimizers(self):
        if self.optimizer is None:
            raise ValueError("no optimizer configured: set model/optimizer (e.g. model/optimizer=adamw)")
        optimizer = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return optimizer
        # Lightning's lr_scheduler config (interval, monitor, ...) with the scheduler built here; one
        # planned over the whole run (whole_run: true) is told the run's number of optimizer steps.
        if not isinstance(self.scheduler, dict):  # a bare scheduler factory: the form before 2026-11-26
            raise HdcError(
                "model.scheduler is Lightning's scheduler config: {scheduler: <partial>, interval: step|epoch, "
                "whole_run: true|false, monitor: ...} (see configs/model/scheduler/)"
            )
        config = dict(self.scheduler)
        build, whole_run = config.pop("scheduler"), config.pop("whole_run", False)
        steps = {"total_steps": self._schedule_steps(build)} if whole_run else {}
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": build(optimizer=optimizer, **steps), **config}}

    def _schedule_steps(self, build: Callable) -> int:
        steps = int(self.trainer.estimated_stepping_batches)
        # torch's OneCycleLR divides by zero when its warm-up is exactly one step (pct_start x steps == 1,
        # e.g. 10 steps at 0.1): plan one more step then (never stepped), every other run as it takes.
        keywords = getattr(build, "keywords", {})
        return steps + 1 if "max_lr" in keywords and float(keywords.get("pct_start", 0.3) * steps) == 1.0 else steps

    def on_train_start(self) -> None:
        # A resumed one-cycle schedule keeps the length it was planned for; run longer and torch stops
        # it mid-epoch with a stack trace. Say so before the first step.
        steps = int(self.trainer.estimated_stepping_batches)
        for config in self.trainer.lr_scheduler_configs:
            planned = getattr(config.scheduler, "total_steps", None)
            if planned is not None and planned < steps:
                raise HdcError(
                    f"the checkpoint's one-cycle schedule was planned for {planned} steps and this run takes {steps}: "
                    f"resume with the run's own trainer.max_epochs, or start a new run (the schedule cannot be "
                    f"stretched)"
                )

    def configure_gradient_clipping(
        self, optimizer: torch.optim.Optimizer, gradient_clip_val=None, gradient_clip_algorithm=None
    ) -> None:
        """Clip as Lightning does, also for a fused optimizer under mixed precision, which Lightning
        refuses ("performs unscaling of gradients internally"): bf16 has no loss scale, and fp16's is
        undone here first (torch's fused step accepts gradients unscaled before it)."""
        if not gradient_clip_val:
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and getattr(optimizer, "_step_supports_amp_scaling", False):
            scaler.unscale_(optimizer)  # Lightning unscales the other optimizers itself
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        if gradient_clip_algorithm == "value":
            torch.nn.utils.clip_grad_value_(parameters, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, gradient_clip_val)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # A finite loss can still take a step that overflows the weights (a huge learning rate): the
        # next loss is NaN and stops training, but a checkpoint written in between must not keep them.
        if not all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values()):
            raise HdcError(
                f"the weights became non-finite at epoch {self.current_epoch}, step {self.global_step}: training "
                f"stopped without saving them; checkpoints/last.ckpt holds the last good state. Lower "
                f"model.optimizer.lr (or check the data), then resume with ckpt_path=last"
            )
        if self.encoder is not None:
            checkpoint["hdc"] = encoder_record(self.encoder, float(self.val_acc_best.max_value))

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "hdc" in checkpoint:
            self.encoder = encoder_from(checkpoint)
            if checkpoint["hdc"].get("val_acc_best", float("-inf")) > float("-inf"):
                self.val_acc_best.update(torch.tensor(checkpoint["hdc"]["val_acc_best"]))


def load_classifier(checkpoint: str | Path | dict, map_location: str | torch.device = "cpu") -> HANClassifier:
    """A trained classifier from an hdc checkpoint file, or from its content read by read_checkpoint."""
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint, map_location)
    checkpoint = with_levels(checkpoint)
    model = HANClassifier(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.to(map_location).eval()
