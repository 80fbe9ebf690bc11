"""The deprecated parametrization hook (``interfuse/matrices/parametrize.py``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from interfuse.matrices import DenseMatrix, LowRankMatrix, register_structured_weight


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_register_structured_weight_on_linear() -> None:
    lin = nn.Linear(12, 6)
    matrix = LowRankMatrix(12, 6, rank=2)
    assert register_structured_weight(lin, matrix) is lin
    x = torch.randn(5, 12)
    torch.testing.assert_close(
        lin(x), torch.nn.functional.linear(x, matrix.materialize(), lin.bias)
    )
    lin(x).sum().backward()
    assert matrix.left.grad is not None and matrix.right.grad is not None
    names = {n for n, _ in lin.named_parameters()}
    assert "parametrizations.weight.0.matrix.left" in names


def test_register_structured_weight_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match=r"use interfuse.replace_linear"):
        register_structured_weight(nn.Linear(12, 6), LowRankMatrix(12, 6, rank=2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_register_structured_weight_shape_mismatch() -> None:
    with pytest.raises(
        ValueError, match=r"weight of Linear has shape \(6, 12\) but the matrix has shape \(12, 6\)"
    ):
        register_structured_weight(nn.Linear(12, 6), DenseMatrix(6, 12))
