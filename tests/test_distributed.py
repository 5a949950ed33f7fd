"""DDP through Lightning with 2 CPU processes (gloo), alone and inside a multirun, and the SLURM
launcher's configuration."""

import json
import subprocess
import sys

from tests.conftest import ROOT, compose, metrics


def test_ddp_ranks_share_each_epoch_once_and_each_job_writes_one_folder(tmp_path, data):
    sweep_dir = tmp_path / "ddp"
    two_processes = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    every_batch = ["trainer.limit_train_batches=null", "data.train_fraction=0.02", "min_optimizer_steps=null"]
    seen = ["+callbacks.seen._target_=tests.recorders.SeenDocuments", "+callbacks.seen.dirpath=${paths.output_dir}"]
    # the default recipe: its fitted wide term must not leave DDP waiting for gradients it never gets
    command = [sys.executable, "train.py", "-m", "recipe=default", "debug=fast", *data,
               f"hydra.sweep.dir={sweep_dir}", *two_processes, *every_batch, *seen, "seed=1,2"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]  # jobs after the first work too
    for run_dir in (sweep_dir / "0", sweep_dir / "1"):
        ranks = [json.loads((run_dir / f"seen_rank{rank}.json").read_text()) for rank in (0, 1)]
        assert len(ranks[0]["positions"]) > 0 and len(ranks[1]["positions"]) > 0
        assert sorted(ranks[0]["positions"] + ranks[1]["positions"]) == list(range(ranks[0]["split_size"]))
        assert 0 <= metrics(run_dir)["val/acc"] <= 1
        assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log", "train_ddp_process_1.log"]
        assert len(list(run_dir.glob("checkpoints/*.ckpt"))) >= 1
    assert not list(tmp_path.glob("**/multiruns")) and not list(ROOT.glob("outputs"))  # no stray output folders


def test_slurm_launcher_composes(tmp_path):
    """hydra/launcher=slurm with trainer=ddp: one SLURM task (and GPU) per device, resolved."""
    from omegaconf import OmegaConf

    overrides = ["recipe=paper_adamw", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"]
    cfg = compose("train.yaml", tmp_path, *overrides)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher["tasks_per_node"] == 4 and launcher["gpus_per_node"] == 4
