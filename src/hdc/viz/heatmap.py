"""Attention heatmaps in the style of the HAN paper (Yang et al. 2016, figure 5).

Each sentence has a bar for its weight; each word is shaded by its weight scaled by its sentence's,
sqrt(sentence weight) x word weight as in the paper, so that only important words in important
sentences stand out; shades are relative to the document's strongest word. A net with label attention
(a context vector per label) gets one such heatmap per predicted label. With a wide term, the n-grams
that moved its logit most are listed and underlined in the text (a mark unlike the shade: they are the
n-gram model's reasons, not the HAN's attention). The HTML page is
self-contained (inline CSS, no scripts, no network) and every piece of text in it is escaped.
"""

from collections.abc import Sequence
from html import escape
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hdc.prediction import Prediction  # noqa: E402

_STYLE = """
body { font-family: Georgia, serif; max-width: 60em; margin: 2em auto; color: #222; }
.document { border-top: 1px solid #ccc; padding: 1em 0; }
.meta { font-family: sans-serif; font-size: 0.9em; margin-bottom: 0.5em; }
.wrong { color: #b00; }
.makeup { color: #444; margin-top: 0.2em; }
.unused { color: #b00; font-weight: bold; margin-top: 0.2em; }
.sentence { display: flex; align-items: baseline; margin: 0.15em 0; }
.sentence.new-paragraph { margin-top: 0.9em; }
.bar { flex: none; width: 4em; height: 0.8em; margin-right: 0.6em; background: #eee; }
.bar span { display: block; height: 100%; background: #36c; }
.word { padding: 0 0.1em; border-radius: 2px; }
.legend { font-family: sans-serif; font-size: 0.85em; color: #555; }
.label-attention { margin-top: 0.8em; }
.ngrams { color: #444; margin-top: 0.2em; }
.ngram.for, .word.for { border-bottom: 2px solid #1a7f37; }
.ngram.against, .word.against { border-bottom: 2px dotted #8250df; }
"""


def word_intensities(prediction: Prediction, weights: Sequence[float] | None = None) -> list[list[float]]:
    """sqrt(sentence weight) x word weight, divided by the document's largest value (0..1); `weights`:
    the sentences' weights to use (one label's, with label attention), else their own. With gradient
    attributions (Sentence.word_attributions): their sizes instead, over the document's largest."""
    weights = [s.weight for s in prediction.sentences] if weights is None else weights
    if any(s.word_attributions for s in prediction.sentences):
        raw = [[abs(a) for a in s.word_attributions] for s in prediction.sentences]
    else:
        raw = [
            [weight**0.5 * w for w in s.word_weights] for s, weight in zip(prediction.sentences, weights, strict=True)
        ]
    top = max((x for row in raw for x in row), default=0.0) or 1.0
    return [[x / top for x in row] for row in raw]


def predicted(prediction: Prediction) -> str:
    """ "pos (92.9%)"; a label set: "markets (81.0%), energy (64.2%)", or "no label" when none is over
    its threshold."""
    shown = [f"{label} ({prediction.probabilities[label]:.1%})" for label in prediction.labels]
    return ", ".join(shown) or "no label"


def makeup_html(prediction: Prediction) -> str:
    """The answer's makeup, where a wide term shares it: "HAN 40% · n-gram model 60%", each part's own
    probability of the predicted labels, and a plain mark when the net (whose attention is drawn)
    carried none of it."""
    if not prediction.shares:
        return ""
    shares = " · ".join(f"{escape(part)} {share:.0%}" for part, share in prediction.shares.items())
    own = "; ".join(
        f"{escape(part)}: " + ", ".join(f"{escape(label)} {probabilities[label]:.1%}" for label in prediction.labels)
        for part, probabilities in prediction.part_probabilities.items()
    )
    net, share = next(iter(prediction.shares.items()))
    unused = (f'<div class="unused">The {escape(net)}\'s share of this answer is 0: its attention, shaded below, '
              f"was not used for it.</div>") if share == 0 else ""  # fmt: skip
    return (
        f'<div class="makeup">answer: {shares} (each alone: {own if prediction.labels else "no label"})</div>{unused}'
    )


