"""Every element-wise kernel × {no mask, (k,) mask, per-row mask} × {value, gradient} against a
stacked float64 reference, on both paths: the plain formulas (small inputs) and the blocked
kernels (SMALL_BYTES patched to 0, blocks patched small so several blocks, the per-row
recomputation of non-finite blocks and the product's bad-block path all run)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from interfuse import functional as fn
from interfuse.functional import _blocks, _common

K, SHAPE = 4, (2, 3, 5)
NAN = math.nan


def _first_extreme(stacked: Tensor, pick_max: bool) -> Tensor:
    return (stacked.max(0) if pick_max else stacked.min(0)).values


#: name -> (kernel(xs, mask), reference on the stacked present values (k, ..., n) with absent
#: entries set to the op's neutral value, neutral value)
OPS: dict[str, tuple[Callable[..., Tensor], Callable[[Tensor], Tensor], float]] = {
    "sum": (fn.fused_sum, lambda s: s.sum(0), 0.0),
    "mean": (fn.fused_mean, None, 0.0),  # type: ignore[dict-item]  # below: needs the count
    "max": (fn.fused_max, lambda s: _first_extreme(s, True), -math.inf),
    "min": (fn.fused_min, lambda s: _first_extreme(s, False), math.inf),
    "prod": (fn.fused_prod, lambda s: s.prod(0), 1.0),
    "norm1": (lambda xs, m: fn.fused_norm(xs, 1.0, m), lambda s: s.abs().sum(0), 0.0),
    "norm2": (lambda xs, m: fn.fused_norm(xs, 2.0, m), lambda s: s.square().sum(0).sqrt(), 0.0),
    "norm3": (
        lambda xs, m: fn.fused_norm(xs, 3.0, m),
        lambda s: s.abs().pow(3).sum(0) ** (1 / 3),
        0.0,
    ),
    "norminf": (lambda xs, m: fn.fused_norm(xs, math.inf, m), lambda s: s.abs().amax(0), 0.0),
    "weighted": (
        lambda xs, m: fn.weighted_sum(xs, torch.arange(1.0, K + 1, dtype=xs[0].dtype), m, False),
        lambda s: (s * torch.arange(1.0, K + 1, dtype=s.dtype).view(-1, 1, 1, 1)).sum(0),
        0.0,
    ),
}


@pytest.fixture(params=["plain", "blocked"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "blocked":
        monkeypatch.setattr(_common, "SMALL_BYTES", 0)
        monkeypatch.setattr(_blocks, "BLOCK_BYTES", 96)  # several blocks per call
    return str(request.param)


def _mask(form: str | None, gen: torch.Generator) -> Tensor | None:
    if form is None:
        return None
    if form == "k":
        return torch.tensor([True, False, True, True])
    mask = torch.rand(*SHAPE[:-1], K, generator=gen) < 0.6
    mask[..., 2] = True
    return mask


def _expected(name: str, xs: list[Tensor], mask: Tensor | None) -> Tensor:
    stacked = torch.stack([x.double() for x in xs])  # (k, ..., n)
    present = (
        torch.ones(K, dtype=torch.bool).view(-1, 1, 1, 1)
        if mask is None
        else _common._along_stack(mask, stacked.ndim)
    )
    if name == "mean":
        return torch.where(present, stacked, 0).sum(0) / present.sum(0)
    reference, neutral = OPS[name][1], OPS[name][2]
    return reference(torch.where(present, stacked, neutral))


def _poison(xs: list[Tensor], mask: Tensor | None) -> list[Tensor]:
    """nan in every absent entry: it must reach neither the value nor any gradient."""
    if mask is None:
        return xs
    full = _common._along_stack(mask, xs[0].ndim + 1).expand(K, *SHAPE)
    return [torch.where(full[i], x, NAN) for i, x in enumerate(xs)]


@pytest.mark.parametrize("form", [None, "k", "rows"])
@pytest.mark.parametrize("name", sorted(OPS))
def test_values_gradients_and_absent_inputs(name: str, form: str | None, path: str) -> None:
    gen = torch.Generator().manual_seed(len(name) * 7 + len(form or ""))
    xs = [torch.randn(SHAPE, generator=gen, dtype=torch.float64) for _ in range(K)]
    mask = _mask(form, gen)
    expected = _expected(name, xs, mask)
    poisoned = [x.requires_grad_() for x in _poison(xs, mask)]
    kernel = OPS[name][0]
    out = kernel(poisoned, mask)
    torch.testing.assert_close(out, expected)
    grad = torch.randn(SHAPE, generator=gen, dtype=torch.float64)
    found = torch.autograd.grad(out, poisoned, grad)
    leaves = [x.detach().requires_grad_() for x in xs]
    ref_out = _expected(name, leaves, mask)
    wanted = torch.autograd.grad(ref_out, leaves, grad, allow_unused=True)
    for i, (g, w) in enumerate(zip(found, wanted)):
        w = torch.zeros_like(g) if w is None else w
        torch.testing.assert_close(g, w, msg=f"input {i}")
    clean = [x.detach().requires_grad_() for x in xs]
    assert torch.autograd.gradcheck(lambda *ts: kernel(list(ts), mask), clean)


@pytest.mark.parametrize("name", ["sum", "max", "prod", "norm2", "weighted"])
def test_double_backward(name: str, path: str) -> None:
    xs = [torch.randn(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(K)]
    mask = torch.tensor([[True, False, True, True], [False, True, True, True]])
    assert torch.autograd.gradgradcheck(lambda *ts: OPS[name][0](list(ts), mask), xs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(OPS))
def test_low_precision_gradients_are_finite(name: str, dtype: torch.dtype, path: str) -> None:
    gen = torch.Generator().manual_seed(11)
    mask = _mask("rows", gen)
    xs = [(torch.randn(SHAPE, generator=gen) * 1e-3).to(dtype) for _ in range(K)]  # small norms
    poisoned = [x.requires_grad_() for x in _poison(xs, mask)]
    out = OPS[name][0](poisoned, mask)
    assert out.dtype == dtype
    torch.testing.assert_close(
        out.double(), _expected(name, xs, mask), rtol=2e-2, atol=1e-5, equal_nan=False
    )
    out.sum().backward()
    assert mask is not None
    for i, x in enumerate(poisoned):
        assert x.grad is not None and torch.isfinite(x.grad).all(), f"input {i}"
        assert (x.grad[~mask[..., i]] == 0).all()


@pytest.mark.parametrize("name", sorted(OPS))
def test_small_and_large_paths_agree(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(5)
    xs = [torch.randn(16, 33, generator=gen).requires_grad_() for _ in range(K)]
    mask = torch.rand(16, K, generator=gen) < 0.7
    mask[:, 0] = True
    outs, grads = [], []
    for small in (1 << 40, 0):
        monkeypatch.setattr(_common, "SMALL_BYTES", small)
        out = OPS[name][0](xs, mask)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), xs))
    torch.testing.assert_close(outs[0], outs[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_masked_product_with_infinite_present_value_gives_absent_input_zero(path: str) -> None:
    xs = [torch.tensor([[math.inf, 2.0]]), torch.tensor([[3.0, NAN]])]
    xs = [x.requires_grad_() for x in xs]
    mask = torch.tensor([[True, False]])
    fn.fused_prod(xs, mask).sum().backward()
    assert xs[1].grad is not None and (xs[1].grad == 0).all()


def test_product_overflowing_float32_is_recomputed(path: str) -> None:
    xs = [torch.full((4, 8), 1e30), torch.full((4, 8), 1e30), torch.full((4, 8), 1e-30)]
    torch.testing.assert_close(fn.fused_prod(xs), torch.full((4, 8), 1e30))


def test_median_mean_mode_does_not_overflow_float16() -> None:
    xs = [torch.full((3,), 60000.0, dtype=torch.float16) for _ in range(2)]
    assert torch.isfinite(fn.fused_median(xs, mode="mean")).all()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: fn.fused_norm([torch.ones(2)] * 2, p=0.5), ValueError, r"p must be a number >= 1"),
        (lambda: fn.fused_norm([torch.ones(2)] * 2, p="2"), TypeError, r"p must be a number >= 1"),
        (
            lambda: fn.fused_sum([torch.ones(2, 3)] * 2, torch.ones(4, 2, 2, dtype=torch.bool)),
            ValueError,
            r"which would enlarge the inputs' leading shape",
        ),
        (
            lambda: fn.fused_median(
                [torch.ones(2, 3)] * 2, torch.tensor([[True, True], [False, False]])
            ),
            ValueError,
            r"mask leaves no input present",
        ),
    ],
)
def test_public_kernels_validate_as_the_modules(
    call: Callable[[], object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_mixed_dtypes_promote_as_torch_stack() -> None:
    xs = [torch.ones(2, 3), torch.full((2, 3), 2.0, dtype=torch.bfloat16)]
    assert fn.fused_sum(xs).dtype == torch.stack(xs).sum(0).dtype == torch.float32
    xs = [torch.ones(2, 3, dtype=torch.float16), torch.ones(2, 3, dtype=torch.bfloat16)]
    assert fn.fused_max(xs).dtype == torch.float32


def test_masks_on_meta_tensors_and_under_vmap() -> None:
    meta = [torch.empty(4, 3, device="meta") for _ in range(2)]
    assert fn.fused_mean(meta, torch.ones(4, 2, dtype=torch.bool, device="meta")).shape == (4, 3)
    xs = [torch.randn(4, 3) for _ in range(2)]
    masks = torch.tensor([[[True, False]] * 4, [[True, True]] * 4])
    out = torch.func.vmap(lambda m: fn.fused_sum(xs, m))(masks)
    torch.testing.assert_close(out[0], xs[0])
    torch.testing.assert_close(out[1], xs[0] + xs[1])


def test_product_of_three_without_readable_values_is_float64_exact() -> None:
    # The small product's overflow check reads a value; on meta tensors and under vmap it
    # cannot, and the product is then taken in float64.
    meta = [torch.empty(4, 3, device="meta") for _ in range(3)]
    assert fn.fused_prod(meta).shape == (4, 3)
    big = [torch.full((2, 3), 1e30), torch.full((2, 3), 1e30), torch.full((2, 3), 1e-30)]
    batched = [torch.stack([x, x]) for x in big]
    out = torch.func.vmap(lambda a, b, c: fn.fused_prod([a, b, c]))(*batched)
    torch.testing.assert_close(out, torch.full((2, 2, 3), 1e30))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_median_of_three_values_only_equals_torch_median(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(5)
    xs = [torch.randn(6, 5, generator=gen).to(dtype) for _ in range(3)]
    xs[0][0, 0] = math.nan
    xs[2][1, 1] = math.nan
    xs[1][2, 2] = xs[2][2, 2]  # a tie
    xs[0][3, 3] = xs[1][3, 3] = xs[2][3, 3]  # all equal
    wanted = torch.stack(xs).median(0).values
    for mode in ("lower", "mean"):  # the same for three values
        torch.testing.assert_close(fn.fused_median(xs, mode=mode), wanted, equal_nan=True)


def test_l2_norm_overflowing_float32_is_recomputed(path: str) -> None:
    xs = [torch.full((4, 8), 3e20), torch.full((4, 8), 4e20)]
    torch.testing.assert_close(fn.fused_norm(xs, 2.0), torch.full((4, 8), 5e20))


def test_unchecked_infinity_norm_keeps_infinities_and_exact_neighbours(path: str) -> None:
    gen = torch.Generator().manual_seed(3)
    xs = [torch.randn(4, 8, generator=gen) for _ in range(3)]
    xs[1][2, 3] = math.inf
    assert torch.equal(fn.fused_norm(xs, math.inf), torch.stack(xs).abs().amax(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_mean_divides_by_the_count_exactly(dtype: torch.dtype) -> None:
    # The few-input mean divides by a cached 0-d count of the inputs' dtype: a division, not
    # a product with a rounded reciprocal, in float64 as in float32.
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(5, 7, generator=gen, dtype=dtype) for _ in range(3)]
    assert torch.equal(fn.fused_mean(xs), (xs[0] + xs[1] + xs[2]) / 3)
    xg = [x.clone().requires_grad_() for x in xs]
    fn.fused_mean(xg).sum().backward()
    assert all(torch.equal(x.grad, torch.full_like(x, 1 / 3)) for x in xg)
