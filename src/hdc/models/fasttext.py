"""The baseline every results table carries: fastText ("Bag of Tricks", Joulin et al. 2017).

A document is a bag of its words and word bigrams (pairs of neighbours within a sentence, hashed into
`buckets` rows with fastText's multiplier), embedded, then a linear classifier: no order beyond
bigrams, no hierarchy. It reads the same batches as the HAN and answers in the same form, so the same
pipeline trains, evaluates, predicts and serves it; it tells a user whether the hierarchy pays on their
data. Its "attention" is uniform (1 / words for each word), so heatmaps still draw. With
embedding_dim null it is a linear model on the bag: the wide term's (hdc.models.wide).

Unlike fastText's mean of the rows, the bag is a TF-IDF vector normalised to length 1, as the TF-IDF +
linear SVM baseline reads documents: rows weighted by the inverse document frequency of their n-gram
in the training split (set_idf; 1 until set), a term counting 1 + log(its occurrences) (sublinear TF),
divided by the vector's norm. IDF and the norm are what make the bag as strong as that SVM, and the
norm makes a document's vector move about sqrt(n-grams) times faster per step than a mean does, so
the bag learns at the HAN's learning rate (results/recipe_probes.md, "The bag's features"). An n-gram
found in fewer than 2 training documents weighs nothing (its IDF is 0): it cannot generalise, and it
would only shrink the weights of the others through the norm.
"""

import numpy as np
import torch
from torch import nn

from hdc.models import NetOutput
from hdc.models.han import grouped, unflatten


