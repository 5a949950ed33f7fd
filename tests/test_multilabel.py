"""Several labels per document: a label column of lists (or of delimited strings) trains, evaluates,
predicts and serves a multi-label model; bad label columns are one line each."""

import json
import random
import re

import datasets
import pytest
import torch

import hdc
from hdc.classifier.task import THRESHOLDS, Task, choose_thresholds
from hdc.data.batching import batch_of
from hdc.data.datamodule import HFDataModule
from hdc.errors import DataError
from hdc.inference.predictor import Predictor
from hdc.prediction import Prediction
from tests.conftest import evaluate_in_process, train_in_process

TOPICS = {
    "markets": ["Stocks fell sharply today.", "The index rallied on earnings.", "Investors sold bonds."],
    "energy": ["Oil prices rose again.", "The pipeline opened this week.", "Gas supply is tight."],
    "sports": ["The team won the final.", "A striker scored twice.", "The coach was fired."],
    "weather": ["Heavy rain is expected.", "A storm hit the coast.", "Temperatures will drop."],
}
FILLER = ["Officials said more details would follow.", "The report was published on Monday.", "Analysts were divided."]


def digest(rng: random.Random) -> tuple[str, list[str]]:
    """A news digest: two sentences on each of its 0-3 topics among filler; labelled with its topics."""
    labels = sorted(rng.sample(list(TOPICS), rng.choice([0, 1, 1, 2, 2, 3])))
    sentences = [rng.choice(TOPICS[topic]) for topic in labels for _ in range(2)] + rng.sample(FILLER, 2)
    rng.shuffle(sentences)
    return " ".join(sentences), labels


def write_splits(folder, sizes=None, label=lambda labels: labels, features=None):
    """Digest splits in `folder`; `label` turns each document's topic list into what the column holds."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (sizes or {"train": 1200, "test": 300}).items():
        rows = [digest(rng) for _ in range(size)]
        table = datasets.Dataset.from_dict({"text": [t for t, _ in rows], "labels": [label(ls) for _, ls in rows]},
                                           features=features)  # fmt: skip
        table.to_parquet(folder / f"{split}.parquet")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The default recipe (the HAN with its wide term) on a list label column, no names given."""
    folder = write_splits(tmp_path_factory.mktemp("digests"))
    run_dir, cache = tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("cache")
    common = [f"data.path={folder}", "data.label_column=labels", f"paths.cache_dir={cache}", "logger=none"]
    metrics = train_in_process(
        run_dir, *common, "recipe=default", "trainer.max_epochs=2", "trainer.limit_test_batches=null"
    )
    return run_dir, cache, metrics


def test_a_list_label_column_trains_a_multi_label_model_that_follows_micro_f1(run):
    run_dir, _, metrics = run
    assert metrics["test/f1_micro"] >= 0.95 and metrics["test/subset_acc"] >= 0.9  # the topics' sentences tell
    for name in ("val/f1_micro_best", "test/f1_macro", "test/precision_micro", "test/recall_micro", "val/threshold",
                 "test/f1_micro_net", "test/f1_micro_wide", "val/mix_net", "test/mix_net"):  # fmt: skip
        assert name in metrics, name
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)  # the callbacks' state too
    assert checkpoint["hyper_parameters"]["multi_label"] is True
    found = {key.split("{")[0]: re.search(r"'monitor': '([^']+)'", key) for key in checkpoint["callbacks"]}
    monitors = {callback: monitor[1] for callback, monitor in found.items() if monitor}
    # the best answer is kept; early stopping waits for the HAN itself (the fitted wide term's score is flat)
    assert monitors == {"ModelCheckpoint": "val/f1_micro", "EarlyStopping": "val/f1_micro_net"}


def test_its_checkpoint_predicts_label_sets_and_evaluates_per_label(run, tmp_path):
    run_dir, cache, metrics = run
    checkpoint = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    both, none = hdc.load(checkpoint).predict(
        ["Oil prices rose again. The team won the final.", "Analysts were divided."]
    )
    assert both.label is None and sorted(both.labels) == ["energy", "sports"]
    assert none.labels == [] and set(none.probabilities) == set(TOPICS)  # every label's probability, none over
    evaluated = evaluate_in_process(tmp_path, f"ckpt_path={checkpoint}", f"paths.cache_dir={cache}")
    assert evaluated["test/f1_micro"] == pytest.approx(metrics["test/f1_micro"], abs=1e-6)
    assert (
        set(evaluated["test/f1_per_class"]) == set(TOPICS) and sum(evaluated["test/support_per_class"].values()) > 300
    )
    assert json.loads((tmp_path / "metrics.json").read_text()) == evaluated


