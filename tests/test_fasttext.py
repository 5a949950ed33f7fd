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
    encoded = EncodedDocuments.from_documents(DOCUMENTS, [0, 0, 0])
    net.set_idf(encoded.token_ids, encoded.sentence_starts, encoded.document_starts)
    documents_holding = Counter()  # counted by hand: words, and bigrams within sentences
    for document in DOCUMENTS:
        sentences = [sentence for paragraph in document for sentence in paragraph]
        rows = {w for s in sentences for w in s} | {
            int(net.bigrams(a, b)) for s in sentences for a, b in zip(s, s[1:], strict=False)
        }
        documents_holding.update(rows)
    expected = torch.ones(151, dtype=torch.float64)
    for row, count in documents_holding.items():
        expected[row] = math.log(4 / (1 + count)) + 1
    expected[[i for i in range(151) if i not in documents_holding]] = math.log(4) + 1
    torch.testing.assert_close(net.idf.double(), expected, rtol=1e-6, atol=1e-6)
    # a bag is its rows' embeddings weighted by IDF / the weights' norm: one row of weight 1 for "11"
    logits = run(net, [[[[11]]]])[0]
    torch.testing.assert_close(logits, net.classifier(net.embedding.weight[11:12]))


def test_a_fasttext_checkpoint_from_before_tf_idf_bags_is_one_line(tmp_path):
    path = tmp_path / "mean_bag.ckpt"
    state = {"net.embedding.weight": torch.zeros(3, 2)}  # no net.idf: it averaged its rows
    torch.save({"hdc": {}, "state_dict": state, "hyper_parameters": {"net": "fasttext"}}, path)
    with pytest.raises(HdcError, match="from before its bags were TF-IDF weighted"):
        read_checkpoint(path)
