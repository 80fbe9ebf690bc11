"""Kronecker family (``interfuse/matrices/kronecker.py``): ``A ⊗ B`` equals ``torch.kron``,
the spec's known values, factors chosen to minimize the parameters, identity factors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from interfuse.matrices import (
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    choose_kronecker_factors,
)

FEW = settings(max_examples=40, deadline=None)
shapes = st.tuples(*(st.integers(1, 4) for _ in range(5)))  # p, q, s, t, r
pytestmark = pytest.mark.filterwarnings("ignore::interfuse.matrices.StructureWarning")


def test_kronecker_materializes_torch_kron_of_its_factors() -> None:
    torch.manual_seed(0)
    m = KroneckerMatrix(12, 6, p=2, q=3)
    torch.testing.assert_close(m.materialize(), torch.kron(m.a, m.b))
    lp = LowRankKroneckerMatrix(12, 6, rank=2, p=3, q=2)
    torch.testing.assert_close(lp.materialize(), torch.kron(lp.a, lp.b_left @ lp.b_right))
    d = DualLowRankKroneckerMatrix(12, 6, rank=2, p=2, q=4)
    torch.testing.assert_close(
        d.materialize(), torch.kron(d.a_left @ d.a_right, d.b_left @ d.b_right)
    )


@FEW
@given(shapes)
def test_kronecker_equals_torch_kron_for_random_shapes(dims: tuple[int, ...]) -> None:
    p, q, s, t, _ = dims
    m = KroneckerMatrix(q * t, p * s, p=p, q=q, dtype=torch.float64)
    kron = torch.kron(m.a, m.b)
    torch.testing.assert_close(m.materialize(), kron)
    x = torch.randn(3, q * t, dtype=torch.float64)
    torch.testing.assert_close(m(x), x @ kron.T)
    # the rank of a Kronecker product is the product of the ranks
    ranks = torch.linalg.matrix_rank(m.a) * torch.linalg.matrix_rank(m.b)
    assert int(torch.linalg.matrix_rank(kron)) == int(ranks)


def test_kronecker_known_values() -> None:
    """The spec's example (§4): A = [[1,2],[3,4]], B = [[5,6],[7,8]]."""
    m = KroneckerMatrix(4, 4, p=2, q=2)
    with torch.no_grad():
        m.a.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        m.b.copy_(torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    expected = [[5, 6, 10, 12], [7, 8, 14, 16], [15, 18, 20, 24], [21, 24, 28, 32]]
    assert m.materialize().tolist() == expected
    assert m(torch.tensor([[1.0, 2.0, 3.0, 4.0]])).tolist() == [[95.0, 129.0, 207.0, 281.0]]


@FEW
@given(st.integers(1, 48), st.integers(1, 48))
def test_auto_chosen_factors_minimize_parameters(in_f: int, out_f: int) -> None:
    def divisors(n: int) -> list[int]:
        return [d for d in range(1, n + 1) if n % d == 0]

    m = KroneckerMatrix(in_f, out_f)
    best = min(p * q + (out_f // p) * (in_f // q) for p in divisors(out_f) for q in divisors(in_f))
    assert m.num_parameters == best
    assert (m.p, m.q) == choose_kronecker_factors(in_f, out_f)
    r = 2
    lp = LowRankKroneckerMatrix(in_f, out_f, rank=r)
    best_lp = min(
        p * q + r * (out_f // p + in_f // q) for p in divisors(out_f) for q in divisors(in_f)
    )
    assert lp.num_parameters == best_lp
    dual = DualLowRankKroneckerMatrix(in_f, out_f, rank=r)
    best_dual = min(
        r * (p + q + out_f // p + in_f // q) for p in divisors(out_f) for q in divisors(in_f)
    )
    assert dual.num_parameters == best_dual


@pytest.mark.parametrize(
    ("cls", "dim", "options", "expected"),
    [
        (KroneckerMatrix, 128, {}, 8),
        (KroneckerMatrix, 8, {}, 2),
        (LowRankKroneckerMatrix, 64, {"rank": 4}, 16),
        (DualLowRankKroneckerMatrix, 64, {"rank": 8}, 8),
    ],
)
def test_identity_factors_are_square_and_can_hold_the_identity(
    cls: type[KroneckerMatrix], dim: int, options: dict[str, Any], expected: int
) -> None:
    p, q = cls.identity_factors(dim, **options)
    assert p == q == expected
    m = cls(dim, dim, p=p, q=q, **options)
    m.reset_to_identity()
    torch.testing.assert_close(m.materialize(), torch.eye(dim))
