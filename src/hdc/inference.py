"""Inference: a trained checkpoint that reads raw text and answers with labels, probabilities and the
attention behind each one. `hdc.load("model.ckpt").predict(["text", ...])`; the predict.py command and
the attention callback go through `Predictor`, and the heatmap page draws its `Prediction`s.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hdc.checkpoint import load_classifier
from hdc.data.batching import batch_of
from hdc.errors import HdcError
from hdc.models.han import HAN
from hdc.module import DocumentClassifier
from hdc.precision import autocast, checked

ATTRIBUTIONS = ("attention", "gradient")  # what shades the words: the HAN's attention, or gradient x input


@dataclass
class Sentence:
    """A sentence as the model read it (long sentences are wrapped into several), with its attention:
    `weight` is its share of the document, `paragraph` the index of its paragraph. A net with label
    attention weighs sentences per label: `label_weights` holds each predicted label's weight, and
    `weight` is the most probable label's."""

    weight: float
    words: list[str]
    word_weights: list[float]
    paragraph: int = 0
    label_weights: dict[str, float] = field(default_factory=dict)
    # With attribution="gradient": each word's gradient x input for the most probable label in the HAN
    # (negative: against it), the pages' word shades.
    word_attributions: list[float] = field(default_factory=list)


@dataclass
class NgramContribution:
    """A word or bigram of the text and what it added to the n-gram model's logit for a label: its
    weight x its TF-IDF value, summed over its occurrences (negative: it argued against the label).
    `occurrences`: where it is, as [sentence, first word, words] in Prediction.sentences."""

    ngram: str
    contribution: float
    occurrences: list[list[int]]


