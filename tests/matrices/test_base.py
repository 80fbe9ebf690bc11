"""The structured-matrix contract (:class:`interfuse.matrices.StructuredMatrix`): factored
products equal the materialized matrix, parameter counts (the class's, the instance's, the
paper's and tinyBIG's), identity, errors, gradients.

The tests iterate the registry (:data:`interfuse.matrices.MATRICES`): a new family is tested
with its default options, without editing this file. What one family alone does is tested in
its own file (``test_kronecker.py``, ``test_random_adapted.py``, ``test_monarch.py``)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from interfuse.matrices import (
    MATRICES,
    DenseMatrix,
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    LowRankMatrix,
    RandomAdaptedMatrix,
    StructuredMatrix,
)
from interfuse.tinybig.fabrication import Fabrication

FEW = settings(max_examples=40, deadline=None)
CLASSES = list(MATRICES.values())
pytestmark = pytest.mark.filterwarnings("ignore::interfuse.matrices.StructureWarning")


def _build(
    cls: type[StructuredMatrix], p: int, q: int, s: int, t: int, r: int, **kw: Any
) -> StructuredMatrix:
    """A matrix of shape ``(p·s, q·t)``; the Kronecker family with factors ``(p, q)``."""
    return cls(q * t, p * s, **_options(cls, p, q, r), **kw)


#: The six families whose parameter counts the RPN 2 paper gives.
PAPER = [
    DenseMatrix,
    LowRankMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    DualLowRankKroneckerMatrix,
    RandomAdaptedMatrix,
]


def _paper_formula(cls: type[StructuredMatrix], p: int, q: int, s: int, t: int, r: int) -> int:
    """The RPN 2 paper's parameter counts, with ``out = p·s`` and ``in = q·t``."""
    out_f, in_f = p * s, q * t
    return {
        DenseMatrix: out_f * in_f,
        LowRankMatrix: r * (in_f + out_f),
        KroneckerMatrix: p * q + s * t,
        LowRankKroneckerMatrix: p * q + r * (s + t),
        DualLowRankKroneckerMatrix: r * (p + q + s + t),
        RandomAdaptedMatrix: out_f + r,
    }[cls]


def _options(cls: type[StructuredMatrix], p: int, q: int, r: int) -> dict[str, Any]:
    """Options exercising the structure; a family not named here takes its defaults."""
    if cls in (LowRankMatrix, RandomAdaptedMatrix):
        return {"rank": r}
    if cls is KroneckerMatrix:
        return {"p": p, "q": q}
    if cls in (LowRankKroneckerMatrix, DualLowRankKroneckerMatrix):
        return {"rank": r, "p": p, "q": q}
    return {}


shapes = st.tuples(*(st.integers(1, 4) for _ in range(5)))  # p, q, s, t, r
leading = st.lists(st.integers(1, 3), max_size=3).map(tuple)


# ---------------------------------------------------------------------------------------------
# Factored products equal the materialized matrix
# ---------------------------------------------------------------------------------------------
@FEW
@given(st.sampled_from(CLASSES), shapes, leading, st.sampled_from(["auto", "factored", "dense"]))
def test_factored_product_equals_materialized(
    cls: type[StructuredMatrix],
    dims: tuple[int, int, int, int, int],
    lead: tuple[int, ...],
    mode: str,
) -> None:
    p, q, s, t, r = dims
    torch.manual_seed(sum(dims))
    m = _build(cls, p, q, s, t, r, mode=mode, dtype=torch.float64)
    x = torch.randn(*lead, q * t, dtype=torch.float64)
    w = m.materialize()
    assert w.shape == (p * s, q * t) == m.shape
    bias = torch.randn(p * s, dtype=torch.float64)
    torch.testing.assert_close(m(x), x @ w.T)
    torch.testing.assert_close(m(x, bias=bias), x @ w.T + bias)
    torch.testing.assert_close(m.forward_factored(x), x @ w.T)


@FEW
@given(st.sampled_from(CLASSES), shapes, leading, st.data())
def test_list_of_pieces_equals_concatenated_input(
    cls: type[StructuredMatrix],
    dims: tuple[int, int, int, int, int],
    lead: tuple[int, ...],
    data: st.DataObject,
) -> None:
    p, q, s, t, r = dims
    torch.manual_seed(sum(dims) + 1)
    m = _build(cls, p, q, s, t, r, dtype=torch.float64)
    x = torch.randn(*lead, q * t, dtype=torch.float64)
    cuts = (
        sorted(data.draw(st.lists(st.integers(1, q * t - 1), max_size=3, unique=True)))
        if (q * t > 1)
        else []
    )
    widths = [b - a for a, b in zip([0, *cuts], [*cuts, q * t])]
    pieces = list(x.split(widths, dim=-1))
    torch.testing.assert_close(m(pieces), m(x))
    torch.testing.assert_close(m.forward_factored(pieces), m.forward_factored(x))


