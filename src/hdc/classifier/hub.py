"""A trained model handed on the Hugging Face way: a folder, on disk or on the Hub, that holds

- `config.json`: the classifier (net and wide term as specs, labels, task), the tokenizer's caps, the data
  it was trained on, its answer's mix and thresholds, the run's metrics, and the format;
- `model.safetensors`: the weights (safetensors: reading it runs no code). A table that is mostly zero
  rows (the wide term's n-gram buckets) is stored as its nonzero rows and their indices;
- `tokenizer.json`: the tokenizer;
- `README.md`: a model card in the Hub's format (YAML metadata with the run's metrics, then prose).

huggingface_hub's ModelHubMixin writes config.json and the card, downloads from the Hub (its cache and
HF_HUB_OFFLINE honoured) and uploads; this module says what goes into the files. A folder reads back as
a checkpoint's content (hdc.classifier.checkpoint.read_checkpoint), so everything that takes a checkpoint takes a
folder.
"""

import json
import os
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData, ModelHubMixin, hf_hub_download
from huggingface_hub.errors import HFValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hdc.classifier.module import CHECKPOINT_FORMAT, compact, expanded
from hdc.errors import HdcError

WEIGHTS, TOKENIZER, CONFIG = "model.safetensors", "tokenizer.json", "config.json"
ROWS = ".nonzero_rows"  # suffix of the row indices of a table stored by its nonzero rows
DATA_KEY = "datamodule_hyper_parameters"  # Lightning's key for the data settings in a checkpoint
MACHINE_SETTINGS = ("data_dir", "cache_dir", "num_workers", "encode_workers")  # the trainer's machine, not the model

CARD = """---
{{ card_data }}
---

# {{ model_name }}

A document classifier trained with hdc (hierarchical document classification): {{ architecture }}.
{{ task }} Labels ({{ label_count }}): {{ labels }}.

## Data

Trained on `{{ data_path }}` (text column `{{ text_column }}`, label column `{{ label_column }}`); validation:
{{ validation }}. Documents are read as at most {{ max_sentences }} sentences of at most {{ max_words }} words.

## Results

{{ results }}

## Use

```python
import hdc

model = hdc.load("{{ repo }}")  # this folder, or its name on the Hub
print(model.predict(["A document to classify."])[0].label)
```

From the command line: `python predict.py ckpt_path={{ repo }} input=FILE`, `python eval.py ckpt_path={{ repo }}`,
`python serve.py ckpt_path={{ repo }}`.

## Limits

- It knows only the labels above, and reads only words its training split held at least
  {{ min_frequency }} times; other words are unknown to it.
- Text beyond its caps is not read: the first {{ max_sentences }} sentences, long sentences wrapped at
  {{ max_words }} words.
- Its scores hold for documents like its test split; measure it on your own before relying on it.
- Attention weights show where the model looked, not a proof of why it answered.
"""


