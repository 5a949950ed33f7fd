"""Prediction from a checkpoint (Python and CLI), awkward inputs, and the attention heatmap."""

import json
import math
import re

import pytest

import hdc
from hdc.cli.predict import predict
from hdc.errors import HdcError
from hdc.viz.heatmap import attention_html, attention_png
from tests.conftest import compose, run_entry_point

AWKWARD = {
    "empty": "",
    "blank": " \n\t ",
    "no punctuation": "no full stop anywhere in this rather long review " * 40,
    "one megabyte": "A long sentence about the film. " * 33_000,
    "100,000 words": "word " * 100_000,
    "10,000 one-word sentences": "Yes. " * 10_000,
    "control characters": "Good\x00 film\x07.\x1b[31m Bad\u200b ending.",
}


@pytest.fixture(scope="module")
def predictor(debug_run):
    return hdc.load(debug_run / "checkpoints" / "last.ckpt")


def test_predictions_are_well_formed_on_awkward_input(predictor):
    predictions = predictor.predict(list(AWKWARD.values()))
    caps = predictor.model.encoder
    for name, prediction in zip(AWKWARD, predictions, strict=True):
        assert prediction.label in ("neg", "pos"), name
        assert math.isclose(sum(prediction.probabilities.values()), 1, abs_tol=1e-5), name
        assert 1 <= len(prediction.sentences) <= caps.max_sentences, name
        assert math.isclose(sum(s.weight for s in prediction.sentences), 1, abs_tol=1e-5), name
        for sentence in prediction.sentences:
            assert 1 <= len(sentence.words) == len(sentence.word_weights) <= caps.max_words, name
            assert math.isclose(sum(sentence.word_weights), 1, abs_tol=1e-5), name
    assert predictions[0].sentences[0].words == [""]  # an empty text is read as one unknown word
    assert predictions[0].probabilities == pytest.approx(predictions[1].probabilities)


def test_words_are_shown_as_written(predictor):
    (prediction,) = predictor.predict(["Mr. Smith LOVED it. Zxqwv!"])
    assert [s.words for s in prediction.sentences] == [["Mr", ".", "Smith", "LOVED", "it", "."], ["Zxqwv", "!"]]


def test_heatmap_escapes_text_and_carries_the_model_weights(predictor, tmp_path):
    texts = ['<script>alert("x")</script> A fine film. <b>bold</b> & more.', "Dull. Very dull.<br /><br />Really."]
    predictions = predictor.predict(texts)
    assert [s.paragraph for s in predictions[1].sentences] == [0, 0, 1]
    page = attention_html(predictions, ["pos", "<neg>"], title="<title>")
    assert "<script" not in page and "<b>bold" not in page and "alert" in page
    assert ">&lt;</span>" in page and "&amp;" in page  # the review's markup is shown as text
    assert "&lt;neg&gt;" in page and "&lt;title&gt;" in page
    assert not re.search(r"(src|href)=|https?:|@import|url\(", page)  # self-contained: nothing to fetch
    sentence_weights = [float(x) for x in re.findall(r'class="sentence[^"]*" data-weight="([^"]+)"', page)]
    assert page.count("new-paragraph") == 2  # the style, and the second document's second paragraph
    word_weights = [float(x) for x in re.findall(r'class="word" data-weight="([^"]+)"', page)]
    assert sentence_weights == pytest.approx([s.weight for p in predictions for s in p.sentences], rel=1e-5)
    expected = [w for p in predictions for s in p.sentences for w in s.word_weights]
    assert word_weights == pytest.approx(expected, rel=1e-5, abs=1e-9)
    attention_png(predictions[0], tmp_path / "document.png", true_label="pos")
    assert (tmp_path / "document.png").stat().st_size > 1000


def test_cli_reads_stdin_and_writes_jsonl_and_html(debug_run, tmp_path):
    html = tmp_path / "att.html"
    result = run_entry_point(
        "predict.py", tmp_path / "run", f"ckpt_path={debug_run}/checkpoints/last.ckpt", "input=-", "output=-",
        f"html={html}", stdin="This movie was wonderful. I loved it.\n\nDull.\n",
    )  # fmt: skip
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2 and {"label", "probabilities", "sentences"} <= set(rows[0])
    assert rows[0]["sentences"][0]["words"][:2] == ["This", "movie"]
    assert html.read_text().count('class="document"') == 2


