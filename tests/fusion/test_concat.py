"""Concatenation fusions: values, widths, masks, projections with every matrix, errors."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor

from interfuse.config import from_config
from interfuse.functional import _common
from interfuse.fusion import ConcatFusion, ProjectedConcatFusion
from interfuse.matrices import (
    MATRICES,
    DenseMatrix,
    KroneckerMatrix,
    LowRankMatrix,
    RandomAdaptedMatrix,
    StructuredMatrix,
    matrix_class,
)

FEW = settings(max_examples=30, deadline=None)

X1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
X2 = torch.tensor([[5.0, 6.0], [7.0, 8.0]])
X3 = torch.tensor([[9.0, 10.0], [11.0, 12.0]])

#: Options per matrix name for in_dims = [2, 4, 6] (Σ = 12) and out_dim = 6.
IN_DIMS, OUT = [2, 4, 6], 6
OPTIONS: dict[str, dict[str, Any]] = {
    "dense": {},
    "lowrank": {"rank": 3},
    "kronecker": {"p": 2, "q": 3},
    "lowrank_kronecker": {"rank": 2, "p": 3, "q": 2},
    "dual_lowrank_kronecker": {"rank": 2, "p": 2, "q": 4},
    "random_adapted": {"rank": 4, "seed": 3},
}
#: Matrices whose first factor is dense along the input: projected piece by piece.
SPLIT = ("dense", "lowrank", "random_adapted")


def _pieces(lead: tuple[int, ...], dims: list[int], seed: int = 0) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*lead, n, generator=gen, dtype=torch.float64) for n in dims]


def _reference(f: ProjectedConcatFusion, xs: list[Tensor], mask: Tensor | None = None) -> Tensor:
    """``cat(xs) @ Wᵀ + b`` with the materialized ``W``; absent inputs as zeros."""
    if mask is not None:
        xs = [
            x * (mask[i] if mask.ndim == 1 else mask[..., i, None]).to(x.dtype)
            for i, x in enumerate(xs)
        ]
    y = torch.cat(xs, dim=-1) @ f.matrix.materialize().T
    return y if f.bias is None else y + f.bias


# ---------------------------------------------------------------------------------------------
# ConcatFusion
# ---------------------------------------------------------------------------------------------
def test_concat_spec_fixture() -> None:
    f = ConcatFusion()
    expected = torch.tensor([[1.0, 2, 5, 6, 9, 10], [3, 4, 7, 8, 11, 12]])
    assert torch.equal(f([X1, X2, X3]), expected)
    assert f.out_features([2, 2, 2]) == 6
    assert f.num_parameters == 0


def test_concat_different_widths_and_leading_dims() -> None:
    f = ConcatFusion()
    assert f([torch.ones(2, 3), torch.ones(2, 2), torch.ones(2, 4)]).shape == (2, 9)
    assert f([torch.ones(3), torch.ones(2)]).shape == (5,)
    xs = [torch.randn(2, 3, 4, n) for n in (1, 5)]
    torch.testing.assert_close(f(xs), torch.cat(xs, -1))
    x = torch.randn(3, 4)
    out = f([x])
    torch.testing.assert_close(out, x)
    assert out.data_ptr() != x.data_ptr()  # a new tensor, never an alias of an input


def test_concat_zero_fills_absent_inputs() -> None:
    f = ConcatFusion()
    mask = torch.tensor([True, False, True])
    nan2 = torch.full_like(X2, math.nan)
    expected = torch.tensor([[1.0, 2, 0, 0, 9, 10], [3, 4, 0, 0, 11, 12]])
    assert torch.equal(f([X1, nan2, X3], mask=mask), expected)
    rows = torch.tensor([[True, False, True], [False, True, True]])
    out = f([X1, X2, X3], mask=rows)
    assert torch.equal(out, torch.tensor([[1.0, 2, 0, 0, 9, 10], [0, 0, 7, 8, 11, 12]]))


def test_concat_in_dims_fix_the_widths() -> None:
    f = ConcatFusion(in_dims=[2, 3])
    assert f.num_inputs == 2
    assert f.out_features([2, 3]) == 5
    assert f([torch.ones(4, 2), torch.ones(4, 3)]).shape == (4, 5)
    assert repr(f) == "ConcatFusion(in_dims=[2, 3])"
    assert repr(ConcatFusion()) == "ConcatFusion(in_dims=None)"
    with pytest.raises(ValueError, match=r"xs have widths \[3, 2\] but ConcatFusion was built"):
        f([torch.ones(4, 3), torch.ones(4, 2)])
    with pytest.raises(ValueError, match=r"xs has 3 tensors but ConcatFusion was built for"):
        f([torch.ones(4, 2)] * 3)
    with pytest.raises(ValueError, match=r"in_dims=\[2, 2\] differ from the in_dims=\[2, 3\]"):
        f.out_features([2, 2])


def test_concat_errors() -> None:
    f = ConcatFusion()
    with pytest.raises(
        ValueError, match=r"xs\[1\] has leading shape \(3,\) but xs\[0\] has \(2,\)"
    ):
        f([torch.ones(2, 3), torch.ones(3, 3)])
    with pytest.raises(TypeError, match=r"got a single Tensor"):
        f(torch.ones(2, 2, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in_dims must name at least one input width"):
        ConcatFusion(in_dims=[])
    with pytest.raises(TypeError, match=r"in_dims\[0\] must be a positive int, got 2.0"):
        ConcatFusion(in_dims=[2.0])  # type: ignore[list-item]


def test_concat_config_round_trip() -> None:
    for f in (ConcatFusion(), ConcatFusion(in_dims=[3, 1])):
        assert repr(from_config(f.to_config())) == repr(f)


# ---------------------------------------------------------------------------------------------
# ProjectedConcatFusion: every matrix equals cat(xs) @ Wᵀ + b
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("lead", [(), (5,), (2, 3)], ids=str)
@pytest.mark.parametrize("name", sorted(MATRICES))
def test_projection_equals_materialized_product(
    name: str, lead: tuple[int, ...], bias: bool
) -> None:
    f = ProjectedConcatFusion(
        IN_DIMS,
        OUT,
        matrix=name,
        bias=bias,
        matrix_options=OPTIONS.get(name, {}),
        dtype=torch.float64,
    )
    assert isinstance(f.matrix, MATRICES[name])
    xs = _pieces(lead, IN_DIMS)
    out = f(xs)
    assert out.shape == (*lead, OUT)
    torch.testing.assert_close(out, _reference(f, xs))
    mask = torch.tensor([True, False, True])
    torch.testing.assert_close(f(xs, mask=mask), _reference(f, xs, mask))


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_projection_parameter_count(name: str) -> None:
    f = ProjectedConcatFusion(IN_DIMS, OUT, matrix=name, matrix_options=OPTIONS.get(name, {}))
    cls = matrix_class(name)
    expected = cls.count_parameters(sum(IN_DIMS), OUT, **OPTIONS.get(name, {})) + OUT
    assert f.num_parameters == expected == sum(p.numel() for p in f.parameters())
    assert f.out_features(IN_DIMS) == OUT
    g = ProjectedConcatFusion(
        IN_DIMS, OUT, matrix=name, bias=False, matrix_options=OPTIONS.get(name, {})
    )
    assert g.num_parameters == expected - OUT


def test_projection_spec_fixture() -> None:
    """tinyBIG's parameterized_concatenation with w = arange(18)/10 viewed as W (3, 6)."""
    f = ProjectedConcatFusion([2, 2, 2], 3, bias=False)
    with torch.no_grad():
        f.matrix.weight.copy_(torch.arange(18.0).view(3, 6) / 10)  # type: ignore[operator]
    expected = torch.tensor([[11.6, 31.4, 51.2], [14.6, 41.6, 68.6]])
    torch.testing.assert_close(f([X1, X2, X3]), expected)
    assert f([torch.randn(4, 5, 2) for _ in range(3)]).shape == (
        4,
        5,
        3,
    )  # 3-D inputs, as in the spec


