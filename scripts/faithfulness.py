"""Is the attention faithful? ERASER's comprehensiveness and sufficiency (DeYoung et al. 2020), measured.

    python scripts/faithfulness.py CHECKPOINT [--split test] [--limit 500] [--out results/faithfulness_NAME.json]
                                   [--plot results/faithfulness_NAME.png]
    python scripts/faithfulness.py --table results/faithfulness_*.json    # their markdown table

For each of `--limit` documents of the split (a seeded sample) and its predicted label, the sentences
(and, separately, the words) are ranked three ways: by the HAN's attention (a sentence's share of the
document; a word's, its share of its sentence x its sentence's share), at random, and by gradient x
input (the predicted label's logit in the HAN, its gradient on each embedded word dotted with the
embedding; a sentence: the sum over its words). For the top 10%, 20% and 50% of them (at least one):
- comprehensiveness: the predicted label's probability, less what remains when they are removed
  (higher: the ranking found what the answer rests on);
- sufficiency: that probability, less what the top ones alone give (lower: they suffice).
Each is averaged over the three fractions and the documents, for two answers: the HAN alone (its
logits) and the model's answer (with a wide term, the mix: the n-gram model reads the erased text too).
A document with nothing left is read as an empty text. HAN nets only (their attention and embedding).
"""

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from hdc.classifier.checkpoint import datamodule_for, load_classifier, read_checkpoint
from hdc.errors import HdcError
from hdc.inference.explain import FRACTIONS, METHODS, Reader, measure
from hdc.paths import PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?")
    parser.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown table of these reports")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--out")
    parser.add_argument("--plot")
    args = parser.parse_args()
    if args.table:
        print(table([json.loads(Path(path).read_text()) for path in args.table]))
        return
    if not args.checkpoint:
        parser.error("a checkpoint, or --table")
    torch.manual_seed(0)
    try:
        saved = read_checkpoint(args.checkpoint)
    except HdcError as error:
        sys.exit(f"faithfulness.py: {error}")
    model = load_classifier(saved)
    data = PROJECT_ROOT / "data"
    datamodule = datamodule_for(saved, model, "test", data, data / "cache", test_split=args.split)
    texts = [text for text, _ in datamodule.test_documents()]
    texts = random.Random(0).sample(texts, min(args.limit, len(texts)))
    documents = model.encoder.encode(texts)
    empty = model.encoder.encode([""])[0]
    reader = Reader(model)
    parts = {"HAN alone": "net"} | ({"answer (HAN + wide term)": "answer"} if model.wide is not None else {})
    report = {
        "checkpoint": args.checkpoint,
        "split": args.split,
        "documents": len(documents),
        "fractions": list(FRACTIONS),
        "mix": model.wide.mix.tolist() if model.wide is not None else None,
        "results": {name: measure(reader, documents, empty, part) for name, part in parts.items()},
    }
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, Path(args.plot))


def table(reports: list[dict]) -> str:
    """One row per report, answer and level: each ranking's comprehensiveness / sufficiency."""
    header = "| model | answer | level | " + " | ".join(f"{m}: comp. / suff." for m in METHODS) + " |"
    rows = [header, "|---" * (3 + len(METHODS)) + "|"]
    for report in reports:
        name = f"`{Path(report['checkpoint']).parent.parent.name}` ({report['documents']} documents)"
        for answer, levels in report["results"].items():
            for level, scores in levels.items():
                cells = [f"{scores[m]['comprehensiveness']:.3f} / {scores[m]['sufficiency']:.3f}" for m in METHODS]
                rows.append(f"| {name} | {answer} | {level}s | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    answers = list(report["results"])
    figure, axes = plt.subplots(len(answers), 2, figsize=(10, 3.2 * len(answers)), squeeze=False)
    for row, answer in enumerate(answers):
        for column, level in enumerate(("sentence", "word")):
            ax = axes[row][column]
            scores = report["results"][answer][level]
            x = range(len(METHODS))
            ax.bar([i - 0.2 for i in x], [scores[m]["comprehensiveness"] for m in METHODS], 0.4,
                   label="comprehensiveness (higher: faithful)")  # fmt: skip
            ax.bar([i + 0.2 for i in x], [scores[m]["sufficiency"] for m in METHODS], 0.4,
                   label="sufficiency (lower: faithful)")  # fmt: skip
            ax.set_xticks(list(x), METHODS)
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_title(f"{answer}: {level}s", fontsize=10)
            ax.set_ylabel("drop in the predicted label's probability")
    axes[0][0].legend(fontsize=8)
    figure.suptitle(f"{Path(report['checkpoint']).parent.parent.name}: {report['documents']} documents", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
