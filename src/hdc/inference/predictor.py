"""Inference: a trained checkpoint that reads raw text and answers with labels, probabilities and the
attention behind each one. `hdc.load("model.ckpt").predict(["text", ...])`; the predict.py command and
the attention callback go through `Predictor`, and the heatmap page draws its `Prediction`s.
"""

from collections.abc import Sequence
from pathlib import Path

import torch

from hdc.classifier.checkpoint import load_classifier
from hdc.classifier.module import DocumentClassifier
from hdc.data.batching import batch_of
from hdc.inference.answers import answers
from hdc.inference.explain import checked_attribution, top_ngrams, word_gradients
from hdc.precision import checked
from hdc.prediction import Prediction, Sentence


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
            [(batch, answer)] = answers(self.model, [batch_of(documents, [0] * len(chunk))], self.device,
                                        self.precision, explained=True)  # fmt: skip
            logits, parts = answer.logits, answer.parts
            occurrences = self._occurrences(batch, answer.occurrences)
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

    @staticmethod
    def _occurrences(batch, occurrences) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """Each document's n-gram occurrences in the wide term (`occurrences`: WideTerm.explained's, for
        the batch): (spans [occurrences, 3]: its sentence, counted from the document's first, first word,
        words; contributions [occurrences, labels]); None without a wide term."""
        if occurrences is None:
            return None
        owners, spans, contributions = (t.cpu() for t in occurrences)
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


def load(
    path: str | Path, device: str | torch.device = "cpu", precision: str = "32-true", attribution: str = "attention"
) -> Predictor:
    """A Predictor from an hdc checkpoint (read with weights_only=True: no pickled code runs)."""
    return Predictor(load_classifier(path, device), device, precision=precision, attribution=attribution)
