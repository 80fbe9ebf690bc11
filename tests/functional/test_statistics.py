"""fused_var / fused_std / fused_logsumexp against torch's reductions of the stacked present
inputs: masks of every form, nan placeholders, offsets, degenerate counts, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from interfuse.functional import _blocks, _common, fused_logsumexp, fused_std, fused_var

K, SHAPE = 4, (3, 5, 6)


@pytest.fixture(autouse=True, params=["plain", "large"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on the small-size (stacked torch reductions) and large-size (one-pass,
    stack-free) paths."""
    if request.param == "large":
        monkeypatch.setattr(_common, "SMALL_BYTES", 0)
        monkeypatch.setattr(_blocks, "BLOCK_BYTES", 96)  # several blocks per call
    return str(request.param)


def _mask(form: str | None, gen: torch.Generator) -> torch.Tensor | None:
    if form is None:
        return None
    shape = (K,) if form == "k" else (*SHAPE[:-1], K) if form == "rows" else (SHAPE[1], K)
    mask = torch.rand(shape, generator=gen) < 0.6
    mask[..., 1] = True  # every row keeps one present input (not always the first)
    return mask


def _reference(
    op: str, xs: list[torch.Tensor], mask: torch.Tensor | None, **kw: float
) -> torch.Tensor:
    """torch's own reduction over the present values, entry by entry (rows of the mask)."""
    stacked = torch.stack(xs, -1).double()  # (..., n, k)
    present = (
        torch.ones(stacked.shape, dtype=torch.bool)
        if mask is None
        else (mask if mask.ndim == 1 else mask[..., None, :]).expand(stacked.shape)
    )
    flat, keep = stacked.reshape(-1, K), present.reshape(-1, K)
    out = []
    for values, flags in zip(flat, keep):
        v = values[flags]
        if op == "var":
            out.append(torch.var(v, correction=kw["correction"]))
        elif op == "std":
            out.append(torch.std(v, correction=kw["correction"]))
        else:
            out.append(torch.logsumexp(v, 0))
    return torch.stack(out).reshape(stacked.shape[:-1])


OPS = {
    "var": lambda xs, mask, c: fused_var(xs, mask, correction=c),
    "std": lambda xs, mask, c: fused_std(xs, mask, correction=c),
    "logsumexp": lambda xs, mask, c: fused_logsumexp(xs, mask),
}


@pytest.mark.filterwarnings("ignore:var\\(\\)|std\\(\\)")
@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("form", [None, "k", "rows", "broadcast"])
@pytest.mark.parametrize("correction", [0, 1, 2])
def test_values_match_torch_with_nan_placeholders(
    op: str, form: str | None, correction: int
) -> None:
    gen = torch.Generator().manual_seed(hash((op, form, correction)) % 2**31)
    xs = [torch.randn(SHAPE, generator=gen, dtype=torch.float64) for _ in range(K)]
    mask = _mask(form, gen)
    expected = _reference(op, xs, mask, correction=correction)
    if mask is not None:  # absent values are nan placeholders: they must not leak
        full = (mask if mask.ndim == 1 else mask[..., None, :]).expand(*SHAPE, K)
        xs = [torch.where(full[..., i], x, math.nan) for i, x in enumerate(xs)]
    got = OPS[op](xs, mask, correction)
    torch.testing.assert_close(got, expected, equal_nan=True)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("form", [None, "k", "rows"])
def test_gradcheck(op: str, form: str | None) -> None:
    gen = torch.Generator().manual_seed(7)
    xs = [torch.randn(2, 3, 4, generator=gen, dtype=torch.float64) for _ in range(K)]
    mask = None
    if form == "k":
        mask = torch.tensor([True, False, True, True])
    elif form == "rows":
        mask = torch.rand(2, 3, K, generator=gen) < 0.7
        mask[..., 0] = mask[..., 2] = True  # at least two present: var defined everywhere
    leaves = [x.requires_grad_() for x in xs]
    assert torch.autograd.gradcheck(lambda *ts: OPS[op](list(ts), mask, 1), leaves)
    assert torch.autograd.gradgradcheck(lambda *ts: OPS[op](list(ts), mask, 1), leaves)


