"""Registry entries: the modern fusion modules (one per class)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import interfuse
from interfuse.config import from_config
from tests.registry import ModuleEntry

ROWS, WIDTH = 3, 4
WIDTHS = [3, 2, 4]


def _same(k: int) -> Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]]:
    """``k`` inputs of shape ``(2, ROWS, WIDTH)`` (two leading dimensions)."""

    def sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return ([torch.randn(2, ROWS, WIDTH, dtype=dtype) for _ in range(k)],), {}

    return sample


def _widths(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return ([torch.randn(ROWS, n, dtype=dtype) for n in WIDTHS],), {}


def _entry(
    id_: str,
    factory: Callable[[], nn.Module],
    sample: Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]],
    out_shape: tuple[int, ...],
) -> ModuleEntry:
    return ModuleEntry(
        id=f"fusion-{id_}",
        factory=factory,
        sample=sample,
        roundtrip=lambda m: from_config(m.to_config()),  # type: ignore[operator]
        out_shape=out_shape,
    )


SAME = (2, ROWS, WIDTH)

ENTRIES = [
    _entry(
        "WeightedSumFusion",
        lambda: interfuse.WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], normalize="softmax"),
        _same(3),
        SAME,
    ),
    _entry("SumFusion", lambda: interfuse.SumFusion(), _same(3), SAME),
    _entry("MeanFusion", lambda: interfuse.MeanFusion(), _same(3), SAME),
    _entry("ProdFusion", lambda: interfuse.ProdFusion(), _same(3), SAME),
    _entry("MaxFusion", lambda: interfuse.MaxFusion(), _same(3), SAME),
    _entry("MinFusion", lambda: interfuse.MinFusion(), _same(3), SAME),
    _entry("MedianFusion", lambda: interfuse.MedianFusion(mode="mean"), _same(4), SAME),
    _entry("NormFusion", lambda: interfuse.NormFusion(p=3.0), _same(3), SAME),
    _entry("ConcatFusion", lambda: interfuse.ConcatFusion(), _widths, (ROWS, sum(WIDTHS))),
    _entry(
        "ProjectedConcatFusion",
        lambda: interfuse.ProjectedConcatFusion(
            WIDTHS, 5, matrix="lowrank", matrix_options={"rank": 2}
        ),
        _widths,
        (ROWS, 5),
    ),
]
