"""The fastText baseline (model=fasttext): a bag of words and bigrams, read from the HAN's batches."""

import math
from collections import Counter
from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from hdc.classifier.module import DocumentClassifier
from hdc.data.batching import batch_of
from hdc.data.encoded import EncodedDocuments
from hdc.errors import HdcError
from hdc.models import NetOutput
from hdc.models.fasttext import FastText
from hdc.models.wide import MIXES, SCALES, WideTerm, _log_count_ratios, choose_mix, mix_losses, mixed
from tests.conftest import train_in_process


def run(model, documents) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The net's logits, word weights and sentence weights for `documents`."""
    batch = batch_of(documents, [0] * len(documents))
    out = model(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
    return out.logits, out.word_weights, out.sentence_weights


def model(ngrams: int = 2) -> FastText:
    torch.manual_seed(0)
    net = FastText(vocab_size=50, num_classes=3, embedding_dim=8, buckets=101, ngrams=ngrams).eval()
    torch.nn.init.normal_(net.embedding.weight)  # as after training: every row its own (it starts at zero)
    return net


DOCUMENTS = [[[[5, 6, 7], [8]], [[9, 10]]], [[[11]]], [[[12, 13], [14, 15, 16, 17]]]]


def test_a_document_is_its_bag_of_words_and_bigrams():
    net = model()
    logits, word_weights, sentence_weights = run(net, DOCUMENTS)
    alone = torch.cat([run(net, [document])[0] for document in DOCUMENTS])
    torch.testing.assert_close(logits, alone)  # batching and padding change nothing
    sentences_swapped = [[[[9, 10]], [[8], [5, 6, 7]]]]
    torch.testing.assert_close(run(net, sentences_swapped)[0], logits[:1])  # no order beyond bigrams...
    words_swapped = [[[[6, 5, 7], [8]], [[9, 10]]]]
    assert not torch.allclose(run(net, words_swapped)[0], logits[:1])  # ...but bigrams see neighbours
    expected = torch.tensor([1, 1, 1.0])
    torch.testing.assert_close(sentence_weights.sum(1), expected)
    torch.testing.assert_close(word_weights.sum(1)[:2], torch.tensor([1 / 6 * 3, 1 / 6]))


def test_bigram_rows_stay_in_their_buckets_and_gradients_reach_them():
    net = model().train()
    logits, _, _ = run(net, DOCUMENTS)
    logits.sum().backward()
    grad = net.embedding.weight.grad
    assert grad[50:].abs().sum(1).nonzero().numel() > 0  # bigram rows were used
    rows = net.bigrams(torch.tensor([49, 0, 10**6]), torch.tensor([49, 3, 10**6]))
    assert ((rows >= 50) & (rows < 151)).all()


@pytest.mark.parametrize("ngrams", [2, 3])
def test_rows_are_weighed_by_their_idf_in_training_documents_and_bags_normalised(ngrams):
    net = model(ngrams)
    training = DOCUMENTS + DOCUMENTS[:2]  # the third document's n-grams are held by 1 document, the rest by 2
    encoded = EncodedDocuments.from_documents(training, [0] * len(training))
    net.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
    documents_holding = Counter()  # counted by hand: words, and bigrams (trigrams) within sentences
    for document in training:
        sentences = [sentence for paragraph in document for sentence in paragraph]
        rows = {w for s in sentences for w in s} | {
            int(net.bigrams(a, b)) for s in sentences for a, b in zip(s, s[1:], strict=False)
        }
        if ngrams == 3:
            rows |= {int(net.trigrams(*t)) for s in sentences for t in zip(s, s[1:], s[2:], strict=False)}
        documents_holding.update(rows)
    expected = torch.zeros(151, dtype=torch.float64)  # rows held by fewer than 2 documents weigh nothing
    for row, count in documents_holding.items():
        expected[row] = math.log(6 / (1 + count)) + 1 if count >= 2 else 0.0
    assert (expected > 0).sum() > 5 and (expected[[12, 13, 14]] == 0).all()
    torch.testing.assert_close(net.idf.double(), expected, rtol=1e-6, atol=1e-6)
    # a bag is its rows' embeddings weighted by sublinear TF x IDF / the vector's norm: one row of
    # weight 1 for "11", also for "11 11" (the bigram was never seen); two equal weights for "5 11"
    for document in ([[[11]]], [[[11, 11]]]):
        torch.testing.assert_close(run(net, [document])[0], net.classifier(net.embedding.weight[11:12]))
    both = (net.embedding.weight[5] * net.idf[5] + net.embedding.weight[11] * net.idf[11]) / net.idf[[5, 11]].norm()
    torch.testing.assert_close(run(net, [[[[5, 11]]]])[0], net.classifier(both[None]))
    # a bag of n-grams training never held twice: the zero vector, not a division by zero (16 17: its
    # bigram hashes to a row no trigram shares, in either setting)
    torch.testing.assert_close(run(net, [[[[16, 17]]]])[0], net.classifier(torch.zeros(1, 8)))


def test_a_linear_bag_fitted_exactly_separates_what_it_can():
    torch.manual_seed(0)
    wide = WideTerm(vocab_size=50, num_classes=3, buckets=101)
    documents = [[[[5 + label, 20 + i % 4]]] for i in range(30) for label in range(3)]  # word 5+label tells
    labels = [label for _ in range(30) for label in range(3)]
    encoded = EncodedDocuments.from_documents(documents, labels)
    wide.bag.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
    wide.fit([batch_of(documents[:45], labels[:45]), batch_of(documents[45:], labels[45:])])
    logits = wide(*batch_of(documents, labels).inputs)
    assert logits.argmax(1).tolist() == labels
    assert wide.bag.embedding.weight[30:].abs().sum() > 0  # bigram rows too
    assert wide.bag.embedding.weight[40:50].abs().sum() == 0  # rows no document holds stay 0


def test_naive_bayes_ratios_are_the_log_count_ratios_and_favour_the_ngrams_that_tell_labels_apart():
    """NBSVM's ratio of an n-gram for a label: log((p / |p|1) / (q / |q|1)), p and q its document counts
    with and without the label plus 1; for label indices and for label sets alike."""
    bags = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 2.0]]).to_sparse().coalesce()
    by_hand = torch.tensor([[2, 3, 1], [1, 1, 2]]).float()  # label 0 holds documents 0-1: counts + 1, per label
    others = torch.tensor([[1, 1, 2], [2, 3, 1]]).float()
    expected = torch.log(by_hand / by_hand.sum(1, keepdim=True)) - torch.log(others / others.sum(1, keepdim=True))
    torch.testing.assert_close(_log_count_ratios(bags, torch.tensor([0, 0, 1]), 2), expected.t())
    torch.testing.assert_close(_log_count_ratios(bags, torch.tensor([[1, 0], [1, 0], [0, 1]]), 2), expected.t())
    # fitted with the ratios: the telling words carry the answer, the shared ones weigh less than in a plain fit
    documents = [[[[5 + label, 20 + i % 4]]] for i in range(30) for label in range(3)]
    labels = [label for _ in range(30) for label in range(3)]
    encoded = EncodedDocuments.from_documents(documents, labels)
    weights = {}
    for naive_bayes in (False, True):
        wide = WideTerm(vocab_size=50, num_classes=3, buckets=101, naive_bayes=naive_bayes)
        wide.bag.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
        wide.fit([batch_of(documents, labels)])
        assert wide(*batch_of(documents, labels).inputs).argmax(1).tolist() == labels
        weights[naive_bayes] = wide.bag.embedding.weight
    assert weights[True][20:24].abs().sum() < weights[False][20:24].abs().sum() / 2


