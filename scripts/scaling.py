"""How time and memory grow with document length, per model: which grow linearly, which quadratically.

    python scripts/scaling.py [--words 1000 2000 ...] [--out results/scaling.json]  (make scaling)

One document of N words in sentences of 20 words, one forward + backward pass, each (model, N) in a
fresh process (memory: its peak RSS, and `pass_mb`, what the passes added to the RSS of the built
model and input; time: the best of 3 passes). Models, at the paper's sizes: the 2-level HAN (BiGRU
levels), the hierarchy with Transformer levels
(self-attention within each sentence, then over the sentence vectors), a flat BiGRU, and a flat
Transformer (full self-attention over all words), and both Transformer models with segment recurrence
at their top level. A case that runs past --timeout is recorded as such, and longer documents of
that model are not tried. (torch's CPU attention kernel never materialises the score matrix, so full
self-attention costs quadratic time here, not quadratic memory.)
Writes the JSON and results/scaling.png.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "HAN (BiGRU levels)": {},
    "hierarchy, Transformer levels": {"word_encoder": "transformer", "sentence_encoder": "transformer"},
    "flat BiGRU": {"flat": True},
    "flat Transformer (full self-attention)": {"flat": True, "word_encoder": "transformer"},
    "hierarchy, Transformer levels, segments of 64 sentences": {
        "word_encoder": "transformer",
        "sentence_encoder": "transformer",
        "segment_length": 64,
    },
    "flat Transformer, segments of 512 words": {"flat": True, "word_encoder": "transformer", "segment_length": 512},
}
SENTENCE_WORDS = 20
HEADS = 4


def measure(model_name: str, words: int) -> dict:
    import torch

    from hdc.models.han import HAN

    torch.manual_seed(0)
    model = HAN(vocab_size=30_000, num_classes=2, transformer_heads=HEADS, **MODELS[model_name])
    sentences = words // SENTENCE_WORDS
    word_ids = torch.randint(2, 30_000, (sentences, SENTENCE_WORDS))
    word_counts = torch.full((sentences,), SENTENCE_WORDS)
    sentence_counts = torch.tensor([sentences])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        logits, _, _ = model(word_ids, word_counts, sentence_counts)
        logits.sum().backward()
        seconds.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": min(seconds), "peak_rss_mb": round(peak / 1024), "pass_mb": round((peak - before) / 1024)}


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in MODELS:
        done = [r for r in records if r["model"] == name and "seconds" in r]
        for axis, key in zip(axes, ("seconds", "pass_mb"), strict=True):
            axis.plot([r["words"] for r in done], [r[key] for r in done], marker="o", label=name)
    xs = sorted({r["words"] for r in records})
    for axis, key, unit in ((axes[0], "seconds", "s"), (axes[1], "pass_mb", "MB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("words in the document")
        axis.set_ylabel(f"{'forward + backward time' if key == 'seconds' else 'memory the passes add'} ({unit})")
        anchor = min(r[key] for r in records if key in r)
        axis.plot(xs, [anchor * x / xs[0] for x in xs], "k:", linewidth=0.8, label="linear")
        axis.plot(xs, [anchor * (x / xs[0]) ** 2 for x in xs], "k--", linewidth=0.8, label="quadratic")
        axis.set_ylim(bottom=anchor / 2, top=max(r[key] for r in records if key in r) * 3)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[0].set_title("time grows ...")
    axes[1].set_title("... and memory (dotted: linear, dashed: quadratic)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, nargs="+", default=[1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000])
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "scaling.json")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)  # model name, words: one case, in this process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case[0], int(args.case[1]))))
        return
    records = []
    for name in MODELS:
        for words in args.words:
            record = {"model": name, "words": words}
            if any(r["model"] == name and "skipped" in r for r in records):
                record["skipped"] = "a shorter document was already out of budget"
            else:
                try:
                    command = [sys.executable, __file__, "--case", name, str(words)]
                    out = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=True)
                    record |= json.loads(out.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    record["skipped"] = f"over {args.timeout:.0f} s"
            records.append(record)
            print(record, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=2) + "\n")
    plot(records, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