def test_projection_lowrank_spec_fixture() -> None:
    """tinyBIG's lowrank variant: W = w[:6].view(3, 2) @ w[6:].view(2, 6), w = arange(18)/10."""
    f = ProjectedConcatFusion(
        [2, 2, 2], 3, matrix="lowrank", bias=False, matrix_options={"rank": 2}
    )
    w = torch.arange(18.0) / 10
    with torch.no_grad():
        f.matrix.left.copy_(w[:6].view(3, 2))  # type: ignore[operator]
        f.matrix.right.copy_(w[6:].view(2, 6))  # type: ignore[operator]
    expected = torch.tensor([[5.12, 21.64, 38.16], [6.86, 28.90, 50.94]])
    torch.testing.assert_close(f([X1, X2, X3]), expected)


def test_projection_row_mask_zero_fills() -> None:
    f = ProjectedConcatFusion(IN_DIMS, OUT, dtype=torch.float64)
    xs = _pieces((4,), IN_DIMS)
    rows = torch.tensor(
        [[True, False, True], [False, True, True], [True, True, True], [True, False, False]]
    )
    torch.testing.assert_close(f(xs, mask=rows), _reference(f, xs, rows))
    poisoned = [torch.where(rows[:, i, None], x, math.nan) for i, x in enumerate(xs)]
    torch.testing.assert_close(f(poisoned, mask=rows), f(xs, mask=rows))