class FastText(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int | str | None = "auto",
        buckets: int = 2_000_000,
        dropout: float = 0.0,
        ngrams: int = 2,
    ):
        super().__init__()
        if embedding_dim == "auto":  # fastText's widths: 10 for its two-class sentiment models, 50 for its tags
            embedding_dim = 10 if num_classes <= 2 else 50  # 10 numbers cannot tell 20 labels apart
        elif isinstance(embedding_dim, str):
            raise ValueError(f"embedding_dim={embedding_dim!r}: a number, auto, or null (a linear model)")
        if ngrams not in (2, 3):
            raise ValueError(f"ngrams={ngrams}: 2 (words and bigrams) or 3 (and trigrams)")
        self.vocab_size, self.buckets, self.ngrams = vocab_size, buckets, ngrams
        # One table: word ids first, then the bigram buckets. Sparse-friendly sizes as in fastText.
        # embedding_dim null: each row holds the classes' scores, a linear model on the bag, as the SVM's
        # (no rank below the number of classes); else fastText's pair: rows this wide, then a linear layer.
        width = embedding_dim or num_classes
        self.embedding = nn.EmbeddingBag(vocab_size + buckets, width, mode="sum")
        self.register_buffer("idf", torch.ones(vocab_size + buckets))
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes) if embedding_dim else None
        self.bias = None if embedding_dim else nn.Parameter(torch.zeros(num_classes))
        # Zero, not fastText's uniform noise: a rare n-gram's row is updated once an epoch, too few steps
        # to outgrow its initial noise (results/recipe_probes.md). The classifier's random weights break
        # the symmetry (a linear model has none to break).
        nn.init.zeros_(self.embedding.weight)

    @property
    def output_bias(self) -> nn.Parameter:
        """The classifier's bias [classes], which a trainer may start at the label prior."""
        return self.classifier.bias if self.classifier is not None else self.bias

    def bigrams(self, left, right):
        """Rows of the bigrams (left, right) in the table (tensors or numpy arrays): a fixed hash into the buckets."""
        return self.vocab_size + (left * 116_049_371 + right) % self.buckets

    def trigrams(self, first, second, third):
        """Rows of the trigrams: a second fixed hash into the same buckets (reduced at each step: no overflow)."""
        return (
            self.vocab_size + (((first * 94_418_953 + second) % self.buckets) * 50_331_653 + third + 7) % self.buckets
        )

    def set_idf(self, token_ids: np.ndarray, sentence_starts: np.ndarray, document_starts: np.ndarray) -> None:
        """Weigh each row by log((1 + documents) / (1 + documents holding it)) + 1 (scikit-learn's smooth
        IDF), counted on the training split's flat arrays (hdc.data.encoded.EncodedDocuments); 0 for a
        row that fewer than 2 documents hold."""
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
            owners = [document, document[1:][pairs]]
            found = [ids, self.bigrams(ids[:-1][pairs], ids[1:][pairs])]
            if self.ngrams == 3:  # a trigram: its second and third words begin no sentence
                triples = pairs[:-1] & pairs[1:]
                owners.append(document[2:][triples])
                found.append(self.trigrams(ids[:-2][triples], ids[1:-1][triples], ids[2:][triples]))
            owners, found = np.concatenate(owners), np.concatenate(found)
            frequencies += np.bincount(np.unique(owners * rows + found) % rows, minlength=rows)
        documents = len(document_starts) - 1
        idf = np.log((1 + documents) / (1 + frequencies)) + 1
        self.idf.copy_(torch.from_numpy(np.where(frequencies >= 2, idf, 0.0)))

    @staticmethod
    def _layout(
        word_ids: torch.Tensor, word_counts: torch.Tensor, sentence_counts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The words mask [sentences, words] and each sentence's document."""
        words = torch.arange(word_ids.size(1), device=word_ids.device) < word_counts[:, None]
        documents = torch.arange(len(sentence_counts), device=word_ids.device)
        return words, torch.repeat_interleave(documents, sentence_counts)

    def terms(
        self, word_ids: torch.Tensor, word_counts: torch.Tensor, sentence_counts: torch.Tensor, spans: bool = False
    ) -> tuple[torch.Tensor, ...]:
        """Each document's bag as (rows, their document, their weights), sorted by document: every
        occurrence of a word or bigram, weighted so that each document's vector has length 1. With
        `spans`, also where each occurrence is: (sentence, first word, words) [occurrences, 3]."""
        words, sentence_document = self._layout(word_ids, word_counts, sentence_counts)
        pairs = words[:, 1:]  # a bigram ends at every word after a sentence's first
        starts = [words, pairs]  # where each kind of term starts: [sentences, positions]
        ids = [word_ids[words], self.bigrams(word_ids[:, :-1][pairs], word_ids[:, 1:][pairs])]
        if self.ngrams == 3:
            starts.append(triples := words[:, 2:])
            ids.append(self.trigrams(word_ids[:, :-2][triples], word_ids[:, 1:-1][triples], word_ids[:, 2:][triples]))
        ids = torch.cat(ids)
        owners = torch.cat([torch.repeat_interleave(sentence_document, (word_counts - n).clamp(min=0))
                            for n in range(len(starts))])  # fmt: skip
        order = torch.argsort(owners, stable=True)  # EmbeddingBag reads each bag's rows contiguously
        ids, owners = ids[order], owners[order]
        weights = self.idf[ids]
        # sublinear TF: each of a term's tf occurrences weighs (1 + log tf) / tf
        _, term, tf = torch.unique(owners * len(self.idf) + ids, return_inverse=True, return_counts=True)
        tf = tf[term].to(weights.dtype)
        weights = weights * (1 + torch.log(tf)) / tf
        squares = weights**2 * tf  # the term's squared weight, over its tf occurrences
        norms = torch.zeros(len(sentence_counts), device=weights.device).index_add_(0, owners, squares)
        norms = norms.sqrt().clamp(min=1e-12)  # a bag of unknown n-grams only: all weights 0, the vector 0
        if not spans:
            return ids, owners, weights / norms[owners]
        places = torch.cat([start.nonzero() for start in starts])  # (sentence, first word), in the order of ids
        sizes = torch.cat([places.new_full((int(start.sum()),), n + 1) for n, start in enumerate(starts)])
        return ids, owners, weights / norms[owners], torch.cat([places, sizes[:, None]], 1)[order]

    def forward(
        self,
        word_ids: torch.Tensor,
        word_counts: torch.Tensor,
        sentence_counts: torch.Tensor,
        paragraph_sizes: torch.Tensor | None = None,
    ) -> NetOutput:
        """The HAN's inputs and output (hdc.models.han.HAN.forward); paragraphs are not read."""
        ids, owners, weights = self.terms(word_ids, word_counts, sentence_counts)
        sizes = torch.bincount(owners, minlength=len(sentence_counts))
        documents = self.embedding(ids, torch.cumsum(sizes, 0) - sizes, per_sample_weights=weights)
        logits = self.classifier(self.dropout(documents)) if self.classifier is not None else documents + self.bias
        words, sentence_document = self._layout(word_ids, word_counts, sentence_counts)
        sentence_words = grouped(word_counts, sentence_counts)[sentence_document]  # its document's words
        word_weights = (1.0 / sentence_words)[:, None].expand(-1, word_ids.size(1))
        sentence_weights = word_counts / sentence_words
        return NetOutput(
            logits, word_weights * words, unflatten(sentence_weights, sentence_counts, int(sentence_counts.max()))
        )