def test_a_separator_splits_a_string_column_and_class_label_lists_name_themselves(tmp_path):
    joined = write_splits(tmp_path / "csv", {"train": 40}, label=lambda labels: ", ".join(labels))
    dm = module(joined, label_separator=",")
    assert dm.multi_label and dm.label_names == sorted(TOPICS)
    order = ["weather", "sports", "energy", "markets"]
    named = datasets.Features({"text": datasets.Value("string"),
                               "labels": datasets.Sequence(datasets.ClassLabel(names=order))})  # fmt: skip
    ids = {name: i for i, name in enumerate(order)}
    dm = module(write_splits(tmp_path / "named", {"train": 40}, lambda labels: [ids[x] for x in labels], named))
    assert dm.multi_label and dm.label_names == ["weather", "sports", "energy", "markets"]  # the ClassLabel's order
    encoded = dm.encoded("train")
    assert (encoded.label_counts == 0).any() and (encoded.label_counts >= 2).any()  # empty sets are allowed


def module(folder, **settings) -> HFDataModule:
    dm = HFDataModule(str(folder), str(folder), str(folder / "cache"), label_column="labels", val_fraction=0.0,
                      min_frequency=1, **settings)  # fmt: skip
    dm.setup()
    return dm


def write_json(folder, rows: list[dict]):
    folder.mkdir()
    (folder / "train.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


@pytest.mark.parametrize(
    ("rows", "settings", "message"),
    [
        (
            [{"text": "A.", "labels": ["a"]}, {"text": "B.", "labels": "b"}],
            {},
            "Label column 'labels' mixes lists and single labels: row 1 holds 'b'",
        ),
        (
            [{"text": "A.", "labels": "a"}, {"text": "B.", "labels": ["b"]}],
            {},
            "Label column 'labels' mixes single labels and lists: row 1 holds ['b']",
        ),
        ([{"text": "A.", "labels": ["a", ["b"]]}], {}, "Label column 'labels', row 0: ['a', ['b']] nests lists"),
        (
            [{"text": "A.", "labels": ["a"]}],
            {"label_separator": ","},
            "data.label_separator=',' splits string labels, but column 'labels' already holds lists",
        ),
        (
            [{"text": "A.", "labels": "a,b"}, {"text": "B.", "labels": ["b"]}],
            {"label_separator": ","},
            "Label column 'labels', row 1: ['b'] is not a string for data.label_separator=',' to split",
        ),
    ],
    ids=["list-then-scalar", "scalar-then-list", "nested", "separator-on-lists", "separator-on-a-list"],
)
def test_a_bad_label_column_is_one_line_naming_the_row(tmp_path, rows, settings, message):
    with pytest.raises(DataError) as error:
        module(write_json(tmp_path / "data", rows), **settings).encoded("train")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_labels_that_training_never_saw_are_named_and_counted(tmp_path):
    folder = write_json(tmp_path / "data", [{"text": "A.", "labels": ["a"]}, {"text": "B.", "labels": ["b"]}])
    test = [("C.", ["a", "c"]), ("D.", ["c"]), ("E.", ["d"]), ("F.", ["b"])]
    (folder / "test.json").write_text("".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in test))
    dm = module(folder)
    with pytest.raises(
        DataError, match=r"Unknown labels in split 'test', column 'labels': 'c' \(2 documents\), 'd' \(1 documents\)"
    ):
        dm.encoded("test")


def test_label_sets_become_multi_hot_targets():
    batch = batch_of([[[[5]]], [[[6]]], [[[7]]]], [(0, 2), (), (1,)])
    assert Task(3, multi_label=True).targets(batch).tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert Task(3).targets(batch_of([[[[5]]], [[[6]]]], [2, 0])).tolist() == [2, 0]


