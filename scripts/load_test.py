"""Load on serve.py, on loopback only: throughput and latency at several concurrencies, with and without
batching, and the server's memory before and after many requests. Bounded: each level stops after
--requests requests or --seconds seconds, whichever comes first.

    python scripts/load_test.py CKPT [--texts ../shared/data/imdb/test.parquet] [--requests 2000]
        [--seconds 60] [--concurrency 1,8,32] [--memory-requests 10000] [--device cpu|cuda]
        [--out results/serve_load.json]

Before the load, the server's answers on 16 of the texts (with attention) are compared with
hdc.load(CKPT, device).predict on the same texts: the report's "check".

One request is one review ({"text": ...}), drawn in turn from --texts (a parquet file with a `text`
column) or from a few fixed sentences. The client runs on the same machine as the server: on a small
CPU the two share its cores, which the figures include.
"""

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = ["A wonderful film. I loved every minute of it.", "Dull and far too long.\n\nThe acting was poor."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), in MB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            rss = next(
                line for line in Path(f"/proc/{current}/status").read_text().splitlines() if line.startswith("VmRSS")
            )
            total += int(rss.split()[1])
        except (OSError, StopIteration):
            pass
    return total / 1024


class Server:
    """`python serve.py ckpt_path=... <overrides>` on a free loopback port, in its own process group (its
    workers with it), its output in run_dir/serve.out; ready when /health answers. tests/test_serve.py
    starts its server with this too."""

    def __init__(self, checkpoint, *overrides: str, run_dir="/tmp/hdc_load_test", start_seconds: float = 120):
        self.log = Path(run_dir) / "serve.out"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        # A free port is only free when it was asked for: another process may take it before serve.py
        # binds it. Then serve.py stops at once saying so, and a new port is tried.
        for _ in range(5):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            command = [sys.executable, "serve.py", f"ckpt_path={checkpoint}", f"port={self.port}",
                       f"hydra.run.dir={run_dir}", *overrides]  # fmt: skip
            with open(self.log, "w") as out:  # a file, not a pipe nobody reads: a full pipe would stall it
                self.process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True)  # fmt: skip
            if self._ready(start_seconds):
                return
            self.stop()
            if "already in use" not in self.log.read_text():
                break
        raise RuntimeError(f"serve.py did not start:\n{self.log.read_text()[-3000:]}")

    def _ready(self, seconds: float) -> bool:
        """Whether /health answers within `seconds` (False at once if the server stops)."""
        deadline = time.monotonic() + seconds
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        return False

    def alive(self) -> bool:
        """Whether any process of the server's group still runs."""
        try:
            os.killpg(self.process.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, seconds: float = 30) -> bool:
        """SIGTERM, as a process manager stops it; True if the server and all its workers ended within
        `seconds`, else they are killed and False."""
        self.process.terminate()
        self.process.wait(timeout=seconds)
        deadline = time.monotonic() + seconds
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not self.alive():
            return True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return False


def load(url: str, texts: list[str], concurrency: int, requests: int, seconds: float) -> dict:
    """`requests` requests from `concurrency` clients (or as many as fit in `seconds`)."""
    latencies, failures, lock, next_index = [], 0, threading.Lock(), [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal failures
        with httpx.Client(timeout=60) as http:
            while time.monotonic() < deadline:
                with lock:
                    if next_index[0] >= requests:
                        return
                    index = next_index[0]
                    next_index[0] += 1
                began = time.perf_counter()
                answer = http.post(f"{url}/predict", json={"text": texts[index % len(texts)]})
                elapsed = time.perf_counter() - began
                with lock:
                    latencies.append(elapsed)
                    failures += answer.status_code != 200

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "failures": failures,
        "requests_per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def check(url: str, checkpoint, device: str, texts: list[str]) -> dict:
    """The server's answers to `texts` in one request against hdc.load(checkpoint, device).predict(texts)."""
    import hdc

    expected = [p.to_dict() for p in hdc.load(checkpoint, device=device).predict(texts)]
    answer = httpx.post(f"{url}/predict", json={"texts": texts, "attention": True}, timeout=60)
    answer.raise_for_status()
    got = answer.json()["predictions"]
    gap = max(
        abs(a["probabilities"][k] - b["probabilities"][k])
        for a, b in zip(got, expected, strict=True)
        for k in a["probabilities"]
    )
    return {"texts": len(texts), "identical": got == expected, "max_probability_gap": gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--texts", help="a parquet file with a `text` column (e.g. IMDB's test split)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--memory-requests", type=int, default=10_000)
    parser.add_argument("--device", default="cpu", help="serve.py's device= (cpu or cuda)")
    parser.add_argument("--out", default=str(ROOT / "results" / "serve_load.json"))
    args = parser.parse_args()
    texts = FALLBACK
    if args.texts:
        import pyarrow.parquet as pq

        texts = pq.read_table(args.texts, columns=["text"]).column("text").to_pylist()[:5000]
    report = {"checkpoint": args.checkpoint, "machine": platform.machine(), "device": args.device, "levels": []}
    report |= {"check": None, "memory": None}
    for max_batch_size in (8, 1):
        overrides = f"max_batch_size={max_batch_size}", f"device={args.device}", "hydra/job_logging=disabled"
        server = Server(args.checkpoint, *overrides)
        try:
            if report["check"] is None:
                report["check"] = check(server.url, args.checkpoint, args.device, texts[:16])
                print(json.dumps({"check": report["check"]}), flush=True)
            load(server.url, texts, 4, 20, 30)  # warm-up
            for concurrency in map(int, args.concurrency.split(",")):
                level = load(server.url, texts, concurrency, args.requests, args.seconds)
                report["levels"].append({"max_batch_size": max_batch_size, **level})
                print(json.dumps(report["levels"][-1]), flush=True)
            if max_batch_size == 8 and args.memory_requests:
                before = tree_rss_mb(server.process.pid)
                served = load(server.url, texts, 8, args.memory_requests, 10 * args.seconds)
                after = tree_rss_mb(server.process.pid)
                report["memory"] = {"requests": served["requests"], "rss_before_mb": before, "rss_after_mb": after}
                print(json.dumps(report["memory"]), flush=True)
        finally:
            if not server.stop():
                print("serve.py left processes running after SIGTERM (killed)", file=sys.stderr)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
