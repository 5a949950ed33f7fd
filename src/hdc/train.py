"""`python train.py`: compose data, model, callbacks, loggers and trainer from config; fit, test, write metrics.json."""

import json
import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hdc.errors import HdcError, reported_as_one_line
from hdc.loggers import finish, instantiate_loggers
from hdc.paths import CONFIG_DIR

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    if cfg.get("ckpt_path") and not Path(cfg.ckpt_path).is_file():
        raise HdcError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint file")
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)

    datamodule = instantiate(cfg.data, _convert_="all")  # plain lists: the settings ride in checkpoints
    datamodule.setup("fit")
    datamodule.encoder.tokenizer.save(str(output_dir / "tokenizer.json"))
    log.info(f"Vocabulary: {datamodule.encoder.tokenizer.get_vocab_size()} words; labels: {datamodule.label_names}")

    model = instantiate(
        cfg.model,
        vocab_size=datamodule.encoder.tokenizer.get_vocab_size(),
        label_names=datamodule.label_names,
        encoder=datamodule.encoder,
        _convert_="all",
    )
    if cfg.get("word2vec"):  # the paper's initialisation of the embedding
        vectors, found = datamodule.word2vec(cfg.model.embedding_dim, cfg.seed, **cfg.word2vec)
        model.net.embedding.weight.data[found] = torch.from_numpy(vectors[found])
        log.info(f"Embedding initialised by word2vec for {found.sum()} of {len(found)} words")
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.get("test") and datamodule.test_documents() is not None:
            best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            if not best:
                log.warning("No best checkpoint was saved: testing the current weights")
            trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    finally:
        finish(loggers)

    (output_dir / "metrics.json").write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")
    log.info(f"Metrics: {json.dumps(metrics, indent=1, sort_keys=True)}")
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    with reported_as_one_line(log):
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric", ""))  # what a hyperparameter sweep maximises


if __name__ == "__main__":
    main()
