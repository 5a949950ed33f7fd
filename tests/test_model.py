import pytest
import torch

from hdc.data.batching import batch_of
from hdc.models.han import HAN, Level, packing

VOCAB = 50


def random_documents(generator: torch.Generator, count: int) -> list[list[list[int]]]:
    def randint(low, high):
        return int(torch.randint(low, high, (1,), generator=generator))

    return [
        [torch.randint(1, VOCAB, (randint(1, 12),), generator=generator).tolist() for _ in range(randint(1, 7))]
        for _ in range(count)
    ]


def run(model, documents):
    batch = batch_of(documents, [0] * len(documents))
    return model(batch.word_ids, batch.word_counts, batch.sentence_counts)


TRANSFORMER = {"word_encoder": "transformer", "sentence_encoder": "transformer", "transformer_heads": 2}
VARIANTS = {"han": {}, "mean": {"word_pooling": "mean", "sentence_pooling": "mean"},
            "max": {"word_pooling": "max", "sentence_pooling": "max"}, "flat": {"flat": True},
            "transformer": TRANSFORMER, "no encoder": {"word_encoder": "none", "sentence_encoder": "none"},
            "flat transformer": {"flat": True, **TRANSFORMER},
            "transformer segments": {**TRANSFORMER, "segment_length": 2},
            "flat transformer segments": {"flat": True, **TRANSFORMER, "segment_length": 5},
            "transformer cls": {**TRANSFORMER, "word_pooling": "cls", "sentence_pooling": "cls"},
            "flat transformer cls": {"flat": True, **TRANSFORMER, "word_pooling": "cls"}}  # fmt: skip


def make_model(variant: str = "han") -> HAN:
    torch.manual_seed(0)
    sizes = dict(embedding_dim=16, word_hidden_size=8, sentence_hidden_size=8, attention_size=10)
    return HAN(VOCAB, num_classes=3, **sizes, **VARIANTS[variant]).eval()


def test_shapes():
    documents = random_documents(torch.Generator().manual_seed(1), 5)
    logits, word_weights, sentence_weights = run(make_model(), documents)
    sentences = sum(len(d) for d in documents)
    assert logits.shape == (5, 3)
    assert word_weights.shape == (sentences, max(len(s) for d in documents for s in d))
    assert sentence_weights.shape == (5, max(len(d) for d in documents))


