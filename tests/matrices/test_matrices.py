"""Structured matrices: factored products, Kronecker structure, parameter counts, identity,
auto-chosen factors, random buffers and the (deprecated) parametrization hook.

The contract tests iterate the registry (:data:`interfuse.matrices.MATRICES`): a new family is
tested with its default options, without editing this file."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from interfuse.matrices import (
    MATRICES,
    DenseMatrix,
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    LowRankMatrix,
    RandomAdaptedMatrix,
    StructuredMatrix,
    choose_kronecker_factors,
    register_structured_weight,
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


# ---------------------------------------------------------------------------------------------
# Random-matrix adaption: seeded buffers, saved and moved
# ---------------------------------------------------------------------------------------------
def test_random_factors_are_seeded_buffers() -> None:
    a = RandomAdaptedMatrix(8, 5, rank=3, seed=7)
    b = RandomAdaptedMatrix(8, 5, rank=3, seed=7)
    c = RandomAdaptedMatrix(8, 5, rank=3, seed=8)
    assert torch.equal(a.random_out, b.random_out) and torch.equal(a.random_in, b.random_in)
    assert not torch.equal(a.random_out, c.random_out)
    state = a.state_dict()
    assert {"random_out", "random_in"} <= set(state)
    assert {n for n, _ in a.named_parameters()} == {"scale_out", "scale_rank"}
    assert a.num_parameters == 5 + 3
    torch.manual_seed(123)  # the global RNG plays no part
    d = RandomAdaptedMatrix(8, 5, rank=3, seed=7)
    assert torch.equal(d.random_in, a.random_in)
    moved = a.to(torch.float64)
    assert moved.random_out.dtype == torch.float64
    # loading a state_dict replaces the random factors too
    c.load_state_dict(b.state_dict())
    assert torch.equal(c.random_in, b.random_in)


def test_given_random_factors_are_used() -> None:
    r_out, r_in = torch.randn(3, 2), torch.randn(4, 2)
    m = RandomAdaptedMatrix(4, 3, rank=2, random_factors=(r_out, r_in))
    assert torch.equal(m.random_out, r_out) and torch.equal(m.random_in, r_in)
    expected = (m.scale_out[:, None] * r_out * m.scale_rank) @ r_in.T
    torch.testing.assert_close(m.materialize(), expected)


def test_given_random_factors_take_the_parameters_dtype() -> None:
    r_out, r_in = torch.randn(3, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    m = RandomAdaptedMatrix(4, 3, rank=2, random_factors=(r_out, r_in))
    assert m.random_out.dtype == m.scale_out.dtype == torch.float32
    assert m(torch.randn(5, 4)).shape == (5, 3)
    torch.testing.assert_close(m.random_in, r_in.float())


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


# ---------------------------------------------------------------------------------------------
# register_structured_weight
# ---------------------------------------------------------------------------------------------
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
