"""Peak memory of the worst inputs: truncation bounds the largest batch whatever the text.

    python scripts/memory_bound.py [--imdb ../shared/data/imdb] [--out results/memory.json]

Each case runs in a fresh process and reports its peak RSS (and the batch shape the caps allow):
the 64 longest IMDB training reviews as one training step (forward, backward, AdamW) and as one
prediction, and a single 100,000-word document, with and without sentence punctuation, the same two
ways. Paper sizes, default caps (60 sentences x 80 words), a 30,000-word vocabulary.
"""

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ["baseline", "longest_imdb_train", "longest_imdb_predict", "100k_words_train", "100k_words_predict",
         "100k_one_word_sentences_train"]  # fmt: skip


def texts_of(case: str, imdb: Path) -> list[str]:
    if case.startswith("longest_imdb"):
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        text = pq.read_table(imdb / "train.parquet", columns=["text"])["text"]
        longest = pc.sort_indices(pc.utf8_length(text), sort_keys=[("", "descending")])[:64]
        return [str(text[int(i)]) for i in longest]
    if case.startswith("100k_one_word"):
        return ["Yes. " * 100_000]
    return ["word " * 100_000]


def run_case(case: str, imdb: Path) -> dict:
    import torch
    import torch.nn.functional as F

    from hdc.data.batching import batch_of
    from hdc.data.vocab import DocumentEncoder, train_tokenizer
    from hdc.models.han import HAN

    record = {"case": case}
    if case != "baseline":
        texts = texts_of(case, imdb)
        encoder = DocumentEncoder(train_tokenizer(texts, min_frequency=1), max_sentences=60, max_words=80)
        batch = batch_of(encoder.encode(texts), [0] * len(texts))
        model = HAN(vocab_size=30_000, num_classes=2)
        record |= {"documents": len(texts), "characters": sum(map(len, texts)),
                   "batch_word_ids_shape": list(batch.word_ids.shape)}  # fmt: skip
        if case.endswith("_train"):
            optimizer = torch.optim.AdamW(model.parameters())
            logits = model(batch.word_ids, batch.word_counts, batch.sentence_counts).logits
            F.cross_entropy(logits, batch.labels).backward()
            optimizer.step()
        else:
            with torch.no_grad():
                model.eval()(batch.word_ids, batch.word_counts, batch.sentence_counts)
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--imdb", type=Path, default=ROOT.parent / "shared" / "data" / "imdb")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "memory.json")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, in this process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.imdb)))
        return
    records = []
    for case in CASES:
        command = [sys.executable, __file__, "--case", case, "--imdb", str(args.imdb)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        records.append(json.loads(output.strip().splitlines()[-1]))
        print(records[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