def test_thresholds_are_chosen_for_the_best_f1_globally_or_per_label():
    """Label 0 (3 validation documents) is right from 0.3 up to 0.3; label 1 (2) from 0.75 to 0.85."""
    probabilities = torch.tensor([[0.35, 0.85], [0.25, 0.1], [0.4, 0.2], [0.1, 0.9], [0.3, 0.7]])
    targets = torch.tensor([[1, 1], [0, 0], [1, 0], [0, 1], [1, 0]])
    counts = [torch.stack([((probabilities >= t) & (targets == truth)).sum(0) for t in THRESHOLDS])
              for truth in (1, 0)]  # fmt: skip
    tp, fp = counts
    fn = targets.sum(0)[None] - tp
    global_ = choose_thresholds(tp.float(), fp.float(), fn.float())
    assert torch.allclose(global_, global_[0].expand(2))  # one for all labels
    per_label = choose_thresholds(tp.float(), fp.float(), fn.float(), per_label=True, min_positives=2)
    assert per_label.tolist() == pytest.approx([0.3, 0.75])  # F1 1 each; label 1's ties: the nearest 0.5
    rare = choose_thresholds(tp.float(), fp.float(), fn.float(), per_label=True, min_positives=3)
    assert rare[0] == per_label[0] and rare[1] == global_[1]  # too few documents with label 1: the global one


def test_serve_answers_label_sets_and_its_page_shows_them(run, tmp_path):
    """The API answers what hdc.load predicts (to float rounding), the page names the predicted set."""
    import httpx

    from scripts.load_test import Server
    from tests.test_serve import same_answers

    checkpoint = next((run[0] / "checkpoints").glob("epoch_*.ckpt"))
    texts = ["Oil prices rose again. The team won the final.", "Analysts were divided."]
    expected = [{k: v for k, v in p.to_dict().items() if k != "sentences"} for p in hdc.load(checkpoint).predict(texts)]
    server = Server(checkpoint, run_dir=tmp_path, start_seconds=90)
    try:
        answers = httpx.post(f"{server.url}/predict", json={"texts": texts}, timeout=60).json()["predictions"]
        assert same_answers(answers, expected) and sorted(answers[0]["labels"]) == ["energy", "sports"]
        page = httpx.post(f"{server.url}/", data={"text": texts[0]}, timeout=60).text
        assert "energy (" in page and "sports (" in page
        assert httpx.get(f"{server.url}/info", timeout=10).json()["model"]["model"]["multi_label"] is True
    finally:
        assert server.stop(), "serve.py left worker processes running after SIGTERM"


@pytest.mark.parametrize(("mix", "unused"), [((0.0, 1.0), True), ((0.4, 0.6), False)])
def test_a_prediction_says_how_its_answer_was_made(run, mix, unused):
    """Each part's share and own probabilities, in the JSON and on the page; at a HAN share of 0 the
    page says that the attention it draws did not decide the answer."""
    from hdc.viz.heatmap import attention_html

    predictor = hdc.load(next((run[0] / "checkpoints").glob("epoch_*.ckpt")))
    predictor.model.wide.mix.copy_(torch.tensor(mix))
    text = "Oil prices rose again. The team won the final."
    [prediction] = predictor.predict([text])
    assert prediction.to_dict()["shares"] == pytest.approx({"HAN": mix[0], "n-gram model": mix[1]})
    with torch.no_grad():  # the parts' own logits (not probabilities inverted: saturated ones lose digits)
        parts = predictor.model(batch_of(predictor.model.encoder.encode([text]), [()])).parts
    shown = {name: torch.tensor(list(probabilities.values())) for name, probabilities in
             [("answer", prediction.probabilities), *prediction.part_probabilities.items()]}  # fmt: skip
    torch.testing.assert_close(shown["HAN"], parts["net"][0].sigmoid(), atol=1e-5, rtol=0)
    torch.testing.assert_close(shown["n-gram model"], parts["wide"][0].sigmoid(), atol=1e-5, rtol=0)
    mixed = (mix[0] * parts["net"] + mix[1] * parts["wide"])[0].sigmoid()  # the parts' logits, mixed
    torch.testing.assert_close(shown["answer"], mixed, atol=1e-4, rtol=0)
    page = attention_html([prediction])
    assert f"HAN {mix[0]:.0%} · n-gram model {mix[1]:.0%}" in page
    assert ("its attention, shaded below, was not used for it" in page) == unused
    # the n-gram model's reasons: each predicted label's n-grams, found where they are, summing to its logit
    assert set(prediction.ngram_contributions) == set(prediction.labels) == {"energy", "sports"}
    for label, found in prediction.ngram_contributions.items():
        assert 0 < len(found) <= 10 and [abs(c.contribution) for c in found] == sorted(
            (abs(c.contribution) for c in found), reverse=True)  # fmt: skip
        for c in found:
            assert all(" ".join(prediction.sentences[s].words[a : a + n]) == c.ngram for s, a, n in c.occurrences)
        strongest = found[0]
        assert strongest.contribution > 0 and strongest.occurrences[0][0] == (0 if label == "energy" else 1)
        assert f'class="ngrams" data-label="{label}"' in page
    assert 'class="word for"' in page  # the first label's n-grams, underlined in the text
    every = Predictor(predictor.model, top_ngrams=10**6).predict([text])[0].ngram_contributions
    for label, found in every.items():
        i = predictor.label_names.index(label)
        total = sum(c.contribution for c in found) + predictor.model.wide.bag.bias[i]
        torch.testing.assert_close(total, parts["wide"][0, i], atol=1e-4, rtol=0)
    assert Prediction.from_dict(json.loads(json.dumps(prediction.to_dict()))) == prediction  # serve.py's page reads it


