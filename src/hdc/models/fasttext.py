"""The baseline every results table carries: fastText ("Bag of Tricks", Joulin et al. 2017).

A document is the mean of the embeddings of its words and of its word bigrams (pairs of neighbours
within a sentence, hashed into `buckets` rows), then a linear classifier: no order beyond bigrams, no
hierarchy. It reads the same batches as the HAN and answers in the same form, so the same pipeline
trains, evaluates, predicts and serves it; it tells a user whether the hierarchy pays on their data.
Its "attention" is each word's share of the document's bag (1 / words), so heatmaps still draw.
"""

import torch
from torch import nn

from hdc.models.han import grouped, unflatten


class FastText(nn.Module):
    def __init__(
        self, vocab_size: int, num_classes: int, embedding_dim: int = 10, buckets: int = 2_000_000, dropout: float = 0.0
    ):
        super().__init__()
        self.vocab_size, self.buckets = vocab_size, buckets
        # One table: word ids first, then the bigram buckets. Sparse-friendly sizes as in fastText.
        self.embedding = nn.EmbeddingBag(vocab_size + buckets, embedding_dim, mode="mean")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embedding_dim, num_classes)
        nn.init.uniform_(self.embedding.weight, -1.0 / embedding_dim, 1.0 / embedding_dim)

    def bigrams(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Rows of the bigrams (left, right) in the table: a fixed hash into the buckets."""
        return self.vocab_size + (left * 1_000_003 + right) % self.buckets

    def forward(
        self,
        word_ids: torch.Tensor,
        word_counts: torch.Tensor,
        sentence_counts: torch.Tensor,
        paragraph_sizes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The HAN's inputs and outputs (hdc.models.han.HAN.forward); paragraphs are not read."""
        positions = torch.arange(word_ids.size(1), device=word_ids.device)
        words = positions < word_counts[:, None]  # [sentences, words]
        pairs = words[:, 1:]  # a bigram ends at every word after a sentence's first
        sentence_document = torch.repeat_interleave(torch.arange(len(sentence_counts), device=word_ids.device),
                                                    sentence_counts)  # fmt: skip
        ids = torch.cat([word_ids[words], self.bigrams(word_ids[:, :-1][pairs], word_ids[:, 1:][pairs])])
        owners = torch.cat([torch.repeat_interleave(sentence_document, word_counts),
                            torch.repeat_interleave(sentence_document, (word_counts - 1).clamp(min=0))])  # fmt: skip
        order = torch.argsort(owners, stable=True)  # EmbeddingBag reads each bag's rows contiguously
        sizes = torch.bincount(owners, minlength=len(sentence_counts))
        offsets = torch.cumsum(sizes, 0) - sizes
        documents = self.embedding(ids[order], offsets)
        logits = self.classifier(self.dropout(documents))
        sentence_words = grouped(word_counts, sentence_counts)[sentence_document]  # its document's words
        word_weights = (1.0 / sentence_words)[:, None].expand(-1, word_ids.size(1))
        sentence_weights = word_counts / sentence_words
        return (
            logits,
            word_weights * words,
            unflatten(sentence_weights, sentence_counts, int(sentence_counts.max())),
        )
