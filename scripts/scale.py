"""The paper's scale through the normal `data.path=` route: encoding time, peak memory and cache size
as a corpus grows (stand-ins from scripts/scale_standin.py), then one training epoch on the largest.

    python scripts/scale.py STANDIN_DIR [STANDIN_DIR ...] [--train OVERRIDE ...] [--out results/scale.json]

Each step runs in a fresh process, so that its peak RSS is its own: `encode` composes train.yaml with
data.path=DIR (any other overrides after --overrides) and times the tokenizer and the encoding of the
train, validation and test splits into an empty cache; `train` runs `python train.py data.path=DIR
trainer.max_epochs=1 ...` on the last folder and times it. Peak RSS is the process's maximum resident
set: anonymous memory plus the pages of memory-mapped files it touched (the encoded cache; the kernel
may drop those under pressure).
"""

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def encode(folder: str, cache: str, overrides: list[str]) -> dict:
    """In this process: tokenizer and encoded splits of `folder`, into the empty `cache`."""
    import pyarrow.parquet as pq
    from hydra import compose, initialize_config_dir

    from hdc.data.datamodule import available_cores
    from hdc.paths import CONFIG_DIR
    from hdc.training.build import build_data

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train.yaml", overrides=[f"data.path={folder}", f"paths.cache_dir={cache}", *overrides])
    documents = sum(pq.ParquetFile(f).metadata.num_rows for f in Path(folder).glob("train*.parquet"))
    result: dict = {"folder": folder, "documents": documents, "processes": cfg.data.encode_workers or available_cores()}
    start = time.perf_counter()
    datamodule = build_data(cfg)
    result["tokenizer_s"] = time.perf_counter() - start
    for stage in ("train", "val", "test"):
        start = time.perf_counter()
        result[f"{stage}_documents"] = len(datamodule.encoded(stage))
        result[f"encode_{stage}_s"] = time.perf_counter() - start
    encoded = Path(cache) / "encoded"
    result["cache_mb"] = sum(f.stat().st_size for f in encoded.rglob("*") if f.is_file()) / 2**20
    result["encode_docs_per_s"] = (result["train_documents"] + result["val_documents"]) / (
        result["encode_train_s"] + result["encode_val_s"]
    )
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def in_child(*args: str) -> dict:
    output = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, capture_output=True, text=True)
    if output.returncode:
        sys.exit(f"{args[0]} failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def train(folder: str, overrides: list[str]) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="scale_run_"))
    command = [sys.executable, "train.py", f"data.path={folder}", "trainer.max_epochs=1", "logger=csv",
               f"hydra.run.dir={run_dir}", *overrides]  # fmt: skip
    start, timeline = time.perf_counter(), []
    with open(run_dir / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
        while process.poll() is None:  # resident memory over the run: anonymous and memory-mapped files
            timeline.append([round(time.perf_counter() - start), *resident_mb(process.pid)])
            time.sleep(10)
    wall = time.perf_counter() - start
    if process.returncode:
        sys.exit(f"train.py failed:\n{(run_dir / 'stderr.txt').read_text()[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    log = (run_dir / "train.log").read_text() if (run_dir / "train.log").exists() else ""
    return {
        "command": " ".join(command[1:]),
        "wall_s": wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "test_acc": metrics.get("test/acc"),
        "val_acc": metrics.get("val/acc"),
        "log": [line for line in log.splitlines() if "Encoded" in line or "Tokenizer" in line],
        # with +trainer.profiler=simple: the FIT report's epoch line (mean duration, s)
        "profiler_epoch": next(
            (
                " ".join(line.split())
                for line in (run_dir / "stderr.txt").read_text().splitlines()
                if "run_training_epoch" in line
            ),
            None,
        ),  # fmt: skip
        "run_dir": str(run_dir),
        "rss_timeline_s_anon_mb_file_mb": timeline,
    }


def resident_mb(pid: int) -> tuple[float, float]:
    """RssAnon and RssFile of a process, in MB (0, 0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return tuple(round(int(fields.get(key, "0 kB").split()[0]) / 1024, 1) for key in ("RssAnon", "RssFile"))


def main() -> None:
    if sys.argv[1:2] == ["encode"]:  # the child of one encoding step
        print(json.dumps(encode(sys.argv[2], sys.argv[3], sys.argv[4:])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="stand-in folders, smallest first")
    parser.add_argument("--overrides", nargs="*", default=[], help="data overrides for every step")
    parser.add_argument("--train", nargs="*", help="train one epoch on the last folder, with these overrides")
    parser.add_argument("--out", default=str(ROOT / "results" / "scale.json"))
    args = parser.parse_args()

    results: dict = {"machine": {"platform": platform.platform(), "python": sys.version.split()[0]}, "encode": []}
    for folder in args.folders:
        cache = tempfile.mkdtemp(prefix="scale_cache_")
        results["encode"].append(in_child("encode", folder, cache, *args.overrides))
        print(json.dumps(results["encode"][-1]), flush=True)
        if args.train is None or folder != args.folders[-1]:
            shutil.rmtree(cache)
        else:  # training reads the caches just made
            results["train"] = train(folder, [f"paths.cache_dir={cache}", *args.overrides, *args.train])
            print(json.dumps(results["train"]), flush=True)
            shutil.rmtree(cache)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
