"""train.py end to end through Hydra, as a user runs it (on real IMDB documents)."""

import json
import logging
import os

import pytest
import torch
from hydra.errors import ConfigCompositionException

import hdc
from hdc.classifier.checkpoint import load_classifier
from hdc.data.batching import batch_of
from hdc.errors import HdcError
from tests.conftest import compose_train, evaluate_in_process, metrics, train, train_in_process


def test_debug_run_writes_checkpoints_metrics_tokenizer_and_config(debug_run):
    written = (
        "checkpoints/last.ckpt",
        "tokenizer.json",
        ".hydra/config.yaml",
        "csv/metrics.csv",
        "attention/epoch_0.html",
    )
    for path in written:
        assert (debug_run / path).is_file(), path
    assert list((debug_run / "checkpoints").glob("epoch_*.ckpt"))
    values = metrics(debug_run)
    for name in ("val/acc", "val/acc_best", "val/f1", "test/acc", "test/f1", "test/loss", "train/loss"):
        assert 0 <= values[name] < 10, name
    assert values["val/acc_best"] == values["val/acc"]  # one epoch


def test_a_checkpoint_alone_rebuilds_model_tokenizer_and_labels(debug_run):
    path = debug_run / "checkpoints" / "last.ckpt"
    torch.load(path, weights_only=True)  # plain data: loads without trusting pickled code
    model = load_classifier(path)
    assert model.label_names == ["neg", "pos"]
    saved_vocab = json.loads((debug_run / "tokenizer.json").read_text())["model"]["vocab"]
    assert model.encoder.tokenizer.get_vocab() == saved_vocab
    assert (model.encoder.max_sentences, model.encoder.max_words) == (8, 20)  # the debug caps
    with torch.no_grad():
        logits = model(_encode(model, ["A wonderful film. I loved it.", ""])).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def _encode(model, texts):
    return batch_of(model.encoder.encode(texts), [0] * len(texts))


def test_same_seed_gives_the_same_metrics(debug_run, tmp_path, data):
    """The same config trained again (here in this process) repeats the command-line run's numbers."""
    assert train_in_process(tmp_path, *data) == metrics(debug_run)


def test_resume_continues_from_the_last_checkpoint(tmp_path, data):
    train_in_process(tmp_path / "first", *data, "~model/scheduler", "test=false")
    last = f"ckpt_path={tmp_path}/first/checkpoints/last.ckpt"
    train_in_process(tmp_path / "resumed", *data, last, "~model/scheduler", "trainer.max_epochs=2")
    resumed = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 2 and resumed["global_step"] == 10  # saved as training ended: 2 epochs of 5 batches
    assert "val/acc_best" in metrics(tmp_path / "resumed")


def test_a_one_cycle_schedule_resumed_into_a_longer_run_is_one_line(debug_run, tmp_path, data):
    with pytest.raises(HdcError, match="one-cycle schedule was planned for 5 steps and this run takes 10"):
        train_in_process(tmp_path, *data, f"ckpt_path={debug_run}/checkpoints/last.ckpt", "trainer.max_epochs=2")


def test_a_finished_run_keeps_its_final_state_in_last_ckpt(tmp_path, data):
    """Also when its last epoch was not its best (here nothing is learnt: lr 0, the same val/acc twice)."""
    train_in_process(tmp_path, *data, "trainer.max_epochs=2", "model.optimizer.lr=0.0", "test=false")
    checkpoints = tmp_path / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 10  # 2 epochs of 5 batches
    assert sorted(path.name for path in checkpoints.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]


def test_wandb_logs_offline_without_an_api_key(tmp_path, data):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    result = train(tmp_path, data, "logger=wandb", env=env)
    assert "logging offline" in result.stdout + result.stderr
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    media = tmp_path / "wandb" / "latest-run" / "files" / "media"
    assert list(media.glob("html/val/attention_*.html")) and list(media.glob("images/val/confusion_matrix_*.png"))
    assert (tmp_path / "csv" / "metrics.csv").is_file()  # the CSV log stays


