"""Does each label read its own article? Label attention against the shared attention, measured.

A multi-label proxy document (scripts/multilabel_proxies.py) joins 1 to 3 source documents of distinct
classes as paragraphs, so each of its labels has one article of its own. For every document of two
or more articles and every label both true and predicted, this takes the share of that label's
sentence attention that falls on its own article (with shared attention every label has the same
weights), beside the article's share of the document's sentences: what uniform attention gives.

    python scripts/label_reading.py CHECKPOINT [CHECKPOINT ...] --corpus r8 [--proxies data/proxies]

prints a markdown table, one row per checkpoint (named by its run folder).
"""

import argparse
from pathlib import Path

import pyarrow.parquet as pq

from hdc.inference.predictor import load


def readings(checkpoint: str, digests: list[tuple[str, list[str]]], source: dict[str, str]) -> dict:
    """Mean attention on the label's own article, the uniform share beside it, over (document, label) pairs."""
    predictor = load(checkpoint)
    own, uniform, most = [], [], 0
    for start in range(0, len(digests), 256):
        chunk = digests[start : start + 256]
        for prediction, (text, labels) in zip(predictor.predict([t for t, _ in chunk]), chunk, strict=True):
            articles = [source.get(paragraph.strip()) for paragraph in text.split("\n\n")]
            for label in set(labels) & set(prediction.labels):
                article = articles.index(label) if label in articles else None
                read = [s for s in prediction.sentences if s.paragraph == article]
                if article is None or not read:  # an article cut by the caps is not read: no pair
                    continue
                weight = sum(s.label_weights.get(label, s.weight) for s in read)
                own.append(weight)
                uniform.append(len(read) / len(prediction.sentences))
                most += weight > 0.5
    return {
        "checkpoint": checkpoint,
        "pairs": len(own),
        "attention_on_own_article": sum(own) / max(len(own), 1),
        "uniform_share_of_own_article": sum(uniform) / max(len(uniform), 1),
        "pairs_with_most_attention_on_own_article": most / max(len(own), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--corpus", required=True, help="r8 or 20ng: <proxies>/<corpus>_multi and its source")
    parser.add_argument("--proxies", default="data/proxies")
    args = parser.parse_args()
    folder = Path(args.proxies)
    table = pq.read_table(folder / args.corpus / "test.parquet").to_pylist()
    source = {row["text"].strip(): str(row["label"]) for row in table}
    rows = pq.read_table(folder / f"{args.corpus}_multi" / "test.parquet").to_pylist()
    digests = [(row["text"], [str(label) for label in row["labels"]]) for row in rows if len(row["labels"]) > 1]
    print(
        "| run | (document, label) pairs | attention on the label's own article | the article's share of the "
        "sentences | pairs with most attention there |"
    )
    print("|---|---|---|---|---|")
    for checkpoint in args.checkpoints:
        found = readings(checkpoint, digests, source)
        print(
            f"| `{Path(checkpoint).parent.parent.name}` | {found['pairs']} | {found['attention_on_own_article']:.3f} | "
            f"{found['uniform_share_of_own_article']:.3f} | {found['pairs_with_most_attention_on_own_article']:.3f} |"
        )


if __name__ == "__main__":
    main()