@pytest.mark.parametrize("op", sorted(OPS))
def test_absent_inputs_get_exactly_zero_gradient(op: str) -> None:
    mask = torch.tensor([[True, False, True, True], [False, True, True, False]])
    xs = [torch.randn(2, 5, dtype=torch.float64) for _ in range(K)]
    xs = [torch.where(mask[:, i, None], x, math.nan).requires_grad_() for i, x in enumerate(xs)]
    OPS[op](xs, mask, 1).sum().backward()
    for i, x in enumerate(xs):
        assert x.grad is not None and torch.isfinite(x.grad).all()
        assert (x.grad[~mask[:, i]] == 0).all()


def test_variance_survives_a_large_common_offset() -> None:
    gen = torch.Generator().manual_seed(3)
    noise = [torch.randn(1000, generator=gen, dtype=torch.float64) for _ in range(K)]
    xs = [(1e6 + n).float() for n in noise]  # float32: 1e6 + noise keeps ~0.06 resolution
    expected = torch.var(torch.stack([x.double() for x in xs]), 0)
    torch.testing.assert_close(fused_var(xs).double(), expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused_std(xs).double(), expected.sqrt(), rtol=1e-4, atol=1e-4)


def test_degenerate_counts_follow_torch() -> None:
    xs = [torch.tensor([1.0, 3.0]), torch.tensor([2.0, 3.0])]
    with pytest.warns(UserWarning):
        expected = torch.var(torch.stack(xs), 0, correction=2)
    torch.testing.assert_close(fused_var(xs, correction=2), expected, equal_nan=True)
    one = torch.tensor([True, False])
    assert fused_var(xs, one).isnan().all()  # one value, correction 1: nan as torch
    assert (fused_var(xs, one, correction=0) == 0).all()


def test_std_gradient_is_zero_where_values_agree() -> None:
    xs = [torch.full((3,), 2.0, requires_grad=True) for _ in range(3)]
    fused_std(xs).sum().backward()
    assert all((x.grad == 0).all() for x in xs)


def test_logsumexp_infinities_follow_torch() -> None:
    inf = math.inf
    xs = [torch.tensor([-inf, inf, 1.0, 1000.0]), torch.tensor([-inf, 1.0, -inf, 1000.0])]
    torch.testing.assert_close(fused_logsumexp(xs), torch.logsumexp(torch.stack(xs), 0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("op", sorted(OPS))
def test_low_precision_accumulates_in_float32(op: str, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(1)
    xs = [(100 + torch.randn(64, generator=gen)).to(dtype).requires_grad_() for _ in range(K)]
    out = OPS[op](xs, None, 1)
    assert out.dtype == dtype
    expected = _reference(op, [x.detach() for x in xs], None, correction=1)
    torch.testing.assert_close(out.double(), expected, rtol=1e-2, atol=1e-2)
    out.sum().backward()
    assert all(x.grad is not None and torch.isfinite(x.grad).all() for x in xs)


def test_bad_arguments_raise() -> None:
    xs = [torch.zeros(2), torch.zeros(2)]
    with pytest.raises(TypeError, match="correction must be a non-negative number"):
        fused_var(xs, correction="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="correction must be a non-negative number, got -1"):
        fused_std(xs, correction=-1)
    with pytest.raises(ValueError, match="mask must have shape"):
        fused_logsumexp(xs, torch.tensor([True]))
    with pytest.raises(ValueError, match="xs\\[1\\] has shape"):
        fused_var([torch.zeros(2), torch.zeros(3)])


@pytest.mark.parametrize("k", [2, 3])
def test_logsumexp_of_few_inputs_matches_torch_and_traces_to_logsumexp(k: int) -> None:
    # Few unmasked inputs take a chain of logaddexp in eager mode; a tracer must see
    # logsumexp (the op the exporters know), with the same values.
    gen = torch.Generator().manual_seed(k)
    xs = [torch.randn(4, 3, generator=gen, dtype=torch.float64) * 30 for _ in range(k)]
    expected = torch.logsumexp(torch.stack(xs), 0)
    torch.testing.assert_close(fused_logsumexp(xs), expected, rtol=1e-12, atol=0)
    traced = torch.jit.trace(lambda *ts: fused_logsumexp(list(ts)), tuple(xs))
    graph = str(traced.graph)
    assert "logsumexp" in graph and "logaddexp" not in graph
    torch.testing.assert_close(traced(*xs), expected, rtol=1e-12, atol=0)