@pytest.mark.parametrize("ngrams", [2, 3])
def test_the_wide_terms_contributions_are_its_ngrams_where_they_are_and_sum_to_its_logits(ngrams):
    """What explains the n-gram model's answer: each occurrence's span holds the n-gram whose row it
    read, and a document's contributions plus the bias are its logits."""
    torch.manual_seed(0)
    wide = WideTerm(vocab_size=50, num_classes=3, buckets=101, ngrams=ngrams)
    torch.nn.init.normal_(wide.bag.embedding.weight)
    torch.nn.init.normal_(wide.bag.bias)
    encoded = EncodedDocuments.from_documents(DOCUMENTS * 2, [0] * 6)
    wide.bag.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
    batch = batch_of(DOCUMENTS, [0] * 3)
    ids, owners, _, spans = wide.bag.terms(*batch.inputs[:3], spans=True)
    row, start, size = spans.unbind(1)
    words = [batch.word_ids[row, (start + i).clamp(max=batch.word_ids.size(1) - 1)] for i in range(3)]
    pairs, triples = wide.bag.bigrams(*words[:2]), wide.bag.trigrams(*words)
    assert torch.equal(torch.where(size == 1, words[0], torch.where(size == 2, pairs, triples)), ids)
    assert set(size.tolist()) == set(range(1, ngrams + 1))
    sentence_document = torch.repeat_interleave(torch.arange(3), batch.sentence_counts)
    assert torch.equal(sentence_document[row], owners)  # in its own document's sentences
    logits, (owners, _, contributions) = wide.explained(*batch.inputs)
    torch.testing.assert_close(torch.zeros(3, 3).index_add(0, owners, contributions) + wide.bag.bias,
                               wide(*batch.inputs))  # fmt: skip
    torch.testing.assert_close(logits, wide(*batch.inputs))  # the logits of the same reading


