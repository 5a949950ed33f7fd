"""The fastText baseline (model=fasttext): a bag of words and bigrams, read from the HAN's batches."""

import math
from collections import Counter

import pytest
import torch

from hdc.checkpoint import read_checkpoint
from hdc.data.batching import batch_of
from hdc.data.encoded import EncodedDocuments
from hdc.errors import HdcError
from hdc.models.fasttext import FastText


def run(model, documents):
    batch = batch_of(documents, [0] * len(documents))
    return model(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)


def model() -> FastText:
    torch.manual_seed(0)
    net = FastText(vocab_size=50, num_classes=3, embedding_dim=8, buckets=101).eval()
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


def test_rows_are_weighed_by_their_idf_in_training_documents_and_bags_normalised():
    net = model()
    training = DOCUMENTS + DOCUMENTS[:2]  # the third document's n-grams are held by 1 document, the rest by 2
    encoded = EncodedDocuments.from_documents(training, [0] * len(training))
    net.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
    documents_holding = Counter()  # counted by hand: words, and bigrams within sentences
    for document in training:
        sentences = [sentence for paragraph in document for sentence in paragraph]
        rows = {w for s in sentences for w in s} | {
            int(net.bigrams(a, b)) for s in sentences for a, b in zip(s, s[1:], strict=False)
        }
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
    # a bag of n-grams training never held twice: the zero vector, not a division by zero
    torch.testing.assert_close(run(net, [[[[12, 13]]]])[0], net.classifier(torch.zeros(1, 8)))


def test_a_linear_bag_fitted_exactly_separates_what_it_can():
    torch.manual_seed(0)
    net = FastText(vocab_size=50, num_classes=3, embedding_dim=None, buckets=101)
    documents = [[[[5 + label, 20 + i % 4]]] for i in range(30) for label in range(3)]  # word 5+label tells
    labels = [label for _ in range(30) for label in range(3)]
    encoded = EncodedDocuments.from_documents(documents, labels)
    net.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
    net.fit([batch_of(documents[:45], labels[:45]), batch_of(documents[45:], labels[45:])])
    logits = run(net, documents)[0]
    assert logits.argmax(1).tolist() == labels
    assert net.embedding.weight[30:].abs().sum() > 0  # bigram rows too
    assert net.embedding.weight[40:50].abs().sum() == 0  # rows no document holds stay 0
    with pytest.raises(ValueError, match="only a linear bag"):
        model().fit([])


def test_bags_saved_before_the_new_bigram_hash_keep_their_features():
    old = model()
    state = {k: v for k, v in old.state_dict().items() if k != "features"}  # as saved before 2026-11-27
    loaded = FastText(vocab_size=50, num_classes=3, embedding_dim=8, buckets=101)
    loaded.load_state_dict(state)
    assert loaded.legacy and int(loaded.bigrams(torch.tensor(2), torch.tensor(5))) == 50 + (2 * 1_000_003 + 5) % 101
    assert not old.legacy and int(old.bigrams(torch.tensor(2), torch.tensor(5))) == 50 + (2 * 116_049_371 + 5) % 101
    today = FastText(vocab_size=50, num_classes=3, embedding_dim=8, buckets=101)
    today.load_state_dict(old.state_dict())
    assert not today.legacy


def test_a_fasttext_checkpoint_from_before_tf_idf_bags_is_one_line(tmp_path):
    path = tmp_path / "mean_bag.ckpt"
    state = {"net.embedding.weight": torch.zeros(3, 2)}  # no net.idf: it averaged its rows
    torch.save({"hdc": {}, "state_dict": state, "hyper_parameters": {"net": "fasttext"}}, path)
    with pytest.raises(HdcError, match="from before its bags were TF-IDF weighted"):
        read_checkpoint(path)


LABELS = torch.tensor([0, 1, 2, 1])
RIGHT = torch.nn.functional.one_hot(LABELS, 3).float()  # a margin of 1 for each document's label
WRONG = torch.nn.functional.one_hot((LABELS + 1) % 3, 3).float()  # ... for another class