@dataclass
class Prediction:
    """`label`: the answer of a single-label model (None for a multi-label one); `labels`: the labels
    predicted, most probable first (a multi-label model's set: those over their thresholds, possibly
    none; a single-label model's: [label]); `probabilities`: every label's (a softmax, or a sigmoid
    per label)."""

    label: str | None
    probabilities: dict[str, float]
    sentences: list[Sentence]
    labels: list[str] = field(default_factory=list)
    # With a wide term: each part's share of the answer (the mix: {"HAN": 0.4, "n-gram model": 0.6}) and
    # each part's own probabilities. The attention is the net's: at a share of 0 it did not decide.
    shares: dict[str, float] = field(default_factory=dict)
    part_probabilities: dict[str, dict[str, float]] = field(default_factory=dict)
    # With a wide term: for each predicted label, the n-grams that moved the n-gram model's logit most
    # (either way), largest first: what decided its part of the answer.
    ngram_contributions: dict[str, list[NgramContribution]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> "Prediction":
        """The inverse of to_dict (serve.py's page draws the API's JSON answer)."""
        contributions = {label: [NgramContribution(**c) for c in found]
                         for label, found in row.get("ngram_contributions", {}).items()}  # fmt: skip
        sentences = [Sentence(**sentence) for sentence in row.get("sentences", [])]
        return cls(**{**row, "sentences": sentences, "ngram_contributions": contributions})


class Predictor:
    """A trained classifier that reads raw text: the checkpoint's own tokenizer, caps and label names.
    `precision` is a Trainer's ("32-true", "bf16-mixed", "16-mixed"): the forward pass runs under the
    same autocast; probabilities and attention weights come out in fp32. `attribution="gradient"`
    adds each word's gradient x input (Sentence.word_attributions): at the word level more faithful
    to the HAN than its attention (results/FAITHFULNESS.md)."""

    def __init__(
        self,
        model: DocumentClassifier,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        precision: str = "32-true",
        top_ngrams: int = 10,
        attribution: str = "attention",
    ):
        self.precision = checked(precision)  # an unknown precision: one line, before any work
        checked_attribution(attribution, type(model.net).__name__)
        self.model, self.device, self.batch_size = model.to(device).eval(), device, batch_size
        self.top_ngrams, self.attribution = top_ngrams, attribution

    @property
    def label_names(self) -> list[str]:
        return self.model.label_names

    @torch.no_grad()
    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text. Work per text is bounded by the caps (max_sentences x max_words):
        a 1 MB text costs about as much as a long review; an empty or blank text is read as a single
        unknown word (its sentence has the one word "") and gets the model's prior."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of texts; wrap a single text in a list")
        predictions = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [str(text) for text in texts[start : start + self.batch_size]]
            documents, words = self.model.encoder.encode_with_words(chunk)
            batch = batch_of(documents, [0] * len(chunk)).to(self.device)
            with autocast(self.device, self.precision):
                answer = self.model(batch)
            logits, parts = answer.logits, answer.parts
            occurrences = self._occurrences(batch)
            attributions = None
            if self.attribution == "gradient":
                attributions = word_gradients(self.model.net, batch, logits.argmax(1)).cpu().tolist()
            probabilities = self.model.task.probabilities(logits).cpu().tolist()
            shares, by_part = self._shares(), {}
            if shares:  # a wide term: each part's own probabilities too
                by_part = {name: self.model.task.probabilities(parts[part]).cpu().tolist()
                           for name, part in zip(shares, parts, strict=True)}  # fmt: skip
            thresholds = self.model.thresholds.tolist()
            word_weights = answer.net.word_weights.cpu().tolist()
            sentence_weights = answer.net.sentences_for(logits.argmax(1)).cpu().tolist()  # the most probable label's
            label_weights = answer.net.sentence_weights.cpu().tolist() if answer.net.per_label else None
            row = 0  # sentences of all documents are stacked in one tensor, document after document
            for d, (paragraphs, probs, weights) in enumerate(zip(words, probabilities, sentence_weights, strict=True)):
                ranked = sorted(range(len(probs)), key=lambda i: -probs[i])
                if self.model.task.multi_label:
                    label, chosen = None, [self.label_names[i] for i in ranked if probs[i] >= thresholds[i]]
                else:
                    label = self.label_names[ranked[0]]
                    chosen = [label]
                by_sentence = {}  # label attention: each predicted label's own sentence weights
                if label_weights is not None:
                    by_sentence = {name: label_weights[d][self.label_names.index(name)] for name in chosen}
                sentences = []
                in_order = ((p, sentence) for p, paragraph in enumerate(paragraphs) for sentence in paragraph)
                for s, ((paragraph, sentence_words), weight) in enumerate(zip(in_order, weights, strict=False)):
                    own = {name: label_weights[s] for name, label_weights in by_sentence.items()}  # weights: padded
                    sentences.append(
                        Sentence(weight, sentence_words, word_weights[row][: len(sentence_words)], paragraph, own,
                                 attributions[row][: len(sentence_words)] if attributions else [])
                    )  # fmt: skip
                    row += 1
                by_label = dict(zip(self.label_names, probs, strict=True))
                own = {name: dict(zip(self.label_names, part[d], strict=True)) for name, part in by_part.items()}
                ngrams = {} if occurrences is None else top_ngrams(
                    *occurrences[d], [s.words for s in sentences], {n: self.label_names.index(n) for n in chosen},
                    self.top_ngrams,
                )  # fmt: skip
                predictions.append(Prediction(label, by_label, sentences, chosen, shares, own, ngrams))
        return predictions

    def _occurrences(self, batch) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Each document's n-gram occurrences in the wide term: (spans [occurrences, 3]: its sentence,
        counted from the document's first, first word, words; contributions [occurrences, labels]);
        None without a wide term."""
        if self.model.wide is None:
            return None
        owners, spans, contributions = (t.cpu() for t in self.model.wide.contributions(*batch.inputs))
        counts = batch.sentence_counts.cpu()
        spans[:, 0] -= (torch.cumsum(counts, 0) - counts)[owners]
        sizes = torch.bincount(owners, minlength=len(counts)).tolist()  # owners are sorted
        return list(zip(spans.split(sizes), contributions.split(sizes), strict=True))

    def _shares(self) -> dict[str, float]:
        """Each part's share of the answer, by a name a reader knows; {} without a wide term."""
        if self.model.wide is None:
            return {}
        net = {"HAN": "HAN", "FastText": "fastText"}.get(type(self.model.net).__name__, type(self.model.net).__name__)
        return dict(zip((net, "n-gram model"), self.model.wide.mix.tolist(), strict=True))


def checked_attribution(attribution: str, net: str) -> str:
    """An attribution a net (its class name) can give, or one line saying why not."""
    if attribution not in ATTRIBUTIONS:
        raise HdcError(f"attribution={attribution!r}: expected one of {list(ATTRIBUTIONS)}")
    if attribution == "gradient" and net != HAN.__name__:
        raise HdcError(f"attribution=gradient reads a HAN's embedded words; this model's net is {net}")
    return attribution


def word_gradients(net: HAN, batch, labels: torch.Tensor) -> torch.Tensor:
    """Gradient x input: for each document's `labels` logit in the HAN, its gradient on each embedded
    word dotted with that embedding, [sentences, words] (0 on padding). Documents do not touch one
    another in a batch (padding changes no output), so one backward pass gives every document's."""
    embedded = []
    handle = net.embedding.register_forward_hook(lambda module, inputs, output: embedded.append(output))
    try:
        with torch.enable_grad():
            logits = net(*batch.inputs).logits
            (gradient,) = torch.autograd.grad(logits.gather(1, labels[:, None]).sum(), embedded[0])
    finally:
        handle.remove()
    values = (gradient * embedded[0]).sum(-1).detach().float()
    words = torch.arange(batch.word_ids.size(1), device=values.device) < batch.word_counts[:, None]
    return values.new_zeros(words.shape).masked_scatter(words, values)


def top_ngrams(
    spans: torch.Tensor, contributions: torch.Tensor, words: list[list[str]], labels: dict[str, int], top: int
) -> dict[str, list[NgramContribution]]:
    """One document's n-grams (occurrences as Predictor._occurrences gives them; `words`: its sentences'
    words) summed by their text, and for each label (name: its column) the `top` whose contributions
    are largest either way, largest first; an n-gram that adds nothing (IDF 0: unknown to the model) is left out."""
    found: dict[str, tuple[list, list]] = {}  # n-gram -> (its occurrences, their contributions)
    for (sentence, start, size), contribution in zip(
        spans.tolist(), contributions[:, list(labels.values())], strict=True
    ):
        places, adds = found.setdefault(" ".join(words[sentence][start : start + size]), ([], []))
        places.append([sentence, start, size])
        adds.append(contribution)
    sums = {ngram: torch.stack(adds).sum(0).tolist() for ngram, (_, adds) in found.items()}
    result = {}
    for i, label in enumerate(labels):
        ranked = sorted(found, key=lambda ngram: -abs(sums[ngram][i]))
        result[label] = [NgramContribution(ngram, sums[ngram][i], found[ngram][0]) for ngram in ranked[:top]
                         if sums[ngram][i] != 0]  # fmt: skip
    return result


def load(
    path: str | Path, device: str | torch.device = "cpu", precision: str = "32-true", attribution: str = "attention"
) -> Predictor:
    """A Predictor from an hdc checkpoint (read with weights_only=True: no pickled code runs)."""
    return Predictor(load_classifier(path, device), device, precision=precision, attribution=attribution)
