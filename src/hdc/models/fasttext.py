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
the baseline. As in that SVM's features, a term counts 1 + log(its occurrences) (sublinear TF), and
an n-gram found in fewer than 2 training documents weighs nothing (its IDF is 0): it cannot
generalise, and it would only shrink the weights of the others through the norm.

Bags saved before 2026-11-27 (`features` 1) hashed a bigram (a, b) to (3a + b) mod 1M in effect
(1,000,003 mod the buckets is 3), so most bigrams of a large vocabulary shared rows; with
(a * 116049371 + b), fastText's multiplier, they spread over the buckets (what it is worth:
results/recipe_probes.md, "The bag's features"). Such checkpoints keep their old features and answers.
"""

import warnings
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdc.models.han import grouped, unflatten


class FastText(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int | None = 10,
        buckets: int = 2_000_000,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size, self.buckets = vocab_size, buckets
        # One table: word ids first, then the bigram buckets. Sparse-friendly sizes as in fastText.
        # embedding_dim null: each row holds the classes' scores, a linear model on the bag, as the SVM's
        # (no rank below the number of classes); else fastText's pair: rows this wide, then a linear layer.
        width = embedding_dim or num_classes
        self.embedding = nn.EmbeddingBag(vocab_size + buckets, width, mode="sum")
        self.register_buffer("idf", torch.ones(vocab_size + buckets))
        self.register_buffer("features", torch.tensor(2))  # see the module's docstring
        self.legacy = False
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, num_classes) if embedding_dim else None
        self.bias = None if embedding_dim else nn.Parameter(torch.zeros(num_classes))
        # Zero, not fastText's uniform noise: a rare n-gram's row is updated once an epoch, too few steps
        # to outgrow its initial noise (model=fasttext, validation: 84.2% -> 84.4% on 5k IMDB reviews,
        # 94.7% -> 95.1% on R8, 83.3% -> 82.4% on the 108 of 1k; results/recipe_probes.md). The
        # classifier's random weights break the symmetry (a linear model has none to break).
        nn.init.zeros_(self.embedding.weight)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.setdefault(prefix + "features", torch.tensor(1))  # saved before `features`: the old ones
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.legacy = int(self.features) == 1

    def bigrams(self, left, right):
        """Rows of the bigrams (left, right) in the table (tensors or numpy arrays): a fixed hash into the buckets."""
        return self.vocab_size + (left * (1_000_003 if self.legacy else 116_049_371) + right) % self.buckets

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
            owners = np.concatenate([document, document[1:][pairs]])
            found = np.concatenate([ids, self.bigrams(ids[:-1][pairs], ids[1:][pairs])])
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
        self, word_ids: torch.Tensor, word_counts: torch.Tensor, sentence_counts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each document's bag as (rows, their document, their weights), sorted by document: every
        occurrence of a word or bigram, weighted so that each document's vector has length 1."""
        words, sentence_document = self._layout(word_ids, word_counts, sentence_counts)
        pairs = words[:, 1:]  # a bigram ends at every word after a sentence's first
        ids = torch.cat([word_ids[words], self.bigrams(word_ids[:, :-1][pairs], word_ids[:, 1:][pairs])])
        owners = torch.cat([torch.repeat_interleave(sentence_document, word_counts),
                            torch.repeat_interleave(sentence_document, (word_counts - 1).clamp(min=0))])  # fmt: skip
        order = torch.argsort(owners, stable=True)  # EmbeddingBag reads each bag's rows contiguously
        ids, owners = ids[order], owners[order]
        weights = self.idf[ids]
        if not self.legacy:  # sublinear TF: each of a term's tf occurrences weighs (1 + log tf) / tf
            _, term, tf = torch.unique(owners * len(self.idf) + ids, return_inverse=True, return_counts=True)
            tf = tf[term].to(weights.dtype)
            weights = weights * (1 + torch.log(tf)) / tf
            squares = weights**2 * tf  # the term's squared weight, over its tf occurrences
        else:
            squares = weights**2
        norms = torch.zeros(len(sentence_counts), device=weights.device).index_add_(0, owners, squares)
        norms = norms.sqrt().clamp(min=1e-12)  # a bag of unknown n-grams only: all weights 0, the vector 0
        return ids, owners, weights / norms[owners]

    @torch.no_grad()
    def fit(self, batches: Iterable, c: float = 100.0, max_iter: int = 300) -> None:
        """Fit a linear bag (embedding_dim null) exactly, as scikit-learn fits a model: multinomial logistic
        regression with an L2 penalty of 1 / (2 c) on the rows (c: scikit-learn's C), by L-BFGS over the
        bags of every training document at once. Fitting to convergence, not by a few epochs of Adam,
        is what makes a linear model on TF-IDF bags as strong as the TF-IDF + linear SVM, which a few
        epochs of Adam are not (results/recipe_probes.md, "The bag's features")."""
        if self.classifier is not None:
            raise ValueError("only a linear bag (embedding_dim null) is fitted exactly")
        rows, columns, values, labels, documents = [], [], [], [], 0
        for batch in batches:
            ids, owners, weights = self.terms(batch.word_ids, batch.word_counts, batch.sentence_counts)
            rows.append(owners + documents)
            columns.append(ids)
            values.append(weights)
            labels.append(batch.labels)
            documents += len(batch.labels)
        rows, columns, values, labels = (torch.cat(part) for part in (rows, columns, values, labels))
        used, columns = torch.unique(columns, return_inverse=True)  # only rows some document holds: the rest stay 0
        shape = (len(labels), len(used))
        bags = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, shape, check_invariants=True)
        with warnings.catch_warnings():  # "CSR support is in beta": its matrix product is what is used
            warnings.simplefilter("ignore", UserWarning)
            bags = bags.coalesce().to_sparse_csr()
        weight = torch.zeros(len(used), self.bias.numel(), requires_grad=True)
        bias = torch.zeros(self.bias.numel(), requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            with torch.enable_grad():
                value = F.cross_entropy(bags @ weight + bias, labels) + (weight**2).sum() / (2 * c * len(labels))
                value.backward()
            return value

        optimizer.step(loss)
        self.embedding.weight[used] = weight.detach().to(self.embedding.weight)
        self.bias.copy_(bias.detach())

    def forward(
        self,
        word_ids: torch.Tensor,
        word_counts: torch.Tensor,
        sentence_counts: torch.Tensor,
        paragraph_sizes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The HAN's inputs and outputs (hdc.models.han.HAN.forward); paragraphs are not read."""
        ids, owners, weights = self.terms(word_ids, word_counts, sentence_counts)
        sizes = torch.bincount(owners, minlength=len(sentence_counts))
        documents = self.embedding(ids, torch.cumsum(sizes, 0) - sizes, per_sample_weights=weights)
        logits = self.classifier(self.dropout(documents)) if self.classifier is not None else documents + self.bias
        words, sentence_document = self._layout(word_ids, word_counts, sentence_counts)
        sentence_words = grouped(word_counts, sentence_counts)[sentence_document]  # its document's words
        word_weights = (1.0 / sentence_words)[:, None].expand(-1, word_ids.size(1))
        sentence_weights = word_counts / sentence_words
        return (
            logits,
            word_weights * words,
            unflatten(sentence_weights, sentence_counts, int(sentence_counts.max())),
        )
