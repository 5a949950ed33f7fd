"""Hierarchical Attention Network (Yang et al., NAACL 2016): words -> sentences -> document.

Plain torch, built from plain arguments. Input is a batch of documents flattened into sentences
(see hdc.data.batching.Batch): all sentences of the batch pass through the word encoder in one call,
then are regrouped per document for the sentence encoder. Padding never reaches an output: the GRUs
run on packed sequences and attention gives padding a weight of exactly 0.
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class BiGRU(nn.Module):
    """A bidirectional GRU over padded sequences of given lengths; outputs are 0 at padding."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]


class AttentionPooling(nn.Module):
    """u = tanh(W h + b); weights = softmax(u . context) over real positions; returns sum(weights * h)."""

    def __init__(self, input_size: int, attention_size: int):
        super().__init__()
        self.project = nn.Linear(input_size, attention_size)
        self.context = nn.Linear(attention_size, 1, bias=False)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.context(torch.tanh(self.project(h))).squeeze(-1)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return torch.einsum("bt,btd->bd", weights, h), weights


class HAN(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 200,
        word_hidden_size: int = 50,
        sentence_hidden_size: int = 50,
        attention_size: int = 100,
        padding_idx: int = 0,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.word_encoder = BiGRU(embedding_dim, word_hidden_size)
        self.word_attention = AttentionPooling(2 * word_hidden_size, attention_size)
        self.sentence_encoder = BiGRU(2 * word_hidden_size, sentence_hidden_size)
        self.sentence_attention = AttentionPooling(2 * sentence_hidden_size, attention_size)
        self.classifier = nn.Linear(2 * sentence_hidden_size, num_classes)

    def forward(
        self, word_ids: torch.Tensor, word_counts: torch.Tensor, sentence_counts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """word_ids [sentences, words], word_counts [sentences], sentence_counts [documents].

        Returns logits [documents, classes], word attention [sentences, words] (0 on padding) and
        sentence attention [documents, max sentences] (0 on padding).
        """
        word_mask = torch.arange(word_ids.size(1), device=word_ids.device) < word_counts[:, None]
        words = self.word_encoder(self.embedding(word_ids), word_counts)
        sentence_vectors, word_weights = self.word_attention(words, word_mask)

        # Regroup the flat sentences into [documents, max sentences, features], padding with zeros.
        max_sentences = int(sentence_counts.max())
        sentence_mask = torch.arange(max_sentences, device=word_ids.device) < sentence_counts[:, None]
        sentences = sentence_vectors.new_zeros(len(sentence_counts), max_sentences, sentence_vectors.size(-1))
        sentences = sentences.masked_scatter(sentence_mask[..., None], sentence_vectors)

        sentences = self.sentence_encoder(sentences, sentence_counts)
        document, sentence_weights = self.sentence_attention(sentences, sentence_mask)
        return self.classifier(document), word_weights, sentence_weights
