"""The configs for the paper's datasets on the hub, checked on tiny local files with the hub's columns."""

import datasets
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from hdc.paths import CONFIG_DIR

TEXT = "A first sentence. And a second one!"
HUB_LAYOUTS = {
    "yelp_review_full": {"text": TEXT, "label": datasets.ClassLabel(names=[f"{n} star" for n in range(1, 6)])},
    "yahoo_answers": {
        "question_title": "Why?", "question_content": TEXT, "best_answer": "Because.",
        "topic": datasets.ClassLabel(names=[f"topic {n}" for n in range(10)]),
    },
    "amazon_polarity": {
        "title": "Great", "content": TEXT, "label": datasets.ClassLabel(names=["negative", "positive"]),
    },
}  # fmt: skip


@pytest.mark.parametrize("dataset", HUB_LAYOUTS)
def test_paper_dataset_config_reads_its_columns(dataset, tmp_path):
    layout = HUB_LAYOUTS[dataset]
    labels = {k: v for k, v in layout.items() if isinstance(v, datasets.ClassLabel)}
    (label_column, classes), rows = next(iter(labels.items())), 20
    columns = {k: [f"{v} Review {i}." for i in range(rows)] for k, v in layout.items() if k != label_column}
    columns[label_column] = [i % classes.num_classes for i in range(rows)]
    features = datasets.Features({k: datasets.Value("string") for k in columns if k != label_column})
    features[label_column] = classes
    folder = tmp_path / "hub_copy"
    for split in ("train", "test"):
        datasets.Dataset.from_dict(columns, features=features).to_parquet(folder / f"{split}.parquet")

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        overrides = [f"data.path={folder}", f"paths.cache_dir={tmp_path}/cache", "data.min_frequency=1"]
        cfg = compose("train.yaml", overrides=[f"data={dataset}", *overrides])
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    assert dm.label_names == classes.names
    texts, ids = zip(*dm.train_documents(), strict=True)
    assert 10 < len(texts) <= rows and all(TEXT in text for text in texts)  # ~10% go to validation
    assert set(ids) <= set(range(classes.num_classes)) and len(set(ids)) > 1
    assert len(dm.encoded("test")) == rows
