"""What a checkpoint holds and what loading it costs: its size, the largest tensors, and `hdc.load`'s time
and peak memory, for its model as the best epoch's checkpoint holds it now (the model alone, tables
that are mostly zero rows stored by their nonzero rows: hdc.classifier.module.compact) and with the same tables
dense, as checkpoints stored them before; and the file's size as it was saved.

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

from hdc.classifier.checkpoint import read_checkpoint  # noqa: E402
from hdc.classifier.module import compact, expanded  # noqa: E402

# Peak memory from /proc's VmHWM: ru_maxrss would carry this script's own peak over fork and exec.
LOAD = """
import re, sys, time
start = time.perf_counter()
import hdc
predictor = hdc.load(sys.argv[1])
seconds = time.perf_counter() - start
predictor.predict(["A first document."])
print(seconds, int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024)
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


WEIGHTS_ONLY = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "hyper_parameters",
                "datamodule_hparams_name", "datamodule_hyper_parameters", "hparams_name", "hdc")  # fmt: skip


def measure(path: Path) -> dict:
    """The checkpoint's size as saved, then the best epoch's checkpoint as train.py writes it now (the
    model alone, compacted) and as it was written before (dense), each with hdc.load's cost."""
    checkpoint = read_checkpoint(path)
    model = {key: value for key, value in checkpoint.items() if key in WEIGHTS_ONLY}
    state = compact(expanded(checkpoint["state_dict"]))
    largest = sorted(state, key=lambda name: -stored_bytes(state[name]))[:4]
    report = {
        "checkpoint": str(path),
        "labels": len(checkpoint["hyper_parameters"]["label_names"]),
        "vocabulary": checkpoint["hyper_parameters"]["vocab_size"],
        "mb_as_saved": round(path.stat().st_size / 1e6, 1),
        "largest_tensors_mb": {
            name + (" (nonzero rows)" if state[name].is_sparse else ""): round(stored_bytes(state[name]) / 1e6, 2)
            for name in largest
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        for name, weights in (("compact", state), ("dense", expanded(state))):
            saved = Path(folder) / f"{name}.ckpt"
            torch.save(model | {"state_dict": weights}, saved)
            report[name] = {"mb": round(saved.stat().st_size / 1e6, 1), **load_cost(saved)}
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
