"""Mixed precision: every pooling, level and model config trains, evaluates and predicts under bf16 and fp16.

A CPU has no cuDNN, so CUDA's autocast is imitated where its dtypes differ from the CPU's: the GRU's
outputs come in the low precision (cuDNN runs the GRU in it) and exp() in fp32 (on CUDA's fp32 list).
That mix is what stopped `trainer=gpu` at its first step. tests/test_gpu.py runs the real thing.
"""

import contextlib

import pytest
import torch

import hdc
from hdc.classifier.module import expanded
from hdc.cli.evaluate import predict_logits
from hdc.data.batching import batch_of
from hdc.errors import HdcError
from hdc.models.han import POOLINGS, Pooling
from tests.conftest import train_in_process
from tests.test_model import VARIANTS, make_model, random_documents, run

LOW = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def cuda_autocast(monkeypatch, dtype: torch.dtype):
    """CPU autocast with the dtype mix of CUDA's autocast (see the module's docstring)."""
    gru_forward, exp = torch.nn.GRU.forward, torch.Tensor.exp

    def low_precision_gru(self, input, hx=None):
        output, hidden = gru_forward(self, input, hx)
        return output._replace(data=output.data.to(dtype)), hidden.to(dtype)

    monkeypatch.setattr(torch.nn.GRU, "forward", low_precision_gru)
    monkeypatch.setattr(torch.Tensor, "exp", lambda self: exp(self.float()))
    with torch.autocast("cpu", dtype):
        yield
    monkeypatch.undo()


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("kind", POOLINGS)
def test_pooling_is_fp32_whatever_precision_the_encoder_gives(kind, dtype, monkeypatch):
    torch.manual_seed(0)
    pooling = Pooling(kind, 8, 6, labels=2 if kind == "label_attention" else 1)  # label attention: per label
    h, units = torch.randn(10, 8), torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    expected, _ = pooling(h, units, 3)
    with cuda_autocast(monkeypatch, LOW[dtype]):
        vectors, weights = pooling(h.to(LOW[dtype]), units, 3)
    assert vectors.dtype == weights.dtype == torch.float32
    sums = torch.zeros(3, *weights.shape[1:]).index_add(0, units, weights)
    torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-6, rtol=0)
    torch.testing.assert_close(vectors, expected, atol=0.03, rtol=0.03)  # h itself was rounded to `dtype`


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_level_trains_under_cuda_style_autocast(variant, dtype, monkeypatch):
    documents = random_documents(torch.Generator().manual_seed(0), 6)
    model = make_model(variant)
    expected, _, _ = run(model, documents)
    with cuda_autocast(monkeypatch, LOW[dtype]):
        logits, word_weights, sentence_weights = run(model, documents)
        logits.float().logsumexp(-1).sum().backward()
    assert word_weights.dtype == sentence_weights.dtype == torch.float32
    torch.testing.assert_close(sentence_weights.sum(-1), torch.ones(len(documents)), atol=1e-5, rtol=0)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.embedding.weight.grad.abs().sum() > 0
    torch.testing.assert_close(logits.float(), expected, atol=0.05, rtol=0.05)


MODEL_CONFIGS = {
    "han": ["model/net=han"],
    "han_ave": ["model/net=han_ave"],
    "han_max": ["model/net=han_max"],
    "flat": ["model/net=flat"],
    "flat_transformer": ["model/net=flat_transformer"],
    "han_3level": ["model/net=han_3level"],
    "han_transformer": ["model/net=han_transformer"],
    "segments": ["model/net=han_transformer", "model.net.levels.1.segment_length=4"],
    "cls": ["model/net=han_transformer", "model.net.levels.0.pooling=cls", "model.net.levels.1.pooling=cls"],
    "fasttext": ["model=fasttext"],  # the baseline row
    "default": ["recipe=default"],  # the default recipe: the HAN with its wide term
}
TEXTS = ["A wonderful film. I loved every minute of it.", "Dull and far too long.\n\nThe acting was poor.", ""]


@pytest.fixture(scope="module")
def small_data(small_imdb, tmp_path_factory) -> list[str]:
    cache = tmp_path_factory.mktemp("precision_cache")
    return [f"data.path={small_imdb}", f"paths.cache_dir={cache}", "logger=none", "data.min_frequency=2"]


@pytest.mark.parametrize("config", MODEL_CONFIGS)
def test_every_model_config_trains_tests_and_predicts_in_bf16(config, small_data, tmp_path):
    """Fused AdamW and gradient clipping included (Lightning refuses that pair under mixed precision)."""
    metrics = train_in_process(tmp_path, *small_data, *MODEL_CONFIGS[config], "trainer.precision=bf16-mixed")
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("train/loss", "val/loss", "test/loss"))
    checkpoint = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    fp32 = hdc.load(checkpoint).predict(TEXTS)
    bf16 = hdc.load(checkpoint, precision="bf16-mixed").predict(TEXTS)
    for a, b in zip(fp32, bf16, strict=True):
        assert a.probabilities.keys() == b.probabilities.keys()
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < 0.02
        assert abs(sum(s.weight for s in b.sentences) - 1) < 1e-5
        assert [s.words for s in a.sentences] == [s.words for s in b.sentences]


def test_fp16_with_loss_scaling_clips_a_fused_optimizer(small_data, tmp_path):
    """16-mixed on a CPU: Lightning would fall back to bf16, so its fp16 plugin is given directly,
    with a GradScaler: the gradients must be unscaled before clipping, then stepped by fused AdamW."""
    plugin = "{_target_:lightning.pytorch.plugins.MixedPrecision,precision:16-mixed,device:cpu}"
    metrics = train_in_process(tmp_path, *small_data, "trainer.precision=null", f"trainer.plugins=[{plugin}]",
                               "+trainer.plugins.0.scaler={_target_:torch.amp.GradScaler,device:cpu}")  # fmt: skip
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)  # the training state
    assert checkpoint["MixedPrecision"]["scale"] > 1  # the scaler was in use
    assert all(torch.isfinite(value).all() for value in expanded(checkpoint["state_dict"]).values())


def test_evaluation_and_prediction_take_a_precision(small_data, tmp_path):
    train_in_process(tmp_path, *small_data)
    checkpoint = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    model = hdc.load(checkpoint).model
    documents = model.encoder.encode(TEXTS)
    batch = batch_of(documents, [0] * len(TEXTS))
    fp32, _ = predict_logits(model, [batch], "cpu")
    bf16, _ = predict_logits(model, [batch], "cpu", "bf16-mixed")
    assert bf16.dtype == torch.float32 and not torch.equal(fp32, bf16)  # computed in bf16, returned in fp32
    torch.testing.assert_close(bf16, fp32, atol=0.05, rtol=0.05)
    with pytest.raises(HdcError, match="precision='bf16'"):
        hdc.load(checkpoint, precision="bf16")
