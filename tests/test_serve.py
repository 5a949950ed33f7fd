"""serve.py against a running server on loopback: the API answers as hdc.load does, bad input is a 4xx with a
JSON body (and the server answers the next request), and the page shows the heatmap, escaped."""

import contextlib
import hashlib
import json
import logging
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import hdc
from scripts.load_test import Server
from scripts.serve_screenshot import headless_chromium, submit
from tests.conftest import ROOT, run_entry_point

TEXTS = ["A wonderful film. I loved every minute of it.", "Dull and far too long.\n\nThe acting was poor.", ""]


@pytest.fixture(scope="module")
def server(debug_run, tmp_path_factory):
    """`python serve.py ckpt_path=...` as a user starts it, on a free loopback port; (base URL, checkpoint).
    At the end, SIGTERM must stop it and all its workers."""
    checkpoint = debug_run / "checkpoints" / "last.ckpt"
    run_dir = tmp_path_factory.mktemp("serve")
    try:
        running = Server(checkpoint, "max_documents=8", "max_bytes=1500000", run_dir=run_dir, start_seconds=90)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield running.url, checkpoint
    if not running.stop():
        pytest.fail("serve.py left worker processes running after SIGTERM")


def predict(url: str, body: dict) -> list[dict]:
    answer = httpx.post(f"{url}/predict", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def same_answers(got, want) -> bool:
    """The same labels, words and structure; numbers equal to float rounding. A document's probabilities
    and weights can move in their last digits with what else shares its batch (the kernels sum in other
    orders), so the API promises hdc.load's answers to float rounding, not bit for bit."""
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(same_answers(got[k], want[k]) for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same_answers, got, want))
    if isinstance(want, float):
        return got == pytest.approx(want, abs=1e-6)
    return got == want


def test_a_float_rounding_apart_is_the_same_answer_and_a_label_apart_is_not():
    answer = {"label": "pos", "probabilities": {"neg": 0.37921894, "pos": 0.62078106}, "sentences": []}
    assert same_answers({**answer, "probabilities": {"neg": 0.379219, "pos": 0.620781}}, answer)
    assert not same_answers({**answer, "label": "neg"}, answer)
    assert not same_answers({**answer, "probabilities": {"neg": 0.4, "pos": 0.6}}, answer)
    assert not same_answers({k: v for k, v in answer.items() if k != "sentences"}, answer)


def test_the_api_answers_what_hdc_load_predicts(server):
    url, checkpoint = server
    expected = [p.to_dict() for p in hdc.load(checkpoint).predict(TEXTS)]
    assert same_answers(predict(url, {"texts": TEXTS, "attention": True}), expected)
    without_attention = [{k: v for k, v in p.items() if k != "sentences"} for p in expected]
    assert same_answers(predict(url, {"texts": TEXTS}), without_attention)
    assert same_answers(predict(url, {"text": TEXTS[0]}), without_attention[:1])  # alone, not in a batch of 3


