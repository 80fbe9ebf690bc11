"""Registry entries: the structured matrices."""

from __future__ import annotations

from typing import Any

import torch

import interfuse
from interfuse.config import from_config
from tests.registry import ModuleEntry

IN, OUT, ROWS = 12, 6, 5


def _sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (torch.randn(ROWS, IN, dtype=dtype),), {}


def _matrix(cls: type, **kw: Any) -> ModuleEntry:
    return ModuleEntry(
        id=f"matrix-{cls.__name__}",
        factory=lambda: cls(IN, OUT, **kw),
        sample=_sample,
        roundtrip=lambda m: from_config(m.to_config()),
        out_shape=(ROWS, OUT),
    )


ENTRIES = [
    _matrix(interfuse.DenseMatrix),
    _matrix(interfuse.LowRankMatrix, rank=2),
    _matrix(interfuse.KroneckerMatrix, p=2, q=3),
    _matrix(interfuse.LowRankKroneckerMatrix, rank=2, p=3, q=2),
    _matrix(interfuse.DualLowRankKroneckerMatrix, rank=2, p=2, q=4),
    _matrix(interfuse.RandomAdaptedMatrix, rank=3, seed=7),
]
