"""Why a model answered as it did: gradient x input on the HAN's words, the wide term's n-grams that
decided its part, and ERASER's measures of how faithful a ranking of sentences or words is
(comprehensiveness and sufficiency, DeYoung et al. 2020). hdc.inference.predictor and scripts/faithfulness.py
read them from here."""

import math
import random

import torch

from hdc.data.batching import batch_of
from hdc.errors import HdcError
from hdc.inference.answers import answers
from hdc.models.han import HAN
from hdc.prediction import NgramContribution

ATTRIBUTIONS = ("attention", "gradient")  # what shades the words: the HAN's attention, or gradient x input


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


# ERASER: erase a ranking's top sentences or words (10%, 20%, 50% of them) and see what the answer loses
# (comprehensiveness) or keeps with them alone (sufficiency).
FRACTIONS = (0.1, 0.2, 0.5)
METHODS = ("attention", "random", "gradient x input")


def flat(document) -> list[tuple[int, int, int]]:
    """(paragraph, sentence, word) of every word of an encoded document (paragraphs of sentences of ids)."""
    return [(p, s, w) for p, paragraph in enumerate(document) for s, sentence in enumerate(paragraph)
            for w in range(len(sentence))]  # fmt: skip


def kept(document, keep, empty):
    """The document with only the (paragraph, sentence) or (paragraph, sentence, word) places in `keep`
    (a predicate); empty sentences and paragraphs dropped; `empty` if nothing is left."""
    paragraphs = []
    for p, paragraph in enumerate(document):
        sentences = [[i for w, i in enumerate(sentence) if keep(p, s, w)] for s, sentence in enumerate(paragraph)]
        sentences = [sentence for sentence in sentences if sentence]
        if sentences:
            paragraphs.append(sentences)
    return paragraphs or empty


class Reader:
    """A checkpoint's model, read for its probabilities, attention and gradients on encoded documents."""

    def __init__(self, model):
        self.model, self.task, self.rng = model, model.task, random.Random(0)

    def probabilities(self, documents, part: str) -> torch.Tensor:
        """[documents, labels]: the HAN's own ("net") or the answer's ("answer")."""
        chunks = (documents[start : start + 64] for start in range(0, len(documents), 64))
        batches = (batch_of(chunk, [0] * len(chunk)) for chunk in chunks)
        rows = [answer.parts["net"] if part == "net" else answer.logits for _, answer in answers(self.model, batches)]
        return self.task.probabilities(torch.cat(rows))

    def scores(self, document, label: int) -> dict[str, dict[str, dict]]:
        """{"sentence"|"word": {method: {place: score}}}: higher, more important, for `label`."""
        batch = batch_of([document], [0])
        with torch.no_grad():
            net = self.model.net(*batch.inputs)
        words, shares = net.word_weights, net.sentences_for(torch.tensor([label]))[0]  # label attention: its own
        gradients = word_gradients(self.model.net, batch, torch.tensor([label]))
        places = flat(document)
        sentences = sorted({(p, s) for p, s, _ in places})
        rng = self.rng
        sentence_scores = {
            "attention": {place: float(shares[i]) for i, place in enumerate(sentences)},
            "random": {place: rng.random() for place in sentences},
            "gradient x input": {place: 0.0 for place in sentences},
        }
        word_scores = {"attention": {}, "random": {}, "gradient x input": {}}
        row_of = {place: i for i, place in enumerate(sentences)}
        for p, s, w in places:
            row = row_of[p, s]
            word_scores["attention"][p, s, w] = float(shares[row] * words[row, w])
            word_scores["random"][p, s, w] = rng.random()
            word_scores["gradient x input"][p, s, w] = float(gradients[row, w])
            sentence_scores["gradient x input"][p, s] += float(gradients[row, w])
        return {"sentence": sentence_scores, "word": word_scores}


def measure(reader: Reader, documents, empty, part: str) -> dict:
    """Mean comprehensiveness and sufficiency per level and method, for `part` ("net" or "answer")."""
    full = reader.probabilities(documents, part)
    labels = full.argmax(1).tolist()
    erased = {}  # (level, method, fraction, "without"|"only") -> documents
    for document, label in zip(documents, labels, strict=True):
        for level, by_method in reader.scores(document, label).items():
            for method, scores in by_method.items():
                ranked = sorted(scores, key=lambda place: -scores[place])
                for fraction in FRACTIONS:
                    top = set(ranked[: max(1, math.ceil(fraction * len(ranked)))])
                    if level == "sentence":

                        def inside(p, s, w, top=top):
                            return (p, s) in top
                    else:

                        def inside(p, s, w, top=top):
                            return (p, s, w) in top

                    erased.setdefault((level, method, fraction, "without"), []).append(
                        kept(document, lambda p, s, w, inside=inside: not inside(p, s, w), empty)
                    )
                    erased.setdefault((level, method, fraction, "only"), []).append(kept(document, inside, empty))
    index = torch.arange(len(documents)), torch.tensor(labels)
    before = full[index]
    results = {}
    for level in ("sentence", "word"):
        for method in METHODS:
            comprehensiveness, sufficiency = [], []
            for fraction in FRACTIONS:
                comprehensiveness.append(
                    before - reader.probabilities(erased[level, method, fraction, "without"], part)[index]
                )
                sufficiency.append(before - reader.probabilities(erased[level, method, fraction, "only"], part)[index])
            results.setdefault(level, {})[method] = {
                "comprehensiveness": float(torch.stack(comprehensiveness).mean()),
                "sufficiency": float(torch.stack(sufficiency).mean()),
            }
    return results
