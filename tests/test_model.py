import pytest
import torch

from hdc.data.batching import batch_of
from hdc.models.han import HAN, Level, packing

VOCAB = 50


def random_documents(generator: torch.Generator, count: int) -> list[list[list[list[int]]]]:
    """Documents of 1-3 paragraphs of 1-4 sentences of 1-11 words."""

    def randint(low, high):
        return int(torch.randint(low, high, (1,), generator=generator))

    def sentence():
        return torch.randint(1, VOCAB, (randint(1, 12),), generator=generator).tolist()

    return [[[sentence() for _ in range(randint(1, 5))] for _ in range(randint(1, 4))] for _ in range(count)]


def run(model, documents) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The net's logits, word weights and sentence weights for `documents`."""
    batch = batch_of(documents, [0] * len(documents))
    out = model(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
    return out.logits, out.word_weights, out.sentence_weights


def levels(*units: str, **options) -> list[dict]:
    return [{"unit": unit, "hidden_size": 4, "attention_size": 10, **options} for unit in units]


TRANSFORMER = {"encoder": "transformer", "heads": 2}
VARIANTS = {"han": levels("sentence", "document"), "mean": levels("sentence", "document", pooling="mean"),
            "max": levels("sentence", "document", pooling="max"), "flat": levels("document"),
            "transformer": levels("sentence", "document", **TRANSFORMER),
            "no encoder": levels("sentence", "document", encoder="none"),
            "flat transformer": levels("document", **TRANSFORMER),
            "transformer segments": [*levels("sentence", **TRANSFORMER),
                                     *levels("document", **TRANSFORMER, segment_length=2)],
            "flat transformer segments": levels("document", **TRANSFORMER, segment_length=5),
            "transformer cls": levels("sentence", "document", **TRANSFORMER, pooling="cls"),
            "flat transformer cls": levels("document", **TRANSFORMER, pooling="cls"),
            "3 levels": levels("sentence", "paragraph", "document"),
            "3 levels transformer": levels("sentence", "paragraph", "document", **TRANSFORMER),
            "3 levels mixed": [*levels("sentence"), *levels("paragraph", **TRANSFORMER, pooling="cls"),
                               *levels("document", pooling="max")],
            "words to paragraphs": levels("paragraph", "document")}  # fmt: skip


def make_model(variant: str = "han") -> HAN:
    torch.manual_seed(0)
    return HAN(VOCAB, num_classes=3, embedding_dim=16, levels=VARIANTS[variant]).eval()


def test_shapes():
    documents = random_documents(torch.Generator().manual_seed(1), 5)
    logits, word_weights, sentence_weights = run(make_model(), documents)
    sentences = [sentence for document in documents for paragraph in document for sentence in paragraph]
    assert logits.shape == (5, 3)
    assert word_weights.shape == (len(sentences), max(map(len, sentences)))
    assert sentence_weights.shape == (5, max(sum(map(len, document)) for document in documents))


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
            torch.testing.assert_close(batch_sentences[i, : sentences.size(1)], sentences[0], atol=1e-6, rtol=0)
            rows = batch_words[first_sentence : first_sentence + len(words)]
            torch.testing.assert_close(rows[:, : words.size(1)], words, atol=1e-6, rtol=0)
            first_sentence += len(words)


def test_extra_padding_columns_change_nothing():
    model = make_model()
    batch = batch_of(random_documents(torch.Generator().manual_seed(3), 4), [0] * 4)
    padded_ids = torch.nn.functional.pad(batch.word_ids, (0, 7))  # 7 more PAD columns
    with torch.no_grad():
        logits = model(batch.word_ids, batch.word_counts, batch.sentence_counts).logits
        padded_logits = model(padded_ids, batch.word_counts, batch.sentence_counts).logits
        assert torch.equal(
            logits, model(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes).logits
        )
    torch.testing.assert_close(logits, padded_logits, atol=1e-6, rtol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_weights_sum_to_one_per_unit_and_are_zero_on_padding(variant):
    documents = random_documents(torch.Generator().manual_seed(4), 6)
    batch = batch_of(documents, [0] * 6)
    with torch.no_grad():
        _, word_weights, sentence_weights = run(make_model(variant), documents)
    word_real = torch.arange(word_weights.size(1)) < batch.word_counts[:, None]
    sentence_real = torch.arange(sentence_weights.size(1)) < batch.sentence_counts[:, None]
    assert torch.all(word_weights[~word_real] == 0) and torch.all(sentence_weights[~sentence_real] == 0)
    torch.testing.assert_close(sentence_weights.sum(1), torch.ones(len(sentence_weights)))  # shares of the document
    first_unit = VARIANTS[variant][0]["unit"]
    if first_unit == "sentence":
        torch.testing.assert_close(word_weights.sum(1), torch.ones(len(word_weights)))
    else:  # words pooled straight into paragraphs or documents: their weights sum to 1 there
        sizes = {"paragraph": batch.paragraph_sizes, "document": batch.sentence_counts}[first_unit]
        per_unit = torch.zeros(len(sizes)).index_add(0, torch.repeat_interleave(sizes), word_weights.sum(1))
        torch.testing.assert_close(per_unit, torch.ones(len(sizes)))
    if "max" not in variant:  # max pooling gives 0 to items that hold no feature's maximum
        assert torch.all(word_weights[word_real] > 0) and torch.all(sentence_weights[sentence_real] > 0)


def test_three_levels_read_the_paragraphs_and_two_levels_ignore_them():
    documents = random_documents(torch.Generator().manual_seed(7), 4)
    regrouped = [[[sentence for paragraph in document for sentence in paragraph]] for document in documents]
    with torch.no_grad():
        for variant, changes in (("han", False), ("3 levels", True), ("words to paragraphs", True)):
            model = make_model(variant)
            (logits, words, sentences), (logits_1, words_1, sentences_1) = run(model, documents), run(model, regrouped)
            assert changes != torch.allclose(logits, logits_1)
            if not changes:
                assert torch.equal(words, words_1) and torch.equal(sentences, sentences_1)


def test_a_paragraph_level_needs_paragraphs():
    batch = batch_of(random_documents(torch.Generator().manual_seed(8), 2), [0, 0])
    with pytest.raises(ValueError, match="paragraph level needs paragraph_sizes"):
        make_model("3 levels")(batch.word_ids, batch.word_counts, batch.sentence_counts)


@pytest.mark.parametrize(
    ("levels_", "message"),
    [
        ([], "the last 'document'"),
        (levels("sentence"), "the last 'document'"),
        (levels("sentence", "word", "document"), "must each be one of"),
        (levels("document", "sentence", "document"), "must grow coarser"),
        (levels("sentence", "sentence", "document"), "must grow coarser"),
        ([{"unit": "document", "hiden_size": 4}], r"levels\[0\]: unknown option \['hiden_size'\]"),
        ([{"unit": "document", "hidden_size": "abc"}], r"levels\[0\].hidden_size='abc': expected a positive integer"),
        ([{"unit": "document", "encoder": "transformer", "hidden_size": 5, "heads": 4}], r"levels\[0\]: .* 4 heads"),
        ([{"unit": "document", "pooling": "median"}], r"levels\[0\]: pooling 'median'"),
        (levels("sentence", "document", pooling="label_attention"), r"levels\[0\]: label_attention .* top level"),
    ],
)
def test_levels_the_model_cannot_build_are_refused_in_one_line(levels_, message):
    with pytest.raises(ValueError, match=message):
        HAN(VOCAB, 2, levels=levels_)


@pytest.mark.parametrize("variant", ["mean", "flat", "transformer", "transformer cls", "3 levels"])
def test_ablations_differ_from_the_han(variant):
    batch = batch_of(random_documents(torch.Generator().manual_seed(6), 3), [0] * 3)
    with torch.no_grad():
        han, variant_out = (
            make_model(v)(batch.word_ids, batch.word_counts, batch.sentence_counts, batch.paragraph_sizes)
            for v in ("han", variant)
        )
    assert not torch.allclose(han.logits, variant_out.logits)
    if variant == "mean":  # equal weights within each sentence
        row = batch.word_counts[0]
        torch.testing.assert_close(variant_out.word_weights[0, :row], torch.full((int(row),), 1 / row))


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
    long_document = [[[[5, 6, 7]] * 40]]  # 40 sentences
    models = {s: make_model("transformer") for s in (None, 4, 1000)}  # the same seed: the same weights
    for segment, model in models.items():
        model.levels[1].segment_length = segment
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
    # the last segment, which attended to [2, 3] through the cache; weighted, since a plain sum of
    # layer-normed features is constant (its gradient would be zero up to rounding)
    (encoded[0, 4:] * torch.randn(2, encoded.size(-1))).sum().backward()
    assert torch.all(items.grad[:4] == 0) and torch.all(items.grad[4:].abs().sum(1) > 0)


@pytest.mark.parametrize(
    "options", [{"pooling": "cls"}, {"pooling": "cls", "encoder": "transformer", "segment_length": 4}]
)
def test_cls_pooling_needs_a_transformer_level_without_segments(options):
    with pytest.raises(ValueError, match="cls pooling needs a transformer level"):
        Level(8, 4, 10, **options)


LABELWISE = {"han": [*levels("sentence"), *levels("document", pooling="label_attention")],
             "flat": levels("document", pooling="label_attention"),
             "3 levels": [*levels("sentence", "paragraph"), *levels("document", pooling="label_attention")],
             "transformer": levels("sentence", "document", **TRANSFORMER)[:1]
             + levels("document", **TRANSFORMER, pooling="label_attention")}  # fmt: skip


@pytest.mark.parametrize("variant", LABELWISE)
def test_label_attention_weighs_sentences_per_label_and_padding_changes_nothing(variant):
    """[documents, labels, sentences]: each label's weights sum to 1 over its document, differ from the
    other labels', and are what the document alone gets."""
    torch.manual_seed(0)
    model = HAN(VOCAB, num_classes=3, embedding_dim=16, levels=LABELWISE[variant]).eval()
    documents = random_documents(torch.Generator().manual_seed(2), 6)
    batch = batch_of(documents, [0] * 6)
    with torch.no_grad():
        logits, _, sentences = run(model, documents)
        assert logits.shape == (6, 3) and sentences.shape == (6, 3, int(batch.sentence_counts.max()))
        torch.testing.assert_close(sentences.sum(-1), torch.ones(6, 3))
        real = torch.arange(sentences.size(-1)) < batch.sentence_counts[:, None, None]
        assert torch.all(sentences[~real.expand_as(sentences)] == 0)
        several = batch.sentence_counts > 1
        assert not torch.allclose(sentences[several, 0], sentences[several, 1])  # each label reads its own way
        for i, document in enumerate(documents):
            alone_logits, _, alone = run(model, [document])
            torch.testing.assert_close(logits[i], alone_logits[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(sentences[i, :, : alone.size(-1)], alone[0], atol=1e-6, rtol=0)


def test_label_attention_with_one_context_for_all_labels_is_the_shared_attention():
    """Every label's context vector set to the shared one: the same logits and, for every label, the
    same sentence weights as the HAN's shared attention (the per-label classifier is the linear layer)."""
    torch.manual_seed(0)
    shared = HAN(VOCAB, num_classes=3, embedding_dim=16, levels=levels("sentence", "document")).eval()
    labelwise = HAN(VOCAB, num_classes=3, embedding_dim=16, levels=LABELWISE["han"]).eval()
    state = shared.state_dict()
    context = "levels.1.pooling.context.weight"
    labelwise.load_state_dict({**state, context: state[context].expand(3, -1).clone()})
    documents = random_documents(torch.Generator().manual_seed(5), 5)
    with torch.no_grad():
        (logits, words, sentences), (logits_l, words_l, sentences_l) = run(shared, documents), run(labelwise, documents)
    torch.testing.assert_close(logits_l, logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(words_l, words)
    torch.testing.assert_close(sentences_l, sentences[:, None].expand_as(sentences_l), atol=1e-6, rtol=0)
