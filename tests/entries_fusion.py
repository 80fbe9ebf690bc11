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


#: A per-row mask for 3 inputs of leading shape (2, ROWS): two present inputs in every row.
_ROW_MASK = torch.tensor([[True, False, True], [True, True, False], [False, True, True]])


def _same_masked(k: int) -> Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]]:
    """``k`` inputs ``(2, ROWS, WIDTH)`` with a per-row mask ``(2, ROWS, k)``."""

    def sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        xs = [torch.randn(2, ROWS, WIDTH, dtype=dtype) for _ in range(k)]
        mask = torch.ones(2, ROWS, k, dtype=torch.bool)
        mask[..., :3] = _ROW_MASK
        return (xs,), {"mask": mask}

    return sample


def _widths_masked(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return ([torch.randn(ROWS, n, dtype=dtype) for n in WIDTHS],), {"mask": _ROW_MASK}


def _named(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
    xs = {name: torch.randn(ROWS, n, dtype=dtype) for name, n in zip("cab", WIDTHS, strict=True)}
    return (xs,), {"mask": {"a": torch.tensor([True, False, True])}}


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
    _entry(
        "WeightedSumFusion-scalar-mix-per-feature",
        lambda: interfuse.WeightedSumFusion(
            3, normalize="softmax", scale=True, per_feature=True, num_features=WIDTH
        ),
        _same_masked(3),
        SAME,
    ),
    # correction=0: the shared property tests draw masks that leave one input present, where
    # the default correction gives nan (as torch.var); tests/fusion/test_statistics.py covers it
    _entry("VarFusion", lambda: interfuse.VarFusion(correction=0), _same(3), SAME),
    _entry("VarFusion-masked", lambda: interfuse.VarFusion(correction=0), _same_masked(4), SAME),
    _entry("StdFusion", lambda: interfuse.StdFusion(correction=0), _same_masked(4), SAME),
    _entry("LogSumExpFusion", lambda: interfuse.LogSumExpFusion(), _same(3), SAME),
    _entry("LogSumExpFusion-masked", lambda: interfuse.LogSumExpFusion(), _same_masked(3), SAME),
    _entry(
        "AttentionFusion",
        lambda: interfuse.AttentionFusion([WIDTH] * 3, hidden_dim=3),
        _same_masked(3),
        SAME,
    ),
    _entry(
        "AttentionFusion-projected",
        lambda: interfuse.AttentionFusion(WIDTHS, out_dim=5),
        _widths,
        (ROWS, 5),
    ),
    _entry("GatedFusion", lambda: interfuse.GatedFusion(WIDTHS, 5), _widths_masked, (ROWS, 5)),
    _entry(
        "GatedFusion-named-sigmoid",
        lambda: interfuse.GatedFusion(WIDTHS, 5, gate="sigmoid", names=["c", "a", "b"]),
        _named,
        (ROWS, 5),
    ),
]
