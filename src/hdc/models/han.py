"""Hierarchical Attention Network (Yang et al., NAACL 2016), in its general form: a stack of levels,
words -> sentences -> document in the paper, words -> sentences -> paragraphs -> document, or words ->
document (flat); each level encodes the items of one unit and pools them into the unit's vector.

Plain torch, built from plain arguments. Input is a batch of documents flattened into sentences
(see hdc.data.batching.Batch). Every level has one shape: items stored flat, unit after unit
(words of all sentences; sentence vectors of all paragraphs...), with the number of items per unit.
A level packs its items for a BiGRU and pools them by attention straight from the packed rows, so
padding is never embedded, encoded or attended to: it cannot reach an output, and it costs
nothing (unpacking a padded GRU output and its backward pass cost more than the GRU itself on a CPU).
"""

import inspect
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from hdc.models import NetOutput


def packing(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """How to pack items stored flat, unit after unit, for an RNN (time step by time step, longest unit
    first, as torch's pack_padded_sequence does).

    Returns `rows` (the flat item at each packed position), `units` (its unit), the packed sequence's
    `batch_sizes` (on the CPU, as RNNs require) and `sorted_units` (units, longest first).
    """
    lengths = lengths.cpu()
    sorted_lengths, sorted_units = lengths.sort(descending=True, stable=True)
    steps = torch.arange(int(sorted_lengths[0]))[:, None]
    present = steps < sorted_lengths  # [time, units]: a prefix of each row, since units are sorted
    first_item = (torch.cumsum(lengths, 0) - lengths)[sorted_units]
    rows = (first_item + steps)[present]
    return rows, sorted_units.expand_as(present)[present], present.sum(1), sorted_units


POOLINGS = ("attention", "mean", "max", "label_attention")


class Pooling(nn.Module):
    """A unit's items -> one vector, and a weight per item (summing to 1 within the unit).

    "attention" is the paper's: u = tanh(W h + b), weights = softmax(u . context) within the unit,
    vector = sum(weights * h). "mean" (HN-AVE) is the same with equal weights. "max" (HN-MAX) takes
    each feature's maximum; an item's weight is the share of features whose maximum it holds.
    "label_attention" is attention with one context vector per label (as CAML's label-wise attention,
    Mullenbach et al. 2018): each label reads the unit in its own way, so a digest of two articles can
    send each label to its own. It gives a vector per label [units, labels, features] and weights
    [items, labels], for a classifier with one weight row per label (HAN does this at its top level).
    """

    def __init__(self, kind: str, input_size: int, attention_size: int, labels: int = 1):
        super().__init__()
        if kind not in POOLINGS:
            raise ValueError(f"pooling {kind!r} is not one of {POOLINGS}")
        self.kind = kind
        if kind in ("attention", "label_attention"):
            self.project = nn.Linear(input_size, attention_size)
            self.context = nn.Linear(attention_size, labels if kind == "label_attention" else 1, bias=False)

    def forward(self, h: torch.Tensor, units: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """h [items, features] with units [items] (the unit of each item, 0..count-1).

        Under mixed precision h and the scores may come in bf16 or fp16 (and CUDA's autocast gives
        exp() in fp32): the softmax and the pooled sum run in fp32 whatever comes in, so a unit's
        weights sum to 1 to fp32 precision and the vectors and weights are fp32.
        """
        h = h.float()
        if self.kind == "max":
            top = h.new_full((count, h.size(-1)), -torch.inf)
            top = top.scatter_reduce(0, units[:, None].expand_as(h), h, "amax")
            return top, (h == top[units]).float().mean(-1)
        # [items, contexts]: one context, or one per label
        attended = self.kind != "mean"
        scores = self.context(torch.tanh(self.project(h))).float() if attended else h.new_zeros(len(h), 1)
        per_item = units[:, None].expand_as(scores)
        with torch.no_grad():  # a per-unit shift for a stable softmax; softmax is blind to it, so no gradient
            shift = scores.new_full((count, scores.size(1)), -torch.inf).scatter_reduce(0, per_item, scores, "amax")
        exp = (scores - shift[units]).exp()
        weights = exp / exp.new_zeros(count, exp.size(1)).index_add(0, units, exp)[units]
        vectors = h.new_zeros(count, weights.size(1), h.size(-1)).index_add(0, units, weights[:, :, None] * h[:, None])
        if self.kind == "label_attention":
            return vectors, weights
        return vectors.squeeze(1), weights.squeeze(1)


ENCODERS = ("gru", "transformer", "none")


def sinusoidal(positions: torch.Tensor, size: int) -> torch.Tensor:
    """Transformer position encodings [items, size] for integer positions (any length, no table)."""
    frequencies = torch.exp(torch.arange(0, size, 2, device=positions.device) * (-math.log(10_000.0) / size))
    angles = positions[:, None].float() * frequencies
    return torch.stack([angles.sin(), angles.cos()], -1).flatten(1)[:, :size]


class SelfAttentionLayer(nn.Module):
    """A Transformer encoder layer (post-norm, as torch's) whose queries may also attend to a memory:
    the previous segment's inputs to this layer, without gradient (Transformer-XL's segment
    recurrence). torch's TransformerEncoderLayer has no such input; without a memory this is the same
    computation."""

    def __init__(self, size: int, heads: int):
        super().__init__()
        self.attention = nn.MultiheadAttention(size, heads, batch_first=True)
        self.feedforward = nn.Sequential(nn.Linear(size, 4 * size), nn.ReLU(), nn.Linear(4 * size, size))
        self.norm1, self.norm2 = nn.LayerNorm(size), nn.LayerNorm(size)

    def forward(
        self, x: torch.Tensor, padding: torch.Tensor, memory: torch.Tensor | None = None, weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [units, items, size] with padding [units, items] (True: padding); memory [units, items', size],
        all real items. With `weights`, also the first query's attention over the keys (heads averaged)."""
        context, mask = x, padding
        if memory is not None:
            context, mask = torch.cat([memory, x], 1), torch.cat([padding.new_zeros(memory.shape[:2]), padding], 1)
        attended, attention = self.attention(x, context, context, key_padding_mask=mask, need_weights=weights)
        x = self.norm1(x + attended)
        return self.norm2(x + self.feedforward(x)), None if attention is None else attention[:, 0]


class Level(nn.Module):
    """One level of the hierarchy: an encoder over each unit's items, then pooling into one vector
    per unit (words -> a sentence vector; sentence vectors -> a document vector).

    encoder "gru" is the paper's BiGRU, run on packed items; "transformer" is self-attention within
    each unit (sinusoidal positions, a padding mask; cost quadratic in the unit's length only);
    "none" pools the items as they come. With `segment_length`, a transformer level reads each unit
    in segments of that many items, each attending to itself and to the previous segment (cached,
    no gradient): attention memory grows with the unit's length times the segment, not its square.
    Pooling "cls" (transformer levels, no segments) prepends a learned summary item to each unit: its
    output is the unit vector, and its attention over the items (last layer) their weights. Pooling
    "label_attention" (`labels` context vectors) gives a vector and a weight per label: a top level's.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 50,
        attention_size: int = 100,
        pooling: str = "attention",
        encoder: str = "gru",
        heads: int = 4,
        layers: int = 1,
        segment_length: int | None = None,
        labels: int = 1,
    ):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder {encoder!r} is not one of {ENCODERS}")
        if pooling not in (*POOLINGS, "cls"):
            raise ValueError(f"pooling {pooling!r} is not one of {(*POOLINGS, 'cls')}")
        if segment_length is not None and encoder != "transformer":
            raise ValueError(f"segment_length is for transformer levels, not {encoder!r}")
        if pooling == "cls" and (encoder != "transformer" or segment_length is not None):
            raise ValueError("cls pooling needs a transformer level without segment_length")
        self.encoder, self.segment_length = encoder, segment_length
        self.output_size = input_size if encoder == "none" else 2 * hidden_size
        if encoder == "transformer" and self.output_size % heads:
            raise ValueError(
                f"a transformer level's {self.output_size} features (2 x hidden_size) do not divide into {heads} heads"
            )
        if encoder == "gru":
            self.gru = nn.GRU(input_size, hidden_size, bidirectional=True)
        elif encoder == "transformer":
            self.project = nn.Linear(input_size, self.output_size)
            self.layers = nn.ModuleList(SelfAttentionLayer(self.output_size, heads) for _ in range(layers))
        self.cls = nn.Parameter(torch.randn(self.output_size) * 0.02) if pooling == "cls" else None
        self.pooling = None if pooling == "cls" else Pooling(pooling, self.output_size, attention_size, labels)

    def forward(self, items: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """items [total, features], flat unit after unit; lengths [units] (each >= 1).

        Returns unit vectors [units, output_size] and each item's weight in its unit [total] (with
        label_attention: [units, labels, output_size] and [total, labels]).
        """
        if self.encoder == "gru":
            rows, units, batch_sizes, sorted_units = packing(lengths)
            rows, units, sorted_units = rows.to(items.device), units.to(items.device), sorted_units.to(items.device)
            packed = PackedSequence(items[rows], batch_sizes, sorted_units, torch.argsort(sorted_units))
            encoded, _ = self.gru(packed)
            vectors, packed_weights = self.pooling(encoded.data, units, len(lengths))
            return vectors, packed_weights.new_zeros(packed_weights.shape).index_copy(0, rows, packed_weights)
        units = torch.repeat_interleave(torch.arange(len(lengths), device=items.device), lengths)
        if self.encoder == "none":
            return self.pooling(items, units, len(lengths))
        encoded, positions, summary_attention = self._self_attention(items, units, lengths)
        if self.cls is None:
            return self.pooling(encoded[units, positions], units, len(lengths))
        attention = summary_attention[units, positions].float()  # the summary's attention on each item
        return encoded[:, 0], attention / attention.new_zeros(len(lengths)).index_add(0, units, attention)[units]

    def _self_attention(
        self, items: torch.Tensor, units: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encoded units, padded [units, positions, size]; each item's position there; with cls
        pooling, the summary's attention over the positions [units, positions] (last layer)."""
        offset = int(self.cls is not None)  # the summary item, first in every unit
        positions = torch.arange(len(items), device=items.device) - (torch.cumsum(lengths, 0) - lengths)[units]
        positions = positions + offset
        x = self.project(items) + sinusoidal(positions, self.output_size)
        padded = x.new_zeros(len(lengths), int(lengths.max()) + offset, x.size(-1))
        padded[units, positions] = x
        if offset:
            padded[:, 0] = self.cls + sinusoidal(positions.new_zeros(1), self.output_size)
        padding = torch.arange(padded.size(1), device=items.device) >= (lengths + offset)[:, None]
        segment = self.segment_length or padded.size(1)  # cls pooling: one segment
        outputs, memories = [], [None] * len(self.layers)  # per layer: the previous segment's input, its units
        for start in range(0, padded.size(1), segment):
            here = (lengths > start).nonzero().squeeze(1)  # the units with items in this segment
            h, mask = padded[here, start : start + segment], padding[here, start : start + segment]
            for i, layer in enumerate(self.layers):
                memory = None
                if memories[i] is not None:  # the units still here were all in the previous segment, whole
                    previous, previous_units = memories[i]
                    memory = previous[torch.isin(previous_units, here)]
                memories[i] = (h.detach(), here)
                h, summary_attention = layer(h, mask, memory, weights=bool(offset) and i == len(self.layers) - 1)
            outputs.append(h.new_zeros(len(lengths), *h.shape[1:]).index_copy(0, here, h))
        return torch.cat(outputs, 1), positions, summary_attention


def unflatten(flat: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Per-item values stored unit after unit [items, ...] -> [units, width, ...], 0 where a unit has no item."""
    mask = torch.arange(width, device=flat.device) < lengths[:, None]
    if flat.dim() == 1:
        return flat.new_zeros(mask.shape).masked_scatter(mask, flat)
    return flat.new_zeros(*mask.shape, *flat.shape[1:]).index_put((*mask.nonzero().unbind(1),), flat)


def grouped(counts: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Counts per item -> their sums per group of `sizes` consecutive items (words per sentence ->
    words per document, given sentences per document)."""
    return counts.new_zeros(len(sizes), *counts.shape[1:]).index_add(0, torch.repeat_interleave(sizes), counts)


UNITS = ("word", "sentence", "paragraph", "document")  # finest first
PAPER_LEVELS = ({"unit": "sentence"}, {"unit": "document"})  # words -> sentences -> document


class HAN(nn.Module):
    """A hierarchy of levels, words up to the document, then a linear classifier.

    `levels` lists the levels bottom up, each a dict of a Level's options with its `unit`, the unit
    it pools into: "sentence", "paragraph" or "document", strictly coarser each time, the last
    "document". Each level reads the items of the level below it (words first): the paper's HAN is
    [sentence, document]; a 3-level model [sentence, paragraph, document]; the flat baseline
    [document] (one level over all words of a document). A level may skip a unit (words ->
    paragraphs). `dropout` (not in the paper; a tuning knob) drops embedded words and document
    vectors in training.

    Attention comes back per word (its weight in the first level's unit) and per sentence: its share
    of the document, the product of the weights above it (or the sum of its words' shares when the
    first level pools words into units above sentences), so sentence weights sum to 1 per document.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 200,
        levels: Sequence[Mapping] = PAPER_LEVELS,
        padding_idx: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.units = check_units([level.get("unit") for level in levels])
        self.dropout = nn.Dropout(dropout)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
        self.levels = nn.ModuleList()
        for i, level in enumerate(levels):
            options = checked_level_options(i, level)
            if options.get("pooling") == "label_attention" and i < len(levels) - 1:
                raise ValueError(f"levels[{i}]: label_attention pools the document: the top level's only")
            input_size = self.levels[-1].output_size if self.levels else embedding_dim
            try:
                self.levels.append(Level(input_size, **options, labels=num_classes))
            except ValueError as error:
                raise ValueError(f"levels[{i}]: {error}") from None
        # With label attention each label has its own document vector, read by its own row of the classifier.
        self.labelwise = levels[-1].get("pooling") == "label_attention"
        self.classifier = nn.Linear(self.levels[-1].output_size, num_classes)

    @property
    def output_bias(self) -> nn.Parameter:
        """The classifier's bias [classes], which a trainer may start at the label prior."""
        return self.classifier.bias

    def forward(
        self,
        word_ids: torch.Tensor,
        word_counts: torch.Tensor,
        sentence_counts: torch.Tensor,
        paragraph_sizes: torch.Tensor | None = None,
    ) -> NetOutput:
        """word_ids [sentences, words] (padded), word_counts [sentences], sentence_counts [documents];
        paragraph_sizes [paragraphs]: sentences per paragraph, document after document (needed by a
        paragraph level only). Sentence weights per label with label attention (NetOutput)."""
        sizes = self._nesting(word_counts, sentence_counts, paragraph_sizes)
        word_mask = torch.arange(word_ids.size(1), device=word_ids.device) < word_counts[:, None]
        items = self.dropout(self.embedding(word_ids[word_mask]))
        chain = ["word", *sizes]
        belows = ("word", *self.units[:-1])  # the unit whose vectors each level reads
        lengths, weights = [], []
        for level, below, unit in zip(self.levels, belows, self.units, strict=True):
            unit_lengths = sizes[chain[chain.index(below) + 1]]  # items of `below` per unit
            for coarser in chain[chain.index(below) + 2 : chain.index(unit) + 1]:
                unit_lengths = grouped(unit_lengths, sizes[coarser])
            items, item_weights = level(items, unit_lengths)
            lengths.append(unit_lengths)
            weights.append(item_weights)

        share = None  # each item's share of its document (per label: [items, labels]), top level down to the sentences
        for unit_lengths, item_weights, below in zip(lengths[::-1], weights[::-1], belows[::-1], strict=True):
            if share is not None:
                above = share[torch.repeat_interleave(unit_lengths)]
                share = (item_weights[:, None] if above.dim() == 2 else item_weights) * above
            else:
                share = item_weights
            if below == "sentence":
                break
        # below is "word" only when the first level pools words straight into paragraphs or documents
        sentence_share = share if below == "sentence" else grouped(share, word_counts)
        sentence_share = unflatten(sentence_share, sentence_counts, int(sentence_counts.max()))
        documents = self.dropout(items)
        if self.labelwise:  # [documents, labels, features]: label l's vector . the classifier's row l
            logits = (documents * self.classifier.weight).sum(-1) + self.classifier.bias
            sentence_share = sentence_share.movedim(-1, 1)
        else:
            logits = self.classifier(documents)
        word_weights = weights[0]
        if word_weights.dim() == 2:  # a flat model with label attention: words weighed per label; shown: their mean
            word_weights = word_weights.mean(1)
        return NetOutput(logits, unflatten(word_weights, word_counts, word_ids.size(1)), sentence_share)

    def _nesting(
        self, word_counts: torch.Tensor, sentence_counts: torch.Tensor, paragraph_sizes: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """For each unit the levels may read, finest first: how many of the unit below each one holds."""
        if "paragraph" not in self.units:
            return {"sentence": word_counts, "document": sentence_counts}
        if paragraph_sizes is None:
            raise ValueError("a paragraph level needs paragraph_sizes (sentences per paragraph)")
        document_ends = torch.searchsorted(
            torch.cumsum(paragraph_sizes, 0), torch.cumsum(sentence_counts, 0), right=True
        )
        paragraph_counts = torch.diff(document_ends, prepend=document_ends.new_zeros(1))
        return {"sentence": word_counts, "paragraph": paragraph_sizes, "document": paragraph_counts}


LEVEL_SIZES = ("hidden_size", "attention_size", "heads", "layers", "segment_length")


def checked_level_options(i: int, level: Mapping) -> dict:
    """A level's options without its unit, refused with one clear line where a Level could not use them."""
    options = {key: value for key, value in level.items() if key != "unit"}
    known = [name for name in inspect.signature(Level).parameters if name not in ("input_size", "labels")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"levels[{i}]: unknown option {unknown} (a level has: unit, {', '.join(known)})")
    for key in (key for key in LEVEL_SIZES if key in options):
        value = options[key]
        positive = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if not positive and not (key == "segment_length" and value is None):
            raise ValueError(f"levels[{i}].{key}={value!r}: expected a positive integer")
    return options


def check_units(units: list) -> tuple[str, ...]:
    """Level units, checked: known, strictly coarser each time, ending with the document."""
    if not units or units[-1] != "document" or any(unit not in UNITS[1:] for unit in units):
        raise ValueError(f"levels: units {units} must each be one of {list(UNITS[1:])}, the last 'document'")
    if any(UNITS.index(a) >= UNITS.index(b) for a, b in zip(units, units[1:], strict=False)):
        raise ValueError(f"levels: units {units} must grow coarser bottom up ({' < '.join(UNITS)})")
    return tuple(units)
