"""The wide term alone on validation, fitted as train.py fits it, for a few settings: a probe of its
features that takes a minute where a training takes half an hour (results/recipe_probes.md).

    python scripts/wide_alone.py experiment=imdb -- "model.wide.ngrams=3" "model.wide.buckets=4000000"

The overrides before `--` choose the data; each quoted string after it is one setting (space-separated
overrides; "" for the data's own). Each line printed: the setting, the wide term's validation score
(val/acc_wide, or val/f1_micro_wide for label sets, at its own thresholds) and the fit's seconds. The
net is not trained; the validation pass runs it only because the classifier scores both parts.
"""

import logging
import sys
import time
from pathlib import Path

import lightning as L
from hydra import compose, initialize_config_dir

from hdc.training.build import build_data, build_model

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main() -> None:
    argv = sys.argv[1:]
    if {"-h", "--help"} & set(argv):
        sys.exit(__doc__)
    cut = argv.index("--") if "--" in argv else len(argv)
    data, settings = argv[:cut], argv[cut + 1 :] or [""]
    logging.getLogger("lightning").setLevel(logging.WARNING)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for setting in settings:
            # vectors=none: the wide term reads no vectors, and word2vec would only cost time here
            cfg = compose("train.yaml", overrides=[*data, "vectors=none", *setting.split()])
            datamodule = build_data(cfg)
            start = time.perf_counter()
            model = build_model(cfg, datamodule)
            seconds = time.perf_counter() - start
            trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False)  # fmt: skip
            [scores] = trainer.validate(model, datamodule, verbose=False)
            metric = f"val/{cfg.metric}_wide"
            print(f"{setting or 'as composed'}: {metric} {100 * scores[metric]:.2f}, fit {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
