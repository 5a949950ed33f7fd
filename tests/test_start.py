"""How a net starts and how long it trains: output layers at the training split's label prior, enough
optimizer steps on a small corpus, and each part of the answer judged at its own thresholds."""

from functools import partial

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from hdc.classifier.module import DocumentClassifier, compact, expanded
from hdc.classifier.task import Task
from hdc.data.batching import batch_of
from hdc.models.fasttext import FastText
from hdc.models.han import HAN
from hdc.models.wide import WideTerm
from hdc.training.build import scale_epochs
from tests.test_fasttext import TRAINER, Given

LEVELS = [{"unit": "sentence", "hidden_size": 4, "attention_size": 8}, {"unit": "document", "hidden_size": 4}]
NETS = {
    "han": partial(HAN, embedding_dim=8, levels=LEVELS),
    "label attention": partial(HAN, embedding_dim=8, levels=[LEVELS[0], {**LEVELS[1], "pooling": "label_attention"}]),
    "fasttext": partial(FastText, embedding_dim=8, buckets=101),
    "linear bag": partial(FastText, embedding_dim=None, buckets=101),
}
DOCUMENTS = [[[[5, 6, 7], [8]]], [[[9]]], [[[10, 11], [12, 13, 14]]]]


def test_the_prior_is_the_label_frequencies_smoothed():
    labels, documents = torch.tensor([0, 0, 0, 1]), 4  # single-label: 3 x a, 1 x b, no c
    assert Task(3).prior_logits(labels, documents).softmax(0).tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    sets = torch.tensor([0, 1, 0, 0])  # label sets of 4 documents: {a, b}, {a}, {a}, {}
    probabilities = Task(3, multi_label=True).prior_logits(sets, documents).sigmoid()
    assert probabilities.tolist() == pytest.approx([3.5 / 5, 1.5 / 5, 0.5 / 5])


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("multi_label", [False, True])
def test_every_net_starts_answering_the_prior(net, multi_label):
    """With the evidence's weights at zero, the answer is the output bias: the prior, for every document."""
    torch.manual_seed(0)
    model = DocumentClassifier(30, ["a", "b", "c"], NETS[net], multi_label=multi_label).eval()
    labels = torch.tensor([0, 0, 0, 1, 2, 2])
    model.start_at_prior(labels, documents=5)
    for name, parameter in model.net.named_parameters():
        if name.endswith("classifier.weight") or (net == "linear bag" and name == "embedding.weight"):
            torch.nn.init.zeros_(parameter)
    logits = model(batch_of(DOCUMENTS, [0] * len(DOCUMENTS))).logits
    assert torch.allclose(logits, model.task.prior_logits(labels, 5).expand_as(logits))


def config(floor, **trainer):
    return OmegaConf.create({"min_optimizer_steps": floor, "trainer": {"max_epochs": 8, **trainer}})


@pytest.mark.parametrize(
    ("cfg", "steps_per_epoch", "epochs", "validated_every"),
    [
        (config(1000), 15, 72, 9),  # 1k documents at batch 64: 120 steps, too few
        (config(1000), 200, 8, None),  # enough as it is
        (config(1000, check_val_every_n_epoch=2), 50, 24, 6),
        (config(None), 15, 8, None),  # no floor (the paper's recipe)
        (config(1000, limit_train_batches=5), 15, 8, None),  # the user chose the run's length
        (config(1000, max_steps=50), 15, 8, None),
    ],
)
def test_a_small_corpus_gets_more_epochs_validated_as_often_in_steps(cfg, steps_per_epoch, epochs, validated_every):
    scale_epochs(cfg, steps_per_epoch)
    assert cfg.trainer.max_epochs == epochs
    assert cfg.trainer.get("check_val_every_n_epoch") == validated_every


def test_each_part_of_a_label_set_answer_is_judged_at_its_own_thresholds():
    """The net ranks every label right but is shy (0.3 for a true label, 0.05 for a false one); the bag
    is sure and right. At the answer's thresholds the net would score F1 0; at its own, 1."""
    targets = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    shy = torch.where(targets.bool(), 0.3, 0.05).logit()
    sure = torch.where(targets.bool(), 0.99, 0.01).logit()
    model = DocumentClassifier(50, ["a", "b", "c"], partial(Given, logits=shy), partial(WideTerm, buckets=101),
                               multi_label=True)  # fmt: skip
    model.wide.bag = Given(sure)
    model.wide.mix.copy_(torch.tensor([0.0, 1.0]))
    batch = batch_of([[[[10 + i]]] for i in range(4)], [tuple(row.nonzero().flatten().tolist()) for row in targets])
    [logged] = L.Trainer(**TRAINER).validate(model, DataLoader([batch] * 2, batch_size=None, collate_fn=lambda b: b))
    assert logged["val/f1_micro_net"] == 1.0 and logged["val/f1_micro_wide"] == 1.0
    assert 0.05 < model.part_thresholds[0].max() <= 0.3 < model.part_thresholds[1].min()


def test_label_smoothing_moves_label_sets_toward_one_half():
    logits, targets = torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 0.0]])
    smoothed = Task(2, multi_label=True).loss(logits, targets, label_smoothing=0.2)
    expected = F.binary_cross_entropy_with_logits(logits, torch.tensor([[0.9, 0.1]]), reduction="sum")
    assert smoothed.item() == pytest.approx(expected.item())
    assert Task(2, multi_label=True).loss(logits, targets).item() < smoothed.item()


def test_compact_stores_large_mostly_zero_tables_sparse_and_expanded_gives_them_back():
    table = torch.zeros(200_000, 2)
    table[[5, 70_000]] = torch.tensor([1.0, -2.0])
    state = {"table": table, "dense": torch.randn(200_000), "small": torch.zeros(10), "steps": torch.tensor(3)}
    stored = compact(state)
    assert stored["table"].is_sparse and not any(stored[k].is_sparse for k in ("dense", "small", "steps"))
    back = expanded(stored)
    assert all(torch.equal(back[name], value) for name, value in state.items())