def test_cli_reads_jsonl_and_non_utf8_bytes(debug_run, tmp_path):
    jsonl, raw = tmp_path / "in.jsonl", tmp_path / "in.txt"
    jsonl.write_text('{"text": "Great.", "label": "pos"}\n\n{"text": "Awful.", "label": "neg"}\n')
    raw.write_bytes(b"Caf\xe9 au lait \xff\xfe was good.\nSecond line.\n")
    checkpoint = f"ckpt_path={debug_run}/checkpoints/last.ckpt"
    for source, count in ((jsonl, 2), (raw, 2)):
        out = tmp_path / f"{source.name}.out"
        predict(
            compose("predict.yaml", tmp_path / f"run_{source.suffix}", checkpoint, f"input={source}", f"output={out}")
        )
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == count
    assert "\ufffd" in "".join(rows[0]["sentences"][0]["words"])  # undecodable bytes became U+FFFD


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "fine"}\nnot json\n', "line 2: not JSON"),
        ('{"body": "x"}\n', 'line 1: expected an object with a "text"'),
    ],
)
def test_bad_jsonl_is_one_clear_error(debug_run, tmp_path, content, message):
    source = tmp_path / "in.jsonl"
    source.write_text(content)
    cfg = compose("predict.yaml", tmp_path / "run", f"ckpt_path={debug_run}/checkpoints/last.ckpt", f"input={source}")
    with pytest.raises(HdcError, match=f"{source}, {message}"):
        predict(cfg)


def test_cli_errors_are_one_line(debug_run, tmp_path):
    """predict.py reports an HdcError as one line on standard error, exit status 1, no traceback."""
    source = tmp_path / "in.jsonl"
    source.write_text("not json\n")
    result = run_entry_point(
        "predict.py", tmp_path / "run", f"ckpt_path={debug_run}/checkpoints/last.ckpt", f"input={source}", check=False
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stdout == ""
    assert f"{source}, line 1: not JSON" in result.stderr
    nothing = run_entry_point("predict.py", tmp_path / "run", f"ckpt_path={debug_run}/checkpoints/last.ckpt", "input=-",
                              stdin="", check=False)  # fmt: skip
    assert nothing.returncode == 1 and "input=-: no documents in it (empty input)" in nothing.stderr
    for script, given in (("predict.py", ["input=-"]), ("eval.py", [])):  # the checkpoint left out
        missing = run_entry_point(script, tmp_path / script, *given, stdin="", check=False)
        said = missing.stdout + missing.stderr
        assert missing.returncode == 1 and "Traceback" not in said
        assert "ckpt_path is required: add ckpt_path=... to the command" in said


def test_gradient_attribution_shades_words_by_gradient_x_input(debug_run, tmp_path):
    """attribution=gradient: each word's gradient x input for the predicted label, the same in a batch as
    alone, shading the page (red for the label, blue against); an unknown attribution is one line."""
    from hdc.inference.predictor import Predictor

    checkpoint = debug_run / "checkpoints" / "last.ckpt"
    predictor = hdc.load(checkpoint, attribution="gradient")
    texts = ["A wonderful film. I loved every minute of it.", "Dull and far too long.\n\nThe acting was poor."]
    together = predictor.predict(texts)
    for prediction, text in zip(together, texts, strict=True):
        [alone] = predictor.predict([text])
        for sentence, own in zip(prediction.sentences, alone.sentences, strict=True):
            assert len(sentence.word_attributions) == len(sentence.words)
            assert sentence.word_attributions == pytest.approx(own.word_attributions, rel=1e-4, abs=1e-5)
    values = [a for s in together[0].sentences for a in s.word_attributions]
    assert any(a > 0 for a in values) and any(a < 0 for a in values)  # a word for the label and one against
    page = attention_html(together)
    assert page.count("data-attribution=") == sum(len(s.words) for p in together for s in p.sentences)
    assert "rgba(40, 90, 220" in page and "rgba(220, 40, 40" in page
    assert not any(s.word_attributions for s in hdc.load(checkpoint).predict(texts)[0].sentences)  # off by default
    with pytest.raises(HdcError, match="attribution='saliency': expected one of"):
        Predictor(predictor.model, attribution="saliency")
    result = run_entry_point("predict.py", tmp_path / "run", f"ckpt_path={checkpoint}", "input=-", "output=-",
                             "attribution=gradient", stdin=texts[0])  # fmt: skip
    assert json.loads(result.stdout)["sentences"][0]["word_attributions"]


@pytest.mark.parametrize(("shares", "unused"), [({"HAN": 1.0, "n-gram model": 0.0}, True),
                                                ({"HAN": 0.4, "n-gram model": 0.6}, False)])  # fmt: skip
def test_the_ngrams_of_a_model_that_carried_none_of_the_answer_say_so(shares, unused):
    from hdc.prediction import NgramContribution, Prediction, Sentence

    prediction = Prediction("pos", {"neg": 0.1, "pos": 0.9}, [Sentence(1.0, ["great", "film"], [0.5, 0.5])], ["pos"],
                            shares, {}, {"pos": [NgramContribution("great", 0.8, [[0, 0, 1]])]})  # fmt: skip
    ngrams = re.search(r'<div class="ngrams"[^>]*>(.*?)</div>', attention_html([prediction])).group(1)
    assert "great" in ngrams and ("not used for it" in ngrams) == unused