@pytest.mark.parametrize("name", SPLIT)
def test_split_matrices_never_build_the_concatenation(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = ProjectedConcatFusion(IN_DIMS, OUT, matrix=name, matrix_options=OPTIONS.get(name, {}))
    f.matrix.mode = "factored"
    xs = [x.float().requires_grad_() for x in _pieces((8,), IN_DIMS)]
    expected = _reference(f, [x.detach() for x in xs])
    # Above the small-size threshold (here: every size); below it a dense matrix runs the
    # plain F.linear of the (small) concatenation.
    monkeypatch.setattr(_common, "SMALL_BYTES", 0)

    def boom(*args: Any, **kwargs: Any) -> Tensor:
        raise AssertionError("the concatenation was built")

    monkeypatch.setattr(torch, "cat", boom)
    out = f(xs)
    out.sum().backward()
    monkeypatch.undo()
    torch.testing.assert_close(f(xs), expected)  # the small-size path agrees
    torch.testing.assert_close(out.detach(), expected)
    assert all(x.grad is not None for x in xs)


def test_given_instance_is_owned_and_kept() -> None:
    matrix = DenseMatrix(6, 3)
    matrix.reset_to_identity()
    f = ProjectedConcatFusion([2, 4], 3, matrix=matrix, bias=False)
    assert f.matrix is matrix
    assert "matrix.weight" in f.state_dict()
    xs = [torch.randn(5, 2), torch.randn(5, 4)]
    torch.testing.assert_close(f(xs), torch.cat(xs, -1)[:, :3])  # not re-initialized


def test_given_instance_moves_with_factory_kwargs() -> None:
    f = ProjectedConcatFusion([2, 4], 3, matrix=LowRankMatrix(6, 3, rank=2), dtype=torch.float64)
    assert {p.dtype for p in f.parameters()} == {torch.float64}
    g = ProjectedConcatFusion([2, 4], 3, matrix=LowRankMatrix(6, 3, rank=2, dtype=torch.float64))
    assert g.bias is not None and g.bias.dtype == torch.float64  # bias follows the instance


def test_matrix_class_and_alias() -> None:
    assert isinstance(ProjectedConcatFusion([4], 2, matrix=LowRankMatrix).matrix, LowRankMatrix)
    f = ProjectedConcatFusion([4, 4], 4, matrix="hm", matrix_options={"p": 2, "q": 2})
    assert isinstance(f.matrix, KroneckerMatrix)
    assert isinstance(ProjectedConcatFusion([4], 2, matrix="rma").matrix, RandomAdaptedMatrix)


def test_reset_parameters() -> None:
    torch.manual_seed(0)
    f = ProjectedConcatFusion([3, 3], 4)
    before = {k: v.clone() for k, v in f.state_dict().items()}
    f.reset_parameters()
    after = f.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    assert f.bias is not None and f.bias.abs().max() <= 1 / math.sqrt(6)


def test_random_adapted_buffers_survive_the_config_round_trip() -> None:
    f = ProjectedConcatFusion([3, 5], 4, matrix="random_adapted", matrix_options={"seed": 11})
    g = from_config(f.to_config())
    assert torch.equal(g.matrix.random_in, f.matrix.random_in)  # type: ignore[union-attr]
    assert "matrix.random_out" in f.state_dict()


def test_projection_repr_and_config() -> None:
    f = ProjectedConcatFusion([2, 4], 6, matrix="lowrank", matrix_options={"rank": 2}, bias=False)
    first = repr(f).splitlines()[0:2]
    assert first == [
        "ProjectedConcatFusion(",
        "  in_dims=[2, 4], out_dim=6, matrix='lowrank', bias=False, matrix_options={'rank': 2}",
    ]
    assert "(matrix): LowRankMatrix(in_features=6, out_features=6, rank=2)" in repr(f)
    config = f.to_config()
    assert config["params"]["matrix"]["class"] == "LowRankMatrix"
    g = from_config(config, dtype=torch.float64)
    assert repr(g) == repr(f)
    assert {p.dtype for p in g.parameters()} == {torch.float64}


@FEW
@given(
    st.sampled_from(sorted(MATRICES)),
    st.lists(st.integers(1, 3), max_size=2),
    st.floats(-2, 2),
    st.floats(-2, 2),
    st.integers(0, 2**16),
)
def test_projection_is_affine(name: str, lead: list[int], a: float, b: float, seed: int) -> None:
    torch.manual_seed(seed)
    f = ProjectedConcatFusion(
        IN_DIMS, OUT, matrix=name, matrix_options=OPTIONS.get(name, {}), dtype=torch.float64
    )
    xs, ys = _pieces(tuple(lead), IN_DIMS, seed), _pieces(tuple(lead), IN_DIMS, seed + 1)
    zero = f([torch.zeros_like(x) for x in xs])
    assert f.bias is not None
    torch.testing.assert_close(zero, f.bias.expand_as(zero))
    mixed = f([a * x + b * y for x, y in zip(xs, ys)])
    torch.testing.assert_close(mixed, a * f(xs) + b * f(ys) + (1 - a - b) * zero)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_dims": 6}, TypeError, r"in_dims must be a list or tuple of positive ints, got 6"),
        ({"in_dims": [2, -1]}, ValueError, r"in_dims\[1\] must be a positive int, got -1"),
        ({"out_dim": 0}, ValueError, r"out_dim must be a positive int, got 0"),
        ({"out_dim": 2.5}, TypeError, r"out_dim must be a positive int, got 2.5"),
        ({"bias": "yes"}, TypeError, r"bias must be a bool, got 'yes'"),
        ({"matrix": "sparse"}, ValueError, r"matrix must be one of \['dense', .*got 'sparse'"),
        ({"matrix": 3}, TypeError, r"matrix must be a name from \['dense', .*got 3"),
        ({"matrix": torch.nn.Linear}, TypeError, r"matrix must be a name or a StructuredMatrix"),
        (
            {"matrix": DenseMatrix(5, 3)},
            ValueError,
            r"matrix has in_features=5, out_features=3 but in_features=6, out_features=3",
        ),
        (
            {"matrix": DenseMatrix(6, 3), "matrix_options": {"mode": "dense"}},
            TypeError,
            r"matrix_options \['mode'\] apply only when matrix is a name or a class",
        ),
        ({"matrix_options": [("rank", 2)]}, TypeError, r"matrix_options must be a dict or None"),
        (
            {"matrix_options": {"in_features": 6}},
            TypeError,
            r"matrix_options must not set \['in_features'\]",
        ),
        (
            {"matrix_options": {"dtype": torch.float64}},
            TypeError,
            r"matrix_options must not set \['dtype'\]",
        ),
        (
            {"matrix": "lowrank", "matrix_options": {"rnak": 2}},
            TypeError,
            r"LowRankMatrix does not take the options \['rnak'\]",
        ),
        (
            {"matrix": "kronecker", "matrix_options": {"p": 3, "q": 4}},
            ValueError,
            r"q=4 must divide in_features=6",
        ),
    ],
    ids=[
        "in-dims-int",
        "in-dims-negative",
        "out-dim-zero",
        "out-dim-float",
        "bias",
        "matrix-name",
        "matrix-type",
        "matrix-foreign-class",
        "matrix-shape",
        "options-with-instance",
        "options-type",
        "options-in-features",
        "options-dtype",
        "options-typo",
        "kronecker-divisor",
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {"in_dims": [2, 4], "out_dim": 3, **kwargs}
    with pytest.raises(error, match=match):
        ProjectedConcatFusion(**args)


def test_bad_forward_inputs() -> None:
    f = ProjectedConcatFusion([2, 4], 3)
    with pytest.raises(
        ValueError, match=r"xs have widths \[4, 2\] but ProjectedConcatFusion was built for"
    ):
        f([torch.ones(1, 4), torch.ones(1, 2)])
    with pytest.raises(ValueError, match=r"xs has 1 tensors but ProjectedConcatFusion was built"):
        f([torch.ones(1, 6)])
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but DenseMatrix has dtype"):
        f([torch.ones(1, 2, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"xs are on cpu but ProjectedConcatFusion is on meta"):
        ProjectedConcatFusion([2, 4], 3, device="meta")([torch.ones(1, 2), torch.ones(1, 4)])
    with pytest.raises(ValueError, match=r"mask leaves no input present"):
        f([torch.ones(1, 2), torch.ones(1, 4)], mask=torch.tensor([False, False]))
    with pytest.raises(
        ValueError, match=r"in_dims=\[4, 2\] differ from the in_dims=\[2, 4\] ProjectedConcatFusion"
    ):
        f.out_features([4, 2])


def test_structured_matrix_base_is_not_a_name() -> None:
    with pytest.raises(TypeError, match=r"matrix must be a concrete StructuredMatrix class, got"):
        ProjectedConcatFusion([2], 2, matrix=StructuredMatrix)
