"""Data for ``interfuse demo``: scikit-learn's bundled ``digits`` or the user's own CSV table.

Both sources give a :class:`DemoData`: standardized float32 features (statistics from the
training rows only), integer class labels, and a fixed stratified train/test split.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "MIN_ROWS",
    "MIN_ROWS_PER_CLASS",
    "DemoData",
    "DemoDataError",
    "digits_arrays",
    "load_csv",
    "load_digits",
    "split_and_scale",
]

#: Fewest rows a CSV table may have (the split keeps a quarter of them for testing).
MIN_ROWS = 20
#: Fewest rows per class (a stratified split puts at least one in each part).
MIN_ROWS_PER_CLASS = 2
#: Fraction of the rows held out for testing.
TEST_FRACTION = 0.25
#: Seed of the train/test split.
SPLIT_SEED = 0


class DemoDataError(ValueError):
    """The table given to ``interfuse demo --data`` cannot be used; the message says why."""


@dataclass
class DemoData:
    """A classification task split into standardized training and test tensors."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    feature_names: list[str]
    class_names: list[str]
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        """Width ``m`` of a row."""
        return int(self.x_train.shape[1])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def summary(self) -> dict[str, object]:
        """JSON-safe description (name, sizes, classes)."""
        return {
            "name": self.name,
            "train_rows": int(self.x_train.shape[0]),
            "test_rows": int(self.x_test.shape[0]),
            "features": self.num_features,
            "classes": self.num_classes,
            **self.extra,
        }


