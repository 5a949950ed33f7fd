"""Words -> ids: a Hugging Face `tokenizers` word-level vocabulary, and the document encoder built on it."""

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from tokenizers import Encoding, Tokenizer, models, normalizers, pre_tokenizers, trainers

from hdc.data.text import clean, split_paragraphs

PAD, UNK = "[PAD]", "[UNK]"
_NORMALIZER = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
_PRE_TOKENIZER = pre_tokenizers.Whitespace()
PAD_ID, UNK_ID = 0, 1

Document = list[list[list[int]]]  # paragraphs of sentences of word ids
T = TypeVar("T")


def train_tokenizer(texts: Iterable[str], min_frequency: int) -> Tokenizer:
    """Learn a lower-cased word vocabulary from raw texts; words seen fewer than `min_frequency` times map to [UNK]."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer, tokenizer.pre_tokenizer = _NORMALIZER, _PRE_TOKENIZER
    # Every word seen min_frequency times: the trainer's own default keeps only the 30,000 most frequent
    # (IMDB with min_frequency 2 has 47,672).
    trainer = trainers.WordLevelTrainer(vocab_size=2**31 - 1, min_frequency=min_frequency, special_tokens=[PAD, UNK],
                                        show_progress=False)  # fmt: skip
    tokenizer.train_from_iterator((clean(text) for text in texts), trainer)
    return tokenizer


def sentence_lengths(text: str) -> list[int]:
    """The words of each sentence of a raw document, as the encoder will see them (before wrapping)."""
    return [
        len(_PRE_TOKENIZER.pre_tokenize_str(_NORMALIZER.normalize_str(sentence)))
        for paragraph in split_paragraphs(clean(text))
        for sentence in paragraph
    ]


def caps_keeping(
    documents: Sequence[Sequence[int]], share: float = 0.99, max_words: int | None = None
) -> tuple[int, int]:
    """Caps (max_sentences, max_words) that keep `share` of the words of `documents` (each given as the
    words of its sentences). max_words, unless given: the sentence length that `share` of all words sit
    within; longer sentences are wrapped at it (no word lost). Then max_sentences: the fewest leading
    (wrapped) sentences per document that hold `share` of all words."""
    lengths = np.fromiter((n for document in documents for n in document), dtype=np.int64)
    counts = np.fromiter((len(document) for document in documents), dtype=np.int64)
    if not lengths.sum():
        return 1, max_words or 1
    if max_words is None:
        ordered = np.sort(lengths)
        max_words = int(ordered[np.searchsorted(np.cumsum(ordered), share * ordered.sum())])
    pieces = np.maximum(1, -(-lengths // max_words))  # sentences after wrapping
    piece_words = np.minimum(max_words, lengths.repeat(pieces) - max_words * _ranks(pieces))
    document_pieces = np.bincount(np.arange(len(counts)).repeat(counts), weights=pieces, minlength=len(counts))
    kept = np.cumsum(np.bincount(_ranks(document_pieces.astype(np.int64)), weights=piece_words))  # by position
    return int(np.searchsorted(kept, share * kept[-1]) + 1), max_words


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """0, 1, .., size - 1 for each size, concatenated."""
    return np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)


class DocumentEncoder:
    """Turns raw documents into paragraphs of sentences of word ids, within fixed caps.

    A sentence longer than `max_words` is wrapped into several sentences of its paragraph (no word is
    dropped there); a document keeps its first `max_sentences` sentences. A document with no words at
    all (empty or white space) becomes a single [UNK] sentence, so every document has something to
    attend to.
    """

    def __init__(self, tokenizer: Tokenizer, max_sentences: int, max_words: int):
        if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
            raise ValueError(f"tokenizer must map {PAD} to {PAD_ID} and {UNK} to {UNK_ID}")
        self.tokenizer = tokenizer
        self.max_sentences = max_sentences
        self.max_words = max_words

    def to_dict(self) -> dict:
        """Plain values (what a checkpoint keeps): the tokenizer's JSON and the caps."""
        return {"tokenizer": self.tokenizer.to_str(), "max_sentences": self.max_sentences, "max_words": self.max_words}

    @classmethod
    def from_dict(cls, saved: dict) -> "DocumentEncoder":
        return cls(Tokenizer.from_str(saved["tokenizer"]), saved["max_sentences"], saved["max_words"])

    def split(self, text: str) -> list[list[str]]:
        """The paragraphs of sentences of a raw document, as the model sees them (before wrapping and capping)."""
        return split_paragraphs(clean(text))

    def encode(self, texts: list[str]) -> list[Document]:
        return [self._fit(_ids(encodings), UNK_ID) for _, encodings in self._encodings(texts, fast=True)]

    def encode_with_words(self, texts: list[str]) -> tuple[list[Document], list[list[list[list[str]]]]]:
        """Ids as encode() gives them, and beside each id the word of the text it stands for (as
        written: case and unknown words kept), for showing attention."""
        documents, words = [], []
        for paragraphs, encodings in self._encodings(texts, fast=False):
            documents.append(self._fit(_ids(encodings), UNK_ID))
            spans = [
                [[text[a:b] for a, b in encoding.offsets] for text, encoding in zip(sentences, paragraph, strict=True)]
                for sentences, paragraph in zip(paragraphs, encodings, strict=True)
            ]
            words.append(self._fit(spans, ""))
        return documents, words

    def _encodings(self, texts: list[str], fast: bool) -> Iterator[tuple[list[list[str]], list[list[Encoding]]]]:
        """Each document's paragraphs of sentences with their encodings, from one tokenizer call for
        all of them (`fast` skips the character offsets)."""
        # Wrapping only adds sentences, so sentences past max_sentences can never be kept: skip them.
        documents = [self._first_sentences(self.split(text)) for text in texts]
        sentences = [sentence for document in documents for paragraph in document for sentence in paragraph]
        encode = self.tokenizer.encode_batch_fast if fast else self.tokenizer.encode_batch
        encodings = iter(encode(sentences, add_special_tokens=False))
        for document in documents:
            yield document, [[next(encodings) for _ in paragraph] for paragraph in document]

    def _first_sentences(self, paragraphs: list[list[T]]) -> list[list[T]]:
        """The paragraphs holding the first max_sentences sentences."""
        kept, room = [], self.max_sentences
        for paragraph in paragraphs:
            if room <= 0:
                break
            kept.append(paragraph[:room])
            room -= len(paragraph)
        return kept

    def _fit(self, paragraphs: list[list[list[T]]], empty: T) -> list[list[list[T]]]:
        """Wrap sentences longer than max_words and keep the first max_sentences; [[[empty]]] if none."""
        wrapped = [
            [
                words[start : start + self.max_words]
                for words in sentences
                for start in range(0, len(words), self.max_words)
            ]
            for sentences in paragraphs
        ]
        return self._first_sentences([sentences for sentences in wrapped if sentences]) or [[[empty]]]


def _ids(encodings: list[list[Encoding]]) -> list[list[list[int]]]:
    return [[encoding.ids for encoding in paragraph] for paragraph in encodings]
