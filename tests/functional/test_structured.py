"""The factored structured-matrix kernels (``interfuse.functional.structured``).

Each kernel is compared with ``x @ Wᵀ + b`` for a ``W`` built here by hand (``torch.kron``,
explicit products of the factors, ``torch.diag``), never with the module's own ``*_matrix``
helper alone; inputs given as pieces must equal the concatenated input, gradients are checked
in float64, and under autocast the product runs in the autocast dtype as ``nn.Linear`` does.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from interfuse import functional as fn

Kernel = Callable[..., Tensor]


def _factors(name: str, gen: torch.Generator) -> tuple[list[Tensor], Tensor]:
    """The factors of a 6 → 4 matrix of family ``name`` (float64) and that ``W`` built by hand."""

    def r(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if name == "dense":
        w = r(4, 6)
        return [w], w
    if name == "lowrank":
        left, right = r(4, 2), r(2, 6)
        return [left, right], left @ right
    if name == "kron":  # out = p·s = 2·2, in = q·t = 2·3
        a, b = r(2, 2), r(2, 3)
        return [a, b], torch.kron(a, b)
    if name == "lowrank_kron":
        a, s_left, s_right = r(2, 2), r(2, 1), r(1, 3)
        return [a, s_left, s_right], torch.kron(a, s_left @ s_right)
    if name == "dual_lowrank_kron":
        p_left, p_right, s_left, s_right = r(2, 1), r(1, 2), r(2, 1), r(1, 3)
        return [p_left, p_right, s_left, s_right], torch.kron(p_left @ p_right, s_left @ s_right)
    assert name == "random_adapted"
    r_out, r_in, lam_r, lam_o, lam_i = r(4, 2), r(6, 2), r(2), r(4), r(6)
    W = torch.diag(lam_o) @ r_out @ torch.diag(lam_r) @ r_in.t() @ torch.diag(lam_i)
    return [r_out, r_in, lam_r, lam_o, lam_i], W


KERNELS: dict[str, Kernel] = {
    "dense": fn.dense_linear,
    "lowrank": fn.lowrank_linear,
    "kron": fn.kron_linear,
    "lowrank_kron": fn.lowrank_kron_linear,
    "dual_lowrank_kron": fn.dual_lowrank_kron_linear,
    "random_adapted": fn.random_adapted_linear,
}


def _call(name: str, x: object, factors: list[Tensor], bias: Tensor | None) -> Tensor:
    if name == "random_adapted":  # its bias comes after the three scales
        return fn.random_adapted_linear(x, *factors, bias=bias)  # type: ignore[arg-type]
    return KERNELS[name](x, *factors, bias=bias)


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize("with_bias", [False, True])
def test_kernel_equals_the_hand_built_matrix(name: str, with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    factors, W = _factors(name, gen)
    x = torch.randn(3, 5, 6, generator=gen, dtype=torch.float64)  # any leading dims
    bias = torch.randn(4, generator=gen, dtype=torch.float64) if with_bias else None
    expected = x @ W.t() + (0 if bias is None else bias)
    torch.testing.assert_close(_call(name, x, factors, bias), expected)


@pytest.mark.parametrize("name", list(KERNELS))
def test_pieces_equal_their_concatenation(name: str) -> None:
    """A list input is the concatenation of its pieces, never built for dense, low-rank and
    random-adapted matrices (one GEMM per piece)."""
    gen = torch.Generator().manual_seed(1)
    factors, W = _factors(name, gen)
    x = torch.randn(7, 6, generator=gen, dtype=torch.float64)
    pieces = [x[:, :1], x[:, 1:4], x[:, 4:]]
    torch.testing.assert_close(_call(name, pieces, factors, None), x @ W.t())


@pytest.mark.parametrize("name", list(KERNELS))
def test_gradients_of_input_and_factors(name: str) -> None:
    gen = torch.Generator().manual_seed(2)
    factors, _ = _factors(name, gen)
    x = torch.randn(3, 6, generator=gen, dtype=torch.float64)
    bias = torch.randn(4, generator=gen, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, *factors, bias)]

    def f(*ts: Tensor) -> Tensor:
        return _call(name, ts[0], list(ts[1:-1]), ts[-1])

    assert torch.autograd.gradcheck(f, tuple(leaves))


@pytest.mark.parametrize("name", ["dense", "lowrank", "kron"])
def test_autocast_runs_in_the_autocast_dtype_like_linear(name: str) -> None:
    gen = torch.Generator().manual_seed(3)
    factors = [f.float() for f in _factors(name, gen)[0]]
    x = torch.randn(4, 6, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = _call(name, x, factors, torch.zeros(4))
        ref = torch.nn.functional.linear(x, torch.randn(4, 6))
    assert y.dtype == ref.dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fn.dense_linear(torch.ones(2, 5), torch.ones(4, 6)), r"width 5 .*in_features=6"),
        (
            lambda: fn.dense_linear([torch.ones(2, 2), torch.ones(2, 2)], torch.ones(4, 6)),
            r"width 4 .*in_features=6",
        ),
        (
            lambda: fn.lowrank_linear(torch.ones(2, 6), torch.ones(4, 2), torch.ones(3, 6)),
            r"must equal",
        ),
        (
            lambda: fn.dense_linear(torch.ones(2, 6), torch.ones(4, 6), torch.ones(3)),
            r"bias must have shape \(4,\)",
        ),
        (
            lambda: fn.dense_linear(torch.ones(2, 6, dtype=torch.int64), torch.ones(4, 6)),
            r"floating dtype",
        ),
    ],
)
def test_bad_arguments_are_named(call: Callable[[], Tensor], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_matrix_helpers_build_what_the_kernels_apply() -> None:
    gen = torch.Generator().manual_seed(4)
    (a, b), W = _factors("kron", gen)
    torch.testing.assert_close(fn.kron_matrix(a, b), W)
    (left, right), W = _factors("lowrank", gen)
    torch.testing.assert_close(fn.lowrank_matrix(left, right), W)
    factors, W = _factors("random_adapted", gen)
    torch.testing.assert_close(fn.random_adapted_matrix(*factors), W)