def ngrams_html(prediction: Prediction) -> str:
    """Each predicted label's n-grams that moved the n-gram model's logit most, with their contributions:
    underlined solid where they argue for the label, dotted where against (as they are marked in the text)."""
    lines = []
    # At a share of 0 the n-gram model's reasons did not make the answer: listed, but said so.
    unused = " (its share of this answer is 0: not used for it)" if list(prediction.shares.values())[1:] == [0] else ""
    for label, found in prediction.ngram_contributions.items():
        items = ", ".join(
            f'<span class="ngram {"for" if c.contribution > 0 else "against"}" '
            f'data-contribution="{c.contribution:.6g}">{escape(c.ngram)}</span> {c.contribution:+.2f}'
            for c in found
        )
        lines.append(f'<div class="ngrams" data-label="{escape(label)}">n-gram model{unused}, for '
                     f"<b>{escape(label)}</b>: {items or 'no n-gram it knows'}</div>")  # fmt: skip
    return "".join(lines)


def _marks(prediction: Prediction, label: str | None) -> dict[tuple[int, int], tuple[str, str]]:
    """(sentence, word) -> (its class, its title) for the words of `label`'s listed n-grams; where several
    cover a word, the one of largest contribution marks it."""
    marks, sizes = {}, {}
    for c in prediction.ngram_contributions.get(label, []) if label is not None else []:
        for sentence, start, size in c.occurrences:
            for word in range(start, start + size):
                if abs(c.contribution) > sizes.get((sentence, word), -1):
                    sizes[sentence, word] = abs(c.contribution)
                    side = "for" if c.contribution > 0 else "against"
                    marks[sentence, word] = (side, f"n-gram '{c.ngram}': {c.contribution:+.3f} for {label}")
    return marks


def _document_html(number: int, prediction: Prediction, true_label: str | list[str] | None) -> str:
    """`true_label`: a name, or a label set's names."""
    meta = f"#{number} predicted <b>{escape(predicted(prediction))}</b>"
    if true_label is not None:
        true_label = [str(label) for label in true_label] if isinstance(true_label, list) else true_label
        truth = set(true_label) if isinstance(true_label, list) else {str(true_label)}
        wrong = ' class="wrong"' if truth != set(prediction.labels) else ""
        shown = (", ".join(true_label) or "no label") if isinstance(true_label, list) else str(true_label)
        meta += f", true <b{wrong}>{escape(shown)}</b>"
    meta += makeup_html(prediction) + ngrams_html(prediction)
    labelwise = [label for label in prediction.labels if prediction.sentences and prediction.sentences[0].label_weights]
    if not labelwise:
        return f'<div class="document"><div class="meta">{meta}</div>{_sentences_html(prediction)}</div>'
    blocks = "".join(  # label attention: each predicted label's own reading of the document
        f'<div class="label-attention" data-label="{escape(label)}"><div class="meta">attention of '
        f"<b>{escape(label)}</b></div>{_sentences_html(prediction, label)}</div>"
        for label in labelwise
    )
    return f'<div class="document"><div class="meta">{meta}</div>{blocks}</div>'