LABELS = torch.tensor([0, 1, 2, 1])
RIGHT = torch.nn.functional.one_hot(LABELS, 3).float()  # a margin of 1 for each document's label
WRONG = torch.nn.functional.one_hot((LABELS + 1) % 3, 3).float()  # ... for another class
# Documents 0-1: the net right by 3, the bag wrong by 1; 2-3: the bag right by 2, the net wrong by 1.
# Mixes (0.3, 0.7) to (0.6, 0.4) answer all four right; accuracy (ties: the most even) and the unscaled
# cross-entropy take (0.5, 0.5); at the grid's top scale (8), where these separable answers' losses are
# lowest, the widest margins win: (0.4, 0.6).
BOTH_PARTS = (torch.cat([3 * RIGHT[:2], WRONG[2:]]), torch.cat([WRONG[:2], 2 * RIGHT[2:]]), (0.4, 0.6))
# An under-confident bag, right on all four by 0.5; the net right by 4 on three, wrong by 4 on the
# fourth. The unscaled cross-entropy would take (0.3, 0.7), sharpening the bag with the net at the price
# of one answer; calibrated, the bag alone is best.
UNDER_CONFIDENT_BAG = (torch.cat([4 * RIGHT[:3], 4 * WRONG[3:]]), 0.5 * RIGHT, (0.0, 1.0))
CASES = pytest.mark.parametrize("net, bag, chosen", [BOTH_PARTS, UNDER_CONFIDENT_BAG], ids=["both", "under-confident"])


@CASES
def test_the_mix_of_the_lowest_calibrated_cross_entropy_is_chosen(net, bag, chosen):
    losses = mix_losses(net, bag, LABELS) / len(LABELS)
    assert choose_mix(losses) == chosen
    plain = losses[:, SCALES.index(1.0)]  # at scale 1 a different mix would win
    assert MIXES[int(plain.argmin())] != chosen


def test_a_diverged_part_ranks_last():
    losses = mix_losses(RIGHT, torch.full_like(RIGHT, float("nan")), LABELS)
    assert choose_mix(losses) == (1.0, 0.0)  # the net alone: the only mix the NaN bag does not reach


class Given(torch.nn.Module):
    """A net (or bag) whose answers are given: the document whose first word is 10 + i answers logits[i]."""

    def __init__(self, logits: torch.Tensor, vocab_size: int = 50, num_classes: int = 3):
        super().__init__()
        self.register_buffer("logits", logits)
        self.weight = torch.nn.Parameter(torch.zeros(()))  # something for an optimizer to hold
        self.calls = 0

    def forward(self, word_ids, word_counts, sentence_counts, paragraph_sizes):
        self.calls += 1
        first_sentences = torch.cumsum(sentence_counts, 0) - sentence_counts
        logits = self.logits[word_ids[first_sentences, 0] - 10] + self.weight
        return NetOutput(
            logits, torch.ones(word_ids.shape), torch.ones(len(sentence_counts), int(sentence_counts.max()))
        )


def given_model(net: torch.Tensor, bag: torch.Tensor) -> DocumentClassifier:
    model = DocumentClassifier(50, ["a", "b", "c"], partial(Given, logits=net), partial(WideTerm, buckets=101),
                               optimizer=partial(torch.optim.SGD, lr=0.0))  # fmt: skip
    model.wide.bag = Given(bag)
    return model


BATCH = batch_of([[[[10 + i]]] for i in range(4)], LABELS.tolist())


