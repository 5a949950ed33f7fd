import random

from hdc.data.vocab import PAD_ID, UNK_ID, DocumentEncoder, caps_keeping, sentence_lengths, train_tokenizer


def test_vocabulary_keeps_words_seen_more_than_five_times():
    texts = ["often " * 6 + "rare " * 5 + "Often"]
    tokenizer = train_tokenizer(texts, min_frequency=6)
    vocab = tokenizer.get_vocab()
    assert vocab["[PAD]"] == PAD_ID and vocab["[UNK]"] == UNK_ID
    assert "often" in vocab  # lower-cased: "Often" counts too
    assert "rare" not in vocab
    assert tokenizer.encode("OFTEN rare").ids == [vocab["often"], UNK_ID]


def test_every_word_seen_often_enough_gets_an_id_however_many():
    words = [f"w{i}" for i in range(30_010)]  # more than the tokenizers trainer's default of 30,000
    tokenizer = train_tokenizer([" ".join(words * 2)], min_frequency=2)
    assert tokenizer.get_vocab_size() == 30_012 and tokenizer.encode("w30009").ids != [UNK_ID]


def test_encoder_wraps_long_sentences_and_caps_documents():
    tokenizer = train_tokenizer(["w " * 10], min_frequency=1)
    encoder = DocumentEncoder(tokenizer, max_sentences=3, max_words=4)
    w = tokenizer.token_to_id("w")
    # one 10-word sentence without punctuation wraps into 4 + 4 + 2 words, all in its paragraph
    assert encoder.encode(["w " * 10]) == [[[[w] * 4, [w] * 4, [w] * 2]]]
    # a 50,000-word document is bounded by the caps
    assert encoder.encode(["w " * 50_000]) == [[[[w] * 4] * 3]]


def test_documents_without_words_become_one_unknown_sentence():
    tokenizer = train_tokenizer(["word"], min_frequency=1)
    encoder = DocumentEncoder(tokenizer, max_sentences=5, max_words=5)
    word = tokenizer.token_to_id("word")
    assert encoder.encode(["", "  <br /> ", "word"]) == [[[[UNK_ID]]], [[[UNK_ID]]], [[[word]]]]


def test_each_document_keeps_its_own_sentences_when_an_earlier_one_is_capped():
    tokenizer = train_tokenizer(["a. b. c. d."], min_frequency=1)
    encoder = DocumentEncoder(tokenizer, max_sentences=1, max_words=5)
    a, d, stop = (tokenizer.token_to_id(w) for w in "ad.")
    assert encoder.encode(["a. b. c.", "d."]) == [[[[a, stop]]], [[[d, stop]]]]


def test_paragraphs_keep_their_sentences_within_the_caps():
    tokenizer = train_tokenizer(["a b c d."], min_frequency=1)
    encoder = DocumentEncoder(tokenizer, max_sentences=4, max_words=2)
    a, b, c, d, stop = (tokenizer.token_to_id(w) for w in "abcd.")
    # IMDB's paragraphs: <br /><br />; a long sentence wraps inside its paragraph; the 4th sentence is the last kept
    text = "a b c.<br /><br />d. a.<br /><br />b. c."
    assert encoder.encode([text]) == [[[[a, b], [c, stop]], [[d, stop], [a, stop]]]]
    documents, words = encoder.encode_with_words(["A b\n\nC d\n\n\n\nA"])
    assert documents == [[[[a, b]], [[c, d]], [[a]]]]
    assert words == [[[["A", "b"]], [["C", "d"]], [["A"]]]]


def test_auto_caps_are_the_smallest_that_keep_the_share_of_words_the_encoder_keeps():
    rng = random.Random(0)
    texts = [
        " ".join(" ".join("w" for _ in range(rng.choice([1, 3, 8, 30]))) + "." for _ in range(rng.randint(1, 40)))
        for _ in range(200)
    ]
    tokenizer = train_tokenizer(texts, min_frequency=1)
    lengths = [sentence_lengths(text) for text in texts]
    # as the encoder counts words ("w" and "." are words), before any cap
    assert lengths == [[len(s) for p in d for s in p] for d in DocumentEncoder(tokenizer, 10**6, 10**6).encode(texts)]

    def kept(max_sentences, max_words):
        documents = DocumentEncoder(tokenizer, max_sentences, max_words).encode(texts)
        return sum(len(s) for d in documents for p in d for s in p) / sum(map(sum, lengths))

    max_sentences, max_words = caps_keeping(lengths, 0.9)
    assert kept(max_sentences, max_words) >= 0.9 > kept(max_sentences - 1, max_words)
    assert sum(n for d in lengths for n in d if n <= max_words) >= 0.9 * sum(map(sum, lengths))
    assert sum(n for d in lengths for n in d if n < max_words) < 0.9 * sum(map(sum, lengths))
    assert caps_keeping(lengths, 1.0, max_words=5)[1] == 5  # a given max_words: wrapped at it
    assert kept(*caps_keeping(lengths, 1.0, max_words=5)) == 1.0
