"""The bilinear kernel both faces run: values, orders, costs, gradients."""

from __future__ import annotations

import pytest
import torch

import interfuse.tinybig as tb
from interfuse.functional.bilinear import (
    bilinear_apply,
    bilinear_costs,
    bilinear_matrix,
    bilinear_matrix_first,
)
from interfuse.interdependence import BilinearInterdependence


def _dense(w: torch.Tensor):  # type: ignore[no-untyped-def]
    return lambda z: z @ w


@pytest.mark.parametrize("first", [True, False])
def test_apply_matches_the_formula_in_both_orders(first: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x, w, data = (
        torch.randn(*s, generator=g, dtype=torch.float64) for s in ((5, 3), (5, 5), (7, 3))
    )
    a = x.T @ w @ x
    torch.testing.assert_close(bilinear_matrix(x, _dense(w)), a)
    torch.testing.assert_close(bilinear_apply(data, x, _dense(w), matrix_first=first), data @ a)
    torch.testing.assert_close(
        bilinear_apply(data, x, _dense(w), matrix_first=first, scale=0.5), 0.5 * data @ a
    )


def test_gradients() -> None:
    g = torch.Generator().manual_seed(1)
    x, w, data = (
        torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True)
        for s in ((4, 3), (4, 4), (2, 3))
    )
    for first in (True, False):
        assert torch.autograd.gradcheck(
            lambda x, w, d, first=first: bilinear_apply(d, x, _dense(w), matrix_first=first),
            (x, w, data),
        )


def test_costs_pick_the_cheaper_order() -> None:
    dense = lambda d: lambda rows: rows * d * d  # noqa: E731
    # few data rows, wide A: the chain wins; many rows, small A: building A wins
    assert not bilinear_matrix_first(bilinear_costs(1, 2, 8, 100, dense(8)))
    assert bilinear_matrix_first(bilinear_costs(1, 1000, 64, 4, dense(64)))
    build, apply, chain = bilinear_costs(2, 3, 4, 5, dense(4))
    assert (build, apply, chain) == (
        2 * 5 * 16 + 2 * 5 * 4 * 5,
        2 * 3 * 25,
        2 * 2 * 3 * 5 * 4 + 2 * 3 * 16,
    )


def test_both_faces_run_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """No second copy of A = XᵀWX: the modern module and the tinyBIG face call the kernel."""
    import importlib

    kernel = importlib.import_module("interfuse.functional.bilinear")
    modern = importlib.import_module("interfuse.interdependence.bilinear")
    # the module, not the class of the same name that the package exports (as in tinyBIG)
    face = importlib.import_module(
        "interfuse.tinybig.interdependence.parameterized_bilinear_interdependence"
    )

    calls: list[str] = []

    def counting(x, right, scale=None):  # type: ignore[no-untyped-def]
        calls.append("matrix")
        return kernel.bilinear_matrix(x, right, scale)

    monkeypatch.setattr(modern, "bilinear_matrix", counting)
    monkeypatch.setattr(face, "bilinear_matrix", counting)
    BilinearInterdependence(3).interdependence_matrix(torch.randn(3, 4))
    tb.parameterized_bilinear_interdependence(b=3, m=4).calculate_A(
        torch.randn(4, 3), w=torch.randn(1, 16)
    )
    assert calls == ["matrix", "matrix"]


@pytest.mark.parametrize("axis", ["attribute", "instance"])
def test_scale_keeps_the_output_near_unit_size(axis: str) -> None:
    """scale='inverse_sqrt' divides A by √(b·m): the output's std no longer grows with it."""
    torch.manual_seed(0)
    stds = []
    for b, m in [(10, 32), (256, 128)]:
        mod = BilinearInterdependence(
            b if axis == "attribute" else m, axis=axis, scale="inverse_sqrt"
        )
        stds.append(float(mod(torch.randn(b, m)).std()))
        plain = BilinearInterdependence(b if axis == "attribute" else m, axis=axis)
        plain.load_state_dict(mod.state_dict())
        x = torch.randn(b, m)
        torch.testing.assert_close(mod(x) * (b * m) ** 0.5, plain(x), rtol=1e-4, atol=1e-3)
    assert all(0.3 < s < 3 for s in stds), stds
    assert BilinearInterdependence.from_config(mod.to_config()).scale == "inverse_sqrt"
    with pytest.raises(ValueError, match=r"scale must be one of \['none', 'inverse_sqrt'\]"):
        BilinearInterdependence(4, scale="sqrt")
