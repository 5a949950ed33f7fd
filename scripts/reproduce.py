"""Run a named list of experiments (and seeds) one after another, then write a results table.

    python scripts/reproduce.py imdb [--results results/RESULTS.md] [--runs-dir logs/reproduce] [--table-only]
                                     [--only SLUG[,SLUG]]

The list is scripts/reproduce/<name>.yaml: `seeds`, and `runs`, each with a `name`, a `dataset`, the
paper's number where one exists (`paper`), the train.py `overrides`, and its own `seeds` if they
differ. Each (run, seed) trains in its own folder under --runs-dir; one that already has a
metrics.json is not run again, so an interrupted reproduction resumes where it stopped. A run whose
dataset cannot be reached (no hub, no local copy) is listed as not run, with the reason. The table
gets one row per run: test accuracy, mean and spread over seeds, beside the paper's number, the
training time, the hardware and the command.
With --only, just the named runs train and their rows are rewritten; every other row keeps its line
from the existing table (run records live in --runs-dir, which a fresh checkout does not have).
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]


def run_one(overrides: list[str], run_dir: Path) -> dict:
    """Train once (unless done before); returns the run's record, or why it could not run."""
    record_path = run_dir / "reproduce.json"
    if record_path.exists() and (run_dir / "metrics.json").exists():
        return json.loads(record_path.read_text())
    command = [sys.executable, "train.py", *overrides, f"hydra.run.dir={run_dir}"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    record = {"command": " ".join(["python", "train.py", *overrides]), "seconds": time.perf_counter() - start}
    if result.returncode != 0:
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line or "Error" in line]
        record["not_run"] = (lines[-1] if lines else result.stderr.strip().splitlines()[-1])[-300:]
        return record  # not saved: tried again next time
    record |= {"metrics": json.loads((run_dir / "metrics.json").read_text()), "hardware": hardware()}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def hardware() -> str:
    import torch  # here, not at the top: a --table-only rewrite needs no torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU, {torch.get_num_threads()} threads ({platform.machine()})"


# A list's `metrics` ({metric: column title}); single-label lists report test accuracy.
METRICS = {"test/acc": "test accuracy % (mean ± sd over seeds)"}


def row(run: dict, records: list[dict], seeds: list[int], metrics: dict[str, str]) -> str:
    done = [r for r in records if "metrics" in r]
    paper = f"{run.paper}" if run.get("paper") is not None else "-"
    command = f"`{records[0]['command']}` (seeds {', '.join(map(str, seeds))})"
    if not done:
        missing = " | ".join(["not run: " + records[0].get("not_run", "?")] + ["-"] * (len(metrics) - 1))
        return f"| {run.name} | {run.dataset} | {missing} | {paper} | - | - | {command} |"
    cells = []
    for metric in metrics:
        values = [100 * r["metrics"][metric] for r in done if metric in r["metrics"]]
        if not values:  # a metric this run does not log (the HAN part alone of a run without one)
            cells.append("-")
            continue
        spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        cells.append(f"{statistics.mean(values):.2f}{spread} ({len(done)} of {len(records)} seeds)")
    minutes = statistics.mean(r["seconds"] for r in done) / 60
    return (
        f"| {run.name} | {run.dataset} | {' | '.join(cells)} | {paper} | {minutes:.1f} min | {done[0]['hardware']} "
        f"| {command} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a list in scripts/reproduce/")
    parser.add_argument("--results", default=str(ROOT / "results" / "RESULTS.md"))
    parser.add_argument("--runs-dir", default=str(ROOT / "logs" / "reproduce"))
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from finished runs; train nothing")
    parser.add_argument("--only", type=lambda v: v.split(","), metavar="SLUG[,SLUG]", help="run just these rows")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every run")
    args = parser.parse_intermixed_args()
    spec = OmegaConf.load(Path(__file__).parent / "reproduce" / f"{args.name}.yaml")
    unknown = set(args.only or []) - {run.slug for run in spec.runs}
    if unknown:
        parser.error(
            f"--only: no run {', '.join(sorted(unknown))} in {args.name} ({', '.join(r.slug for r in spec.runs)})"
        )

    metrics = dict(spec.get("metrics") or METRICS)
    existing = existing_rows(Path(args.results), len(metrics)) if args.only else {}
    pending = " | ".join(["pending"] + ["-"] * (len(metrics) - 1))
    rows = {
        run.slug: existing.get(
            run.name, f"| {run.name} | {run.dataset} | {pending} | {run.get('paper') or '-'} | - | - | - |"
        )
        for run in spec.runs
    }
    for run in (run for run in spec.runs if not args.only or run.slug in args.only):
        records = []
        for seed in run.get("seeds", spec.seeds):
            run_dir = Path(args.runs_dir) / args.name / f"{run.slug}_seed{seed}"
            own = {override.split("=")[0] for override in run.overrides}  # a run's own settings win
            overrides = [*run.overrides, f"seed={seed}", *(o for o in args.overrides if o.split("=")[0] not in own)]
            if args.table_only and not (run_dir / "reproduce.json").exists():
                records.append({"command": " ".join(["python", "train.py", *overrides])})  # not run yet
                continue
            print(f"{run.name}, seed {seed}: {run_dir}", flush=True)
            records.append(run_one(overrides, run_dir))
        if any("metrics" in r or "not_run" in r for r in records):  # else still pending
            rows[run.slug] = row(run, records, list(run.get("seeds", spec.seeds)), metrics)
        write_table(Path(args.results), args.name, spec.get("description", ""), list(rows.values()), metrics)
    print(Path(args.results).read_text())


def existing_rows(path: Path, metrics: int = 1) -> dict[str, str]:
    """The table's rows in an existing results file, by run name; a row written before the list gained
    metric columns gets "-" in the new ones."""
    rows = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        cells = line.split("|")[1:-1]
        if line.startswith("| ") and 7 <= len(cells) <= 6 + metrics:
            cells[-4:-4] = [" - "] * (6 + metrics - len(cells))
            rows[cells[0].strip()] = "|" + "|".join(cells) + "|"
    return rows


def write_table(path: Path, name: str, description: str, rows: list[str], metrics: dict[str, str] = METRICS) -> None:
    """The results so far (runs not reached yet are "pending"), rewritten after every run."""
    header = f"| experiment | dataset | {' | '.join(metrics.values())} | paper % | train time | hardware | command |"
    table = "\n".join([header, "|---" * (6 + len(metrics)) + "|", *rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Results: {name}\n\n{description.strip()}\n\n{table}\n")


if __name__ == "__main__":
    main()