def _sentences_html(prediction: Prediction, label: str | None = None) -> str:
    """The sentences with their bars and shaded words, weighed by `label`'s attention if given; the
    words of the n-grams listed for `label` (else for the first predicted label) underlined."""
    weights = [s.weight if label is None else s.label_weights[label] for s in prediction.sentences]
    marks = _marks(prediction, label or next(iter(prediction.labels), None))
    rows, paragraph = [], 0
    for number, (sentence, weight, intensities) in enumerate(
        zip(prediction.sentences, weights, word_intensities(prediction, weights), strict=True)
    ):
        starts_paragraph, paragraph = sentence.paragraph != paragraph, sentence.paragraph
        words = []
        attributions = sentence.word_attributions or [None] * len(sentence.words)
        for i, (word, w, x, a) in enumerate(
            zip(sentence.words, sentence.word_weights, intensities, attributions, strict=True)
        ):
            side, title = marks.get((number, i), ("", ""))
            mark = f' {side}" title="{escape(title)}' if side else ""
            color, data = "220, 40, 40", f'data-weight="{w:.6g}"'
            if a is not None:  # gradient x input: red for the label, blue against it
                color, data = ("220, 40, 40" if a >= 0 else "40, 90, 220"), f'{data} data-attribution="{a:.6g}"'
            words.append(f'<span class="word{mark}" {data} style="background: rgba({color}, {x:.3f})">'
                         f"{escape(word)}</span>")  # fmt: skip
        words = " ".join(words)
        bar = f'<span style="width: {100 * weight:.1f}%"></span>'
        rows.append(
            f'<div class="sentence{" new-paragraph" if starts_paragraph else ""}" data-weight="{weight:.6g}">'
            f'<div class="bar" title="sentence weight {weight:.3f}">{bar}</div><div>{words}</div></div>'
        )
    return "".join(rows)


def attention_html(
    predictions: Sequence[Prediction],
    true_labels: Sequence[str | list[str] | None] | None = None,
    title: str = "Attention",
) -> str:
    """One page for all documents: per document, predicted (and true) label and its sentences."""
    labels = list(true_labels) if true_labels is not None else [None] * len(predictions)
    documents = "".join(_document_html(i, p, t) for i, (p, t) in enumerate(zip(predictions, labels, strict=True), 1))
    legend = (
        "<p class=\"legend\">Blue bar: the sentence's attention weight (full width = 1). Red shade: the word's "
        "weight scaled by its sentence's, sqrt(sentence weight) &times; word weight, relative to the "
        "document's strongest word. With label attention, each predicted label has its own bars and shades. "
        "Underlined: the n-grams listed for the label, solid where the n-gram model counts them for it, "
        "dotted where against. With attribution=gradient, words are shaded by gradient x input instead: red "
        "for the most probable label (in every label's heatmap), blue against it. "
        "Long sentences appear wrapped as the model read them.</p>"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{legend}{documents}</body></html>\n"
    )


def attention_png(prediction: Prediction, path: Path, true_label: str | None = None, max_width: int = 12) -> None:
    """One document as a figure for papers and slides: a row per sentence (wrapped every `max_width`
    words for display), its weight as a bar on the left, words shaded as in the HTML page."""
    lines = []  # (sentence weight or None for a continuation, [(word, intensity)])
    for sentence, intensities in zip(prediction.sentences, word_intensities(prediction), strict=True):
        pairs = list(zip(sentence.words, intensities, strict=True))
        for start in range(0, max(len(pairs), 1), max_width):
            lines.append((sentence.weight if start == 0 else None, pairs[start : start + max_width]))
    figure, axes = plt.subplots(figsize=(12, 0.32 * len(lines) + 0.9))
    axes.set_xlim(-2.2, max_width)
    axes.set_ylim(len(lines), -0.8)
    axes.axis("off")
    for row, (weight, pairs) in enumerate(lines):
        if weight is not None:
            axes.barh(row, 1.8 * weight, left=-2.1, height=0.6, color="#3366cc")
        for column, (word, intensity) in enumerate(pairs):
            box = {"facecolor": (0.86, 0.16, 0.16, intensity), "edgecolor": "none", "pad": 1.5}
            axes.text(column, row, word, va="center", fontsize=9, family="serif", bbox=box)
    caption = f"predicted {predicted(prediction)}"
    if prediction.shares:  # the answer's makeup, as on the page
        caption += " (" + " · ".join(f"{part} {share:.0%}" for part, share in prediction.shares.items()) + ")"
    axes.set_title(caption + (f", true {true_label}" if true_label is not None else ""), loc="left", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)
