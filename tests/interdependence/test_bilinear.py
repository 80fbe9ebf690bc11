"""BilinearInterdependence: A = XᵀWX, both evaluation orders, counts, config, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import interfuse
from interfuse import BilinearInterdependence
from interfuse.config import from_config
from interfuse.matrices import DenseMatrix

AXES = ["attribute", "instance"]
ORDERS = ["matrix_first", "data_first"]
# (name, options) for a square W of side 8
KINDS: list[tuple[str, dict[str, Any]]] = [
    ("dense", {}),
    ("lowrank", {"rank": 2}),
    ("kronecker", {"p": 2, "q": 4}),
    ("lowrank_kronecker", {"rank": 1, "p": 4, "q": 2}),
    ("dual_lowrank_kronecker", {"rank": 2, "p": 2, "q": 2}),
    ("random_adapted", {"rank": 3, "seed": 1}),
]
KIND_IDS = [k for k, _ in KINDS]


def _x(axis: str, dim: int, *lead: int, other: int = 5) -> torch.Tensor:
    """x of shape (..., b, m) with b = dim (attribute) or m = dim (instance)."""
    shape = (*lead, dim, other) if axis == "attribute" else (*lead, other, dim)
    return torch.randn(shape)


def _explicit_a(module: BilinearInterdependence, x: torch.Tensor) -> torch.Tensor:
    w = module.W.detach()
    return x.mT @ w @ x if module.axis == "attribute" else x @ w @ x.mT


def _explicit(module: BilinearInterdependence, x: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    a = _explicit_a(module, x)
    return data @ a if module.axis == "attribute" else a.mT @ data


# -- A and both evaluation orders --------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_matches_explicit_formula(name: str, options: dict, axis: str, order: str) -> None:
    torch.manual_seed(0)
    module = BilinearInterdependence(
        8, matrix=name, axis=axis, order=order, matrix_options={**options, "mode": "factored"}
    )
    x = _x(axis, 8, 2)
    a = module.interdependence_matrix(x)
    side = x.shape[-1] if axis == "attribute" else x.shape[-2]
    assert a.shape == (2, side, side)
    torch.testing.assert_close(a, _explicit_a(module, x), rtol=1e-4, atol=1e-4)
    y = module(x)
    assert y.shape == x.shape == module.output_shape(x.shape)
    torch.testing.assert_close(y, _explicit(module, x, x), rtol=1e-4, atol=1e-4)


def test_w_is_the_transposed_linear_layout() -> None:
    module = BilinearInterdependence(4, matrix="lowrank", matrix_options={"rank": 2})
    z = torch.randn(3, 4)
    torch.testing.assert_close(z @ module.W, module.matrix(z))


@pytest.mark.parametrize("axis", AXES)
def test_kronecker_w_is_torch_kron(axis: str) -> None:
    torch.manual_seed(1)
    module = BilinearInterdependence(
        6, matrix="hm", axis=axis, matrix_options={"p": 2, "q": 3, "mode": "factored"}
    )
    w = torch.kron(module.matrix.a, module.matrix.b).mT
    torch.testing.assert_close(module.W, w)
    x = _x(axis, 6, 3)
    a = x.mT @ w @ x if axis == "attribute" else x @ w @ x.mT
    torch.testing.assert_close(module.interdependence_matrix(x), a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("axis", AXES)
def test_separate_data(axis: str, order: str) -> None:
    """A from x, applied to other data (e.g. an expansion κ(x)), with broadcast batch dims."""
    torch.manual_seed(2)
    module = BilinearInterdependence(
        4, matrix="lowrank", axis=axis, order=order, matrix_options={"rank": 2}
    )
    x = _x(axis, 4, 3, other=6)  # (3, 4, 6) or (3, 6, 4)
    # (..., n, m) with n ≠ b, or (..., b, k) with k ≠ m
    data = torch.randn(2, 1, 7, 6) if axis == "attribute" else torch.randn(2, 1, 6, 9)
    y = module(x, data)
    assert y.shape == (2, 3, *data.shape[-2:])
    torch.testing.assert_close(y, _explicit(module, x, data), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_batched_equals_per_element_loop(name: str, options: dict, axis: str, order: str) -> None:
    torch.manual_seed(3)
    module = BilinearInterdependence(8, matrix=name, axis=axis, order=order, matrix_options=options)
    x = _x(axis, 8, 2, 3)  # (B1, B2, b, m)
    y = module(x)
    a = module.interdependence_matrix(x)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(y[i, j], module(x[i, j]), rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(a[i, j], module.interdependence_matrix(x[i, j]))


# -- evaluation order choice ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axis", "shape", "matrix_first"),
    [
        ("attribute", (64, 4), True),  # A is 4×4: cheap to build
        ("attribute", (4, 64), False),  # A would be 64×64: contract data first
        ("instance", (4, 64), True),  # A is 4×4
        ("instance", (64, 4), False),  # A would be 64×64
    ],
)
def test_auto_order_picks_the_cheaper_chain(axis: str, shape: tuple, matrix_first: bool) -> None:
    b, m = shape
    module = BilinearInterdependence(b if axis == "attribute" else m, axis=axis)
    assert module.matrix_first((3, b, m), (3, b, m)) is matrix_first


def test_data_first_never_builds_a(monkeypatch: pytest.MonkeyPatch) -> None:
    module = BilinearInterdependence(
        4, axis="instance", matrix="lowrank", matrix_options={"rank": 2}
    )

    def forbidden(x: Any = None) -> torch.Tensor:
        raise AssertionError("A was built")

    monkeypatch.setattr(module, "interdependence_matrix", forbidden)
    x = torch.randn(2, 300, 4)  # A would be 300×300 per batch element
    y = module(x)
    assert y.shape == (2, 300, 4)


def test_explicit_order_is_respected() -> None:
    module = BilinearInterdependence(4, axis="instance", order="matrix_first")
    assert module.matrix_first((300, 4), (300, 4)) is True
    module = BilinearInterdependence(64, order="data_first")
    assert module.matrix_first((64, 4), (64, 4)) is False


# -- init, counts, gradients -------------------------------------------------------------------


@pytest.mark.parametrize("axis", AXES)
def test_identity_init_gives_the_gram_matrix(axis: str) -> None:
    module = BilinearInterdependence(5, axis=axis, init="identity")
    x = _x(axis, 5, 2, other=3)
    gram = x.mT @ x if axis == "attribute" else x @ x.mT
    torch.testing.assert_close(module.interdependence_matrix(x), gram)
    with torch.no_grad():
        module.matrix.weight.add_(1.0)
    module.reset_parameters()
    torch.testing.assert_close(module.W, torch.eye(5))


# spec §10: bilinear (attribute, b = 32), r = 2, p = q = 8
SPEC_COUNTS = [
    ("dense", {}, 1024),
    ("lowrank", {"rank": 2}, 128),
    ("hm", {"p": 8, "q": 8}, 80),
    ("lphm", {"rank": 2, "p": 8, "q": 8}, 80),
    ("dual_lphm", {"rank": 2, "p": 8, "q": 8}, 48),
    ("rma", {"rank": 2}, 34),
]


@pytest.mark.parametrize(("name", "options", "count"), SPEC_COUNTS, ids=[c[0] for c in SPEC_COUNTS])
def test_parameter_counts_match_spec(name: str, options: dict, count: int) -> None:
    module = BilinearInterdependence(32, matrix=name, matrix_options=options)
    assert module.num_parameters == count
    assert BilinearInterdependence.count_parameters(32, name, options) == count


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_gradients_flow(name: str, options: dict, axis: str, order: str) -> None:
    module = BilinearInterdependence(8, matrix=name, axis=axis, order=order, matrix_options=options)
    x = _x(axis, 8, 2).requires_grad_()
    module(x).square().sum().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0
    for pname, p in module.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert torch.count_nonzero(p.grad) > 0, pname


def test_gradcheck_both_orders_float64() -> None:
    for axis in AXES:
        for order in ORDERS:
            module = BilinearInterdependence(
                3,
                axis=axis,
                order=order,
                matrix="lowrank",
                matrix_options={"rank": 2},
                dtype=torch.float64,
            )
            x = _x(axis, 3, other=2).double().requires_grad_()
            assert torch.autograd.gradcheck(module, (x,))


# -- helpers, repr, config ---------------------------------------------------------------------


def test_output_shape_and_out_features() -> None:
    attr = BilinearInterdependence(3)
    assert attr.output_shape((2, 3, 7)) == torch.Size((2, 3, 7))
    assert attr.out_features(7) == 7
    inst = BilinearInterdependence(7, axis="instance")
    assert inst.output_shape((10, 7)) == torch.Size((10, 7))
    assert inst.out_features(7) == 7


def test_extra_repr_shows_every_argument() -> None:
    module = BilinearInterdependence(
        4,
        matrix="hm",
        axis="instance",
        init="identity",
        order="data_first",
        matrix_options={"p": 2, "q": 2},
    )
    assert module.extra_repr() == (
        "dim=4, matrix='kronecker', matrix_options={'p': 2, 'q': 2}, axis='instance', "
        "init='identity', order='data_first'"
    )
    assert repr(module).startswith("BilinearInterdependence(")


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("name", "options"), KINDS, ids=KIND_IDS)
def test_config_round_trip(name: str, options: dict, axis: str) -> None:
    module = BilinearInterdependence(
        8, matrix=name, axis=axis, order="data_first", matrix_options=options
    )
    config = module.to_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = from_config(config)
    assert isinstance(rebuilt, BilinearInterdependence)
    assert rebuilt.to_config() == config
    rebuilt.load_state_dict(module.state_dict())
    x = _x(axis, 8, 2)
    torch.testing.assert_close(rebuilt(x), module(x))


def test_exported_from_package() -> None:
    assert interfuse.BilinearInterdependence is BilinearInterdependence
    assert issubclass(BilinearInterdependence, interfuse.Interdependence)


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dim": 0}, ValueError, r"dim must be a positive int, got 0"),
        (
            {"dim": 4, "axis": "column"},
            ValueError,
            r"axis must be one of \['attribute', 'instance'\], got 'column'",
        ),
        (
            {"dim": 4, "order": "fast"},
            ValueError,
            r"order must be one of \['auto', 'matrix_first', 'data_first'\], got 'fast'",
        ),
        (
            {"dim": 4, "init": "eye"},
            ValueError,
            r"init must be one of \['default', 'identity'\], got 'eye'",
        ),
        (
            {"dim": 4, "matrix": DenseMatrix(4, 3)},
            ValueError,
            r"matrix has in_features=4, out_features=3 but in_features=4, out_features=4",
        ),
        (
            {"dim": 4, "matrix": "rma", "init": "identity"},
            ValueError,
            r"init='identity' is not possible with RandomAdaptedMatrix",
        ),
    ],
)
def test_constructor_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BilinearInterdependence(**kwargs)


def test_forward_errors() -> None:
    attr = BilinearInterdependence(4)
    with pytest.raises(ValueError, match=r"x has 5 instances but dim=4"):
        attr(torch.randn(5, 3))
    with pytest.raises(TypeError, match=r"x is required: BilinearInterdependence computes A"):
        attr.interdependence_matrix()
    with pytest.raises(ValueError, match=r"data has 2 features but x has 3: with axis='attribute'"):
        attr(torch.randn(4, 3), torch.randn(6, 2))
    with pytest.raises(
        ValueError,
        match=r"data has leading dimensions \(3,\) that do not broadcast with those of x, \(2,\)",
    ):
        attr(torch.randn(2, 4, 3), torch.randn(3, 4, 3))
    with pytest.raises(TypeError, match=r"data has dtype torch.float64 but x has torch.float32"):
        attr(torch.randn(4, 3), torch.randn(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"data must be a torch.Tensor"):
        attr(torch.randn(4, 3), [[1.0]])
    inst = BilinearInterdependence(4, axis="instance")
    with pytest.raises(ValueError, match=r"x has 3 features but dim=4 .*axis='instance'"):
        inst(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"data has 6 instances but x has 5: with axis='instance'"):
        inst(torch.randn(5, 4), torch.randn(6, 4))
    with pytest.raises(
        ValueError, match=r"x must have shape \(..., b, m\) with at least 2 dimensions"
    ):
        inst(torch.randn(4))
    with pytest.raises(ValueError, match=r"input_shape has 3 features but dim=4"):
        inst.output_shape((5, 3))
    with pytest.raises(ValueError, match=r"x has 3 features but dim=4"):
        inst.out_features(3)


# -- properties ------------------------------------------------------------------------------


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _configs(draw: st.DrawFn) -> tuple[int, str, str, str, dict[str, Any], tuple[int, ...], int]:
    dim = draw(st.integers(1, 10))
    axis = draw(st.sampled_from(AXES))
    order = draw(st.sampled_from(["auto", *ORDERS]))
    name = draw(st.sampled_from(KIND_IDS))
    options: dict[str, Any] = {"mode": draw(st.sampled_from(["auto", "factored", "dense"]))}
    if name not in ("dense", "kronecker"):
        options["rank"] = draw(st.integers(1, 3))
    if "kronecker" in name:
        options["p"] = draw(st.sampled_from(_divisors(dim)))
        options["q"] = draw(st.sampled_from(_divisors(dim)))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    other = draw(st.integers(1, 12))
    return dim, axis, order, name, options, lead, other


@settings(max_examples=40, deadline=None)
@given(_configs(), st.integers(0, 2**16))
def test_property_any_order_equals_explicit(config: tuple, seed: int) -> None:
    dim, axis, order, name, options, lead, other = config
    torch.manual_seed(seed)
    module = BilinearInterdependence(
        dim, matrix=name, axis=axis, order=order, matrix_options=options, dtype=torch.float64
    )
    x = _x(axis, dim, *lead, other=other).double()
    y = module(x)
    assert y.shape == module.output_shape(x.shape)
    torch.testing.assert_close(y, _explicit(module, x, x))
    torch.testing.assert_close(module.interdependence_matrix(x), _explicit_a(module, x))
