"""Sweeps: a summary of every multirun, and Optuna pruning from inside a training job.

The search itself is Optuna's (driven by the Hydra sweeper in hydra_plugins/hdc_optuna_sweeper);
this module is what a job and its sweep folder need from it.
"""

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback as HydraCallback
from hydra.types import RunMode
from omegaconf import DictConfig

from hdc.paths import written_atomically

log = logging.getLogger(__name__)

PRUNED_AT_EPOCH = "pruned_at_epoch"  # the trial's user attribute by which a job tells the sweeper it was pruned


def write_summary(sweep_dir: Path, metric: str) -> Path:
    """<sweep_dir>/summary.csv: one row per job folder (job, overrides, the objective, status). The
    objective is the metric the jobs say they optimised (run.json: it follows the task, val/f1_micro_best
    for label sets), else `metric`, the sweep's."""
    jobs = [overrides.parent.parent for overrides in sorted(sweep_dir.glob("*/.hydra/overrides.yaml"))]
    jobs.sort(key=lambda job: (not job.name.isdigit(), int(job.name) if job.name.isdigit() else job.name))
    records = [json.loads(record.read_text()) for job in jobs if (record := job / "run.json").exists()]
    metric = next((record["optimized_metric"] for record in records if record.get("optimized_metric")), metric)
    rows = []
    for job in jobs:
        metrics_file = job / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        rows.append(
            {
                "job": job.name,
                "overrides": " ".join(yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []),
                metric: metrics.get(metric, ""),
                "status": "finished" if metrics_file.exists() else "failed or running",
            }
        )
    summary = sweep_dir / "summary.csv"
    with written_atomically(summary) as partial, open(partial, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["job", "overrides", metric, "status"])
        writer.writeheader()
        writer.writerows(rows)
    return summary


class SweepSummary(HydraCallback):
    """Rewrites the sweep's summary.csv as each job of a multirun ends, so an interrupted sweep has one too."""

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        hydra = HydraConfig.get()
        if hydra.mode == RunMode.MULTIRUN:
            write_summary(Path(hydra.sweep.dir), config.get("optimized_metric") or "objective")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        summary = write_summary(Path(config.hydra.sweep.dir), config.get("optimized_metric") or "objective")
        log.info(f"Sweep summary: {summary}")


class OptunaPruning(L.Callback):
    """Reports `monitor` to this job's Optuna trial after every validation, and stops training (after
    the epoch, keeping its metrics and checkpoints) when `pruner` (the sweeper's: a study does not
    store its pruner) says so. The sweeper passes the trial number; without one this does nothing.

    optuna-integration's PyTorchLightningPruningCallback raises TrialPruned instead, which loses the
    job's metrics.json; here the job ends normally and marks the trial, and the sweeper tells Optuna.
    """

    def __init__(self, storage: str, study_name: str, pruner, trial: int | None = None, monitor: str = "val/acc"):
        self.storage, self.study_name, self.pruner, self.trial_number = storage, study_name, pruner, trial
        self.monitor = monitor
        self._trial = None

    def _trial_of_this_job(self):
        import optuna

        if self._trial is None:
            storage = optuna.storages.RDBStorage(self.storage)  # Optuna's public storage API, no private fields
            study_id = storage.get_study_id_from_name(self.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, self.trial_number)
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=self.pruner)
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.trial_number is None or trainer.sanity_checking:
            return
        value = float(trainer.callback_metrics[self.monitor])
        prune = False
        if trainer.is_global_zero and math.isfinite(value):
            trial = self._trial_of_this_job()
            trial.report(value, trainer.current_epoch)
            prune = trial.should_prune()
            if prune:
                trial.set_user_attr(PRUNED_AT_EPOCH, trainer.current_epoch)
        if trainer.strategy.broadcast(prune, src=0):
            log.info(f"Optuna trial {self.trial_number} pruned after epoch {trainer.current_epoch} ({value=:.4f})")
            trainer.should_stop = True
