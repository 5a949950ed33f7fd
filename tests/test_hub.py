"""A trained model handed on as a Hugging Face model folder (export.py, hdc.classifier.hub): it predicts what its
checkpoint predicts, its card carries the run's metrics, the Hub's cache serves it offline, and a damaged
folder is one line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import hdc
from hdc.classifier.checkpoint import read_checkpoint
from hdc.cli.export import export
from hdc.errors import HdcError
from tests.conftest import ROOT, run_entry_point, train

TEXTS = ["A wonderful film. I loved every minute of it.", "Dull and far too long.\n\nThe acting was poor.", ""]


@pytest.fixture(scope="module")
def exported(data, tmp_path_factory):
    """`train.py debug=fast` with the default recipe (the HAN and its wide term), then `export.py` on its
    best checkpoint, as a user runs them: (checkpoint, folder)."""
    run_dir = tmp_path_factory.mktemp("run")
    train(run_dir, data, "recipe=default")
    checkpoint = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    folder = run_dir.parent / "exported"
    run_entry_point("export.py", run_dir / "export", f"ckpt_path={checkpoint}", f"out={folder}")
    return checkpoint, folder


def test_a_folder_predicts_what_its_checkpoint_predicts_explanations_included(exported):
    checkpoint, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                         "tokenizer.json"]  # fmt: skip
    expected = [p.to_dict() for p in hdc.load(checkpoint).predict(TEXTS)]
    assert [p.to_dict() for p in hdc.load(folder).predict(TEXTS)] == expected
    assert expected[0]["ngram_contributions"] and expected[0]["shares"]  # the wide term's part came along
    gradient = [p.to_dict() for p in hdc.load(folder, attribution="gradient").predict(TEXTS)]
    assert gradient == [p.to_dict() for p in hdc.load(checkpoint, attribution="gradient").predict(TEXTS)]


def test_the_config_and_card_say_what_the_model_is_and_how_it_scored(exported):
    checkpoint, folder = exported
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((checkpoint.parent.parent / "metrics.json").read_text())
    assert (
        config["model"]["label_names"] == ["neg", "pos"] and config["model"]["net"]["_target_"] == "hdc.models.han.HAN"
    )
    assert config["caps"] == {"max_sentences": 8, "max_words": 20} and "data_dir" not in config["data"]
    assert set(config["answer"]) == {"wide.mix", "thresholds", "part_thresholds"}
    assert config["metrics"]["test/acc"] == metrics["test/acc"]
    card = (folder / "README.md").read_text()
    header, body = card.split("---\n")[1:3]
    meta = yaml.safe_load(header)
    assert meta["library_name"] == "hdc" and meta["pipeline_tag"] == "text-classification"
    scores = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert scores["test/acc"] == round(metrics["test/acc"], 4)  # the Hub shows the run's test score
    assert f"| test/acc | {metrics['test/acc']:.4f} |" in body and "`neg`, `pos`" in body
    assert "## Limits" in body


def test_no_pickle_in_the_folder_and_compacted_tables_stay_small(exported):
    checkpoint, folder = exported
    tensors = load_file(folder / "model.safetensors")
    assert "wide.bag.embedding.weight.nonzero_rows" in tensors  # kept rows only, not a million buckets
    assert (folder / "model.safetensors").stat().st_size < checkpoint.stat().st_size * 1.1
    assert b"PK" not in (folder / "model.safetensors").read_bytes()[:2]  # not a torch zip (pickle) file


def test_the_command_line_tools_take_a_folder(exported, small_imdb, tmp_path):
    _, folder = exported
    result = run_entry_point("predict.py", tmp_path / "predict", f"ckpt_path={folder}", "input=-", stdin=TEXTS[0])
    assert json.loads(result.stdout)["label"] in ("neg", "pos")
    run_entry_point("eval.py", tmp_path / "eval", f"ckpt_path={folder}", f"data.path={small_imdb}")
    assert "test/acc" in json.loads((tmp_path / "eval" / "metrics.json").read_text())


def test_the_hub_cache_serves_a_model_offline(exported, tmp_path):
    """hdc.load("user/name") goes through huggingface_hub: with HF_HUB_OFFLINE=1 a model in its cache loads,
    and one that is not there is one line."""
    _, folder = exported
    repo = tmp_path / "hub" / "models--someone--reviews"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    code = (
        "import hdc\n"
        "print(hdc.load('someone/reviews').predict(['A wonderful film.'])[0].label)\n"
        "try:\n    hdc.load('someone/missing')\nexcept hdc.errors.HdcError as e:\n    print('ERROR', e)\n"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    label, error = result.stdout.splitlines()
    assert label in ("neg", "pos")
    assert error.startswith("ERROR someone/missing: not a readable hdc model") and "\n" not in error


def damaged(folder, tmp_path, name: str):
    copy = tmp_path / name
    shutil.copytree(folder, copy)
    return copy


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no weights", "model.safetensors is missing"),
        ("no tokenizer", "tokenizer.json is missing"),
        ("no config", "no config.json in it"),
        ("corrupt weights", "model.safetensors is not readable"),
        ("newer format", "an hdc model of format 99; this hdc reads format"),
        ("weights of another model", "weights that do not match the model's config"),
        ("rows beyond the table", "does not fit its shape"),
    ],
)
def test_a_damaged_folder_is_one_line(exported, tmp_path, damage, message):
    _, folder = exported
    copy = damaged(folder, tmp_path, "copy")
    config = json.loads((copy / "config.json").read_text())
    if damage == "no weights":
        (copy / "model.safetensors").unlink()
    elif damage == "no tokenizer":
        (copy / "tokenizer.json").unlink()
    elif damage == "no config":
        (copy / "config.json").unlink()
    elif damage == "corrupt weights":
        (copy / "model.safetensors").write_bytes(b"\x00" * 100)
    elif damage == "newer format":
        (copy / "config.json").write_text(json.dumps(config | {"format": 99}))
    else:
        tensors = load_file(copy / "model.safetensors")
        if damage == "weights of another model":
            tensors["net.embedding.weight"] = torch.zeros(3, 7)
        else:
            tensors["wide.bag.idf.nonzero_rows"][0] = 10**9
        save_file(tensors, copy / "model.safetensors")
    with pytest.raises(HdcError, match=message) as error:
        hdc.load(copy)
    assert "\n" not in str(error.value)
    if damage == "corrupt weights":  # and as a command line tool reports it
        result = run_entry_point("predict.py", tmp_path / "run", f"ckpt_path={copy}", "input=-", stdin="Fine.",
                                 check=False)  # fmt: skip
        assert result.returncode == 1 and "Traceback" not in result.stderr and message in result.stderr


def test_export_refuses_what_it_cannot_export_in_one_line(exported, tmp_path):
    checkpoint, folder = exported
    with pytest.raises(HdcError, match="is a model folder already"):
        export(folder, tmp_path / "out")
    result = run_entry_point("export.py", tmp_path / "run", f"ckpt_path={tmp_path}/none.ckpt", f"out={tmp_path}/out",
                             check=False)  # fmt: skip
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "no such checkpoint file or model folder" in said and "Traceback" not in said
    assert not (tmp_path / "out").exists()
    assert read_checkpoint(checkpoint)["hyper_parameters"] == read_checkpoint(folder)["hyper_parameters"]


def test_push_to_uploads_the_whole_folder_up_to_the_network_call(exported, tmp_path, monkeypatch):
    """export.py push_to=user/name: the repository is created (private unless told) and the folder uploaded
    in one commit, its card naming the Hub repository; the network call itself is replaced here."""
    import huggingface_hub.hub_mixin as mixin

    from hdc.cli.export import export_and_push
    from tests.conftest import compose

    calls = {}

    class Api:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=None, exist_ok=False):
            calls["repo"] = (repo_id, private)
            return type("Repo", (), {"repo_id": repo_id})()

        def upload_folder(self, repo_id, folder_path, **kwargs):
            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            calls["card"] = (Path(folder_path) / "README.md").read_text()
            return f"https://huggingface.co/{repo_id}/commit/0"

    monkeypatch.setattr(mixin, "HfApi", Api)
    checkpoint, _ = exported
    cfg = compose("export.yaml", tmp_path / "run", f"ckpt_path={checkpoint}", f"out={tmp_path / 'out'}",
                  "push_to=someone/reviews")  # fmt: skip
    export_and_push(cfg)
    assert calls["repo"] == ("someone/reviews", True)
    assert calls["files"] == ["README.md", "config.json", "model.safetensors", "tokenizer.json"]
    assert 'hdc.load("someone/reviews")' in calls["card"]