# ---------------------------------------------------------------------------------------------
# Parameter counts
# ---------------------------------------------------------------------------------------------
@FEW
@given(st.sampled_from(CLASSES), shapes, st.booleans())
def test_parameter_count_of_the_class_is_the_instance_count(
    cls: type[StructuredMatrix], dims: tuple[int, int, int, int, int], bias: bool
) -> None:
    p, q, s, t, r = dims
    m = _build(cls, p, q, s, t, r, bias=bias)
    by_class = cls.count_parameters(q * t, p * s, bias=bias, **_options(cls, p, q, r))
    assert m.num_parameters == sum(x.numel() for x in m.parameters()) == by_class


@FEW
@given(st.sampled_from(PAPER), shapes)
def test_parameter_count_agrees_with_the_paper(
    cls: type[StructuredMatrix], dims: tuple[int, int, int, int, int]
) -> None:
    p, q, s, t, r = dims
    by_class = cls.count_parameters(q * t, p * s, **_options(cls, p, q, r))
    assert by_class == _paper_formula(cls, p, q, s, t, r)


def test_parameter_counts_match_tinybig_fabrication() -> None:
    """The tinyBIG face's calculate_l(n, D) counts the same scalars for each structure."""
    n, D, p, q, r = 6, 12, 2, 3, 2
    pairs: list[tuple[Fabrication, int]] = [
        (Fabrication("reshape"), DenseMatrix.count_parameters(D, n)),
        (Fabrication("lowrank", r=r), LowRankMatrix.count_parameters(D, n, rank=r)),
        (Fabrication("hm", p=p, q=q), KroneckerMatrix.count_parameters(D, n, p=p, q=q)),
        (
            Fabrication("lphm", r=r, p=p, q=q),
            LowRankKroneckerMatrix.count_parameters(D, n, rank=r, p=p, q=q),
        ),
        (
            Fabrication("dual_lphm", r=r, p=p, q=q),
            DualLowRankKroneckerMatrix.count_parameters(D, n, rank=r, p=p, q=q),
        ),
        (
            Fabrication("random_matrix_adaption", r=r),
            RandomAdaptedMatrix.count_parameters(D, n, rank=r),
        ),
    ]
    for fabrication, count in pairs:
        assert fabrication.calculate_l(n, D) == count, fabrication


# ---------------------------------------------------------------------------------------------
# Identity, automatic factors, errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "m",
    [
        DenseMatrix(6, 4),
        LowRankMatrix(6, 6, rank=6),
        LowRankMatrix(6, 4, rank=4),
        KroneckerMatrix(6, 6, p=2, q=2),
        LowRankKroneckerMatrix(6, 6, rank=3, p=2, q=2),
        DualLowRankKroneckerMatrix(6, 6, rank=3, p=2, q=2),
    ],
    ids=lambda m: f"{type(m).__name__}({m.extra_repr()})",
)
def test_reset_to_identity(m: StructuredMatrix) -> None:
    m.reset_to_identity()
    eye = torch.eye(m.out_features, m.in_features)
    torch.testing.assert_close(m.materialize().detach(), eye)
    x = torch.randn(3, m.in_features)
    torch.testing.assert_close(m(x), x @ eye.T)


