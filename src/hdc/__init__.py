"""hdc: hierarchical attention networks for document classification. `hdc.load(path)` gives a predictor."""


def load(path, device="cpu", precision="32-true", attribution="attention"):
    """A Predictor from an hdc checkpoint: `hdc.load("model.ckpt").predict(["text", ...])`; attribution="gradient"
    adds each word's gradient x input (hdc.inference.predictor.Predictor)."""
    from hdc.inference.predictor import load as load_predictor  # torch and Lightning load only when asked for

    return load_predictor(path, device, precision, attribution)
