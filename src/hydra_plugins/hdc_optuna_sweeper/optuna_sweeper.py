"""A Hydra sweeper that drives Optuna's ask/tell: `python train.py -m hparams_search=imdb_optuna`.

Why not hydra-optuna-sweeper: its latest release, 1.3.0, pins optuna<3 (>=2.10), whose SQLite
storage fails under SQLAlchemy 2, and gives a job no handle on its trial, so it cannot prune. This
keeps its interface (`params` in Hydra's sweep syntax: choice, range, interval, tag(log, ...);
sampler, pruner, direction, n_trials) on a current Optuna, and adds:
- the study lives in `storage` (SQLite in the sweep folder by default; one sweeper per study at a
  time): starting the same command again continues the same study; a trial the interrupted sweep
  left running is marked failed and its parameters are tried again; a job that fails stops the
  sweep with its error (the study keeps the trial as failed);
- `n_trials` counts finished (complete or pruned) trials of the study, so a resumed sweep stops at
  the same total; each job's folder is named by its trial number, so no folder is reused;
- each job gets `callbacks.optuna_pruning.trial=<number>` and `.storage`, for hdc.training.sweep.OptunaPruning;
- the best trial is written as best.json and as a config, tuned/best.yaml, that train.py takes back:
  `python train.py -cd <sweep folder> ... +tuned=best`.
"""

import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hdc.training.sweep import PRUNED_AT_EPOCH

log = logging.getLogger(__name__)


def distribution(override: Override):
    """Hydra's sweep syntax as an Optuna distribution."""
    import optuna.distributions as d

    sweep, log_scale = override.value(), "log" in override.value().tags
    if isinstance(sweep, ChoiceSweep):
        return d.CategoricalDistribution(list(override.sweep_iterator(transformer=lambda x: x)))
    if isinstance(sweep, RangeSweep):
        return d.IntDistribution(int(sweep.start), int(sweep.stop) - 1, step=int(sweep.step or 1))
    if isinstance(sweep, IntervalSweep):
        low, high = sweep.start, sweep.end
        if isinstance(low, int) and isinstance(high, int):
            return d.IntDistribution(low, high, log=log_scale)
        return d.FloatDistribution(float(low), float(high), log=log_scale)
    raise ValueError(f"{override.input_line}: not a sweep Optuna can search (choice, range or interval)")


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        study_name: str,
        storage: str | None,
        direction: str,
        n_trials: int,
        n_jobs: int,
        sampler: Any,
        pruner: Any,
        params: dict[str, str] | None,
    ):
        self.study_name, self.storage, self.direction = study_name, storage, direction
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.sampler, self.pruner, self.params = sampler, pruner, params or {}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> list:
        import optuna
        from optuna.trial import TrialState

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        chosen = {o.get_key_element(): o for o in overrides}  # the command line's choice wins over `params`
        space = {key: distribution(o) for key, o in chosen.items() if o.is_sweep_override()}
        fixed = [o.input_line for o in chosen.values() if not o.is_sweep_override()]
        storage = self.storage or f"sqlite:///{sweep_dir.resolve()}/optuna.db"
        fixed.append(f"callbacks.optuna_pruning.storage='{storage}'")

        study = optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=self.sampler,  # Hydra instantiated them with the sweeper
            pruner=self.pruner,
            direction=self.direction,
            load_if_exists=True,
        )
        for stale in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            log.warning(f"Trial {stale.number} was left running by an interrupted sweep: failed, to be tried again")
            study.tell(stale.number, state=TrialState.FAIL)
            study.enqueue_trial(stale.params)

        returns = []
        while (finished := len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))) < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - finished))]
            jobs = [
                [*fixed, *(f"{k}={v}" for k, v in t.params.items()), f"callbacks.optuna_pruning.trial={t.number}"]
                for t in trials
            ]
            results = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
            for trial, result in zip(trials, results, strict=True):
                self._tell(study, trial, result)
            returns.append(results)
        self._write_best(study, sweep_dir, arguments, fixed)
        return returns

    @staticmethod
    def _tell(study, trial, result) -> None:
        from hydra.core.utils import JobStatus
        from optuna.trial import TrialState

        # what the job wrote to its trial (the ask()'ed trial keeps the attributes it had when asked)
        user_attrs = next(t.user_attrs for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        if result.status != JobStatus.COMPLETED:
            study.tell(trial, state=TrialState.FAIL)
            _ = result.return_value  # raises the job's error and stops the sweep, as Hydra's basic sweeper does
        if PRUNED_AT_EPOCH in user_attrs:
            study.tell(trial, state=TrialState.PRUNED)
        elif result.return_value is None or not math.isfinite(result.return_value):
            log.warning(f"Trial {trial.number} returned no objective ({result.return_value!r}): failed")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, result.return_value)

    def _write_best(self, study, sweep_dir: Path, arguments: list[str], fixed: list[str]) -> None:
        from optuna.trial import TrialState

        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.warning("No trial completed: no best parameters")
            return
        best = study.best_trial
        (sweep_dir / "tuned").mkdir(exist_ok=True)
        best_overrides = [*fixed, *(f"{k}={v}" for k, v in best.params.items())]
        best_config = self.hydra_context.config_loader.load_sweep_config(self.config, best_overrides)
        tuned = OmegaConf.create()
        for key, value in best.params.items():
            parts = key.split(".")
            in_list = next((i for i, part in enumerate(parts) if part.isdigit()), None)
            if in_list is not None:  # a merge cannot reach into a list: the best trial's whole list
                key = ".".join(parts[:in_list])
                value = OmegaConf.select(best_config, key)
            OmegaConf.update(tuned, key, value)
        (sweep_dir / "tuned" / "best.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(tuned))
        base = [a for a in arguments if not a.startswith(("hparams_search=", "hydra.sweeper."))]
        command = " ".join(["python train.py", f"-cd {sweep_dir}", *base, "+tuned=best"])
        record = {"trial": best.number, "value": best.value, "params": best.params, "command": command}
        (sweep_dir / "best.json").write_text(json.dumps(record, indent=2) + "\n")
        study.trials_dataframe().to_csv(sweep_dir / "trials.csv", index=False)
        log.info(f"Best trial {best.number}: {best.value} with {best.params}; train with it: {command}")
