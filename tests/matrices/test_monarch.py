"""Monarch matrices: the product P L Pᵀ R built here from block-diagonal matrices and explicit
permutations, block choice, identity, counts, and use wherever a matrix is accepted."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from interfuse import (
    BilinearInterdependence,
    ParameterizedInterdependence,
    ProjectedConcatFusion,
)
from interfuse.matrices import (
    MonarchMatrix,
    StructureWarning,
    choose_monarch_blocks,
    matrix_class,
)
from interfuse.matrices.monarch import monarch_linear, monarch_matrix

F64 = torch.float64


def _reference(left: Tensor, right: Tensor) -> Tensor:
    """``P L Pᵀ R`` with explicit block-diagonal matrices and permutation matrices."""
    k, s = left.shape[0], left.shape[1]
    big_r = torch.block_diag(*right)  # (k·k, k·t): block i maps x_i to the k entries i·k + j
    big_l = torch.block_diag(*left)  # (k·s, k·k): block j reads the k entries j·k + i
    mid = torch.zeros(k * k, k * k, dtype=left.dtype)
    for i in range(k):
        for j in range(k):
            mid[j * k + i, i * k + j] = 1  # Pᵀ: the (i, j) grid read as (j, i)
    out = torch.zeros(k * s, k * s, dtype=left.dtype)
    for j in range(k):
        for u in range(s):
            out[u * k + j, j * s + u] = 1  # P: the (j, u) grid read as (u, j)
    return out @ big_l @ mid @ big_r


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))
def test_monarch_is_p_l_pt_r(k: int, s: int, t: int, rows: int) -> None:
    torch.manual_seed(k * 100 + s * 10 + t)
    left = torch.randn(k, s, k, dtype=F64)
    right = torch.randn(k, k, t, dtype=F64)
    w = _reference(left, right)
    torch.testing.assert_close(monarch_matrix(left, right), w)
    x = torch.randn(rows, 2, k * t, dtype=F64)
    torch.testing.assert_close(monarch_linear(x, left, right), x @ w.T)
    bias = torch.randn(k * s, dtype=F64)
    torch.testing.assert_close(monarch_linear(x, left, right, bias), x @ w.T + bias)
    m = MonarchMatrix(k * t, k * s, num_blocks=k, mode="factored", dtype=F64)
    with torch.no_grad():
        m.left.copy_(left)
        m.right.copy_(right)
    torch.testing.assert_close(m(x), x @ w.T)
    assert (
        m.num_parameters
        == k * (k * t + k * s)
        == MonarchMatrix.count_parameters(k * t, k * s, num_blocks=k)
    )


def test_monarch_gradients_in_float64() -> None:
    left = torch.randn(2, 3, 2, dtype=F64, requires_grad=True)
    right = torch.randn(2, 2, 4, dtype=F64, requires_grad=True)
    x = torch.randn(5, 8, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(monarch_linear, (x, left, right))


def test_square_monarch_has_full_rank_and_n_sqrt_n_parameters() -> None:
    m = MonarchMatrix(64, 64, dtype=F64)
    assert m.num_blocks == 8 and m.num_parameters == 2 * 64 * 8
    assert int(torch.linalg.matrix_rank(m.materialize().detach())) == 64


@pytest.mark.parametrize(
    ("in_f", "out_f", "k"),
    [(4096, 4096, 64), (4096, 1024, 32), (12, 6, 3), (16, 16, 4), (18, 12, 6), (8, 2, 2)],
)
def test_default_blocks_are_the_fewest_that_allow_full_rank(in_f: int, out_f: int, k: int) -> None:
    assert choose_monarch_blocks(in_f, out_f) == k
    assert in_f % k == 0 and out_f % k == 0 and k * k >= min(in_f, out_f)


def test_coprime_sizes_warn_that_the_rank_is_capped() -> None:
    with pytest.warns(
        StructureWarning, match=r"largest number of blocks dividing both sizes is 1, "
    ):
        m = MonarchMatrix(1024, 1021)
    assert m.num_blocks == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MonarchMatrix(1024, 1024)


def test_num_blocks_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"num_blocks=5 must divide both in_features=12 and out_features=6 .*\[1, 2, 3, 6\]",
    ):
        MonarchMatrix(12, 6, num_blocks=5)
    with pytest.raises(ValueError, match=r"num_blocks must be a positive int, got 0"):
        MonarchMatrix(12, 6, num_blocks=0)
    with pytest.raises(
        ValueError, match=r"monarch: left must be \(k, s, k\) and right \(k, k, t\)"
    ):
        monarch_matrix(torch.ones(2, 3, 2), torch.ones(3, 3, 2))
    with pytest.raises(ValueError, match=r"monarch: right must be a 3-D tensor of blocks"):
        monarch_linear(torch.ones(2, 4), torch.ones(2, 2, 2), torch.ones(4, 4))


def test_identity() -> None:
    m = MonarchMatrix(16, 16)
    m.reset_to_identity()
    torch.testing.assert_close(m.materialize().detach(), torch.eye(16))
    assert MonarchMatrix.identity_options(16) == {"num_blocks": 4}
    assert MonarchMatrix.identity_options(12) == {}
    with pytest.raises(ValueError, match=r"only when square with num_blocks² = in_features"):
        MonarchMatrix(12, 12).reset_to_identity()


def test_monarch_by_name_everywhere_a_matrix_is_accepted() -> None:
    assert matrix_class("monarch") is matrix_class("MonarchMatrix") is MonarchMatrix
    x = [torch.randn(3, 8), torch.randn(3, 8)]
    f = ProjectedConcatFusion([8, 8], 16, matrix="monarch")
    assert isinstance(f.matrix, MonarchMatrix) and f(x).shape == (3, 16)
    assert f.num_parameters == 4 * (16 + 16) + 16
    p = ParameterizedInterdependence(16, 16, matrix="monarch", init="identity")
    assert isinstance(p.matrix, MonarchMatrix) and p.matrix.num_blocks == 4
    data = torch.randn(2, 5, 16)
    torch.testing.assert_close(p(data), data)
    b = BilinearInterdependence(16, matrix="monarch", matrix_options={"num_blocks": 2})
    y = b(torch.randn(2, 16, 5))
    assert isinstance(b.matrix, MonarchMatrix) and y.shape == (2, 16, 5)
