"""How time and memory grow with document length, per model: which grow linearly, which quadratically.

    python scripts/scaling.py [--words 1000 2000 ...] [--models NAME ...] [--out results/scaling.json]

One document of N words in sentences of 20 words and paragraphs of 5 sentences, one forward +
backward pass, each (model, N) in a fresh process (memory: its peak RSS, and `pass_mb`, what the
passes added to the RSS of the built model and input; time: the best of 3 passes). Models, as their
configs/model/net/*.yaml build them: the 2-level HAN (BiGRU levels), the 3-level HAN (sentences,
paragraphs), the hierarchy with Transformer levels (self-attention within each sentence, then over
the sentence vectors), a flat BiGRU, and a flat Transformer (full self-attention over all words), and
both Transformer models with segment recurrence at their top level. A case that runs past --timeout
is recorded as such, and longer documents of that model are not tried. --models measures just the
named models and keeps the other models' records already in --out. (torch's CPU attention kernel
never materialises the score matrix, so full self-attention costs quadratic time here, not
quadratic memory.) Writes the JSON and results/scaling.png.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # name: (its configs/model/net file, segment_length of its top level)
    "HAN (BiGRU levels)": ("han", None),
    "3-level HAN (BiGRU levels: sentences, paragraphs)": ("han_3level", None),
    "hierarchy, Transformer levels": ("han_transformer", None),
    "flat BiGRU": ("flat", None),
    "flat Transformer (full self-attention)": ("flat_transformer", None),
    "hierarchy, Transformer levels, segments of 64 sentences": ("han_transformer", 64),
    "flat Transformer, segments of 512 words": ("flat_transformer", 512),
}
SENTENCE_WORDS, PARAGRAPH_SENTENCES = 20, 5


def measure(model_name: str, words: int) -> dict:
    import torch
    from omegaconf import OmegaConf

    from hdc.models.han import HAN

    config, segment_length = MODELS[model_name]
    levels = OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "model" / "net" / f"{config}.yaml").levels)
    if segment_length:
        levels[-1]["segment_length"] = segment_length
    torch.manual_seed(0)
    model = HAN(vocab_size=30_000, num_classes=2, levels=levels)
    sentences = words // SENTENCE_WORDS
    word_ids = torch.randint(2, 30_000, (sentences, SENTENCE_WORDS))
    word_counts = torch.full((sentences,), SENTENCE_WORDS)
    sentence_counts = torch.tensor([sentences])
    paragraph_sizes = torch.full((sentences // PARAGRAPH_SENTENCES,), PARAGRAPH_SENTENCES)
    paragraph_sizes[-1] += sentences % PARAGRAPH_SENTENCES
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        logits = model(word_ids, word_counts, sentence_counts, paragraph_sizes).logits
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
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), metavar="NAME")
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)  # model name, words: one case, in this process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case[0], int(args.case[1]))))
        return
    kept = json.loads(args.out.read_text()) if args.out.exists() else []
    records = [r for r in kept if r["model"] in MODELS and r["model"] not in args.models]
    for name in args.models:
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
    records.sort(key=lambda r: list(MODELS).index(r["model"]))
    args.out.write_text(json.dumps(records, indent=2) + "\n")
    plot(records, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