@pytest.mark.parametrize(("mix", "unused"), [((0.0, 1.0), True), ((0.4, 0.6), False)])
def test_a_real_browser_sees_the_shares_and_the_ngrams(run, mix, unused, tmp_path):
    """serve.py's page in a user's browser, for a checkpoint whose answer is the n-gram model's alone and
    for one that mixes both: the shares, the mark on an unused attention, each label's n-grams listed
    and underlined in the text."""
    from selenium.webdriver.common.by import By

    from scripts.load_test import Server
    from tests.test_serve import chromium, submit

    checkpoint = torch.load(next((run[0] / "checkpoints").glob("epoch_*.ckpt")), weights_only=True)
    checkpoint["state_dict"]["wide.mix"] = torch.tensor(mix)
    torch.save(checkpoint, tmp_path / "mixed.ckpt")
    text = "Oil prices rose again. The team won the final."
    [expected] = hdc.load(tmp_path / "mixed.ckpt").predict([text])
    server = Server(tmp_path / "mixed.ckpt", run_dir=tmp_path, start_seconds=90)
    try:
        with chromium() as browser:
            submit(browser, server.url, text)
            makeup = browser.find_element(By.CSS_SELECTOR, ".document .makeup").text
            assert f"HAN {mix[0]:.0%} · n-gram model {mix[1]:.0%}" in makeup
            assert bool(browser.find_elements(By.CSS_SELECTOR, ".document .unused")) == unused
            listed = {e.get_attribute("data-label"): e.text for e in browser.find_elements(By.CSS_SELECTOR, ".ngrams")}
            assert listed.keys() == set(expected.labels)
            for label, found in expected.ngram_contributions.items():
                assert f"{found[0].ngram} {found[0].contribution:+.2f}" in listed[label]
            marked = browser.find_elements(By.CSS_SELECTOR, ".document .word.for, .document .word.against")
            first = expected.ngram_contributions[expected.labels[0]]
            assert marked and {w.text for w in marked} <= {word for c in first for word in c.ngram.split()}
            assert marked[0].value_of_css_property("border-bottom-style") in ("solid", "dotted")
    finally:
        assert server.stop()


def test_empty_label_sets_load_whether_a_cell_is_an_empty_list_or_empty(tmp_path):
    """A split whose every set is empty still loads; an empty CSV cell split by a separator is no label."""
    folder = write_json(tmp_path / "json", [{"text": "A.", "labels": ["a"]}, {"text": "B.", "labels": ["b"]}])
    (folder / "test.json").write_text('{"text": "C.", "labels": []}\n{"text": "D.", "labels": []}\n')
    assert module(folder).encoded("test").label_counts.tolist() == [0, 0]
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "train.csv").write_text('text,labels\nA.,"a,b"\nB.,\nC.,b\n')
    assert module(tmp_path / "csv", label_separator=",").encoded("train").label_counts.tolist() == [2, 0, 1]