def loader(batches: int) -> DataLoader:
    return DataLoader([BATCH] * batches, batch_size=None, collate_fn=lambda batch: batch)


TRAINER = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


@CASES
def test_validation_chooses_the_mix_and_scores_the_epoch_with_it(net, bag, chosen):
    """The epoch's validation metrics are those of the mix chosen at its end (all right), not of the
    mix it validated with (the net alone)."""
    model = given_model(net, bag)
    model.wide.mix.copy_(torch.tensor([1.0, 0.0]))
    [logged] = L.Trainer(**TRAINER).validate(model, loader(2))
    assert model.wide.mix.tolist() == pytest.approx(chosen)
    assert logged["val/acc"] == 1.0 and logged["val/mix_net"] == pytest.approx(chosen[0])
    calibrated = min(F.cross_entropy(scale * (chosen[0] * net + chosen[1] * bag), LABELS).item() for scale in SCALES)
    assert logged["val/mix_loss"] == pytest.approx(calibrated)
    assert model.val_confusion.compute().trace() == 8  # the epoch's 8 answers, with the chosen mix
    assert model(BATCH).logits.argmax(1).tolist() == LABELS.tolist()


def test_a_test_run_reports_the_mix_it_answered_with():
    """test/mix_net is the tested weights' mix (a checkpoint's, chosen at its epoch); val/mix_net in a
    run's metrics.json is the last validation's, which differs when an earlier epoch was best."""
    model = given_model(torch.zeros(4, 3), torch.zeros(4, 3))
    model.wide.mix.copy_(torch.tensor([0.3, 0.7]))
    [logged] = L.Trainer(**TRAINER).test(model, loader(1))
    assert logged["test/mix_net"] == pytest.approx(0.3)


def test_a_fitted_wide_term_is_not_read_in_training():
    """It is not trained, and it knows its training documents by heart: training reads the net alone
    (train/acc is the net's), validation both parts."""
    model = given_model(4 * RIGHT, -4 * RIGHT)
    trainer = L.Trainer(max_steps=1, num_sanity_val_steps=0, **TRAINER)
    trainer.fit(model, loader(1), loader(1))
    assert model.wide.bag.calls == 1  # validation's one batch
    assert trainer.callback_metrics["train/acc"] == 1.0 and trainer.callback_metrics["val/acc_wide"] == 0.0


@pytest.mark.parametrize("mix", [(0.0, 1.0), (0.4, 0.6), (1.0, 0.0)])
def test_the_answer_is_the_mix_and_a_part_weighed_0_cannot_spread_a_nan(mix):
    wide = WideTerm(vocab_size=50, num_classes=3, buckets=101)
    wide.mix.copy_(torch.tensor(mix))
    net, bag = 3 * RIGHT, 2 * WRONG
    assert torch.equal(wide.answer(net, bag), mixed(net, bag, mix))
    nan = torch.full_like(RIGHT, float("nan"))
    assert torch.isfinite(wide.answer(nan, bag)).all() == (mix[0] == 0)
    assert torch.isfinite(wide.answer(net, nan)).all() == (mix[1] == 0)


def test_the_bag_is_as_wide_as_its_labels_need():
    """auto: fastText's 10 for two labels, 50 for more (10 numbers cannot tell 20 labels apart); a
    number as given; null: a linear model, one score per label in each row."""
    assert FastText(50, 2, buckets=11).embedding.weight.shape == (61, 10)
    assert FastText(50, 20, buckets=11).embedding.weight.shape == (61, 50)
    assert FastText(50, 20, embedding_dim=8, buckets=11).embedding.weight.shape == (61, 8)
    assert FastText(50, 20, embedding_dim=None, buckets=11).embedding.weight.shape == (61, 20)
    with pytest.raises(ValueError, match="embedding_dim='wide': a number, auto, or null"):
        FastText(50, 2, embedding_dim="wide", buckets=11)


@pytest.mark.parametrize("net", ["recipe=default model.wide.ngrams=4", "model=fasttext model.net.ngrams=1"])
def test_ngrams_other_than_2_or_3_are_one_line(tmp_path, data, net):
    with pytest.raises(HdcError, match=r"model: ngrams=\d: 2 \(words and bigrams\) or 3 \(and trigrams\)"):
        train_in_process(tmp_path, *data, *net.split())