@pytest.mark.parametrize(
    "net, bag, chosen",
    [
        # Documents 0-1: the net right by 3, the bag wrong by 1; 2-3: the bag right by 2, the net wrong by
        # 1. Mixes (0.3, 0.7) to (0.6, 0.4) answer all four right; accuracy (ties: the most even) and the
        # unscaled cross-entropy take (0.5, 0.5); at the grid's top scale (8), where these separable
        # answers' losses are lowest, the widest margins win: (0.4, 0.6).
        (torch.cat([3 * RIGHT[:2], WRONG[2:]]), torch.cat([WRONG[:2], 2 * RIGHT[2:]]), (0.4, 0.6)),
        # An under-confident bag, right on all four by 0.5; the net right by 4 on three, wrong by 4 on
        # the fourth. The unscaled cross-entropy would take (0.3, 0.7), sharpening the bag with the net
        # at the price of one answer; calibrated, the bag alone is best.
        (torch.cat([4 * RIGHT[:3], 4 * WRONG[3:]]), 0.5 * RIGHT, (0.0, 1.0)),
    ],
    ids=["both-parts", "under-confident-bag"],
)
def test_the_wide_terms_mix_is_chosen_on_validation_and_scores_the_epoch(monkeypatch, net, bag, chosen):
    """HANClassifier(wide=True) chooses the mix of the lowest validation cross-entropy at its best scale;
    the epoch's validation metrics are those of that mix (all right), not of the mix it validated with
    (the net alone)."""
    from hdc.module import SCALES, HANClassifier

    model = HANClassifier(vocab_size=50, label_names=["a", "b", "c"], wide=True)
    assert model.mix.tolist() == [0.5, 0.5]
    model.mix.copy_(torch.tensor([1.0, 0.0]))
    logged = {}
    monkeypatch.setattr(model, "log", lambda name, value, **_: logged.update({name: float(value)}))
    computed = lambda values, **_: logged.update({k: float(v.compute()) for k, v in values.items()})  # noqa: E731
    monkeypatch.setattr(model, "log_dict", computed)
    monkeypatch.setattr(model, "_outputs", lambda batch, **_: (net, None, None, bag))
    batch = type("Batch", (), {"labels": LABELS, "__len__": lambda self: 4})()
    model.on_validation_epoch_start()
    for _ in range(2):
        model._step(batch, "val")
    model._choose_mix()
    assert model.mix.tolist() == pytest.approx(chosen)
    assert logged["val/acc"] == 1.0 and logged["val/mix_net"] == pytest.approx(chosen[0])
    answer = chosen[0] * net + chosen[1] * bag
    calibrated = min(torch.nn.functional.cross_entropy(scale * answer, LABELS).item() for scale in SCALES)
    assert logged["val/mix_loss"] == pytest.approx(calibrated)
    assert model.val_confusion.compute().trace() == 8  # the epoch's 8 answers, with the chosen mix
    assert model.forward(batch)[0].argmax(1).tolist() == LABELS.tolist()


def test_a_fitted_wide_term_is_not_read_in_training(monkeypatch):
    """It is not trained, and it knows its training documents by heart: training reads the net alone
    (train/acc is the net's), validation both parts."""
    from hdc.module import HANClassifier

    model = HANClassifier(vocab_size=50, label_names=["a", "b", "c"], wide=True)
    monkeypatch.setattr(model, "log", lambda *args, **kwargs: None)
    monkeypatch.setattr(model, "log_dict", lambda *args, **kwargs: None)
    monkeypatch.setattr(model.net, "forward", lambda *inputs: (4 * RIGHT, None, None))
    calls = []
    monkeypatch.setattr(model.wide, "forward", lambda *inputs: calls.append(1) or (-4 * RIGHT, None, None))
    batch = type("Batch", (), {"labels": LABELS, "__len__": lambda self: 4, "word_ids": None, "word_counts": None,
                               "sentence_counts": None, "paragraph_sizes": None})()  # fmt: skip
    _, logits = model._step(batch, "train")
    assert calls == [] and torch.equal(logits, 4 * RIGHT)
    assert model.train_metrics["acc"].compute() == 1.0  # the net's answers, all right
    model._step(batch, "val")
    assert calls == [1]