def split_and_scale(
    name: str,
    x: Tensor,
    y: Tensor,
    feature_names: list[str],
    class_names: list[str],
    *,
    test_fraction: float = TEST_FRACTION,
    seed: int = SPLIT_SEED,
) -> DemoData:
    """Split ``(x, y)`` stratified by class with a fixed seed, then standardize the features.

    Each class contributes ``round(test_fraction · count)`` rows to the test set, at least one
    and at most ``count - 1``. Means and standard deviations come from the training rows; a
    constant column is left centred (its deviation is taken as 1).
    """
    gen = torch.Generator().manual_seed(seed)
    train_idx: list[Tensor] = []
    test_idx: list[Tensor] = []
    for label in range(len(class_names)):
        rows = torch.nonzero(y == label).flatten()
        rows = rows[torch.randperm(rows.numel(), generator=gen)]
        n_test = min(max(1, round(test_fraction * rows.numel())), rows.numel() - 1)
        test_idx.append(rows[:n_test])
        train_idx.append(rows[n_test:])
    tr = torch.cat(train_idx).sort().values
    te = torch.cat(test_idx).sort().values
    mean = x[tr].mean(0)
    std = x[tr].std(0, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    x = (x - mean) / std
    return DemoData(name, x[tr], y[tr], x[te], y[te], feature_names, class_names)


def _bundled_digits_file() -> Path | None:
    """The CSV that scikit-learn ships ``digits`` in, found without importing scikit-learn
    (whose ``datasets`` package takes seconds to import); ``None`` if it is not there."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            return path
    return None


def digits_arrays() -> tuple[Tensor, Tensor]:
    """``digits`` as ``(x, y)``: float32 ``(1797, 64)`` pixel values 0-16 and int64 labels.

    Read straight from scikit-learn's bundled file when it is where scikit-learn keeps it,
    else through :func:`sklearn.datasets.load_digits` (the same numbers).
    """
    path = _bundled_digits_file()
    if path is not None:
        with gzip.open(path, "rt") as fh:
            table = torch.tensor(
                [[float(v) for v in line.split(",")] for line in fh if line.strip()],
                dtype=torch.float64,
            )
        if table.shape == (1797, 65):
            return table[:, :-1].float(), table[:, -1].long()
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as exc:  # pragma: no cover - the demo extra installs scikit-learn
        raise ImportError(
            "the default demo data needs scikit-learn: pip install 'interfuse[demo]' "
            "(or pass your own table with --data FILE.csv --target COLUMN)"
        ) from exc
    bunch = sk_load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32)
    return x, torch.as_tensor(bunch.target, dtype=torch.long)


def load_digits() -> DemoData:
    """scikit-learn's bundled 8×8 digits (1,797 rows, 64 features, 10 classes), no download,
    split with :func:`split_and_scale`."""
    x, y = digits_arrays()
    features = [f"pixel_{i // 8}_{i % 8}" for i in range(x.shape[1])]
    return split_and_scale("digits", x, y, features, [str(c) for c in range(10)])


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def load_csv(path: str | Path, target: str) -> DemoData:
    """Read a CSV table with a header row; ``target`` names the class column.

    Every other column must hold finite numbers. The target may hold numbers or names; its
    distinct values become the classes (sorted). The table needs at least :data:`MIN_ROWS`
    rows and :data:`MIN_ROWS_PER_CLASS` rows of every class.

    Raises:
        DemoDataError: a missing or unreadable file, an empty table, a missing target column,
            a non-numeric or missing feature value, too few rows, fewer than two classes or a
            class with too few rows (the message names the file, column and row).
    """
    path = Path(path)
    if not path.is_file():
        raise DemoDataError(
            f"data file {str(path)!r} does not exist or is not a file; pass --data with the path "
            "of a CSV table that has a header row"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DemoDataError(f"cannot read data file {str(path)!r}: {exc}") from exc
    if not rows:
        raise DemoDataError(f"data file {str(path)!r} is empty; it needs a header row and data")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if target not in header:
        raise DemoDataError(
            f"target column {target!r} is not in {str(path)!r}; its columns are {header}"
        )
    if len(header) < 2:
        raise DemoDataError(
            f"data file {str(path)!r} has only the target column {target!r}; "
            "at least one numeric feature column is needed"
        )
    t_col = header.index(target)
    f_cols = [i for i in range(len(header)) if i != t_col]
    features: list[list[float]] = []
    labels: list[str] = []
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DemoDataError(
                f"{path.name} line {line}: {len(row)} fields but the header has {len(header)}"
            )
        values = []
        for i in f_cols:
            value = _parse_float(row[i].strip())
            if value is None:
                raise DemoDataError(
                    f"{path.name} line {line}, column {header[i]!r}: {row[i]!r} is not a finite "
                    "number; every column but the target must be numeric (encode categories as "
                    "numbers and fill missing values first)"
                )
            values.append(value)
        label = row[t_col].strip()
        if not label:
            raise DemoDataError(f"{path.name} line {line}: the target column {target!r} is empty")
        features.append(values)
        labels.append(label)
    if len(body) < MIN_ROWS:
        raise DemoDataError(
            f"data file {str(path)!r} has {len(body)} data rows; the demo needs at least "
            f"{MIN_ROWS} to train and test"
        )
    counts = Counter(labels)
    if len(counts) < 2:
        raise DemoDataError(
            f"target column {target!r} has a single value {labels[0]!r}; at least two classes "
            "are needed"
        )
    rare = sorted(c for c, n in counts.items() if n < MIN_ROWS_PER_CLASS)
    if rare:
        shown = ", ".join(repr(c) for c in rare[:5]) + (" ..." if len(rare) > 5 else "")
        raise DemoDataError(
            f"target column {target!r}: {len(rare)} class(es) have fewer than "
            f"{MIN_ROWS_PER_CLASS} rows ({shown}); the demo classifies, so each class needs "
            f"{MIN_ROWS_PER_CLASS} rows or more (is the target continuous?)"
        )
    classes = _sorted_labels(list(counts))
    index = {c: i for i, c in enumerate(classes)}
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor([index[c] for c in labels], dtype=torch.long)
    data = split_and_scale(path.name, x, y, [header[i] for i in f_cols], classes)
    data.extra = {"target": target}
    return data


def _sorted_labels(labels: list[str]) -> list[str]:
    """Numeric labels in numeric order, otherwise text order."""
    numbers = [_parse_float(c) for c in labels]
    if all(v is not None for v in numbers):
        return [c for _, c in sorted(zip(numbers, labels), key=lambda p: (p[0], p[1]))]
    return sorted(labels)