@pytest.mark.parametrize(
    ("m", "match"),
    [
        (LowRankMatrix(6, 6, rank=2), r"LowRankMatrix cannot represent the identity matrix"),
        (KroneckerMatrix(6, 4, p=2, q=2), r"KroneckerMatrix can start as the identity only when"),
        (KroneckerMatrix(6, 6, p=2, q=3), r"square with p == q; .*p=2, q=3"),
        (
            LowRankKroneckerMatrix(6, 6, rank=1, p=2, q=2),
            r"LowRankKroneckerMatrix with rank=1 cannot represent the identity",
        ),
        (
            DualLowRankKroneckerMatrix(8, 8, rank=2, p=4, q=4),
            r"DualLowRankKroneckerMatrix with rank=2 cannot represent the identity",
        ),
        (RandomAdaptedMatrix(4, 4), r"RandomAdaptedMatrix cannot represent the identity"),
    ],
    ids=["lowrank", "kron-rect", "kron-pq", "lphm-rank", "dual-rank", "rma"],
)
def test_reset_to_identity_errors(m: StructuredMatrix, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        m.reset_to_identity()


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (
            lambda: KroneckerMatrix(6, 3, p=2, q=3),
            ValueError,
            r"p=2 must divide out_features=3 .*choose a divisor of 3: \[1, 3\]",
        ),
        (
            lambda: KroneckerMatrix(6, 4, p=2, q=4),
            ValueError,
            r"q=4 must divide in_features=6 .*choose a divisor of 6: \[1, 2, 3, 6\]",
        ),
        (
            lambda: LowRankKroneckerMatrix(6, 4, p=3),
            ValueError,
            r"p=3 must divide out_features=4",
        ),
        (
            lambda: DualLowRankKroneckerMatrix(6, 4, p=2, q=4),
            ValueError,
            r"q=4 must divide in_features=6",
        ),
        (lambda: KroneckerMatrix(6, 4, q=2), ValueError, r"p must be given when q is given"),
        (lambda: KroneckerMatrix(6, 4, p=0, q=2), ValueError, r"p must be a positive int, got 0"),
        (lambda: LowRankMatrix(6, 4, rank=0), ValueError, r"rank must be a positive int, got 0"),
        (lambda: DenseMatrix(0, 4), ValueError, r"in_features must be a positive int, got 0"),
        (lambda: DenseMatrix(4, 4, mode="fast"), ValueError, r"mode must be one of"),
        (
            lambda: RandomAdaptedMatrix(
                4, 3, rank=2, random_factors=(torch.ones(3, 2), torch.ones(5, 2))
            ),
            ValueError,
            r"random_factors must have shapes \(3, 2\) and \(4, 2\), got \(3, 2\) and \(5, 2\)",
        ),
        (lambda: RandomAdaptedMatrix(4, 3, seed=1.5), TypeError, r"seed must be an int, got 1.5"),
    ],
    ids=[
        "p-divides-out",
        "q-divides-in",
        "lphm-p",
        "dual-q",
        "q-without-p",
        "p-zero",
        "rank-zero",
        "in-zero",
        "mode",
        "rma-factor-shapes",
        "rma-seed",
    ],
)
def test_constructor_errors(build: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build()


def test_input_errors() -> None:
    m = LowRankMatrix(6, 4, rank=2)
    with pytest.raises(ValueError, match=r"x has width 5 but LowRankMatrix expects in_features=6"):
        m(torch.ones(2, 5))
    with pytest.raises(ValueError, match=r"x has width 7 but LowRankMatrix expects in_features=6"):
        m([torch.ones(2, 3), torch.ones(2, 4)])
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but LowRankMatrix has dtype"):
        m(torch.ones(2, 6, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"x must have a floating dtype, got torch.int64"):
        m(torch.ones(2, 6, dtype=torch.long))


@pytest.mark.parametrize(
    ("cls", "options", "error", "match"),
    [
        (LowRankMatrix, {"rnk": 2}, TypeError, r"LowRankMatrix.count_parameters got \['rnk'\]"),
        (DenseMatrix, {"rank": 2}, TypeError, r"unexpected keyword argument 'rank'"),
        (KroneckerMatrix, {"p": 3}, ValueError, r"p=3 must divide out_features=4"),
        (LowRankKroneckerMatrix, {"p": 2, "q": 3}, ValueError, r"q=3 must divide in_features=8"),
        (LowRankMatrix, {"rank": 0}, ValueError, r"rank must be a positive int"),
    ],
)
def test_count_parameters_checks_arguments_as_the_constructor(
    cls: type[StructuredMatrix], options: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        cls.count_parameters(8, 4, **options)
    with pytest.raises(error):
        cls(8, 4, **options)


def _grad_of_factors(m: StructuredMatrix, x: Tensor) -> None:
    m(x).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_gradients_reach_every_factor(cls: type[StructuredMatrix]) -> None:
    torch.manual_seed(0)
    m = _build(cls, 2, 3, 3, 2, 2)
    _grad_of_factors(m, torch.randn(4, m.in_features))
    assert math.isfinite(float(m.materialize().detach().sum()))


def test_the_docs_family_table_lists_every_registered_matrix() -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "matrices.md"
    if not page.is_file():
        pytest.skip("docs/matrices.md is not in this checkout")
    rows = [line for line in page.read_text().splitlines() if line.startswith("| [`")]
    for name, cls in MATRICES.items():
        assert any(f"`{cls.__name__}`" in row and f"`{name}`" in row for row in rows), name