def test_concurrent_requests_each_get_their_own_answer(server):
    """Requests batched together are split back to their senders: each answer is its own text's."""
    url, checkpoint = server
    texts = [f"Review {i}: {'good ' * i}film, {'bad ' * (10 - i)}plot." for i in range(10)]
    expected = [p.probabilities for p in hdc.load(checkpoint).predict(texts)]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda text: predict(url, {"text": text})[0]["probabilities"], texts))
    for got, want in zip(answers, expected, strict=True):
        assert same_answers(got, want)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"", 422, "Field required"),
        (b"not json", 422, "JSON decode error"),
        (b"\xff\xfe not UTF-8", 422, "JSON decode error"),
        (b'{"texts": "one string"}', 422, "valid list"),
        (b'{"texts": [1, 2]}', 422, "valid string"),
        (b'{"texts": []}', 422, "at least 1 item"),
        (b'{"text": "a", "texts": ["b"]}', 422, "not both"),
        (b'{"txt": "a"}', 422, "Extra inputs"),
        (json.dumps({"texts": ["x"] * 9}).encode(), 413, "at most 8"),
        (json.dumps({"text": "word " * 400_000}).encode(), 413, "Payload too large"),
    ],
)
def test_bad_input_is_a_4xx_with_a_json_body_and_the_server_lives_on(server, body, status, detail):
    url, _ = server
    answer = httpx.post(f"{url}/predict", content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == status and detail in json.dumps(answer.json()["detail"])
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    assert predict(url, {"text": "Still here."})[0]["label"] in ("neg", "pos")


def test_a_megabyte_document_is_answered_within_the_caps(server):
    url, _ = server
    [answer] = predict(url, {"text": "A long sentence about the film. " * 33_000, "attention": True})
    assert sum(len(s["words"]) for s in answer["sentences"]) <= 8 * 20  # the checkpoint's caps (debug: 8 x 20)


def test_info_describes_the_model(server):
    url, checkpoint = server
    info = httpx.get(f"{url}/info", timeout=10).json()["model"]
    assert info["labels"] == ["neg", "pos"] and info["caps"] == {"max_sentences": 8, "max_words": 20}
    assert info["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()


def test_the_page_classifies_a_document_and_escapes_it(server):
    url, checkpoint = server
    page = httpx.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and '<form method="post" action="/">' in page.text and "<script" not in page.text
    text = "I loved it. <script>alert(1)</script> Truly."
    shown = httpx.post(f"{url}/", data={"text": text}, timeout=60)
    assert shown.status_code == 200 and "<script" not in shown.text and "&lt;script&gt;" in shown.text
    [expected] = hdc.load(checkpoint).predict([text])
    assert expected.label in shown.text and shown.text.count('class="word"') == sum(
        len(s.words) for s in expected.sentences
    )


def test_a_keyed_server_answers_only_with_its_key_and_serves_a_model_folder(debug_run, tmp_path):
    """serve.py api_key=... on an exported folder: /predict, /info and the form need the key (401 with a JSON
    reason without it, or with another); /health stays open."""
    from hdc.cli.export import export

    folder = tmp_path / "model"
    export(debug_run / "checkpoints" / "last.ckpt", folder)
    try:
        running = Server(folder, "api_key=s3cret", run_dir=tmp_path / "serve", start_seconds=90)
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        url, body = running.url, {"texts": TEXTS}
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        for headers, reason in (({}, "a valid X-API-Key header is required"),
                                ({"X-API-Key": "guess"}, "does not hold this server's key")):  # fmt: skip
            for answer in (httpx.post(f"{url}/predict", json=body, headers=headers, timeout=60),
                           httpx.get(f"{url}/info", headers=headers, timeout=10)):  # fmt: skip
                assert answer.status_code == 401 and reason in answer.json()["detail"]
        answer = httpx.post(f"{url}/predict", json=body, headers={"X-API-Key": "s3cret"}, timeout=60)
        expected = [{k: v for k, v in p.to_dict().items() if k != "sentences"} for p in hdc.load(folder).predict(TEXTS)]
        assert answer.status_code == 200 and same_answers(answer.json()["predictions"], expected)
        page = httpx.get(f"{url}/", timeout=10).text
        assert 'type="password" name="api_key"' in page
        for given, status in ((None, 401), ("guess", 401), ("s3cret", 200)):
            form = {"text": TEXTS[0]} | ({"api_key": given} if given else {})
            shown = httpx.post(f"{url}/", data=form, timeout=60)
            assert shown.status_code == status and (status == 401 or expected[0]["label"] in shown.text)
        assert "key is missing or wrong" in httpx.post(f"{url}/", data={"text": "x"}, timeout=60).json()["detail"]
    finally:
        running.stop()


def test_a_server_open_beyond_this_machine_without_a_key_is_said(caplog, monkeypatch):
    from omegaconf import OmegaConf

    from hdc.cli.serve import server_key

    with caplog.at_level(logging.WARNING, logger="hdc.cli.serve"):
        assert server_key(OmegaConf.create({"host": "127.0.0.1", "port": 8000, "api_key": None})) is None
        assert not caplog.records
        assert server_key(OmegaConf.create({"host": "0.0.0.0", "port": 8000, "api_key": "k"})) == "k"
        assert not caplog.records
        assert server_key(OmegaConf.create({"host": "0.0.0.0", "port": 8000, "api_key": None})) is None
    assert "host=0.0.0.0 without api_key: anyone who can reach port 8000 can use the model" in caplog.text
    monkeypatch.setenv("LIT_SERVER_API_KEY", "from-env")  # LitServe's variable gives the key too
    assert server_key(OmegaConf.create({"host": "0.0.0.0", "port": 8000, "api_key": None})) == "from-env"


def test_a_bad_checkpoint_is_one_line_before_serving(tmp_path):
    result = run_entry_point("serve.py", tmp_path, f"ckpt_path={tmp_path}/missing.ckpt", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert f"ckpt_path={tmp_path}/missing.ckpt: no such checkpoint file" in result.stdout + result.stderr


def test_a_port_in_use_is_one_line_before_serving(debug_run, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        checkpoint = debug_run / "checkpoints" / "last.ckpt"
        result = run_entry_point("serve.py", tmp_path, f"ckpt_path={checkpoint}", f"port={port}", check=False)
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in said and "Serving" not in said
    assert f"port={port}: cannot listen on 127.0.0.1:{port} (Address already in use); choose another port=" in said


def test_an_unknown_attribution_is_one_line_before_serving(debug_run, tmp_path):
    checkpoint = debug_run / "checkpoints" / "last.ckpt"
    result = run_entry_point("serve.py", tmp_path, f"ckpt_path={checkpoint}", "attribution=saliency", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    assert "attribution='saliency': expected one of ['attention', 'gradient']" in result.stdout + result.stderr


@pytest.mark.slow
def test_the_load_script_measures_both_modes_and_memory(debug_run, tmp_path):
    out = tmp_path / "load.json"
    # --seconds only caps a level: every request is answered however slow the machine (no timing asserted)
    command = [sys.executable, "scripts/load_test.py", str(debug_run / "checkpoints" / "last.ckpt"), "--requests", "6",
               "--seconds", "600", "--concurrency", "1,3", "--memory-requests", "12", "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [(level["max_batch_size"], level["concurrency"]) for level in report["levels"]] == [
        (8, 1),
        (8, 3),
        (1, 1),
        (1, 3),
    ]
    assert all(level["requests"] == 6 and level["failures"] == 0 and level["p99_ms"] >= level["p50_ms"] > 0
               for level in report["levels"])  # fmt: skip
    assert report["memory"]["requests"] == 12 and report["memory"]["rss_before_mb"] > 100
    assert report["check"] == {"texts": 2, "identical": True, "max_probability_gap": 0.0}  # its own answers check


@contextlib.contextmanager
def chromium():
    """Headless Chromium (Debian's chromium and chromium-driver), as a user's browser; skips without it."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (.ci/run does)")
    with headless_chromium() as browser:
        yield browser


def test_a_real_browser_submits_a_review_and_sees_the_heatmap(server, tmp_path):
    """A user's browser drives the page: the words, the predicted label and the bars are drawn."""
    from selenium.webdriver.common.by import By

    url, checkpoint = server
    with chromium() as browser:
        review = "A wonderful film. I loved every minute of it.\n\nThe ending was weak."
        words = submit(browser, url, review)
        browser.save_screenshot(str(tmp_path / "page.png"))
        [expected] = hdc.load(checkpoint).predict([review])
        assert [word.text for word in words] == [w for s in expected.sentences for w in s.words]
        assert f"predicted {expected.label}" in browser.find_element(By.CSS_SELECTOR, ".document .meta").text
        bars = browser.find_elements(By.CSS_SELECTOR, ".document .bar span")
        assert len(bars) == len(expected.sentences) and all(bar.size["width"] > 0 for bar in bars)  # drawn, styled
        assert browser.find_element(By.NAME, "text").get_attribute("value").strip() == review.strip()
        assert (tmp_path / "page.png").stat().st_size > 10_000