def test_errors_are_one_line(tmp_path, data):
    """train.py's errors as a user sees them: one line naming the problem, exit status 1, no traceback."""
    result = train(tmp_path, data, "data.text_column=review", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    [line] = [line for line in (result.stdout + result.stderr).splitlines() if "[ERROR]" in line]
    assert line.endswith("text column 'review' not in the dataset (columns: ['id', 'text', 'label', 'rating']); "
                         "set data.text_column")  # fmt: skip


def test_config_typo_is_a_clear_error(tmp_path):
    """A key that does not exist: Hydra's one line (train.py exits with it, status 1, no traceback)."""
    with pytest.raises(ConfigCompositionException, match="Could not override 'data.max_sentense'"):
        compose_train(tmp_path, "data.max_sentense=10")


@pytest.mark.parametrize(
    ("model", "floor", "attention"),
    [("model=han", 0.95, 0.9), ("model/net=han_3level", 0.95, None), ("model=fasttext", 0.7, None),
     ("recipe=default", 0.95, None)],
)  # fmt: skip
def test_learns_which_sentence_decides_in_a_synthetic_corpus(tmp_path, synthetic, model, floor, attention):
    """The synthetic corpus's label is one cue word in one sentence of five or so: each model finds it in
    two epochs (fastText, a bag of 25 words of which one counts, less surely), and the HAN's sentence
    attention points at that sentence. The fast tier's version of the test below."""
    import pyarrow.parquet as pq

    cache = f"paths.cache_dir={tmp_path / 'cache'}"
    overrides = [f"data.path={synthetic}", cache, model, "trainer.max_epochs=2", "min_optimizer_steps=null"]
    result = train_in_process(tmp_path, *overrides, "data.batch_size=32", "logger=none", debug=None)
    assert result["val/acc_best"] >= floor and result["test/acc"] >= floor, result
    if attention:
        test = pq.read_table(synthetic / "test.parquet").to_pylist()
        predictions = hdc.load(tmp_path / "checkpoints" / "last.ckpt").predict([d["text"] for d in test])
        weights = [[sentence.weight for sentence in p.sentences] for p in predictions]
        found = [w.index(max(w)) == d["cue_sentence"] for w, d in zip(weights, test, strict=True)]
        assert sum(found) / len(found) >= attention


@pytest.mark.slow
@pytest.mark.parametrize("model", ["model=han", "model/net=han_3level", "model=fasttext", "recipe=default"])
def test_learns_sentiment_from_a_few_thousand_real_reviews(tmp_path, imdb_data, model):
    """~4,500 IMDB training reviews, 2 epochs, caps 20 x 40, one-cycle AdamW: the HAN, the 3-level HAN
    (words, sentences, paragraphs), the fastText baseline and the default recipe (the HAN with its wide
    term) each reach 0.80 validation accuracy, with a margin to spare."""
    overrides = ["data.train_fraction=0.2", "data.max_sentences=20", "data.max_words=40", "trainer.max_epochs=2"]
    overrides += [model, "model/scheduler=onecycle", "model.optimizer.lr=0.004", "min_optimizer_steps=null"]
    result = train_in_process(tmp_path, *imdb_data, *overrides, "test=false", debug=None)
    assert result["val/acc_best"] >= 0.80, result
    # ... and the checkpoint, used as a user would, reads sentiment
    reviews = ["This movie was wonderful. I loved it.", "A dull, boring film. The worst acting I have seen."]
    predictions = hdc.load(tmp_path / "checkpoints" / "last.ckpt").predict(reviews)
    assert [p.label for p in predictions] == ["pos", "neg"], [p.probabilities for p in predictions]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.text_column=review", "text column 'review' not in the dataset"),
        ("ckpt_path=missing.ckpt", "ckpt_path=missing.ckpt: no such checkpoint file"),
        ("model.net.levels.1.unit=sentence", "model: levels: units ['sentence', 'sentence'] must each be one of"),
        ("model.net.levels.0.pooling=median", "model: levels[0]: pooling 'median' is not one of"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path, data, override, message):
    with pytest.raises(HdcError) as error:
        train_in_process(tmp_path, *data, override)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_scheduler_config_says_when_it_steps(tmp_path):
    """model/scheduler=plateau: stepped after each epoch on val/acc; a bare scheduler factory (no
    interval, no monitor: Lightning could not know when to step it) is one line."""
    from functools import partial

    from hydra.utils import instantiate

    cfg = compose_train(tmp_path, "model/scheduler=plateau")
    model = instantiate(cfg.model, vocab_size=50, label_names=["neg", "pos"], _convert_="all")
    configured = model.configure_optimizers()
    scheduler = configured["lr_scheduler"]
    assert isinstance(scheduler["scheduler"], torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert scheduler["scheduler"].optimizer is configured["optimizer"] and scheduler["scheduler"].mode == "max"
    assert {key: scheduler[key] for key in ("interval", "monitor")} == {"interval": "epoch", "monitor": "val/acc"}
    model.scheduler = partial(torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(HdcError, match="model.scheduler is Lightning's scheduler config"):
        model.configure_optimizers()


def test_onecycle_schedule_steps_every_batch(tmp_path, data):
    train_in_process(tmp_path, *data, "model/scheduler=onecycle", "trainer.limit_train_batches=20", "test=false")
    header, *rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    column = header.split(",").index("lr-AdamW")
    rates = [float(row.split(",")[column]) for row in rows if row.split(",")[column]]
    peak = rates.index(max(rates))
    assert len(rates) == 20 and 0 < peak < 19  # warm-up, then annealing, one value per batch
    assert max(rates) == pytest.approx(0.004, rel=0.05) and rates[-1] < rates[peak] / 10


def test_a_checkpoint_of_another_format_is_one_line_wherever_it_is_read(debug_run, tmp_path, data):
    """hdc reads one checkpoint format: an older one is refused by hdc.load, eval.py and a resumed run."""
    checkpoint = torch.load(debug_run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hdc"]["format"] = 1
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    message = "an hdc checkpoint of format 1; this hdc reads format 4: train it again"
    with pytest.raises(HdcError, match=message):
        hdc.load(old)
    with pytest.raises(HdcError, match=message):
        evaluate_in_process(tmp_path / "eval", f"ckpt_path={old}")
    with pytest.raises(HdcError, match=f"ckpt_path={old}: {message}"):
        train_in_process(tmp_path / "resumed", *data, f"ckpt_path={old}")
    best = next((debug_run / "checkpoints").glob("epoch_*.ckpt"))  # the best epoch's weights, no training state
    assert "optimizer_states" not in torch.load(best, weights_only=True)
    with pytest.raises(HdcError, match="holds the model's weights only .* resume from the run's checkpoints/last.ckpt"):
        train_in_process(tmp_path / "from_best", *data, f"ckpt_path={best}")


def test_a_folder_with_string_labels_and_no_names_trains_and_its_checkpoint_names_them(small_imdb, tmp_path):
    """data.path=DIR and nothing else about labels: names from the training split, kept in the checkpoint
    for prediction and for evaluation (which matches the test split's labels to them by value)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import hdc

    folder = tmp_path / "mine"
    folder.mkdir()
    for split in ("train", "test"):
        table = pq.read_table(small_imdb / f"{split}.parquet", columns=["text", "label"]).to_pydict()
        names = [["negative", "positive"][label] for label in table["label"]]  # plain strings, no ClassLabel
        pq.write_table(pa.table({"text": table["text"], "label": names}), folder / f"{split}.parquet")
    run, cache = tmp_path / "run", tmp_path / "cache"
    train_in_process(run, f"data.path={folder}", f"paths.cache_dir={cache}", "logger=none")
    checkpoint = next((run / "checkpoints").glob("epoch_*.ckpt"))
    [prediction] = hdc.load(checkpoint).predict(["A wonderful film."])
    assert set(prediction.probabilities) == {"negative", "positive"}

    result = evaluate_in_process(tmp_path / "eval", f"ckpt_path={checkpoint}", f"paths.cache_dir={cache}")
    assert result["test/documents"] == 400


def test_an_experiments_wide_term_options_leave_a_model_without_one_alone(tmp_path, data, caplog):
    """python train.py experiment=imdb model=fasttext: the experiment's model.wide.naive_bayes lands on a
    model with no wide term (model.wide=null); it trains, and the log says the options were not used."""
    with caplog.at_level(logging.INFO, logger="hdc.training.build"):
        metrics = train_in_process(tmp_path, "experiment=imdb", *data, "data.unlabelled=null", "model=fasttext")
    assert "model.wide: {'naive_bayes': True} are options of a wide term, and this model has none" in caplog.text
    assert "test/acc" in metrics and "test/acc_wide" not in metrics


def test_a_run_stopped_by_steps_before_its_first_validation_ends_normally(tmp_path, data):
    """python train.py experiment=imdb +trainer.max_steps=N, a quick look: early stopping waits for a
    validation instead of failing on the missing val/acc; the run keeps its checkpoint and metrics."""
    metrics = train_in_process(tmp_path, *data, "+trainer.max_steps=3")
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    assert "train/loss" in metrics and "test/acc" in json.loads((tmp_path / "metrics.json").read_text())


def test_a_small_corpus_trains_at_least_the_floors_steps_validated_as_often(tmp_path, data):
    """About 225 documents, 4 batches an epoch, 2 epochs: min_optimizer_steps=24 makes it 6 epochs, validated
    after the 3rd and 6th (hdc.cli.train.scale_epochs; the default recipe sets a floor)."""
    overrides = [
        "data.train_fraction=0.25",
        "trainer.max_epochs=2",
        "min_optimizer_steps=24",
        "test=false",
        "data.max_sentences=8",
        "data.max_words=20",
    ]
    train_in_process(tmp_path, *data, *overrides, "trainer.limit_val_batches=2", debug=None)
    header, *rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    columns = header.split(",")
    validated = [row.split(",") for row in rows if row.split(",")[columns.index("val/acc")]]
    assert [int(row[columns.index("epoch")]) for row in validated] == [2, 5]
    assert int(validated[-1][columns.index("step")]) + 1 >= 24


def test_monitors_are_named_once_in_config_and_follow_the_tasks_metric(tmp_path):
    """train.py sets `metric` from the data; checkpoints follow the answer, early stopping the net's own
    score (the same as the answer's without a wide term), a sweep the answer's best; a user's monitor stays."""

    def monitors(cfg):
        callbacks = cfg.callbacks
        return (callbacks.model_checkpoint.monitor, callbacks.early_stopping.monitor, cfg.model.scheduler.monitor,
                cfg.optimized_metric)  # fmt: skip

    cfg = compose_train(tmp_path, "model/scheduler=plateau", debug=None)
    assert monitors(cfg) == ("val/acc", "val/acc_net", "val/acc", "val/acc_best")
    cfg.metric = "f1_micro"
    assert monitors(cfg) == ("val/f1_micro", "val/f1_micro_net", "val/f1_micro", "val/f1_micro_best")
    cfg = compose_train(tmp_path, "callbacks.early_stopping.monitor=val/loss", debug=None)
    assert cfg.callbacks.early_stopping.monitor == "val/loss"


def test_a_test_split_with_a_new_label_stops_the_run_before_training_and_a_missing_one_is_said(tmp_path, caplog):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hdc.errors import DataError

    folder = tmp_path / "mine"
    folder.mkdir()
    rows = {"text": [f"Review number {i}. It was {'good' if i % 2 else 'bad'}." for i in range(60)],
            "label": ["good" if i % 2 else "bad" for i in range(60)]}  # fmt: skip
    pq.write_table(pa.table(rows), folder / "train.parquet")
    pq.write_table(pa.table({"text": ["Fine.", "Odd."], "label": ["good", "meh"]}), folder / "test.parquet")
    common = [f"data.path={folder}", f"paths.cache_dir={tmp_path / 'cache'}", "data.min_frequency=1", "logger=none"]
    with pytest.raises(DataError, match=r"Unknown labels in split 'test', column 'label': 'meh' \(1 documents\)"):
        train_in_process(tmp_path / "run", *common)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing trained
    (folder / "test.parquet").unlink()
    with caplog.at_level(logging.WARNING, logger="hdc.cli.train"):
        train_in_process(tmp_path / "untested", *common)
    assert f"{folder} has no 'test' split: the run will not be tested" in caplog.text
