"""ParameterizedInterdependence: factored application, shapes, counts, init, config, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import interfuse
from interfuse import ParameterizedInterdependence
from interfuse.config import from_config
from interfuse.matrices import DenseMatrix, LowRankMatrix

AXES = ["attribute", "instance"]
# (name, options) for in_dim=8 → out_dim=4 (p | out, q | in)
KINDS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {}),
    ("lowrank", {"rank": 2}),
    ("kronecker", {"p": 2, "q": 4}),
    ("lowrank_kronecker", {"rank": 1, "p": 2, "q": 2}),
    ("dual_lowrank_kronecker", {"rank": 2, "p": 4, "q": 2}),
    ("random_adapted", {"rank": 3, "seed": 5}),
]
KIND_IDS = [k for k, _ in KINDS]
MODES = ["factored", "dense"]


def _input(axis: str, in_dim: int, *lead: int, other: int = 3) -> torch.Tensor:
    shape = (*lead, other, in_dim) if axis == "attribute" else (*lead, in_dim, other)
    return torch.randn(shape)


def _reference(module: ParameterizedInterdependence, x: torch.Tensor) -> torch.Tensor:
    a = module.A.detach()
    return x @ a if module.axis == "attribute" else a.mT @ x


# -- factored application ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_factored_equals_materialized(name: str, options: dict, axis: str, mode: str) -> None:
    torch.manual_seed(0)
    module = ParameterizedInterdependence(
        8, 4, matrix=name, axis=axis, matrix_options={**options, "mode": mode}
    )
    x = _input(axis, 8, 2)
    y = module(x)
    expected_shape = (2, 3, 4) if axis == "attribute" else (2, 4, 3)
    assert y.shape == expected_shape == module.output_shape(x.shape)
    torch.testing.assert_close(y, _reference(module, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_batched_equals_per_element_loop(name: str, options: dict, axis: str) -> None:
    torch.manual_seed(1)
    module = ParameterizedInterdependence(
        8, 4, matrix=name, axis=axis, matrix_options={**options, "mode": "factored"}
    )
    x = _input(axis, 8, 2, 3, other=5)  # (B1, B2, b, m)
    y = module(x)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(y[i, j], module(x[i, j]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", AXES)
def test_kronecker_is_torch_kron(axis: str) -> None:
    torch.manual_seed(2)
    module = ParameterizedInterdependence(
        6, 4, matrix="hm", axis=axis, matrix_options={"p": 2, "q": 3, "mode": "factored"}
    )
    w = torch.kron(module.matrix.a, module.matrix.b)  # (out, in), A = Wᵀ
    torch.testing.assert_close(module.A, w.mT)
    x = _input(axis, 6, 2)
    ref = x @ w.mT if axis == "attribute" else w @ x
    torch.testing.assert_close(module(x), ref, rtol=1e-5, atol=1e-6)


def test_kronecker_rank_is_product_of_factor_ranks() -> None:
    # The documented A ⊗ B (full rank 16 here), not tinyBIG's rank-1 reshaped outer product.
    torch.manual_seed(3)
    module = ParameterizedInterdependence(16, matrix="hm", matrix_options={"p": 4, "q": 4})
    assert torch.linalg.matrix_rank(module.A.detach()).item() == 16


def test_instance_axis_mixes_rows() -> None:
    module = ParameterizedInterdependence(3, 2, axis="instance")
    with torch.no_grad():
        module.matrix.weight.copy_(torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    # A = Wᵀ is 3×2; Aᵀ X sums the first two rows and doubles the third.
    torch.testing.assert_close(module(x), torch.tensor([[4.0, 6.0], [10.0, 12.0]]))
    assert module.interdependence_matrix().shape == (3, 2)


# -- identity initialization ---------------------------------------------------------------


IDENTITY_KINDS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {}),
    ("lowrank", {"rank": 8}),
    ("kronecker", {"p": 2, "q": 2}),
    ("lowrank_kronecker", {"rank": 4, "p": 2, "q": 2}),
    ("dual_lowrank_kronecker", {"rank": 4, "p": 2, "q": 2}),
]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), IDENTITY_KINDS, ids=[k for k, _ in IDENTITY_KINDS])
def test_identity_init_is_a_no_op(name: str, options: dict, axis: str) -> None:
    module = ParameterizedInterdependence(
        8, matrix=name, axis=axis, init="identity", matrix_options=options
    )
    x = _input(axis, 8, 2, 3)
    torch.testing.assert_close(module(x), x)
    torch.testing.assert_close(module.A, torch.eye(8))
    # reset_parameters restores the identity after training moved it
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3)
    module.reset_parameters()
    torch.testing.assert_close(module(x), x)


@pytest.mark.parametrize("dim", [6, 8, 10, 12, 18, 32, 128])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("kronecker", {}),
        ("lowrank_kronecker", {"rank": 16}),
        ("dual_lowrank_kronecker", {"rank": 16}),
    ],
)
def test_identity_init_picks_square_kronecker_factors(
    dim: int, name: str, options: dict[str, Any]
) -> None:
    # The automatic factors are rarely square (8 -> p=2, q=4); identity asks for p == q.
    module = ParameterizedInterdependence(dim, matrix=name, init="identity", matrix_options=options)
    assert module.matrix.p == module.matrix.q
    x = torch.randn(3, dim)
    torch.testing.assert_close(module(x), x)
    count = ParameterizedInterdependence.count_parameters(
        dim, matrix=name, matrix_options=options, init="identity"
    )
    assert count == module.num_parameters
    rebuilt = ParameterizedInterdependence.from_config(module.to_config())
    assert (rebuilt.matrix.p, rebuilt.matrix.q) == (module.matrix.p, module.matrix.q)


def test_count_parameters_rejects_unknown_matrix_options() -> None:
    with pytest.raises(TypeError, match=r"LowRankMatrix.count_parameters got \['rnk'\]"):
        ParameterizedInterdependence.count_parameters(
            16, matrix="lowrank", matrix_options={"rnk": 2}
        )


def test_identity_init_rectangular_keeps_leading_features() -> None:
    module = ParameterizedInterdependence(4, 6, init="identity")
    x = torch.randn(2, 4)
    y = module(x)
    torch.testing.assert_close(y[:, :4], x)
    assert torch.count_nonzero(y[:, 4:]) == 0


def test_default_reset_parameters_redraws() -> None:
    module = ParameterizedInterdependence(8, matrix="lowrank", matrix_options={"rank": 2})
    before = module.A.detach().clone()
    module.reset_parameters()
    assert not torch.equal(before, module.A)


def test_given_matrix_instance_is_kept() -> None:
    matrix = LowRankMatrix(8, 4, rank=2)
    before = matrix.materialize().detach().clone()
    module = ParameterizedInterdependence(8, 4, matrix=matrix)
    assert module.matrix is matrix
    torch.testing.assert_close(module.A, before.mT)


# -- parameter counts (spec §10: d = d' = 64, r = 2, p = q = 8) ----------------------------

SPEC_COUNTS = [
    ("dense", {}, 4096),
    ("lowrank", {"rank": 2}, 256),
    ("hm", {"p": 8, "q": 8}, 128),
    ("lphm", {"rank": 2, "p": 8, "q": 8}, 96),
    ("dual_lphm", {"rank": 2, "p": 8, "q": 8}, 64),
    ("rma", {"rank": 2}, 66),
]


@pytest.mark.parametrize(("name", "options", "count"), SPEC_COUNTS, ids=[c[0] for c in SPEC_COUNTS])
def test_parameter_counts_match_spec(name: str, options: dict, count: int) -> None:
    module = ParameterizedInterdependence(64, 64, matrix=name, matrix_options=options)
    assert module.num_parameters == count
    assert ParameterizedInterdependence.count_parameters(64, 64, name, options) == count


@pytest.mark.parametrize(("d", "d_out"), [(12, 6), (6, 12)])
def test_parameter_counts_rectangular(d: int, d_out: int) -> None:
    r, p, q = 2, 3, 2  # p divides out_dim, q divides in_dim
    formulas = {
        "dense": d * d_out,
        "lowrank": r * (d + d_out),
        "random_adapted": d_out + r,
        "kronecker": p * q + (d_out // p) * (d // q),
        "lowrank_kronecker": p * q + r * (d_out // p + d // q),
        "dual_lowrank_kronecker": r * (p + q + d_out // p + d // q),
    }
    for name, expected in formulas.items():
        options: dict[str, Any] = {} if name == "dense" else {"rank": r}
        if "kronecker" in name:
            options = {"p": p, "q": q} | ({} if name == "kronecker" else {"rank": r})
        module = ParameterizedInterdependence(d, d_out, matrix=name, matrix_options=options)
        assert module.num_parameters == expected, name


# -- gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_gradients_flow(name: str, options: dict, axis: str) -> None:
    module = ParameterizedInterdependence(
        8, 4, matrix=name, axis=axis, matrix_options={**options, "mode": "factored"}
    )
    x = _input(axis, 8, 2).requires_grad_()
    module(x).square().sum().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0
    for pname, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert torch.count_nonzero(p.grad) > 0, pname
    for buf in module.buffers():
        assert not buf.requires_grad


# -- helpers, repr, config, factory kwargs ------------------------------------------------------


def test_output_shape_and_out_features() -> None:
    attr = ParameterizedInterdependence(4, 6)
    assert attr.output_shape((2, 5, 3, 4)) == torch.Size((2, 5, 3, 6))
    assert attr.out_features(4) == 6
    inst = ParameterizedInterdependence(3, 7, axis="instance")
    assert inst.output_shape(torch.Size((3, 4))) == torch.Size((7, 4))
    assert inst.out_features(11) == 11


def test_out_dim_defaults_to_in_dim() -> None:
    module = ParameterizedInterdependence(5)
    assert module.out_dim == 5 and module.A.shape == (5, 5)


def test_extra_repr_shows_every_argument() -> None:
    module = ParameterizedInterdependence(
        8, 4, matrix="lowrank", axis="instance", matrix_options={"rank": 2, "mode": "factored"}
    )
    assert module.extra_repr() == (
        "in_dim=8, out_dim=4, matrix='lowrank', matrix_options={'rank': 2, 'mode': 'factored'}, "
        "axis='instance', init='default'"
    )
    assert repr(module).startswith("ParameterizedInterdependence(")
    plain = ParameterizedInterdependence(3)
    assert plain.extra_repr() == (
        "in_dim=3, out_dim=3, matrix='dense', axis='attribute', init='default'"
    )


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_config_round_trip(name: str, options: dict, axis: str) -> None:
    module = ParameterizedInterdependence(8, 4, matrix=name, axis=axis, matrix_options=options)
    config = module.to_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = from_config(config)
    assert isinstance(rebuilt, ParameterizedInterdependence)
    assert rebuilt.to_config() == config
    rebuilt.load_state_dict(module.state_dict())
    x = _input(axis, 8, 2)
    torch.testing.assert_close(rebuilt(x), module(x))


def test_config_round_trip_identity_and_factory_kwargs() -> None:
    module = ParameterizedInterdependence(4, init="identity", axis="instance")
    rebuilt = from_config(module.to_config(), dtype=torch.float64)
    assert isinstance(rebuilt, ParameterizedInterdependence)
    assert rebuilt.init == "identity" and rebuilt.axis == "instance"
    assert rebuilt.A.dtype == torch.float64
    torch.testing.assert_close(rebuilt.A, torch.eye(4, dtype=torch.float64))


def test_device_and_dtype_factory_kwargs() -> None:
    module = ParameterizedInterdependence(4, matrix="rma", dtype=torch.float64, device="cpu")
    assert all(t.dtype == torch.float64 for t in (*module.parameters(), *module.buffers()))
    given = ParameterizedInterdependence(4, matrix=DenseMatrix(4, 4), dtype=torch.float64)
    assert given.matrix.weight.dtype == torch.float64


def test_exported_from_package() -> None:
    assert interfuse.ParameterizedInterdependence is ParameterizedInterdependence
    assert "ParameterizedInterdependence" in interfuse.__all__


# -- errors --------------------------------------------------------------------------------------


def test_error_wrong_feature_count() -> None:
    with pytest.raises(ValueError, match=r"x has 5 features but in_dim=4"):
        ParameterizedInterdependence(4)(torch.randn(2, 5))


def test_error_wrong_instance_count() -> None:
    with pytest.raises(ValueError, match=r"x has 5 instances but in_dim=4 .*axis='instance'"):
        ParameterizedInterdependence(4, axis="instance")(torch.randn(5, 4))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"in_dim": 0}, ValueError, r"in_dim must be a positive int, got 0"),
        ({"in_dim": 2.5}, TypeError, r"in_dim must be a positive int, got 2.5"),
        ({"in_dim": 4, "out_dim": -1}, ValueError, r"out_dim must be a positive int, got -1"),
        (
            {"in_dim": 4, "axis": "row"},
            ValueError,
            r"axis must be one of \['attribute', 'instance'\], got 'row'",
        ),
        ({"in_dim": 4, "axis": 1}, TypeError, r"axis must be a str"),
        (
            {"in_dim": 4, "init": "zeros"},
            ValueError,
            r"init must be one of \['default', 'identity'\], got 'zeros'",
        ),
        ({"in_dim": 4, "matrix": "sparse"}, ValueError, r"matrix must be one of .*got 'sparse'"),
        (
            {"in_dim": 4, "matrix": 3},
            TypeError,
            r"matrix must be a name from \[.dense., .*got 3",
        ),
        (
            {"in_dim": 4, "matrix_options": [1]},
            TypeError,
            r"matrix_options must be a dict or None, got \[1\]",
        ),
        (
            {"in_dim": 4, "matrix": "lowrank", "matrix_options": {"rank": 0}},
            ValueError,
            r"rank must be a positive int, got 0",
        ),
        (
            {"in_dim": 4, "matrix": "hm", "matrix_options": {"p": 3}},
            ValueError,
            r"p=3 must divide out_features=4",
        ),
        ({"in_dim": 4, "matrix": "dense", "matrix_options": {"rank": 2}}, TypeError, r"rank"),
        (
            {"in_dim": 4, "matrix": "rma", "init": "identity"},
            ValueError,
            r"init='identity' is not possible with RandomAdaptedMatrix",
        ),
        (
            {"in_dim": 8, "matrix": "lowrank", "init": "identity", "matrix_options": {"rank": 2}},
            ValueError,
            r"init='identity' is not possible with LowRankMatrix",
        ),
    ],
)
def test_constructor_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ParameterizedInterdependence(**kwargs)


def test_error_matrix_instance_of_wrong_shape() -> None:
    with pytest.raises(
        ValueError,
        match=r"matrix has in_features=4, out_features=4 but in_features=4, out_features=6",
    ):
        ParameterizedInterdependence(4, 6, matrix=DenseMatrix(4, 4))
    with pytest.raises(
        TypeError, match=r"matrix_options \['rank'\] apply only when matrix is a name"
    ):
        ParameterizedInterdependence(4, matrix=DenseMatrix(4, 4), matrix_options={"rank": 2})


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (
            [[1.0, 2.0]],
            TypeError,
            r"x must be a torch.Tensor of shape \(..., b, m\), got \[\[1.0, 2.0\]\]",
        ),
        (
            torch.ones(4),
            ValueError,
            r"x must have shape \(..., b, m\) with at least 2 dimensions, got shape \(4,\)",
        ),
        (
            torch.ones(2, 4, dtype=torch.long),
            TypeError,
            r"x must have a floating dtype, got torch.int64",
        ),
        (
            torch.ones(2, 4, dtype=torch.float64),
            TypeError,
            r"x has dtype torch.float64 but ParameterizedInterdependence has dtype",
        ),
    ],
)
def test_forward_input_errors(x: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ParameterizedInterdependence(4)(x)


def test_output_shape_errors() -> None:
    module = ParameterizedInterdependence(4, axis="instance")
    with pytest.raises(ValueError, match=r"input_shape has 3 instances but in_dim=4"):
        module.output_shape((3, 4))
    with pytest.raises(ValueError, match=r"input_shape must be \(..., b, m\) with at least 2 int"):
        module.output_shape((4,))
    with pytest.raises(TypeError, match=r"input_shape must be a sequence of ints, got 4"):
        module.output_shape(4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x has 5 features but in_dim=4"):
        ParameterizedInterdependence(4).out_features(5)


# -- properties --------------------------------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _configs(draw: st.DrawFn) -> tuple[int, int, str, str, dict[str, Any], tuple[int, ...], int]:
    in_dim = draw(st.integers(1, 12))
    out_dim = draw(st.integers(1, 12))
    axis = draw(st.sampled_from(AXES))
    name = draw(st.sampled_from(KIND_IDS))
    options: dict[str, Any] = {"mode": draw(st.sampled_from(["auto", *MODES]))}
    if name != "dense" and name != "kronecker":
        options["rank"] = draw(st.integers(1, 3))
    if "kronecker" in name:
        options["p"] = draw(st.sampled_from(_divisors(out_dim)))
        options["q"] = draw(st.sampled_from(_divisors(in_dim)))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    other = draw(st.integers(1, 5))
    return in_dim, out_dim, axis, name, options, lead, other


@settings(max_examples=40, deadline=None)
@given(_configs(), st.integers(0, 2**16))
def test_property_factored_equals_materialized(config: tuple, seed: int) -> None:
    in_dim, out_dim, axis, name, options, lead, other = config
    torch.manual_seed(seed)
    module = ParameterizedInterdependence(
        in_dim, out_dim, matrix=name, axis=axis, matrix_options=options, dtype=torch.float64
    )
    x = _input(axis, in_dim, *lead, other=other).double()
    y = module(x)
    assert y.shape == module.output_shape(x.shape)
    torch.testing.assert_close(y, _reference(module, x))
    assert module.num_parameters == ParameterizedInterdependence.count_parameters(
        in_dim, out_dim, name, options
    )
