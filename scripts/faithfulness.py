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
import math
import random
import sys
from pathlib import Path

import torch

from hdc.checkpoint import datamodule_for, load_classifier, read_checkpoint
from hdc.data.batching import batch_of
from hdc.errors import HdcError
from hdc.inference import word_gradients
from hdc.paths import PROJECT_ROOT

FRACTIONS = (0.1, 0.2, 0.5)
METHODS = ("attention", "random", "gradient x input")


def flat(document) -> list[tuple[int, int, int]]:
    """(paragraph, sentence, word) of every word of an encoded document (paragraphs of sentences of ids)."""
    return [(p, s, w) for p, paragraph in enumerate(document) for s, sentence in enumerate(paragraph)
            for w in range(len(sentence))]  # fmt: skip


def kept(document, keep, empty):
    """The document with only the (paragraph, sentence) or (paragraph, sentence, word) places in `keep`
    (a predicate); empty sentences and paragraphs dropped; `empty` if nothing is left."""
    paragraphs = []
    for p, paragraph in enumerate(document):
        sentences = [[i for w, i in enumerate(sentence) if keep(p, s, w)] for s, sentence in enumerate(paragraph)]
        sentences = [sentence for sentence in sentences if sentence]
        if sentences:
            paragraphs.append(sentences)
    return paragraphs or empty


class Reader:
    """A checkpoint's model, read for its probabilities, attention and gradients on encoded documents."""

    def __init__(self, model):
        self.model, self.task, self.rng = model, model.task, random.Random(0)

    def probabilities(self, documents, part: str) -> torch.Tensor:
        """[documents, labels]: the HAN's own ("net") or the answer's ("answer")."""
        rows = []
        with torch.no_grad():
            for start in range(0, len(documents), 64):
                chunk = documents[start : start + 64]
                answer = self.model(batch_of(chunk, [0] * len(chunk)))
                logits = answer.parts["net"] if part == "net" else answer.logits
                rows.append(self.task.probabilities(logits))
        return torch.cat(rows)

    def scores(self, document, label: int) -> dict[str, dict[str, dict]]:
        """{"sentence"|"word": {method: {place: score}}}: higher, more important, for `label`."""
        batch = batch_of([document], [0])
        with torch.no_grad():
            net = self.model.net(*batch.inputs)
        words, shares = net.word_weights, net.sentences_for(torch.tensor([label]))[0]  # label attention: its own
        gradients = word_gradients(self.model.net, batch, torch.tensor([label]))
        places = flat(document)
        sentences = sorted({(p, s) for p, s, _ in places})
        rng = self.rng
        sentence_scores = {
            "attention": {place: float(shares[i]) for i, place in enumerate(sentences)},
            "random": {place: rng.random() for place in sentences},
            "gradient x input": {place: 0.0 for place in sentences},
        }
        word_scores = {"attention": {}, "random": {}, "gradient x input": {}}
        row_of = {place: i for i, place in enumerate(sentences)}
        for p, s, w in places:
            row = row_of[p, s]
            word_scores["attention"][p, s, w] = float(shares[row] * words[row, w])
            word_scores["random"][p, s, w] = rng.random()
            word_scores["gradient x input"][p, s, w] = float(gradients[row, w])
            sentence_scores["gradient x input"][p, s] += float(gradients[row, w])
        return {"sentence": sentence_scores, "word": word_scores}


def measure(reader: Reader, documents, empty, part: str) -> dict:
    """Mean comprehensiveness and sufficiency per level and method, for `part` ("net" or "answer")."""
    full = reader.probabilities(documents, part)
    labels = full.argmax(1).tolist()
    erased = {}  # (level, method, fraction, "without"|"only") -> documents
    for document, label in zip(documents, labels, strict=True):
        for level, by_method in reader.scores(document, label).items():
            for method, scores in by_method.items():
                ranked = sorted(scores, key=lambda place: -scores[place])
                for fraction in FRACTIONS:
                    top = set(ranked[: max(1, math.ceil(fraction * len(ranked)))])
                    if level == "sentence":

                        def inside(p, s, w, top=top):
                            return (p, s) in top
                    else:

                        def inside(p, s, w, top=top):
                            return (p, s, w) in top

                    erased.setdefault((level, method, fraction, "without"), []).append(
                        kept(document, lambda p, s, w, inside=inside: not inside(p, s, w), empty)
                    )
                    erased.setdefault((level, method, fraction, "only"), []).append(kept(document, inside, empty))
    index = torch.arange(len(documents)), torch.tensor(labels)
    before = full[index]
    results = {}
    for level in ("sentence", "word"):
        for method in METHODS:
            comprehensiveness, sufficiency = [], []
            for fraction in FRACTIONS:
                comprehensiveness.append(
                    before - reader.probabilities(erased[level, method, fraction, "without"], part)[index]
                )
                sufficiency.append(before - reader.probabilities(erased[level, method, fraction, "only"], part)[index])
            results.setdefault(level, {})[method] = {
                "comprehensiveness": float(torch.stack(comprehensiveness).mean()),
                "sufficiency": float(torch.stack(sufficiency).mean()),
            }
    return results


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
