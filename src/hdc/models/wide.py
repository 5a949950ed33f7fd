"""The wide term: a linear model on TF-IDF bags of words and bigrams beside the net, and its mix.

A linear model remembers rare n-grams; the hierarchy reads context. The wide term is the TF-IDF +
linear SVM's form (hdc.models.fasttext.FastText with one score per class in each row), fitted exactly
before the net trains (WideTerm.fit) and then left as fitted. The answer is
mix[0] x the net's logits + mix[1] x the bag's, the mix chosen on validation after each epoch:

- choose_mix takes the mix of MIXES with the lowest calibrated cross-entropy: each mix at the best of
  SCALES (1 / temperature). Cross-entropy, not accuracy, because on a small validation set accuracy
  rewards a half-trained net's lucky flips; calibrated, because unscaled a mix could win by sharpening
  an under-confident part rather than by ranking answers better (results/recipe_probes.md, "Choosing
  the mix").
- mix_losses gives those losses for a batch, summed, so that they add up over batches and ranks.
"""

import warnings
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from hdc.models.fasttext import FastText

# The weights (the net's, the bag's) a mix may take: from the bag alone to the net alone.
MIXES = [(round(t / 10, 1), round(1 - t / 10, 1)) for t in range(11)]
SCALES = [2 ** (k / 2) for k in range(-4, 7)]  # 0.25 .. 8


def mixed(net: torch.Tensor, bag: torch.Tensor, mix: tuple[float, float] | torch.Tensor) -> torch.Tensor:
    """mix[0] x net + mix[1] x bag; a part weighed 0 is left out, so that a NaN in it cannot spread."""
    a, b = (float(weight) for weight in mix)
    return (a * net if a else 0) + (b * bag if b else 0)


def mix_losses(net: torch.Tensor, bag: torch.Tensor, targets: torch.Tensor, loss: Callable | None = None):
    """The summed loss (`loss(logits, targets)`; cross-entropy if None) of every mix of MIXES at every
    scale of SCALES: (mixes, scales), in fp32."""
    loss = loss or (lambda logits, y: F.cross_entropy(logits, y, reduction="sum"))
    net, bag = net.float(), bag.float()
    return torch.stack(
        [torch.stack([loss(scale * mixed(net, bag, mix), targets) for scale in SCALES]) for mix in MIXES]
    )


def choose_mix(losses: torch.Tensor) -> tuple[float, float]:
    """The mix of the lowest loss at its best scale, from mean losses (mixes, scales); ties go to the
    most even mix, and a NaN (a diverged part) ranks last."""
    best = losses.nan_to_num(nan=float("inf")).min(1).values.tolist()
    return MIXES[min(range(len(MIXES)), key=lambda i: (best[i], abs(MIXES[i][0] - 0.5)))]


