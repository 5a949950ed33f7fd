"""Wall time from raw text to a tested model: `python train.py` with empty caches, timed as a user sees it.

    python scripts/time_to_accuracy.py [train.py overrides ...] [--out results/time_to_accuracy.json]

Runs `train.py experiment=imdb_fast` (its recipe is documented in that config) in a fresh process,
with a fresh cache directory, so tokenizer training and encoding are paid for as on a first run, and
reports the whole wall time and peak memory with the test accuracy of the best checkpoint.
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument("--experiment", default="imdb_fast")
    parser.add_argument("--target", type=float, default=0.88, help="test accuracy to reach")
    parser.add_argument("--out", help="write the result to this JSON file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hdc-tta-") as scratch:
        run_dir = Path(scratch) / "run"
        command = [
            sys.executable, "train.py", f"experiment={args.experiment}", f"paths.cache_dir={scratch}/cache",
            f"hydra.run.dir={run_dir}", *args.overrides,
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        metrics = json.loads((run_dir / "metrics.json").read_text())

    result = {
        "seconds": round(seconds, 1),
        "test_acc": metrics["test/acc"],
        "val_acc": metrics["val/acc"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "target": args.target,
        "reached": metrics["test/acc"] >= args.target,
        "command": " ".join(["python", *command[1:3], *args.overrides]),
        "machine": platform.platform(),
    }
    print(f"{result['seconds']:.0f} s from raw text to a tested model (peak RSS {result['peak_rss_mb']} MB); "
          f"test/acc {result['test_acc']:.4f} "
          f"(target {args.target}: {'reached' if result['reached'] else 'missed'})")  # fmt: skip
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
