"""scripts/faithfulness.py: ERASER's comprehensiveness and sufficiency of the attention, random and
gradient x input rankings, run small on a default-recipe checkpoint (the HAN alone and the mixed answer)."""

import json
import subprocess
import sys

import pytest

from hdc.inference.explain import FRACTIONS, METHODS, kept
from tests.conftest import ROOT, train_in_process

DOCUMENT = [[[5, 6, 7], [8]], [[9, 10]]]  # paragraphs of sentences of word ids
EMPTY = [[[1]]]


def test_erasing_keeps_the_places_asked_and_drops_what_empties():
    assert kept(DOCUMENT, lambda p, s, w: True, EMPTY) == DOCUMENT
    assert kept(DOCUMENT, lambda p, s, w: False, EMPTY) == EMPTY
    assert kept(DOCUMENT, lambda p, s, w: (p, s) != (1, 0), EMPTY) == [[[5, 6, 7], [8]]]  # its paragraph goes too
    assert kept(DOCUMENT, lambda p, s, w: (p, s, w) in {(0, 0, 1), (1, 0, 0)}, EMPTY) == [[[6]], [[9]]]


@pytest.mark.slow
def test_the_script_measures_every_ranking_for_both_answers(small_imdb, tmp_path):
    run_dir = tmp_path / "run"
    train_in_process(run_dir, f"data.path={small_imdb}", f"paths.cache_dir={tmp_path / 'cache'}", "logger=none",
                     "recipe=default")  # fmt: skip
    checkpoint = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    out, plot = tmp_path / "faithfulness.json", tmp_path / "faithfulness.png"
    command = [sys.executable, "scripts/faithfulness.py", str(checkpoint), "--limit", "6", "--out", str(out),
               "--plot", str(plot)]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["documents"] == 6 and report["fractions"] == list(FRACTIONS) and plot.stat().st_size > 10_000
    assert set(report["results"]) == {"HAN alone", "answer (HAN + wide term)"}
    for levels in report["results"].values():
        for level in ("sentence", "word"):
            assert set(levels[level]) == set(METHODS)
            for scores in levels[level].values():  # drops in a probability
                assert -1 <= scores["comprehensiveness"] <= 1 and -1 <= scores["sufficiency"] <= 1
    missing = subprocess.run([sys.executable, "scripts/faithfulness.py", str(tmp_path / "none.ckpt")], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1  # one line, no traceback