class Pretrained(
    ModelHubMixin,
    library_name="hdc",
    pipeline_tag="text-classification",
    tags=["hdc", "text-classification", "hierarchical-attention-network"],
    model_card_template=CARD,
):
    """A checkpoint's content (hdc.classifier.checkpoint.read_checkpoint's dict) with the config that describes it.
    `Pretrained.from_checkpoint(content, metrics).save_pretrained(DIR)` writes the folder;
    `Pretrained.from_pretrained(DIR or "user/name").checkpoint` reads it back."""

    def __init__(self, config: dict, checkpoint: dict):
        self.config, self.checkpoint = config, checkpoint  # the mixin keeps the JSON one (config) for config.json

    @classmethod
    def from_checkpoint(cls, checkpoint: dict, metrics: dict | None = None) -> "Pretrained":
        state = compact(expanded(checkpoint["state_dict"]))  # compact whatever hdc wrote the checkpoint
        checkpoint, options = checkpoint | {"state_dict": state}, checkpoint["hyper_parameters"]
        encoder = checkpoint["hdc"]["encoder"]
        answer = {name: state[name].tolist() for name in ("wide.mix", "thresholds", "part_thresholds") if name in state}
        config = {
            "format": CHECKPOINT_FORMAT,
            "model": options,
            "caps": {"max_sentences": int(encoder["max_sentences"]), "max_words": int(encoder["max_words"])},
            "data": {k: v for k, v in (checkpoint.get(DATA_KEY) or {}).items() if k not in MACHINE_SETTINGS},
            "answer": answer,  # for readers: loading takes them from the weights
            "metrics": metrics or {},
            # tables stored by their nonzero rows (hdc.classifier.module.compact), with their whole shape
            "sparse_shapes": {name: list(value.shape) for name, value in state.items() if value.is_sparse},
        }
        return cls(config, checkpoint)

    def _save_pretrained(self, save_directory: Path) -> None:
        tensors = {}
        for name, value in self.checkpoint["state_dict"].items():
            if value.is_sparse:  # compacted by hdc.classifier.module.compact: its nonzero rows and where they go
                value = value.coalesce()
                tensors[name], tensors[name + ROWS] = value.values().contiguous(), value.indices()[0].contiguous()
            else:
                tensors[name] = value.contiguous()
        save_file(
            tensors, str(save_directory / WEIGHTS), metadata={"format": "pt", "hdc_format": str(CHECKPOINT_FORMAT)}
        )
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(save_directory / WEIGHTS, 0o666 & ~umask)  # safetensors writes 0600; the folder is for sharing
        tokenizer = json.loads(self.checkpoint["hdc"]["encoder"]["tokenizer"])
        (save_directory / TOKENIZER).write_text(json.dumps(tokenizer, ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def _from_pretrained(cls, *, model_id, revision, cache_dir, force_download, local_files_only, token, config=None,
                         **kwargs) -> "Pretrained":  # fmt: skip
        if not config:
            raise HdcError(f"{model_id}: no {CONFIG} in it; not an hdc model folder")
        if (found := config.get("format")) != CHECKPOINT_FORMAT:
            raise HdcError(f"{model_id}: an hdc model of format {found}; this hdc reads format {CHECKPOINT_FORMAT}")

        def fetched(filename: str) -> Path:
            if Path(model_id).is_dir():
                path = Path(model_id) / filename
                if not path.is_file():
                    raise HdcError(f"{model_id}: {filename} is missing")
                return path
            return Path(hf_hub_download(model_id, filename, revision=revision, cache_dir=cache_dir, token=token,
                                        force_download=force_download, local_files_only=local_files_only))  # fmt: skip

        try:
            tensors = load_file(fetched(WEIGHTS))
        except SafetensorError as error:
            raise HdcError(f"{model_id}: {WEIGHTS} is not readable ({error})") from None
        state = {}
        for name, shape in config.get("sparse_shapes", {}).items():
            rows, values = tensors.pop(name + ROWS, None), tensors.pop(name, None)
            if rows is None or values is None:
                raise HdcError(f"{model_id}: {WEIGHTS} lacks {name}, which {CONFIG} names")
            try:  # dense at once: indexing checks every row, where a sparse tensor would trust them
                state[name] = values.new_zeros(shape).index_copy_(0, rows, values)
            except (IndexError, RuntimeError) as error:
                raise HdcError(f"{model_id}: {name} in {WEIGHTS} does not fit its shape {shape} ({error})") from None
        tokenizer = fetched(TOKENIZER).read_text(encoding="utf-8")
        checkpoint = {
            "state_dict": tensors | state,
            "hyper_parameters": config["model"],
            "hdc": {"format": config["format"], "encoder": {"tokenizer": tokenizer, **config["caps"]}},
            DATA_KEY: config.get("data") or {},
        }
        return cls(config, checkpoint)

    def generate_model_card(self, repo: str = ".", **kwargs) -> ModelCard:
        config = self.config
        model, data, metrics = config["model"], config["data"], config["metrics"]
        labels = [str(name) for name in model["label_names"]]
        path = str(data.get("path", "their data"))
        name = Path(path.rstrip("/")).name or "hdc"
        results = [EvalResult(task_type="text-classification", dataset_type=path, dataset_name=name,
                              dataset_split=data.get("test_split", "test"), metric_type=metric.split("/", 1)[1],
                              metric_value=round(float(value), 4), metric_name=metric)  # fmt: skip
                   for metric, value in sorted(metrics.items()) if metric.startswith("test/")]  # fmt: skip
        card_data = ModelCardData(
            model_name=f"hdc-{name}", eval_results=results or None, datasets=None if Path(path).exists() else [path],
            **self._hub_mixin_info.model_card_data.to_dict(),
        )  # fmt: skip
        table = "\n".join(f"| {metric} | {float(value):.4f} |" for metric, value in sorted(metrics.items()))
        validation = (f"split `{data['val_split']}`" if data.get("val_fraction") in (None, 0)
                      else f"{data.get('val_fraction', 0.1):.0%} of the training split, held out")  # fmt: skip
        architecture = model["net"]["_target_"].rsplit(".", 1)[1] + (" with a wide term" if model.get("wide") else "")
        task = ("Several labels (or none) per document, each predicted above its threshold."
                if model.get("multi_label") else "One label per document.")  # fmt: skip
        return ModelCard.from_template(
            card_data, template_str=CARD, model_name=f"hdc-{name}", architecture=architecture, task=task,
            label_count=len(labels), labels=", ".join(f"`{label}`" for label in labels), data_path=path,
            text_column=data.get("text_column", "text"), label_column=data.get("label_column", "label"),
            validation=validation, max_sentences=config["caps"]["max_sentences"],
            max_words=config["caps"]["max_words"], min_frequency=data.get("min_frequency", 2), repo=repo,
            results=(f"| metric | value |\n|---|---|\n{table}" if metrics else "Not measured: the checkpoint was "
                     "exported without its run's metrics.json."),
        )  # fmt: skip


def read_folder(path: str | Path) -> dict:
    """A model folder's content as a checkpoint's: a local folder, or a Hub name ("user/name")."""
    try:
        return Pretrained.from_pretrained(str(path)).checkpoint
    except HdcError:
        raise
    except HFValidationError:
        raise HdcError(f"{path}: no such checkpoint file or model folder") from None
    except (OSError, ValueError, KeyError) as error:  # the Hub unreachable or offline, a damaged config
        raise HdcError(f"{path}: not a readable hdc model ({type(error).__name__}: {error})".split("\n")[0]) from None
