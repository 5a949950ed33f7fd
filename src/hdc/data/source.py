"""Dataset reference -> streaming splits of (text, label id), with a seeded validation carve-out."""

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import datasets

from hdc.errors import DataError

# Single files are read by the builder their suffix names.
_FILE_BUILDERS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json"}


class DatasetNotFound(DataError):
    pass


def local_candidates(path: str, data_dir: str | Path) -> list[Path]:
    """Where a reference is looked for on disk, in order: as given, then inside the project's data/."""
    return [Path(path), Path(data_dir) / path]


def find_local(path: str, data_dir: str | Path) -> Path | None:
    return next((p for p in local_candidates(path, data_dir) if p.exists()), None)


def local_fingerprint(path: str, data_dir: str | Path) -> list[tuple[str, int, int]]:
    """Names, sizes and modification times of a local copy's files: they change when its data does.
    Names within the copy, not where it lies: a project moved or checked out again keeps its caches."""
    local = find_local(path, data_dir)
    if local is None:
        return []
    files = [local] if local.is_file() else sorted(f for f in local.rglob("*") if f.is_file())
    return [(str(f.relative_to(local)) if f != local else f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in files]  # fmt: skip


def load_streaming(path: str, data_dir: str | Path, name: str | None = None):
    """Open every split of `path` for streaming: a local folder or file if one exists, else a hub id."""
    local = find_local(path, data_dir)
    try:
        if local is not None and local.is_file():
            builder = _FILE_BUILDERS.get(local.suffix)
            if builder is None:
                raise DatasetNotFound(f"Unsupported data file {local}: use one of {sorted(_FILE_BUILDERS)}")
            return datasets.load_dataset(builder, data_files={"train": str(local)}, streaming=True)
        return datasets.load_dataset(str(local or path), name, streaming=True)
    except RuntimeError as error:  # a loading script: datasets >= 4 refuses it, and hdc never runs one
        if "Dataset scripts are no longer supported" not in str(error):
            raise
        raise DataError(
            f"Dataset {path!r} comes with a loading script ({str(error).rsplit(' ', 1)[-1]}), and hdc never runs "
            f"code from a dataset: point data.path at its data files (parquet, csv or json) or a folder of them"
        ) from None
    except (ConnectionError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as error:
        looked = ", ".join(str(p.resolve()) for p in local_candidates(path, data_dir))
        raise DatasetNotFound(
            f"Dataset {path!r} not found. Looked in: {looked}, and on the Hugging Face Hub ({error}). "
            f"Place a copy (a folder as on the hub, or parquet/csv/json files) at "
            f"{Path(data_dir) / path} or set data.path=/path/to/dataset."
        ) from None


def hash_fraction(text: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the text and the seed: the same on every run, process and worker.

    Hashing content (not position) also keeps duplicated reviews on the same side of a split.
    """
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8, salt=seed.to_bytes(8, "little"))
    return int.from_bytes(digest.digest(), "little") / 2**64


def text_columns(text_column: str | list[str]) -> list[str]:
    """data.text_column names one column, or several (e.g. title, question, answer) read as one text."""
    return [text_column] if isinstance(text_column, str) else list(text_column)


def document_text(row: dict, text_column: str | list[str]) -> str:
    """A row's text; several text columns are joined by a line break, which is a sentence boundary."""
    return "\n".join(row[c] or "" for c in text_columns(text_column))


def require_columns(dataset: datasets.IterableDataset, text_column: str | list[str], label_column: str) -> None:
    """The text and label columns are there; without a schema (CSV, JSON) the first row says what is.
    An empty or unreadable split is one line too."""
    columns = dataset.column_names
    if columns is None:
        try:
            first = next(iter(dataset), None)
        except Exception as error:  # pandas, pyarrow and json each raise their own kind for a bad file
            raise DataError(f"cannot read the data: {type(error).__name__}: {error}".split("\n")[0]) from None
        if first is None:
            return  # no rows, no columns: the empty split is said where it is read
        columns = list(first)
    for role, column in [*(("text", c) for c in text_columns(text_column)), ("label", label_column)]:
        if columns is not None and column not in columns:
            raise DataError(f"{role} column {column!r} not in the dataset (columns: {columns}); set data.{role}_column")


def holds_label_sets(dataset: datasets.IterableDataset, label_column: str, separator: str | None) -> bool:
    """Whether a split's label column gives each document a set of labels: a list column (a `datasets`
    List/Sequence, or lists in JSON), or strings split by `separator`."""
    feature = (dataset.features or {}).get(label_column)
    lists = isinstance(feature, datasets.List | datasets.LargeList)
    if not lists:  # no schema, or one inferred from a few rows (JSON, CSV): the first row tells
        first = next(iter(dataset.select_columns([label_column])), {})
        lists = isinstance(first.get(label_column), list | tuple)
    if lists and separator is not None:
        raise DataError(f"data.label_separator={separator!r} splits string labels, but column {label_column!r} "
                        f"already holds lists: set data.label_separator=null")  # fmt: skip
    return lists or separator is not None


class LabelledSplit:
    """One split as a stream of (text, label id), checked as it goes; with `multi_label`, of (text,
    a tuple of label ids: the document's set, possibly empty).

    `keep` = (low, high) keeps only documents whose hash_fraction falls in [low, high): that is how
    validation is carved out of train (and how a quick run takes a fixed share of train).
    A label value is matched to a name, or else taken as an index. With `names_are_values` (label
    names given in config, or inferred from the values) a number is matched by its text first, so
    that a rating column with label_names [1, 2, 3, 4, 7, 8, 9, 10] maps 7 to class 4, not to index 7.
    Without label names (None: while they are being inferred) labels come as they are in the data.
    """

    def __init__(
        self,
        dataset: datasets.IterableDataset,
        text_column: str | list[str],
        label_column: str,
        label_names: list[str] | None,
        keep: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
        names_are_values: bool = False,
        multi_label: bool = False,
        separator: str | None = None,
        split: str = "",
    ):
        if dataset.column_names is not None:
            require_columns(dataset, text_column, label_column)
            dataset = dataset.select_columns([*text_columns(text_column), label_column])
        self.dataset = dataset
        self.text_columns, self.label_column = text_columns(text_column), label_column
        self.label_ids = None if label_names is None else {name: i for i, name in enumerate(label_names)}
        self.keep, self.seed, self.names_are_values = keep, seed, names_are_values
        self.multi_label, self.separator, self.split = multi_label, separator, split

    def known_id(self, value) -> int | None:
        """A label value's id (its name, or an index), or None."""
        name = str(value) if self.names_are_values and not isinstance(value, bool) else value
        if isinstance(name, str) and name in self.label_ids:
            return self.label_ids[name]
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(self.label_ids):
            return value
        return None

    def label_set(self, value, row: int) -> list:
        """A multi-label row's label values: its list, or its string split by the separator."""
        column = repr(self.label_column)
        if self.separator is not None:
            if value is None or (isinstance(value, float) and math.isnan(value)):  # an empty cell: no label
                return []
            if isinstance(value, list | tuple | dict):
                raise DataError(f"Label column {column}, row {row}: {value!r} is not a string for "
                                f"data.label_separator={self.separator!r} to split")  # fmt: skip
            return [part.strip() for part in str(value).split(self.separator) if part.strip()]
        if not isinstance(value, list | tuple):
            raise DataError(f"Label column {column} mixes lists and single labels: row {row} holds {value!r}; "
                            f"give every row a list (or set data.label_separator to split strings)")  # fmt: skip
        if any(isinstance(item, list | tuple | dict) for item in value):
            raise DataError(f"Label column {column}, row {row}: {value!r} nests lists; a label set is a flat list")
        return list(value)

    def __iter__(self) -> Iterator[tuple[str, int | tuple[int, ...]]]:
        low, high = self.keep
        whole = self.keep == (0.0, 1.0)
        unknown: dict = {}  # multi-label: unknown label -> documents holding it, reported after the whole split
        for number, row in enumerate(self.dataset):
            if any(c not in row for c in [*self.text_columns, self.label_column]):
                raise DataError(f"row lacks a column of {[*self.text_columns, self.label_column]}: {list(row)}")
            value = row[self.label_column]
            if not self.multi_label and (value is None or (isinstance(value, float) and math.isnan(value))):
                raise DataError(f"Label column {self.label_column!r}, row {number}: empty; every document needs a "
                                f"label (several or none per document: give lists, [] for none)")  # fmt: skip
            if not self.multi_label and isinstance(value, list | tuple):
                raise DataError(f"Label column {self.label_column!r} mixes single labels and lists: row {number} "
                                f"holds {value!r}")  # fmt: skip
            text = document_text(row, self.text_columns)
            if not (whole or low <= hash_fraction(text, self.seed) < high):
                continue
            values = self.label_set(value, number) if self.multi_label else [value]
            if self.label_ids is None:
                yield text, tuple(values) if self.multi_label else value
                continue
            ids = [self.known_id(v) for v in values]
            for v, found in set(zip(values, ids, strict=True)):
                if found is None:
                    unknown[v] = unknown.get(v, 0) + 1
            if not unknown:
                yield text, tuple(sorted(set(ids))) if self.multi_label else ids[0]
        if unknown:
            self._report_unknown(unknown)

    def _report_unknown(self, unknown: dict) -> None:
        """One line for every label value outside the model's labels, with the documents holding each."""
        listed = ", ".join(f"{name!r} ({count} documents)" for name, count in sorted(unknown.items(), key=str))
        split = f"split {self.split!r}, " if self.split else ""
        names = list(self.label_ids)
        # An integer outside 0..K-1 may be an index gone wrong; a string never is.
        indices = all(isinstance(v, int) and not isinstance(v, bool) for v in unknown)
        known = f"{names} or an index 0..{len(names) - 1}" if indices else f"{names}"
        raise DataError(f"Unknown labels in {split}column {self.label_column!r}: {listed}; the model knows "
                        f"{known} (set by data.label_names, or else read from the training split)")  # fmt: skip


def label_names_of(
    dataset: datasets.IterableDataset, label_column: str, configured: list[str] | None
) -> list[str] | None:
    """Label names from config if given, else from the dataset's ClassLabel feature; None if neither
    (then inferred_label_names, from the values of the training split)."""
    if configured:
        return [str(name) for name in configured]
    feature = (dataset.features or {}).get(label_column)
    if isinstance(feature, datasets.List | datasets.LargeList):  # label sets: the names of their items
        feature = feature.feature
    return list(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def inferred_label_names(values: set, label_column: str) -> list[str]:
    """Names for a label column without class names: its distinct values in the training split, sorted
    (integers by value: 0..K-1 stay in order, ratings 1-4, 7-10 become 8 classes), matched by value."""
    if not values:
        raise DataError(f"Label column {label_column!r}: no labels in the training split")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return [str(v) for v in sorted(values)]
    if all(isinstance(v, str) for v in values):
        return sorted(values)
    kinds = sorted({type(v).__name__ for v in values})
    raise DataError(f"Label column {label_column!r} holds {' and '.join(kinds)} values: expected integers or "
                    f"strings; set data.label_names=[name0,name1,...]")  # fmt: skip