class WideTerm(nn.Module):
    """A linear bag of n-grams (fitted, not trained) and the mix of its logits with the net's."""

    def __init__(
        self, vocab_size: int, num_classes: int, buckets: int = 1_000_000, naive_bayes: bool = False, ngrams: int = 2
    ):
        super().__init__()
        # Fitted, never trained: no gradients (DDP would wait for them), and no optimizer state.
        self.bag = FastText(vocab_size, num_classes, embedding_dim=None, buckets=buckets, ngrams=ngrams)
        self.bag.requires_grad_(False)
        self.register_buffer("mix", torch.tensor([0.5, 0.5]))
        self.naive_bayes = naive_bayes

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The bag's logits, from the net's inputs."""
        return self.bag(*inputs).logits

    def explained(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The bag's logits and, from the same reading of the bag, what each n-gram occurrence adds to every
        label's logit (weight x TF-IDF value): (its document [occurrences], where it is: (sentence, first
        word, words) [occurrences, 3], contributions [occurrences, labels]). A document's contributions and
        the bias sum to its logits (as forward gives them, to float rounding)."""
        ids, owners, weights, spans = self.bag.terms(*inputs[:3], spans=True)
        contributions = weights[:, None] * self.bag.embedding.weight[ids]
        logits = self.bag.bias.expand(len(inputs[2]), -1).index_add(0, owners, contributions.to(self.bag.bias))
        return logits, (owners, spans, contributions)

    def answer(self, net: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        """mixed(net, bag, self.mix), with the weights kept on the device: no host sync per batch."""
        a, b = self.mix
        return torch.where(a > 0, a * net, 0.0) + torch.where(b > 0, b * bag, 0.0)

    @torch.no_grad()
    def fit(
        self, batches: Iterable, targets: Callable | None = None, loss: Callable | None = None, c: float = 100.0,
        max_iter: int = 300,
    ) -> None:  # fmt: skip
        """Fit the bag exactly, as scikit-learn fits a model: logistic regression (`loss`: multinomial,
        F.cross_entropy, by default; a binary one per label for label sets) with an L2 penalty of 1 / (2 c)
        on the rows (c: scikit-learn's C), by L-BFGS over the bags of every training document at once.
        `targets(batch)` gives what `loss` compares with (default: batch.labels). Fitting to convergence,
        not a few epochs of Adam, is what makes a linear model on TF-IDF bags as strong as the TF-IDF +
        linear SVM (results/recipe_probes.md, "The bag's features"). The bag's IDF must be set first
        (FastText.set_idf).

        naive_bayes: each n-gram's weight for a label is fitted as r x v with the penalty on v, r its
        naive-Bayes log-count ratio for that label (NBSVM's scaling, Wang & Manning 2012, one label
        against the rest): n-grams that tell a label apart are cheap to use, the others dear. The
        forward pass is unchanged; only the fit's prior is."""
        targets, objective = targets or (lambda batch: batch.labels), loss or F.cross_entropy
        rows, columns, values, labels, documents = [], [], [], [], 0
        for batch in batches:
            ids, owners, weights = self.bag.terms(batch.word_ids, batch.word_counts, batch.sentence_counts)
            rows.append(owners + documents)
            columns.append(ids)
            values.append(weights)
            labels.append(targets(batch))
            documents += len(batch)
        rows, columns, values, labels = (torch.cat(part) for part in (rows, columns, values, labels))
        held = values != 0  # an n-gram of IDF 0 (in one document) and a row no document holds stay 0
        rows, columns, values = rows[held], columns[held], values[held]
        used, columns = torch.unique(columns, return_inverse=True)
        shape = (len(labels), len(used))
        bags = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, shape, check_invariants=True).coalesce()
        classes = self.bag.bias.numel()
        ratios = _log_count_ratios(bags, labels, classes) if self.naive_bayes else None
        with warnings.catch_warnings():  # "CSR support is in beta": its matrix product is what is used
            warnings.simplefilter("ignore", UserWarning)
            bags = bags.to_sparse_csr()
            transposed = bags.t().to_sparse_csr()
        weight = torch.zeros(len(used), classes, requires_grad=True)
        bias = torch.zeros(classes, requires_grad=True)
        # History 10, as scipy's and scikit-learn's L-BFGS: each step's two-loop recursion passes over every
        # weight twice per remembered step, and at torch's 100 that, not the products, was the fit's time.
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, history_size=10, line_search_fn="strong_wolfe")

        def loss() -> torch.Tensor:
            optimizer.zero_grad()
            with torch.enable_grad():
                logits = _SparseProduct.apply(bags, transposed, _scaled(weight, ratios)) + bias
                value = objective(logits, labels) + (weight**2).sum() / (2 * c * len(labels))
                value.backward()
            return value

        optimizer.step(loss)
        self.bag.embedding.weight[used] = _scaled(weight, ratios).detach().to(self.bag.embedding.weight)
        self.bag.bias.copy_(bias.detach())


def _scaled(weight: torch.Tensor, ratios: torch.Tensor | None) -> torch.Tensor:
    """The bag's weights from the fitted ones: ratios x weight under the naive-Bayes prior, else as they are."""
    return weight if ratios is None else ratios * weight


def _log_count_ratios(bags: torch.Tensor, labels: torch.Tensor, classes: int, alpha: float = 1.0) -> torch.Tensor:
    """[n-grams, labels]: log((p / |p|1) / (q / |q|1)), p (q) an n-gram's document count with (without) the
    label plus alpha; `bags` a coalesced sparse [documents, n-grams], `labels` indices or label sets."""
    present = torch.sparse_coo_tensor(bags.indices(), torch.ones_like(bags.values()), bags.shape,
                                      is_coalesced=True, check_invariants=False)  # fmt: skip
    hot = labels.float() if labels.dim() == 2 else F.one_hot(labels, classes).float()
    with_label = alpha + torch.sparse.mm(present.t(), hot)
    without = alpha + torch.sparse.mm(present.t(), 1 - hot)
    return torch.log(with_label / with_label.sum(0)) - torch.log(without / without.sum(0))


class _SparseProduct(torch.autograd.Function):
    """bags @ weight for a sparse CSR `bags`, its gradient by the transpose made once: torch's own
    backward through a CSR product transposes the bags at every call, most of an L-BFGS step's time."""

    @staticmethod
    def forward(ctx, bags: torch.Tensor, transposed: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.transposed = transposed
        return bags @ weight

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, ctx.transposed @ grad
