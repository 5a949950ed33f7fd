"""The baseline every results table carries: fastText ("Bag of Tricks", Joulin et al. 2017).

A document is a bag of its words and word bigrams (pairs of neighbours within a sentence, hashed into
`buckets` rows), embedded, then a linear classifier: no order beyond bigrams, no hierarchy. It reads
the same batches as the HAN and answers in the same form, so the same pipeline trains, evaluates,
predicts and serves it; it tells a user whether the hierarchy pays on their data. Its "attention" is
uniform (1 / words for each word), so heatmaps still draw.

Unlike fastText's mean of the rows, the bag is a TF-IDF vector normalised to length 1, as the TF-IDF +
linear SVM baseline reads documents: rows weighted by the inverse document frequency of their n-gram
in the training split (set_idf; 1 until set), divided by the square root of the sum of the squared
weights of its n-gram occurrences (the vector's norm when no n-gram repeats). On 5k IMDB reviews, IDF
is worth 1.3 points to a linear SVM on binary uni+bigram features (86.9% -> 88.2%). The norm also
makes a document's vector move about sqrt(n-grams) times faster per step than a mean does, so the bag
learns at the HAN's learning rate, as the HAN's wide term (hdc.module.HANClassifier(wide=...)) and as
the baseline.
"""

import numpy as np
import torch
from torch import nn

from hdc.models.han import grouped, unflatten


class FastText(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 10,
        buckets: int = 2_000_000,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size, self.buckets = vocab_size, buckets
        # One table: word ids first, then the bigram buckets. Sparse-friendly sizes as in fastText.
        self.embedding = nn.EmbeddingBag(vocab_size + buckets, embedding_dim, mode="sum")
        self.register_buffer("idf", torch.ones(vocab_size + buckets))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embedding_dim, num_classes)
        # Zero, not fastText's uniform noise: a rare n-gram's row is updated once an epoch, too few steps
        # to outgrow its initial noise (model=fasttext, validation: 84.2% -> 84.4% on 5k IMDB reviews,
        # 94.7% -> 95.1% on R8, 83.3% -> 82.4% on the 108 of 1k; results/recipe_probes.md). The
        # classifier's random weights break the symmetry.
        nn.init.zeros_(self.embedding.weight)

    def bigrams(self, left, right):
        """Rows of the bigrams (left, right) in the table (tensors or numpy arrays): a fixed hash into the buckets."""
        return self.vocab_size + (left * 1_000_003 + right) % self.buckets

    def set_idf(self, token_ids: np.ndarray, sentence_starts: np.ndarray, document_starts: np.ndarray) -> None:
        """Weigh each row by log((1 + documents) / (1 + documents holding it)) + 1 (scikit-learn's smooth
        IDF), counted on the training split's flat arrays (hdc.data.encoded.EncodedDocuments)."""
        rows = len(self.idf)
        frequencies = np.zeros(rows, dtype=np.int64)
        for first in range(0, len(document_starts) - 1, 10_000):  # documents in chunks: memory stays small
            documents = document_starts[first : first + 10_001]  # their first sentences, and the end
            sentences = sentence_starts[documents[0] : documents[-1] + 1]
            ids = np.asarray(token_ids[sentences[0] : sentences[-1]], dtype=np.int64)
            document = np.repeat(np.arange(len(documents) - 1), np.diff(sentences[documents - documents[0]]))
            sentence_begins = np.zeros(len(ids), dtype=bool)
            sentence_begins[sentences[:-1] - sentences[0]] = True
            pairs = ~sentence_begins[1:]  # a bigram ends at every word that does not begin a sentence
            owners = np.concatenate([document, document[1:][pairs]])
            found = np.concatenate([ids, self.bigrams(ids[:-1][pairs], ids[1:][pairs])])
            frequencies += np.bincount(np.unique(owners * rows + found) % rows, minlength=rows)
        documents = len(document_starts) - 1
        self.idf.copy_(torch.from_numpy(np.log((1 + documents) / (1 + frequencies)) + 1))

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
        weights = self.idf[ids[order]]
        norms = torch.zeros(len(sentence_counts), device=weights.device).index_add_(0, owners[order], weights**2)
        documents = self.embedding(ids[order], offsets, per_sample_weights=weights / norms.sqrt()[owners[order]])
        logits = self.classifier(self.dropout(documents))
        sentence_words = grouped(word_counts, sentence_counts)[sentence_document]  # its document's words
        word_weights = (1.0 / sentence_words)[:, None].expand(-1, word_ids.size(1))
        sentence_weights = word_counts / sentence_words
        return (
            logits,
            word_weights * words,
            unflatten(sentence_weights, sentence_counts, int(sentence_counts.max())),
        )
