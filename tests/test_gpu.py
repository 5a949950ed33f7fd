"""On a CUDA GPU (skipped without one): every model config trains, tests and predicts under each
precision, and its predictions agree with fp32 ones. Run there with `pytest -m gpu`."""

import pytest
import torch

import hdc
from tests.conftest import train_in_process
from tests.test_precision import MODEL_CONFIGS, TEXTS

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on the GPU machine)"),
]
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


@pytest.fixture(scope="module")
def small_data(small_imdb, tmp_path_factory) -> list[str]:
    cache = tmp_path_factory.mktemp("gpu_cache")
    return [f"data.path={small_imdb}", f"paths.cache_dir={cache}", "logger=none", "data.min_frequency=2"]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("config", MODEL_CONFIGS)
def test_every_model_config_trains_on_the_gpu(config, precision, small_data, tmp_path):
    overrides = [*small_data, *MODEL_CONFIGS[config], "trainer=gpu", f"trainer.precision={precision}"]
    metrics = train_in_process(tmp_path, *overrides)
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("train/loss", "val/loss", "test/loss"))
    checkpoint = next((tmp_path / "checkpoints").glob("epoch_*.ckpt"))
    reference = hdc.load(checkpoint).predict(TEXTS)  # fp32 on the CPU
    on_gpu = hdc.load(checkpoint, device="cuda", precision=precision).predict(TEXTS)
    tolerance = 1e-4 if precision == "32-true" else 0.02
    for a, b in zip(reference, on_gpu, strict=True):
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < tolerance
        assert abs(sum(s.weight for s in b.sentences) - 1) < 1e-5
