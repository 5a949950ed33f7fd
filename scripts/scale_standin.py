"""A stand-in for the paper's large corpora (Yelp 2015: 650k reviews; Amazon: 3.6M), which cannot be
downloaded here: IMDB's training split repeated, in a seeded shuffle, as parquet shards of a folder
laid out like a hub dataset (train-0000N-of-0000M.parquet, and IMDB's test split as test.parquet).

    python scripts/scale_standin.py IMDB_DIR OUT_DIR [--documents 1000000] [--shard-size 100000] [--seed 0]
    python train.py data.path=OUT_DIR ...

Write it outside the repository (data is never committed). Repeats of a review hash alike, so the
validation carve-out takes all copies of a review or none: validation never sees a training text.
"""

import argparse
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("imdb", type=Path, help="a folder with IMDB's train.parquet and test.parquet")
    parser.add_argument("out", type=Path)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    train = pq.read_table(args.imdb / "train.parquet")  # schema metadata keeps the label names
    order = np.random.default_rng(args.seed).permutation(np.resize(np.arange(len(train)), args.documents))
    shards = math.ceil(args.documents / args.shard_size)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.parquet"):
        old.unlink()
    for shard in range(shards):
        rows = order[shard * args.shard_size : (shard + 1) * args.shard_size]
        # Row groups of 10k reviews (~12 MB), as hub exports: a stream reads one row group at a time.
        pq.write_table(train.take(rows), args.out / f"train-{shard:05d}-of-{shards:05d}.parquet", row_group_size=10_000)
    shutil.copy(args.imdb / "test.parquet", args.out / "test.parquet")
    size = sum(f.stat().st_size for f in args.out.glob("*.parquet")) / 2**20
    print(f"{args.out}: {args.documents} training documents in {shards} shards, {size:.0f} MB with the test split")


if __name__ == "__main__":
    main()
