"""How much attention a word gets, by class: the HAN paper's figures 3 and 4.

    python scripts/attention_analysis.py CHECKPOINT [--words good bad] [--split test] [--limit N] [--out-dir results]

Reads a labelled split of the checkpoint's dataset (as eval.py does), predicts every document with
its attention, and for each occurrence of each word (matched case-insensitively) keeps its word
weight. Writes, per word, `attention_<word>.png` (the distribution of its weights, overall and per
true class, on a log scale as in the paper) and `attention_<word>.json` (the numbers behind it).
"""

import argparse
import json
from collections import defaultdict
from itertools import islice
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hdc.classifier.checkpoint import datamodule_for, load_classifier, read_checkpoint  # noqa: E402
from hdc.inference.predictor import Predictor  # noqa: E402
from hdc.paths import PROJECT_ROOT  # noqa: E402


def word_weights(checkpoint: str, words: list[str], split: str, limit: int | None) -> dict[str, dict[str, list]]:
    """{word: {class name: [the word's attention weight at each occurrence]}}."""
    saved = read_checkpoint(checkpoint)  # once: the model and where its data came from
    predictor = Predictor(load_classifier(saved))
    model = predictor.model
    data = PROJECT_ROOT / "data"
    datamodule = datamodule_for(saved, model, "test", data, data / "cache", test_split=split)
    found = {word: defaultdict(list) for word in words}
    documents = iter(islice(datamodule.test_documents(), limit))
    while chunk := list(islice(documents, 512)):
        texts, labels = zip(*chunk, strict=True)
        for prediction, label in zip(predictor.predict(list(texts)), labels, strict=True):
            for sentence in prediction.sentences:
                for word, weight in zip(sentence.words, sentence.word_weights, strict=True):
                    if word.lower() in found:
                        found[word.lower()][model.label_names[label]].append(weight)
    return found


def plot(word: str, by_class: dict[str, list[float]], path: Path) -> None:
    everything = [w for weights in by_class.values() for w in weights]
    bins = np.logspace(np.log10(max(min(everything), 1e-4)), 0, 40)
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.hist(everything, bins=bins, histtype="step", color="black", linewidth=1.5, label="all", density=True)
    for name, weights in sorted(by_class.items()):
        axes.hist(weights, bins=bins, histtype="step", label=f"{name} ({len(weights)})", density=True)
    axes.set_xscale("log")
    axes.set_xlabel(f'attention weight of "{word}" in its sentence')
    axes.set_ylabel("density")
    axes.legend(title="true class (occurrences)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--words", nargs="+", default=["good", "bad"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="read only the first N documents of the split")
    parser.add_argument("--out-dir", default=str(PROJECT_ROOT / "results"))
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for word, by_class in word_weights(
        args.checkpoint, [w.lower() for w in args.words], args.split, args.limit
    ).items():
        if not by_class:
            print(f'"{word}" does not occur in the documents read')
            continue
        summary = {
            name: {
                "occurrences": len(w),
                "mean": float(np.mean(w)),
                "quartiles": np.quantile(w, [0.25, 0.5, 0.75]).tolist(),
            }
            for name, w in sorted(by_class.items())
        }
        record = {"word": word, "checkpoint": args.checkpoint, "split": args.split, "by_class": summary,
                  "weights": {name: w for name, w in sorted(by_class.items())}}  # fmt: skip
        (out / f"attention_{word}.json").write_text(json.dumps(record) + "\n")
        plot(word, by_class, out / f"attention_{word}.png")
        print(word, json.dumps(summary))


if __name__ == "__main__":
    main()
