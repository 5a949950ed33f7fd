"""What a checkpoint holds and what loading it costs: its size, the largest tensors, and `hdc.load`'s time
and peak memory, for the checkpoint as saved (tables that are mostly zero rows stored by their nonzero
rows: hdc.module.compact) and for the same weights stored dense (what checkpoints held before).

    python scripts/checkpoint_size.py CKPT [CKPT ...] [--out results/checkpoint_size.json]

Each load runs in a fresh interpreter (peak RSS of that process, which includes importing torch and
Lightning); the dense copy is written to a temporary folder and deleted.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from hdc.checkpoint import read_checkpoint  # noqa: E402
from hdc.module import expanded  # noqa: E402

LOAD = """
import resource, sys, time
start = time.perf_counter()
import hdc
predictor = hdc.load(sys.argv[1])
seconds = time.perf_counter() - start
predictor.predict(["A first document."])
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def load_cost(path: Path) -> dict:
    """hdc.load(path) in a fresh interpreter: seconds (imports included) and peak RSS in MB."""
    result = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, check=True)
    seconds, rss = map(float, result.stdout.split()[-2:])
    return {"load_seconds": round(seconds, 2), "peak_rss_mb": round(rss)}


def stored_bytes(tensor: torch.Tensor) -> int:
    if tensor.is_sparse:
        return tensor._values().nbytes + tensor._indices().nbytes
    return tensor.nbytes


def measure(path: Path) -> dict:
    checkpoint = read_checkpoint(path)
    state = checkpoint["state_dict"]
    largest = sorted(state, key=lambda name: -stored_bytes(state[name]))[:4]
    report = {
        "checkpoint": str(path),
        "labels": len(checkpoint["hyper_parameters"]["label_names"]),
        "vocabulary": checkpoint["hyper_parameters"]["vocab_size"],
        "mb": round(path.stat().st_size / 1e6, 1),
        "largest_tensors_mb": {
            name + (" (nonzero rows)" if state[name].is_sparse else ""): round(stored_bytes(state[name]) / 1e6, 2)
            for name in largest
        },
        **load_cost(path),
    }
    with tempfile.TemporaryDirectory() as folder:
        dense = Path(folder) / "dense.ckpt"
        torch.save(checkpoint | {"state_dict": expanded(state)}, dense)
        report["dense"] = {"mb": round(dense.stat().st_size / 1e6, 1), **load_cost(dense)}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    reports = [measure(path) for path in args.checkpoints]
    text = json.dumps(reports, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