def test_a_threshold_that_is_neither_a_number_nor_a_known_rule_is_one_line(tmp_path):
    from hdc.errors import HdcError

    with pytest.raises(HdcError, match="model.threshold='per-label': expected"):
        train_in_process(tmp_path, "model.threshold=per-label")
    for outside in ("2", "0"):  # every F1 would be 0 and no label ever predicted: refused before any work
        with pytest.raises(HdcError, match=f"threshold={outside}: global, per_label, or a probability between 0 and 1"):
            train_in_process(tmp_path, f"model.threshold={outside}")


def test_the_page_takes_true_label_sets_of_any_values():
    from hdc.prediction import Prediction, Sentence
    from hdc.viz.heatmap import attention_html

    prediction = Prediction(None, {"1": 0.9, "3": 0.2}, [Sentence(1.0, ["a"], [1.0])], ["1"])
    page = attention_html([prediction, prediction], [[1], [1, 3]])
    assert page.count('class="wrong"') == 1  # [1] is the predicted set, [1, 3] is not


def test_label_attention_sends_each_label_to_its_own_sentences(tmp_path_factory):
    """The HAN with a context vector per label, on digests: in a text on two topics, each predicted
    label weighs its own topic's sentence most, and the page draws a heatmap per predicted label."""
    from hdc.viz.heatmap import attention_html

    folder = write_splits(tmp_path_factory.mktemp("digests"))
    run_dir = tmp_path_factory.mktemp("run")
    train_in_process(run_dir, f"data.path={folder}", "data.label_column=labels", "logger=none", "recipe=default",
                     "model/net=han_label_attention", "model.wide=null", "trainer.max_epochs=3",
                     "trainer.limit_train_batches=null", "data.train_fraction=1.0",
                     f"paths.cache_dir={tmp_path_factory.mktemp('cache')}")  # fmt: skip
    predictor = hdc.load(next((run_dir / "checkpoints").glob("epoch_*.ckpt")))
    [prediction] = predictor.predict(["Oil prices rose again. The team won the final. Analysts were divided."])
    assert sorted(prediction.labels) == ["energy", "sports"]
    oil, team, _ = (sentence.label_weights for sentence in prediction.sentences)
    assert oil["energy"] > team["energy"] and team["sports"] > oil["sports"]
    assert prediction.sentences[0].weight == prediction.sentences[0].label_weights[prediction.labels[0]]
    page = attention_html([prediction])
    assert (
        page.count('class="label-attention"') == 2 and 'data-label="energy"' in page and 'data-label="sports"' in page
    )


def test_eval_unsets_the_separator_of_training_for_a_file_of_lists(tmp_path):
    """Trained on "a, b" strings split at ",", evaluated on a file whose column holds lists."""
    joined = write_splits(tmp_path / "joined", {"train": 200, "test": 50}, label=lambda labels: ", ".join(labels))
    lists = write_splits(tmp_path / "lists", {"train": 10, "test": 50})
    cache = f"paths.cache_dir={tmp_path / 'cache'}"
    train_in_process(tmp_path / "run", f"data.path={joined}", "data.label_column=labels", "data.label_separator=','",
                     cache, "logger=none", "data.min_frequency=1")  # fmt: skip
    checkpoint = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    evaluated = evaluate_in_process(tmp_path / "eval", f"ckpt_path={checkpoint}", f"data.path={lists}", cache,
                                    "data.label_separator=''")  # fmt: skip
    assert evaluated["test/documents"] == 50 and "test/f1_micro" in evaluated


def test_a_checkpoint_stores_the_wide_terms_table_by_its_used_rows(run):
    """A million bigram buckets x the labels, mostly rows no document weighs: stored sparse, read back dense."""
    run_dir, _, _ = run
    path = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    state = torch.load(path, weights_only=True)["state_dict"]
    table = state["wide.bag.embedding.weight"]
    assert table.is_sparse and len(table._values()) < len(table) // 100
    assert path.stat().st_size < table.numel() * 4 // 4  # the whole file: a quarter of the dense table alone
    dense = hdc.load(path).model.wide.bag.embedding.weight
    assert dense.shape == table.shape and torch.equal(dense, table.to_dense())
