"""Throughput of the data pipeline, training and inference of each model row, with the same Hydra
overrides as train.py.

    python scripts/benchmark.py [data.max_sentences=15 data.max_words=20 ...] [--rows default,paper_adamw]
        [--out bench.json] [--profile profile.txt (one table per row: profile_default.txt, ...)]

Rows: `default` is the default recipe's classifier (the HAN with its wide term beside it), composed
from the user's overrides alone; `paper_adamw` is the paper's model (no dropout, no wide term, words
seen more than 5 times, caps 60 x 80): the same overrides with `recipe=paper_adamw` composed on top,
so any cap or batch size given on the command line holds in both rows (--rows picks some). Each row
builds its data module and model as train.py does (hdc.training.build: the classifier started on the row's
training split by fit_to_training_split; `wide_fit_s` is that one-off cost, mostly the wide term's fit).

Everything runs on real batches after warm-up and is repeated; each figure is the median of the
repeats, with min and max beside it. Training is the module's own step: `training_step` (the net's
forward, loss, metrics), backward, gradient clipping as the configured trainer clips, and the
configured optimizer's step, on batches prepared beforehand, so that it measures the model alone;
inference is the module's forward (with a wide term: both parts and their mix). The data pipeline is
timed on its own, twice: `data_docs_per_s` from the cached ids of the training split to shuffled
batches (what every epoch does; `loader_docs_per_s` is the same through the configured DataLoader),
and `data_raw_docs_per_s` from raw text to batches (what a first run does once per split, before
training). `data_wait_fraction` is the share of a real training loop spent waiting for the next
batch. `setup_s` and `encode_s` are the one-off costs (tokenizer, encoded training split) that this
invocation paid: run it twice to see the cached ones.

Precisions: fp32 always, and bf16 autocast on CUDA (`--precisions fp32,bf16,fp16` for any set, on any
device): training and inference docs/s, peak GPU memory, and the largest gap between each precision's
class probabilities and fp32's on the same batches. `step_split_ms` splits one training step into
collate (ids to a batch, on the CPU), host-to-device copy, forward (`training_step`), backward and
optimizer (clipping and step), timed one phase at a time with the device synchronised between phases
(so the parts add up to more than a step that overlaps them).

The JSON (--out): one object per row under the row's name, {"default": {...}, "paper_adamw": {...}},
each with the keys above, `overrides` (what was composed) and `config` (its data and model), and
`machine` beside them. `peak_rss_mb` is the process's peak so far: rows run in order, in one process.
"""

import argparse
import itertools
import json
import platform
import re
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import lightning
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hdc.data.batching import BucketedBatches, padding_fractions
from hdc.data.encoded import encode_documents
from hdc.paths import CONFIG_DIR
from hdc.precision import autocast
from hdc.training.build import build_data, build_model, fit_to_training_split

# Row name: (overrides composed on top of the user's, what it is).
ROWS = {
    "default": ([], "the default recipe: HAN + wide term"),
    "paper_adamw": (["recipe=paper_adamw"], "the paper's model: HAN, no dropout, no wide term"),
}
TRAINER_PRECISIONS = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}

# The step runs without a Trainer, so training_step's self.log() has nowhere to go: Lightning then
# warns and returns at once (it supports calling *_step methods without a Trainer for testing). That
# is the least magic way to time the module's own step; what a Trainer adds (its result collection,
# loggers, progress bar) is the Trainer's cost, not the model's.
warnings.filterwarnings("ignore", message=re.escape("You are trying to `self.log()` but the `self.trainer`"))


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


