"""Throughput of the data pipeline, training and inference, with the same Hydra overrides as train.py.

    python scripts/benchmark.py [experiment=imdb] [data.max_sentences=15 ...] [--out bench.json]

Measured on real batches from the training split after warm-up, repeated; reports the median and
the spread (min-max) of each repeat. Training is a full step (forward, backward, optimizer step)
on batches prepared beforehand, so that it measures the model alone; the data pipeline is timed
separately, from raw text to batches, in this process.
"""

import argparse
import itertools
import json
import platform
import resource
import statistics
import sys
import time

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hdc.paths import CONFIG_DIR


def rate(work, documents: int, repeats: int) -> list[float]:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        rates.append(documents / (time.perf_counter() - start))
    return rates


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument("--batches", type=int, default=20, help="batches per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="write the results to this JSON file")
    args = parser.parse_args()

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", overrides=["experiment=imdb", *args.overrides])
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    datamodule = instantiate(cfg.data, num_workers=0)
    datamodule.setup("fit")
    setup_s = time.perf_counter() - start

    # One stream for everything: the first bucket pays for filling the shuffle buffer (warm-up),
    # each data repeat then reads one whole bucket, from raw text to batches.
    stream = iter(datamodule.train_dataloader())
    per_bucket = cfg.data.bucket_size // cfg.data.batch_size
    batches = list(itertools.islice(stream, per_bucket))[: args.batches]
    documents = sum(len(b) for b in batches)

    data_rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        read = sum(len(b) for b in itertools.islice(stream, per_bucket))
        data_rates.append(read / (time.perf_counter() - start))

    model = instantiate(
        cfg.model, vocab_size=datamodule.encoder.tokenizer.get_vocab_size(), label_names=datamodule.label_names
    )
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    net = model.net

    def train_steps():
        for b in batches:
            logits, _, _ = net(b.word_ids, b.word_counts, b.sentence_counts)
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(logits, b.labels).backward()
            optimizer.step()

    @torch.no_grad()
    def infer():
        for b in batches:
            net(b.word_ids, b.word_counts, b.sentence_counts)

    net.train()
    train_steps()  # warm-up
    train_rates = rate(train_steps, documents, args.repeats)
    net.eval()
    infer()
    infer_rates = rate(infer, documents, args.repeats)

    real_words = sum(int(b.word_counts.sum()) for b in batches)
    result = {
        "train_docs_per_s": statistics.median(train_rates),
        "infer_docs_per_s": statistics.median(infer_rates),
        "data_docs_per_s": statistics.median(data_rates),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "padding_fraction": 1 - real_words / sum(b.word_ids.numel() for b in batches),
        "sentence_padding_fraction": 1
        - sum(int(b.sentence_counts.sum()) for b in batches)
        / sum(len(b) * int(b.sentence_counts.max()) for b in batches),
        "setup_s": setup_s,
        "spread": {"train": summary(train_rates), "infer": summary(infer_rates), "data": summary(data_rates)},
        "documents_per_repeat": documents,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "config": OmegaConf.to_container(cfg.data, resolve=True) | {"model": OmegaConf.to_container(cfg.model)},
    }
    rows = [
        ("training", result["spread"]["train"], "docs/s"),
        ("inference", result["spread"]["infer"], "docs/s"),
        ("data pipeline", result["spread"]["data"], "docs/s"),
    ]
    print(f"{'measure':<16}{'median':>10}{'min':>10}{'max':>10}")
    for name, values, unit in rows:
        print(f"{name:<16}{values['median']:>10.0f}{values['min']:>10.0f}{values['max']:>10.0f}  {unit}")
    print(f"{'peak RSS':<16}{result['peak_rss_mb']:>10.0f} MB")
    padding = result["padding_fraction"], result["sentence_padding_fraction"]
    print(f"{'padding':<16}{padding[0]:>10.3f} of word slots, {padding[1]:.3f} of sentence slots")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
