"""Words -> ids: a Hugging Face `tokenizers` word-level vocabulary, and the document encoder built on it."""

from collections.abc import Iterable, Iterator
from itertools import accumulate, chain, pairwise
from typing import TypeVar

from tokenizers import Encoding, Tokenizer, models, normalizers, pre_tokenizers, trainers

from hdc.data.text import clean, split_sentences

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1

Document = list[list[int]]  # sentences of word ids
T = TypeVar("T")


def train_tokenizer(texts: Iterable[str], min_frequency: int) -> Tokenizer:
    """Learn a lower-cased word vocabulary from raw texts; words seen fewer than `min_frequency` times map to [UNK]."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(min_frequency=min_frequency, special_tokens=[PAD, UNK], show_progress=False)
    tokenizer.train_from_iterator((clean(text) for text in texts), trainer)
    return tokenizer


class DocumentEncoder:
    """Turns raw documents into sentences of word ids, within fixed caps.

    A sentence longer than `max_words` is wrapped into several sentences (no word is dropped there);
    a document keeps its first `max_sentences` sentences. A document with no words at all (empty or
    white space) becomes a single [UNK] sentence, so every document has something to attend to.
    """

    def __init__(self, tokenizer: Tokenizer, max_sentences: int, max_words: int):
        if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
            raise ValueError(f"tokenizer must map {PAD} to {PAD_ID} and {UNK} to {UNK_ID}")
        self.tokenizer = tokenizer
        self.max_sentences = max_sentences
        self.max_words = max_words

    def split(self, text: str) -> list[str]:
        """The sentences of a raw document, as the model sees them (before wrapping and capping)."""
        return split_sentences(clean(text))

    def encode(self, texts: list[str]) -> list[Document]:
        return [self._fit([e.ids for e in encodings], UNK_ID) for _, encodings in self._encodings(texts, fast=True)]

    def encode_with_words(self, texts: list[str]) -> tuple[list[Document], list[list[list[str]]]]:
        """Ids as encode() gives them, and beside each id the word of the text it stands for (as
        written: case and unknown words kept), for showing attention."""
        documents, words = [], []
        for sentences, encodings in self._encodings(texts, fast=False):
            documents.append(self._fit([e.ids for e in encodings], UNK_ID))
            spans = [[text[a:b] for a, b in e.offsets] for text, e in zip(sentences, encodings, strict=True)]
            words.append(self._fit(spans, ""))
        return documents, words

    def _encodings(self, texts: list[str], fast: bool) -> Iterator[tuple[list[str], list[Encoding]]]:
        """Each document's sentences with their encodings, from one tokenizer call for all of them
        (`fast` skips the character offsets)."""
        # Wrapping only adds sentences, so sentences past max_sentences can never be kept: skip them.
        sentences = [self.split(text)[: self.max_sentences] for text in texts]
        encode = self.tokenizer.encode_batch_fast if fast else self.tokenizer.encode_batch
        flat = encode(list(chain.from_iterable(sentences)), add_special_tokens=False)
        starts = accumulate(map(len, sentences), initial=0)
        for document, (start, end) in zip(sentences, pairwise(starts), strict=True):
            yield document, flat[start:end]

    def _fit(self, sentences: list[list[T]], empty: T) -> list[list[T]]:
        """Wrap sentences longer than max_words and keep the first max_sentences; [[empty]] if none."""
        fitted = []
        for words in sentences:
            for start in range(0, len(words), self.max_words):
                if len(fitted) == self.max_sentences:
                    return fitted
                fitted.append(words[start : start + self.max_words])
        return fitted or [[empty]]
