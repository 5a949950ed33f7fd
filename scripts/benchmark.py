"""Throughput of the data pipeline, training and inference, with the same Hydra overrides as train.py.

    python scripts/benchmark.py [data.max_sentences=15 data.max_words=20 ...] [--out bench.json]

Everything runs on real IMDB batches after warm-up and is repeated; each figure is the median of the
repeats, with min and max beside it. Training is a full step (forward, backward, optimizer step) on
batches prepared beforehand, so that it measures the model alone. The data pipeline is timed on its
own, twice: `data_docs_per_s` from the cached ids of the training split to shuffled batches (what
every epoch does; `loader_docs_per_s` is the same through the configured DataLoader), and
`data_raw_docs_per_s` from raw text to batches (what a first run does once per split, before
training). `data_wait_fraction` is the share of a real training loop spent waiting for the next
batch. `setup_s` and `encode_s` are the one-off costs (tokenizer, encoded training split) that this
invocation paid: run it twice to see the cached ones. On CUDA the model is also timed under bf16
autocast.
"""

import argparse
import itertools
import json
import platform
import resource
import statistics
import sys
import time

import lightning
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hdc.data.batching import BucketedBatches, padding_fractions
from hdc.data.encoded import encode_documents
from hdc.paths import CONFIG_DIR


def repeat(work, repeats: int) -> list[float]:
    """Documents per second of `work()` (which returns how many documents it handled), per repeat."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        documents = work()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        rates.append(documents / (time.perf_counter() - start))
    return rates


def spread(rates: list[float]) -> dict[str, float]:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument("--batches", type=int, default=20, help="batches per model repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", help="write the results to this JSON file")
    args = parser.parse_args()

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", overrides=["experiment=imdb", *args.overrides])
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    setup_s = time.perf_counter() - start  # the tokenizer: trained on a first run, read from the cache after
    start = time.perf_counter()
    encoded = datamodule.encoded("train")
    encode_s = time.perf_counter() - start  # the training split's ids: encoded on a first run, then cached

    def batch_all(documents, seed) -> int:
        return sum(len(b) for b in BucketedBatches(documents, cfg.data.batch_size, cfg.data.bucket_size, seed))

    # Data, raw text to batches in one process (what a first run pays once per split): one bucket at a
    # time from the stream, after a first bucket that pays for opening it.
    stream = iter(datamodule.train_documents())

    def raw_to_batches() -> int:
        return batch_all(encode_documents(itertools.islice(stream, cfg.data.bucket_size), datamodule.encoder), 0)

    raw_to_batches()
    results = {"data_raw": repeat(raw_to_batches, args.repeats)}
    # Data as every epoch sees it: the cached ids of the whole training split to shuffled batches.
    results["data"] = repeat(lambda: batch_all(encoded, [cfg.seed, 0]), args.repeats)
    results["loader"] = repeat(lambda: sum(len(b) for b in datamodule.train_dataloader()), args.repeats)
    batches = list(
        itertools.islice(
            iter(BucketedBatches(encoded, cfg.data.batch_size, cfg.data.bucket_size, [cfg.seed, 0])), args.batches
        )
    )

    model = instantiate(
        cfg.model, vocab_size=datamodule.encoder.tokenizer.get_vocab_size(), label_names=datamodule.label_names
    )
    net = model.net.to(args.device)
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    batches = [batch.to(args.device) for batch in batches]
    documents = sum(len(b) for b in batches)

    def step(batch) -> None:
        logits, _, _ = net(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(logits.float(), batch.labels).backward()
        optimizer.step()

    def train() -> int:
        for batch in batches:
            step(batch)
        return documents

    @torch.no_grad()
    def infer() -> int:
        for batch in batches:
            net(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
        return documents

    precisions = ["fp32"] + (["bf16"] if args.device.startswith("cuda") else [])
    for precision in precisions:
        with torch.autocast(args.device.split(":")[0], torch.bfloat16, enabled=precision == "bf16"):
            suffix = "" if precision == "fp32" else "_bf16"
            net.train()
            train()  # warm-up
            results[f"train{suffix}"] = repeat(train, args.repeats)
            net.eval()
            infer()
            results[f"infer{suffix}"] = repeat(infer, args.repeats)

    # A real training loop over the configured data loader: how long does the step wait for data?
    net.train()
    loader = iter(datamodule.train_dataloader())
    next(loader)  # starts the workers, if any
    waited = total = 0.0
    for _ in range(args.batches * args.repeats):
        start = time.perf_counter()
        batch = next(loader)
        waited += time.perf_counter() - start
        step(batch.to(args.device))
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        total += time.perf_counter() - start

    word_padding, sentence_padding = padding_fractions(batches)
    result = {
        "train_docs_per_s": statistics.median(results["train"]),
        "infer_docs_per_s": statistics.median(results["infer"]),
        "data_docs_per_s": statistics.median(results["data"]),
        "data_raw_docs_per_s": statistics.median(results["data_raw"]),
        "loader_docs_per_s": statistics.median(results["loader"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "padding_fraction": word_padding,
        "sentence_padding_fraction": sentence_padding,
        "data_wait_fraction": waited / total,
        "setup_s": setup_s,
        "encode_s": encode_s,
        "spread": {name: spread(rates) for name, rates in results.items()},
        "documents_per_repeat": documents,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "lightning": lightning.__version__,
        },
        "config": {"data": OmegaConf.to_container(cfg.data, resolve=True), "model": OmegaConf.to_container(cfg.model)},
    }
    if "train_bf16" in results:
        result |= {"train_bf16_docs_per_s": statistics.median(results["train_bf16"])}
        result |= {"infer_bf16_docs_per_s": statistics.median(results["infer_bf16"])}

    print(f"{'docs/s':<16}{'median':>10}{'min':>10}{'max':>10}")
    for name, rates in result["spread"].items():
        print(f"{name:<16}{rates['median']:>10.0f}{rates['min']:>10.0f}{rates['max']:>10.0f}")
    print(f"{'peak RSS':<16}{result['peak_rss_mb']:>10.0f} MB")
    print(f"{'padding':<16}{result['padding_fraction']:>10.3f} of word slots, ", end="")
    print(f"{result['sentence_padding_fraction']:.3f} of sentence slots")
    print(f"{'one-off costs':<16}{setup_s:>10.1f} s tokenizer, {encode_s:.1f} s encoding train (~0 if cached)")
    print(f"{'data wait':<16}{result['data_wait_fraction']:>10.3f} of step time ({cfg.data.num_workers} workers)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