class Step:
    """One training step of the module as a Trainer of `precision` runs it: training_step under the
    precision's autocast, backward, clipping (trainer.gradient_clip_val, by norm as Lightning's
    default), the optimizer's step. The optimizer is the configured one, built alone: the one-cycle
    schedule beside it needs the Trainer's step count, and a schedule does not change a step's cost."""

    def __init__(self, model, cfg, device: str):
        self.model, self.device = model, device
        self.optimizer = model.optimizer(params=model.parameters())
        self.clip = cfg.trainer.get("gradient_clip_val")
        self.index = 0

    def forward(self, batch, precision: str = "32-true") -> torch.Tensor:
        with autocast(self.device, precision):
            loss = self.model.training_step(batch, self.index)
        self.index += 1
        return loss

    def backward(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()

    def update(self) -> None:
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()

    def __call__(self, batch, precision: str = "32-true") -> None:
        self.backward(self.forward(batch, precision))
        self.update()


@torch.no_grad()
def largest_gaps_from_fp32(model, batches, device: str, precision: str) -> dict[str, float]:
    """The same weights on the same batches, in fp32 and under `precision`'s autocast: the largest
    difference in a class probability, a word weight and a sentence weight."""
    gaps = dict.fromkeys(["probability", "word_weight", "sentence_weight"], 0.0)
    for batch in batches:
        answers = [model(batch)]
        with autocast(device, precision):
            answers.append(model(batch))
        reference, low = ([a.logits.float().softmax(-1), a.net.word_weights, a.net.sentence_weights] for a in answers)
        for name, a, b in zip(gaps, reference, low, strict=True):
            gaps[name] = max(gaps[name], float((a - b.float()).abs().max()))
    return gaps


def split_step(step: Step, encoded, cfg, device: str, count: int) -> dict[str, float]:
    """Milliseconds per batch of each phase of a training step (fp32), the device synchronised between
    phases: collate, copy to the device, forward, backward, optimizer."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    pin = device.startswith("cuda")
    order = BucketedBatches(encoded, cfg.data.batch_size, cfg.data.bucket_size, [cfg.seed, 0])  # the timed batches
    phases = dict.fromkeys(["collate", "copy", "forward", "backward", "optimizer"], 0.0)
    step.model.train()
    for index in range(count + 1):  # the first is a warm-up
        times = [time.perf_counter()]
        batch = order[index]
        batch = batch.pin_memory() if pin else batch
        times.append(time.perf_counter())
        batch = batch.to(device, non_blocking=True)
        sync()
        times.append(time.perf_counter())
        loss = step.forward(batch)
        sync()
        times.append(time.perf_counter())
        step.backward(loss)
        sync()
        times.append(time.perf_counter())
        step.update()
        sync()
        times.append(time.perf_counter())
        if index:
            for phase, start, end in zip(phases, times, times[1:], strict=False):
                phases[phase] += (end - start) * 1000 / count
    return phases


def profile_steps(step: Step, encoded, cfg, device: str, path: Path, count: int = 10) -> None:
    """torch.profiler over `count` training steps from cached ids (collate and copy included): the ops
    by their own time, and what a step spends on host syncs and kernel launches."""
    from torch.profiler import ProfilerActivity, profile, record_function

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    order = BucketedBatches(encoded, cfg.data.batch_size, cfg.data.bucket_size, [cfg.seed, 0])  # the timed batches
    step.model.train()
    with profile(activities=activities) as profiler:
        for index in range(count):
            with record_function("collate"):
                batch = order[index]
            with record_function("copy"):
                batch = batch.pin_memory().to(device, non_blocking=True) if device.startswith("cuda") else batch
            with record_function("step"):
                step(batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    averages = profiler.key_averages()
    sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    counted = {e.key: e.count for e in averages}
    syncs = ["aten::_local_scalar_dense", "aten::item", "cudaStreamSynchronize", "cudaDeviceSynchronize", "aten::to"]
    lines = [f"{count} training steps on {device}, batch {cfg.data.batch_size}, caps {cfg.data.max_sentences} x "
             f"{cfg.data.max_words}; per step: " + ", ".join(f"{k} {counted.get(k, 0) / count:g}" for k in
             [*syncs, "cudaLaunchKernel"])]  # fmt: skip
    lines.append(averages.table(sort_by=sort, row_limit=40))
    path.write_text("\n".join(lines) + "\n")
    print(lines[0])


def benchmark(overrides: list[str], args, profile: Path | None) -> dict:
    """One row: its data module and model built as train.py builds them, then every measurement."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", overrides=overrides)
    lightning.seed_everything(cfg.seed, workers=True, verbose=False)
    start = time.perf_counter()
    datamodule = build_data(cfg)
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

    model = build_model(cfg, datamodule, fit=False)
    start = time.perf_counter()
    fit_to_training_split(model, datamodule)  # before the model moves, as in train.py
    wide_fit_s = time.perf_counter() - start
    model.to(args.device)
    step = Step(model, cfg, args.device)
    batches = [batch.to(args.device) for batch in batches]
    documents = sum(len(b) for b in batches)

    def train(precision: str) -> int:
        for batch in batches:
            step(batch, precision)
        return documents

    @torch.no_grad()
    def infer(precision: str) -> int:
        with autocast(args.device, precision):
            for batch in batches:
                model(batch)
        return documents

    on_cuda = args.device.startswith("cuda")
    requested = (args.precisions or ("fp32,bf16" if on_cuda else "fp32")).split(",")
    precisions = ["fp32", *(p for p in requested if p != "fp32")]  # fp32 first: the reference
    peak_memory, gaps = {}, {}
    for precision in precisions:
        suffix, trainer_precision = "" if precision == "fp32" else f"_{precision}", TRAINER_PRECISIONS[precision]
        if on_cuda:
            torch.cuda.reset_peak_memory_stats()
        model.train()
        train(trainer_precision)  # warm-up
        results[f"train{suffix}"] = repeat(lambda p=trainer_precision: train(p), args.repeats)
        model.eval()
        infer(trainer_precision)
        results[f"infer{suffix}"] = repeat(lambda p=trainer_precision: infer(p), args.repeats)
        if on_cuda:
            peak_memory[precision] = torch.cuda.max_memory_allocated() / 2**20
    for precision in precisions[1:]:
        gaps[precision] = largest_gaps_from_fp32(model, batches, args.device, TRAINER_PRECISIONS[precision])
    step_split = split_step(step, encoded, cfg, args.device, args.batches)
    if profile:
        profile_steps(step, encoded, cfg, args.device, profile)

    # A real training loop over the configured data loader: how long does the step wait for data?
    model.train()
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
        "wide_fit_s": wide_fit_s,
        "spread": {name: spread(rates) for name, rates in results.items()},
        "documents_per_repeat": documents,
        "overrides": overrides,
        "config": {"data": OmegaConf.to_container(cfg.data, resolve=True), "model": OmegaConf.to_container(cfg.model)},
    }
    for precision in precisions[1:]:
        result[f"train_{precision}_docs_per_s"] = statistics.median(results[f"train_{precision}"])
        result[f"infer_{precision}_docs_per_s"] = statistics.median(results[f"infer_{precision}"])
        result[f"{precision}_max_gap_from_fp32"] = gaps[precision]
    result["step_split_ms"] = step_split
    if on_cuda:
        result["peak_gpu_memory_mb"] = peak_memory

    print(f"{'docs/s':<16}{'median':>10}{'min':>10}{'max':>10}")
    for name, rates in result["spread"].items():
        print(f"{name:<16}{rates['median']:>10.0f}{rates['min']:>10.0f}{rates['max']:>10.0f}")
    print(f"{'peak RSS':<16}{result['peak_rss_mb']:>10.0f} MB")
    print(f"{'padding':<16}{result['padding_fraction']:>10.3f} of word slots, ", end="")
    print(f"{result['sentence_padding_fraction']:.3f} of sentence slots")
    print(f"{'one-off costs':<16}{setup_s:>10.1f} s tokenizer, {encode_s:.1f} s encoding train (~0 if cached), "
          f"{wide_fit_s:.1f} s fitting the bags")  # fmt: skip
    print(f"{'data wait':<16}{result['data_wait_fraction']:>10.3f} of step time ({cfg.data.num_workers} workers)")
    print(f"{'step, ms':<16}" + ", ".join(f"{k} {v:.2f}" for k, v in step_split.items()))
    for precision in precisions[1:]:
        print(f"{precision + ' vs fp32':<16}largest gaps {result[f'{precision}_max_gap_from_fp32']}")
    if on_cuda:
        print(f"{'peak GPU memory':<16}" + ", ".join(f"{k} {v:.0f} MB" for k, v in peak_memory.items()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated of {', '.join(ROWS)}")
    parser.add_argument("--batches", type=int, default=20, help="batches per model repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", help="comma-separated of fp32, bf16, fp16 (default: fp32, and bf16 on CUDA)")
    parser.add_argument("--out", help="write the results to this JSON file")
    parser.add_argument(
        "--profile", help="torch.profiler tables of training steps (fp32): PROFILE.txt -> PROFILE_ROW.txt"
    )
    args = parser.parse_args()
    rows = args.rows.split(",")
    if unknown := set(rows) - set(ROWS):
        parser.error(f"--rows: unknown {sorted(unknown)}; rows are {list(ROWS)}")

    result = {}
    for row in rows:
        extra, description = ROWS[row]
        print(f"== {row}: {description}")
        profile = args.profile and Path(args.profile)
        profile = profile and profile.with_name(f"{profile.stem}_{row}{profile.suffix}")  # one table per row
        result[row] = benchmark([*args.overrides, *extra], args, profile)
    result["machine"] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "lightning": lightning.__version__,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
