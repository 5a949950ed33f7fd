"""What a prediction is: labels, probabilities and the reading behind them, as plain values (JSON by
to_dict and back by from_dict). hdc.inference.predictor makes them, hdc.inference.explain fills their
explanations, and the heatmap page and serve.py draw them."""

from dataclasses import asdict, dataclass, field


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
