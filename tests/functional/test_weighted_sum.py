"""weighted_sum with (k,) and per-row (..., k) weights, every mask form, against a stacked
reference, on the blocked path (block size patched small) and the reference path."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import interfuse.functional.elementwise as elementwise
from interfuse.functional import weighted_sum

K, SHAPE = 3, (4, 5, 6)
WEIGHT_SHAPES = [(K,), (*SHAPE[:-1], K), (SHAPE[1], K), (SHAPE[0], 1, K)]
MASK_SHAPES = [None, (K,), (*SHAPE[:-1], K), (SHAPE[1], K)]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elementwise, "BLOCK_BYTES", 64)  # several blocks per call


def _reference(
    xs: list[torch.Tensor], w: torch.Tensor, mask: torch.Tensor | None, renormalize: bool
) -> torch.Tensor:
    stacked = torch.stack(xs, -2).double()  # (..., k, n)
    weights = w.double().expand(*SHAPE[:-1], K)
    present = (
        torch.ones_like(weights, dtype=torch.bool) if mask is None else mask.expand_as(weights)
    )
    out = (torch.where(present[..., None], stacked, 0) * weights[..., None]).sum(-2)
    if renormalize and mask is not None:
        out = out * (weights.sum(-1) / torch.where(present, weights, 0).sum(-1))[..., None]
    return out


def _case(
    wshape: tuple[int, ...], mshape: tuple[int, ...] | None, seed: int
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(SHAPE, generator=gen, dtype=torch.float64) for _ in range(K)]
    w = torch.rand(wshape, generator=gen, dtype=torch.float64) + 0.5
    mask = None
    if mshape is not None:
        mask = torch.rand(mshape, generator=gen) < 0.6
        mask[..., 2] = True
    return xs, w, mask


@pytest.mark.parametrize(
    ("wshape", "mshape", "renormalize"),
    list(itertools.product(WEIGHT_SHAPES, MASK_SHAPES, [True, False])),
)
def test_values_and_gradients(
    wshape: tuple[int, ...], mshape: tuple[int, ...] | None, renormalize: bool
) -> None:
    xs, w, mask = _case(wshape, mshape, seed=len(wshape) * 10 + len(mshape or ()))
    expected = _reference(xs, w, mask, renormalize)
    if mask is not None:  # nan placeholders in absent inputs never leak
        full = mask.expand(*SHAPE[:-1], K)
        xs = [torch.where(full[..., i, None], x, math.nan) for i, x in enumerate(xs)]
    w.requires_grad_()
    for x in xs:
        x.requires_grad_()
    out = weighted_sum(xs, w, mask, renormalize)
    torch.testing.assert_close(out, expected)
    out.square().sum().backward()
    for i, x in enumerate(xs):
        assert x.grad is not None and torch.isfinite(x.grad).all()
        if mask is not None:
            assert (x.grad[~mask.expand(*SHAPE[:-1], K)[..., i]] == 0).all()
    assert w.grad is not None and w.grad.shape == w.shape and torch.isfinite(w.grad).all()
    if mask is None:
        clean = [x.detach().requires_grad_() for x in xs]
        weights = w.detach().requires_grad_()
        assert torch.autograd.gradcheck(
            lambda wt, *ts: weighted_sum(list(ts), wt, mask, renormalize), (weights, *clean)
        )


@pytest.mark.parametrize("wshape", WEIGHT_SHAPES[1:])
@pytest.mark.parametrize("mshape", [(K,), (*SHAPE[:-1], K)])
def test_gradcheck_per_row_masked(wshape: tuple[int, ...], mshape: tuple[int, ...]) -> None:
    xs, w, mask = _case(wshape, mshape, seed=5)
    leaves = [w.requires_grad_(), *(x.requires_grad_() for x in xs)]
    fn = lambda wt, *ts: weighted_sum(list(ts), wt, mask)  # noqa: E731
    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


def test_blocked_and_reference_paths_agree_in_float32() -> None:
    gen = torch.Generator().manual_seed(2)
    xs = [torch.randn(64, 33, generator=gen).requires_grad_() for _ in range(4)]
    w = torch.rand(64, 4, generator=gen).requires_grad_()
    mask = torch.rand(64, 4, generator=gen) < 0.7
    mask[:, 0] = True
    out = weighted_sum(xs, w, mask)
    ref = elementwise._weighted_sum_ref(xs, w, mask, True)
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.square().sum(), [w, *xs])
    ref_grads = torch.autograd.grad(ref.square().sum(), [w, *xs])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_per_row(dtype: torch.dtype) -> None:
    xs = [torch.randn(8, 16).to(dtype).requires_grad_() for _ in range(3)]
    w = torch.softmax(torch.randn(8, 3), -1).to(dtype).requires_grad_()
    out = weighted_sum(xs, w)
    assert out.dtype == dtype
    expected = _reference_2d([x.detach() for x in xs], w.detach())
    torch.testing.assert_close(out.double(), expected, rtol=1e-2, atol=1e-2)
    out.sum().backward()
    assert w.grad is not None and w.grad.dtype == dtype


def _reference_2d(xs: list[torch.Tensor], w: torch.Tensor) -> torch.Tensor:
    return (torch.stack(xs, -2).double() * w.double()[..., None]).sum(-2)


def test_bad_weights_raise() -> None:
    xs = [torch.zeros(2, 3), torch.zeros(2, 3)]
    with pytest.raises(TypeError, match=r"weights must be a torch\.Tensor"):
        weighted_sum(xs, [0.5, 0.5])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\) or \(\.\.\., 2\)"):
        weighted_sum(xs, torch.ones(3))
    with pytest.raises(ValueError, match="does not broadcast to the inputs' leading shape"):
        weighted_sum(xs, torch.ones(4, 2, 2))