@pytest.mark.parametrize("variant", VARIANTS)
def test_padding_does_not_change_any_output(variant):
    """Each document alone (no padding) gives the same logits and attention as inside a padded batch."""
    model = make_model(variant)
    documents = random_documents(torch.Generator().manual_seed(2), 8)
    with torch.no_grad():
        batch_logits, batch_words, batch_sentences = run(model, documents)
        first_sentence = 0
        for i, document in enumerate(documents):
            logits, words, sentences = run(model, [document])
            torch.testing.assert_close(batch_logits[i], logits[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(batch_sentences[i, : len(document)], sentences[0], atol=1e-6, rtol=0)
            rows = batch_words[first_sentence : first_sentence + len(document)]
            torch.testing.assert_close(rows[:, : words.size(1)], words, atol=1e-6, rtol=0)
            first_sentence += len(document)


def test_extra_padding_columns_change_nothing():
    model = make_model()
    batch = batch_of(random_documents(torch.Generator().manual_seed(3), 4), [0] * 4)
    padded_ids = torch.nn.functional.pad(batch.word_ids, (0, 7))  # 7 more PAD columns
    with torch.no_grad():
        logits, _, _ = model(batch.word_ids, batch.word_counts, batch.sentence_counts)
        padded_logits, _, _ = model(padded_ids, batch.word_counts, batch.sentence_counts)
    torch.testing.assert_close(logits, padded_logits, atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_sum_to_one_per_unit_and_are_zero_on_padding(variant):
    documents = random_documents(torch.Generator().manual_seed(4), 6)
    batch = batch_of(documents, [0] * 6)
    with torch.no_grad():
        _, word_weights, sentence_weights = make_model(variant)(
            batch.word_ids, batch.word_counts, batch.sentence_counts
        )
    word_real = torch.arange(word_weights.size(1)) < batch.word_counts[:, None]
    sentence_real = torch.arange(sentence_weights.size(1)) < batch.sentence_counts[:, None]
    assert torch.all(word_weights[~word_real] == 0) and torch.all(sentence_weights[~sentence_real] == 0)
    torch.testing.assert_close(sentence_weights.sum(1), torch.ones(len(sentence_weights)))
    if variant.startswith("flat"):  # word weights sum to 1 per document, and make up the sentence weights
        torch.testing.assert_close(word_weights.sum(1), sentence_weights[sentence_real])
    else:
        torch.testing.assert_close(word_weights.sum(1), torch.ones(len(word_weights)))
    if variant != "max":  # max pooling gives 0 to items that hold no feature's maximum
        assert torch.all(word_weights[word_real] > 0)


@pytest.mark.parametrize("variant", ["mean", "flat", "transformer", "transformer cls"])
def test_ablations_differ_from_the_han(variant):
    batch = batch_of(random_documents(torch.Generator().manual_seed(6), 3), [0] * 3)
    with torch.no_grad():
        han, variant_out = (
            make_model(v)(batch.word_ids, batch.word_counts, batch.sentence_counts) for v in ("han", variant)
        )
    assert not torch.allclose(han[0], variant_out[0])
    if variant == "mean":  # equal weights within each sentence
        row = batch.word_counts[0]
        torch.testing.assert_close(variant_out[1][0, :row], torch.full((int(row),), 1 / row))


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_are_finite_and_reach_the_embedding(variant):
    model = make_model(variant).train()
    logits, _, _ = run(model, random_documents(torch.Generator().manual_seed(5), 4))
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.embedding.weight.grad.abs().sum() > 0
    assert torch.all(model.embedding.weight.grad[0] == 0)  # the PAD row never learns


def test_packing_matches_torch_pack_padded_sequence():
    lengths = torch.tensor([3, 1, 4, 4, 2])
    flat = torch.arange(int(lengths.sum()))  # item i stored flat, unit after unit
    padded = torch.nn.utils.rnn.pad_sequence(list(flat.split(lengths.tolist())), batch_first=True)
    expected = torch.nn.utils.rnn.pack_padded_sequence(padded, lengths, batch_first=True, enforce_sorted=False)
    rows, units, batch_sizes, sorted_units = packing(lengths)
    assert torch.equal(flat[rows], expected.data) and torch.equal(batch_sizes, expected.batch_sizes)
    assert torch.equal(sorted_units, expected.sorted_indices)
    assert torch.equal(units, torch.repeat_interleave(torch.arange(5), lengths)[rows])  # each row's unit


def attended_lengths(model, documents) -> list[int]:
    """The key lengths every self-attention call of one forward pass saw."""
    lengths = []
    hooks = [module.register_forward_pre_hook(lambda _, args: lengths.append(args[1].size(1)))
             for module in model.modules() if isinstance(module, torch.nn.MultiheadAttention)]  # fmt: skip
    with torch.no_grad():
        run(model, documents)
    for hook in hooks:
        hook.remove()
    return lengths


def test_segment_recurrence_bounds_attention_and_is_none_with_one_segment():
    long_document = [[[5, 6, 7]] * 40]  # 40 sentences
    models = {s: make_model("transformer") for s in (None, 4, 1000)}  # the same seed: the same weights
    for segment, model in models.items():
        model.sentences.segment_length = segment
    assert max(attended_lengths(models[None], long_document)) == 40
    assert max(attended_lengths(models[4], long_document)) == 8  # a segment and the one before it
    with torch.no_grad():
        whole, one_segment, segments = (run(models[s], long_document)[0] for s in (None, 1000, 4))
    assert torch.equal(whole, one_segment) and not torch.allclose(whole, segments)


def test_segment_recurrence_passes_no_gradient_through_its_memory():
    torch.manual_seed(0)
    level = Level(8, 4, 10, encoder="transformer", heads=2, segment_length=2)
    items = torch.randn(6, 8, requires_grad=True)  # one unit of 6 items: segments [0, 1], [2, 3], [4, 5]
    lengths = torch.tensor([6])
    encoded, _, _ = level._self_attention(items, torch.zeros(6, dtype=torch.long), lengths)  # [1 unit, 6, size]
    encoded[0, 4:].sum().backward()  # the last segment, which attended to [2, 3] through the cache
    assert torch.all(items.grad[:4] == 0) and torch.all(items.grad[4:].abs().sum(1) > 0)


@pytest.mark.parametrize(
    "options", [{"pooling": "cls"}, {"pooling": "cls", "encoder": "transformer", "segment_length": 4}]
)
def test_cls_pooling_needs_a_transformer_level_without_segments(options):
    with pytest.raises(ValueError, match="cls pooling needs a transformer level"):
        Level(8, 4, 10, **options)
