"""Words -> ids: a Hugging Face `tokenizers` word-level vocabulary, and the document encoder built on it."""

from collections.abc import Iterable
from itertools import accumulate, chain, pairwise

from tokenizers import Encoding, Tokenizer, models, normalizers, pre_tokenizers, trainers

from hdc.data.text import clean, split_sentences

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1

Document = list[list[int]]  # sentences of word ids


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
        # Wrapping only adds sentences, so sentences past max_sentences can never be kept: skip them.
        sentences = [self.split(text)[: self.max_sentences] for text in texts]
        flat = self.tokenizer.encode_batch_fast(list(chain.from_iterable(sentences)), add_special_tokens=False)
        starts = list(accumulate(map(len, sentences), initial=0))
        return [self._fit(flat[start:end]) for start, end in pairwise(starts)]

    def _fit(self, sentences: list[Encoding]) -> Document:
        fitted: Document = []
        for words in (sentence.ids for sentence in sentences):
            for start in range(0, len(words), self.max_words):
                if len(fitted) == self.max_sentences:
                    return fitted
                fitted.append(words[start : start + self.max_words])
        return fitted or [[UNK_ID]]
