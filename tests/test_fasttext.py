"""The fastText baseline (model=fasttext): a bag of words and bigrams, read from the HAN's batches."""

import torch

from hdc.data.batching import batch_of
from hdc.models.fasttext import FastText


def run(model, documents):
    batch = batch_of(documents, [0] * len(documents))
    return model(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)


def model() -> FastText:
    torch.manual_seed(0)
    return FastText(vocab_size=50, num_classes=3, embedding_dim=8, buckets=101).eval()


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
