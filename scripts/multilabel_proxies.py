"""Multi-label proxy corpora from the single-label proxies (scripts/proxies.py): each document is 1 to 3
documents of different classes of one split, joined as paragraphs, labelled with the set of their
classes. Every source document is used once; a test document is made of test documents only.

- r8_multi: from Reuters R8 (8 topics); 20ng_multi: from 20 Newsgroups (20 groups).
Written as folders that `python train.py data.path=DIR data.label_column=labels` reads (train.parquet,
test.parquet with `text` and `labels`, a list of strings). Never committed: data/ is git-ignored.

    python scripts/proxies.py && python scripts/multilabel_proxies.py [--proxies data/proxies]
"""

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def joined(table: pa.Table, seed: int) -> pa.Table:
    """Documents of 1-3 source documents of distinct labels (sizes drawn uniformly), each source used once."""
    rng = np.random.default_rng(seed)
    texts, labels = table.column("text").to_pylist(), [str(label) for label in table.column("label").to_pylist()]
    order = list(rng.permutation(len(texts)))
    out_texts, out_labels = [], []
    while order:
        size, chosen = int(rng.integers(1, 4)), [order.pop()]
        for candidate in order[-50:][::-1]:  # the next few in the shuffled order: a label unlike the chosen
            if len(chosen) == size:
                break
            if labels[candidate] not in {labels[i] for i in chosen}:
                order.remove(candidate)
                chosen.append(candidate)
        out_texts.append("\n\n".join(texts[i] for i in chosen))
        out_labels.append(sorted({labels[i] for i in chosen}))
    return pa.table({"text": out_texts, "labels": out_labels})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proxies", default="data/proxies")
    args = parser.parse_args()
    for name in ("r8", "20ng"):
        source, folder = Path(args.proxies) / name, Path(args.proxies) / f"{name}_multi"
        folder.mkdir(parents=True, exist_ok=True)
        for seed, split in enumerate(("train", "test")):
            table = joined(pq.read_table(source / f"{split}.parquet"), seed)
            pq.write_table(table, folder / f"{split}.parquet")
            sizes = np.bincount([len(labels) for labels in table.column("labels").to_pylist()])
            print(f"{folder} {split}: {table.num_rows} documents, by number of labels {sizes.tolist()}")


if __name__ == "__main__":
    main()
