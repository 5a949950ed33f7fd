"""The LightningModule: a HAN with its loss, metrics and optimizer, and the encoder that feeds it.

A checkpoint carries everything needed to use the model again: the HAN's sizes (hyperparameters),
the label names, and the tokenizer with its caps (saved under the "hdc" key by on_save_checkpoint).
"""

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from hdc.data.batching import Batch
from hdc.data.vocab import DocumentEncoder
from hdc.errors import HdcError
from hdc.models.fasttext import FastText
from hdc.models.han import HAN, PAPER_LEVELS


class HANClassifier(L.LightningModule):
    def __init__(
        self,
        vocab_size: int,
        label_names: list[str],
        embedding_dim: int = 200,
        levels: Sequence[dict] | None = PAPER_LEVELS,
        dropout: float = 0.0,
        net: str = "han",
        buckets: int = 1_000_000,
        wide: int | None = None,
        label_smoothing: float = 0.0,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        encoder: DocumentEncoder | None = None,
    ):
        super().__init__()
        # Plain values only, so that checkpoints load with torch.load(weights_only=True).
        self.save_hyperparameters(logger=False, ignore=["encoder", "optimizer", "scheduler"])
        self.optimizer, self.scheduler = optimizer, scheduler
        self.encoder = encoder
        self.data_settings: dict = {}  # the data config of training, restored from a checkpoint
        self.label_names = list(label_names)
        # net "han": the HAN of `levels`; "fasttext": the baseline (a bag of words and hashed bigrams)
        if net == "han":
            self.net = HAN(vocab_size, len(label_names), embedding_dim, levels, dropout=dropout)
        elif net == "fasttext":
            self.net = FastText(vocab_size, len(label_names), embedding_dim, buckets, dropout)
        else:
            raise ValueError(f"net {net!r} is not one of ['han', 'fasttext']")
        # wide: a bag of words and hashed bigrams (fastText, `wide`-d embeddings) beside the net, each
        # trained with its own loss (neither can leave the other idle), answering with the sum of their
        # logits: the linear model's memory of rare n-grams plus the hierarchy's reading of context.
        self.wide = None if not wide else FastText(vocab_size, len(label_names), wide, buckets, dropout)
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
        """Logits (the net's plus the wide term's), word weights, sentence weights."""
        logits, words, sentences, wide = self._outputs(batch)
        return (logits if wide is None else logits + wide), words, sentences

    def _outputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        inputs = (batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
        logits, words, sentences = self.net(*inputs)
        return logits, words, sentences, self.wide(*inputs)[0] if self.wide is not None else None

    def _step(self, batch: Batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        logits, _, _, wide = self._outputs(batch)
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=self.hparams.label_smoothing)
        if wide is not None:
            loss = loss + F.cross_entropy(wide, batch.labels, label_smoothing=self.hparams.label_smoothing)
            parts = getattr(self, f"{stage}_parts", None)
            if parts is not None:
                parts["acc_net"].update(logits, batch.labels)
                parts["acc_wide"].update(wide, batch.labels)
                self.log_dict(parts, on_step=False, on_epoch=True, batch_size=len(batch))
            logits = logits + wide
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(logits, batch.labels)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(batch),
                 sync_dist=stage != "train")  # fmt: skip
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
        self.val_confusion.update(logits, batch.labels)

    def on_validation_epoch_start(self) -> None:
        self.val_confusion.reset()

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def configure_optimizers(self):
        if self.optimizer is None:
            raise ValueError("no optimizer configured: set model/optimizer (e.g. model/optimizer=adamw)")
        optimizer = self.optimizer(params=self.parameters())
        if self.scheduler is None:
            return optimizer
        if "total_steps" in inspect.signature(self.scheduler).parameters:  # a schedule over the whole run
            scheduler = self.scheduler(optimizer=optimizer, total_steps=self._schedule_steps())
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        scheduler = self.scheduler(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/acc"}}

    def _schedule_steps(self) -> int:
        steps = int(self.trainer.estimated_stepping_batches)
        # torch's OneCycleLR divides by zero when its warm-up is exactly one step (pct_start x steps == 1,
        # e.g. 10 steps at 0.1): plan one more step then (never stepped), every other run as it takes.
        keywords = getattr(self.scheduler, "keywords", {})
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
            datamodule = self.trainer.datamodule if self._trainer is not None else None
            checkpoint["hdc"] = {
                "tokenizer": self.encoder.tokenizer.to_str(),
                "max_sentences": self.encoder.max_sentences,
                "max_words": self.encoder.max_words,
                # Where the data came from, so that eval.py can find the test split by itself.
                "data": dict(datamodule.hparams) if datamodule is not None else {},
                # torchmetrics keep their state out of state_dict: the best so far, for a resumed run.
                "val_acc_best": float(self.val_acc_best.max_value),
            }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("hdc")
        if saved is not None:
            tokenizer = Tokenizer.from_str(saved["tokenizer"])
            self.encoder = DocumentEncoder(tokenizer, saved["max_sentences"], saved["max_words"])
            self.data_settings = saved.get("data", {})
            if saved.get("val_acc_best", float("-inf")) > float("-inf"):
                self.val_acc_best.update(torch.tensor(saved["val_acc_best"]))


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


def load_classifier(path: str | Path, map_location: str | torch.device = "cpu") -> HANClassifier:
    """A trained classifier from an hdc checkpoint (see read_checkpoint)."""
    checkpoint = with_levels(read_checkpoint(path, map_location))
    model = HANClassifier(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    model.on_load_checkpoint(checkpoint)
    return model.to(map_location).eval()


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
