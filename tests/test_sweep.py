"""Sweeps on real engines: Hydra multirun (a folder and metrics.json per job, a summary), the Optuna
sweeper (resumable study, pruning, best parameters that train.py takes back) and W&B runs per job."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from omegaconf import OmegaConf
from optuna.trial import TrialState

from hdc.training.sweep import write_summary
from tests.conftest import ROOT, compose, metrics

TINY = ["recipe=paper_adamw", "debug=fast", "logger=none"]


def multirun(sweep_dir, data, *overrides, env=None) -> list[str]:
    return [sys.executable, "train.py", "-m", *TINY, *data, f"hydra.sweep.dir={sweep_dir}", *overrides]


def summary(sweep_dir) -> list[dict]:
    with open(sweep_dir / "summary.csv") as file:
        return list(csv.DictReader(file))


def test_grid_multirun_gives_each_job_a_folder_metrics_and_its_own_wandb_run(tmp_path, data):
    sweep_dir = tmp_path / "grid"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    grid = ["model.optimizer.lr=0.01,0.1", "seed=1,2", "logger=wandb", "test=false"]
    result = subprocess.run(multirun(sweep_dir, data, *grid), cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary(sweep_dir)
    assert [row["job"] for row in rows] == ["0", "1", "2", "3"]
    assert {row["overrides"].split("model.optimizer.lr=")[1].split()[0] for row in rows} == {"0.01", "0.1"}
    for row in rows:
        assert row["status"] == "finished"
        assert float(row["val/acc_best"]) == metrics(sweep_dir / row["job"])["val/acc_best"]
    runs = list(sweep_dir.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 4 and len({run.name for run in runs}) == 4  # four runs, four ids
    for run in runs:  # grouped by the sweep, named by the job (raw strings of the offline run record)
        job = run.parent.parent.parent.name
        assert b"grid" in run.read_bytes() and f"grid-{job}".encode() in run.read_bytes()


def optuna_sweep(sweep_dir, data, *overrides) -> list[str]:
    return multirun(sweep_dir, data, "hparams_search=imdb_optuna", "hydra.sweeper.study_name=test", *overrides)


def trials(sweep_dir):
    return optuna.load_study(study_name="test", storage=f"sqlite:///{sweep_dir}/optuna.db").get_trials()


def first_state(sweep_dir) -> TrialState | None:
    try:
        return trials(sweep_dir)[0].state
    except (KeyError, IndexError, optuna.exceptions.StorageInternalError):  # no study or trial yet, or a busy db
        return None


def test_optuna_sweep_killed_after_its_first_trial_continues_the_same_study(tmp_path, data):
    sweep_dir = tmp_path / "optuna"
    command = optuna_sweep(sweep_dir, data, "hydra.sweeper.n_trials=3")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 1800  # a guard against a hung sweep, not a timing: slow machines pass
    # The study records a trial as complete a moment after its metrics.json is written: wait for the
    # study itself, or a kill between the two leaves trial 0 running and the test racing the sweeper.
    while not ((sweep_dir / "0" / "metrics.json").exists() and first_state(sweep_dir) == TrialState.COMPLETE):
        assert process.poll() is None and time.monotonic() < deadline, "the first trial did not finish"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert [t.state for t in trials(sweep_dir)][0] == TrialState.COMPLETE  # the kill left the finished trial whole

    again = optuna_sweep(sweep_dir, data, "hydra.sweeper.n_trials=2")
    result = subprocess.run(again, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    study = trials(sweep_dir)
    numbers = [t.number for t in study]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 2  # one study, no number twice
    assert sum(t.state == TrialState.COMPLETE for t in study) == 2
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in study)  # a killed trial: failed, retried
    finished = {row["job"] for row in summary(sweep_dir) if row["status"] == "finished"}
    assert finished == {str(t.number) for t in study if t.state == TrialState.COMPLETE}

    best = min((t for t in study if t.state == TrialState.COMPLETE), key=lambda t: -t.value)
    assert (sweep_dir / "best.json").exists() and (sweep_dir / "trials.csv").exists()
    composed = subprocess.run(
        [sys.executable, "train.py", "-cd", str(sweep_dir), *TINY, "+tuned=best", "--cfg", "job"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert composed.returncode == 0, composed.stderr[-2000:]
    assert f"lr: {best.params['model.optimizer.lr']}" in composed.stdout
    levels = yaml.safe_load(composed.stdout)["model"]["net"]["levels"]  # values inside a list come back too
    tuned = [best.params[f"model.net.levels.{i}.hidden_size"] for i in (0, 1)]
    assert [level["hidden_size"] for level in levels] == tuned
    assert [level["unit"] for level in levels] == ["sentence", "document"]


def test_optuna_prunes_a_trial_from_inside_training_and_keeps_its_metrics(tmp_path, data):
    sweep_dir = tmp_path / "pruned"
    always_prune = [  # a trial below accuracy 2 is pruned: every trial, after its first epoch
        "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
        "~hydra.sweeper.pruner.n_startup_trials",
        "~hydra.sweeper.pruner.n_warmup_steps",
        "+hydra.sweeper.pruner.lower=2.0",
    ]
    run = optuna_sweep(sweep_dir, data, "hydra.sweeper.n_trials=1", "trainer.max_epochs=3", *always_prune)
    result = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    [trial] = trials(sweep_dir)
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]  # training stopped after its first epoch (of 3)
    assert metrics(sweep_dir / "0")["val/acc"] == trial.intermediate_values[0]  # and its metrics were kept
    assert "No trial completed" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("typo", "message"),
    [
        ("hydra.sweeper.n_trial=2", "Could not override 'hydra.sweeper.n_trial'"),
        ("model.optimizer.lr=choice()", "Error parsing override 'model.optimizer.lr=choice()'"),
    ],
)
def test_a_sweep_with_a_bad_override_fails_before_training(tmp_path, data, typo, message):
    sweep_dir = tmp_path / "sweep"
    result = subprocess.run(optuna_sweep(sweep_dir, data, typo), cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and any(line.startswith(message) for line in result.stderr.splitlines()[:3])
    assert "Traceback" not in result.stderr and not sweep_dir.exists()  # no study, no job started


def test_wandb_sweep_parameters_are_train_py_overrides(tmp_path):
    sweep = yaml.safe_load((ROOT / "scripts" / "wandb_sweep.yaml").read_text())
    assert sweep["program"] == "train.py" and "${args_no_hyphens}" in sweep["command"]
    values = {key: spec["values"][-1] if "values" in spec else spec["max"] for key, spec in sweep["parameters"].items()}
    fixed = [arg for arg in sweep["command"] if not arg.startswith("${")]
    overrides = [f"{key}={value}" for key, value in values.items()]
    config = OmegaConf.to_container(compose("train.yaml", tmp_path, *fixed, *overrides), resolve=True)
    for key, value in values.items():
        node = config
        for part in key.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert node == value
    assert config["optimized_metric"] == sweep["metric"]["name"]


def test_the_summary_reads_the_metric_the_jobs_optimised(tmp_path):
    """A multi-label sweep's jobs optimise val/f1_micro_best (run.json says so), not the sweep's val/acc_best."""
    for job, value in (("0", 0.5), ("1", None)):  # job 1 failed before writing its metrics
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- seed={job}\n")
        (tmp_path / job / "run.json").write_text(json.dumps({"optimized_metric": "val/f1_micro_best"}))
        if value is not None:
            (tmp_path / job / "metrics.json").write_text(json.dumps({"val/f1_micro_best": value}))
    rows = summary(write_summary(tmp_path, "val/acc_best").parent)
    assert [(row["job"], row["val/f1_micro_best"], row["status"]) for row in rows] == [
        ("0", "0.5", "finished"),
        ("1", "", "failed or running"),
    ]
