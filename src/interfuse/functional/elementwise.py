r"""Element-wise fusion kernels over a list of ``k`` equally shaped tensors.

None of these stacks its inputs into a ``(k, ...)`` copy: each accumulates into one
output-sized buffer, reading every input once (median is the exception: selecting the
middle value needs all ``k`` values at once, so it sorts a stacked copy).

``mask`` marks the inputs that are present: a bool tensor of shape ``(k,)`` (one flag per
input) or ``(..., k)`` (per row; its leading dims broadcast against the inputs' leading dims).
Absent inputs are skipped, never multiplied by zero, so a ``nan`` placeholder stays harmless.
Low-precision inputs (float16, bfloat16) accumulate in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "check_mask",
    "fused_max",
    "fused_mean",
    "fused_median",
    "fused_min",
    "fused_norm",
    "fused_prod",
    "fused_sum",
    "weighted_sum",
]


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def check_mask(mask: Tensor | None, xs: Sequence[Tensor]) -> Tensor | None:
    """Validate ``mask`` against ``k = len(xs)`` inputs; return it as a bool tensor or ``None``."""
    if mask is None:
        return None
    k = len(xs)
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a bool torch.Tensor of shape (k,) or (..., k), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must have dtype torch.bool, got {mask.dtype}")
    if mask.ndim == 0 or mask.shape[-1] != k:
        raise ValueError(
            f"mask must have shape (k,) or (..., k) with k={k} inputs, got {tuple(mask.shape)}"
        )
    lead = xs[0].shape[:-1]
    try:
        torch.broadcast_shapes(mask.shape[:-1], lead)
    except RuntimeError:
        raise ValueError(
            f"mask has leading shape {tuple(mask.shape[:-1])}, which does not broadcast against "
            f"the inputs' leading shape {tuple(lead)}"
        ) from None
    if mask.device != xs[0].device:
        raise ValueError(f"mask is on {mask.device} but the inputs are on {xs[0].device}")
    if not torch.compiler.is_compiling() and not bool(mask.any(-1).all()):
        raise ValueError("mask leaves no input present for some rows; at least one must be True")
    return mask


def _column(mask: Tensor, i: int) -> Tensor:
    """The presence flag of input ``i``, shaped to broadcast against ``(..., n)``."""
    return mask[..., i] if mask.ndim == 1 else mask[..., i, None]


def _count(mask: Tensor, dtype: torch.dtype) -> Tensor:
    c = mask.to(dtype).sum(-1)
    return c if mask.ndim == 1 else c[..., None]


def _finish(acc: Tensor, dtype: torch.dtype) -> Tensor:
    return acc if acc.dtype == dtype else acc.to(dtype)


def weighted_sum(
    xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None = None, renormalize: bool = True
) -> Tensor:
    r"""``Σᵢ wᵢ xᵢ`` accumulated in place with one fused multiply-add per input.

    With a mask the absent inputs are skipped and, if ``renormalize``, the result is scaled by
    ``Σᵢ wᵢ / Σ_{present} wᵢ`` so that the weights of the present inputs keep the full total
    (for softmax weights: a softmax over the present inputs).
    """
    dtype = xs[0].dtype
    acc_t = _acc_dtype(dtype)
    w = weights.to(acc_t)
    if mask is None:
        acc = torch.mul(xs[0], w[0]).to(acc_t)
        for i in range(1, len(xs)):
            acc.addcmul_(xs[i], w[i])
        return _finish(acc, dtype)
    acc = torch.zeros((), dtype=acc_t, device=xs[0].device)
    for i, x in enumerate(xs):
        acc = acc + torch.where(_column(mask, i), x * w[i], 0)
    if renormalize:
        present = torch.where(mask, w, 0).sum(-1)
        scale = w.sum() / present
        acc = acc * (scale if mask.ndim == 1 else scale[..., None])
    return _finish(acc, dtype)


def fused_sum(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """``Σᵢ xᵢ`` over the present inputs."""
    dtype = xs[0].dtype
    acc_t = _acc_dtype(dtype)
    if mask is None:
        acc = xs[0].to(acc_t, copy=True)
        for x in xs[1:]:
            acc.add_(x)
        return _finish(acc, dtype)
    acc = torch.zeros((), dtype=acc_t, device=xs[0].device)
    for i, x in enumerate(xs):
        acc = acc + torch.where(_column(mask, i), x, 0)
    return _finish(acc, dtype)


def fused_mean(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """Mean over the present inputs (renormalized by their count)."""
    dtype = xs[0].dtype
    total = fused_sum(xs, mask) if dtype == _acc_dtype(dtype) else _sum_acc(xs, mask)
    if mask is None:
        return _finish(total.div_(len(xs)), dtype)
    return _finish(total / _count(mask, total.dtype), dtype)


def _sum_acc(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    acc_t = _acc_dtype(xs[0].dtype)
    acc = torch.zeros((), dtype=acc_t, device=xs[0].device)
    for i, x in enumerate(xs):
        acc = acc + (x if mask is None else torch.where(_column(mask, i), x, 0))
    return acc


def fused_prod(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """``Πᵢ xᵢ`` over the present inputs, accumulated in at least float32."""
    dtype = xs[0].dtype
    acc_t = _acc_dtype(dtype)
    acc = xs[0].to(acc_t, copy=True) if mask is None else torch.where(_column(mask, 0), xs[0], 1).to(acc_t)
    for i in range(1, len(xs)):
        x = xs[i] if mask is None else torch.where(_column(mask, i), xs[i], 1)
        acc = acc * x
    return _finish(acc, dtype)


def _extreme(xs: Sequence[Tensor], mask: Tensor | None, pick_max: bool) -> Tensor:
    op = torch.maximum if pick_max else torch.minimum
    if mask is None:
        acc = xs[0]
        for x in xs[1:]:
            acc = op(acc, x)
        return acc.clone() if len(xs) == 1 else acc
    fill = -math.inf if pick_max else math.inf
    acc = torch.where(_column(mask, 0), xs[0], fill)
    for i in range(1, len(xs)):
        acc = op(acc, torch.where(_column(mask, i), xs[i], fill))
    return acc


def fused_max(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """Element-wise maximum over the present inputs."""
    return _extreme(xs, mask, pick_max=True)


def fused_min(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """Element-wise minimum over the present inputs."""
    return _extreme(xs, mask, pick_max=False)


def fused_median(xs: Sequence[Tensor], mask: Tensor | None = None, mode: str = "lower") -> Tensor:
    """Element-wise median over the present inputs.

    ``mode='lower'`` returns the lower of the two middle values when the count is even (as
    :func:`torch.median` and tinyBIG do); ``mode='mean'`` returns their mean.
    """
    if mode not in ("lower", "mean"):
        raise ValueError(f"mode must be 'lower' or 'mean', got {mode!r}")
    stacked = torch.stack(list(xs), dim=-1)  # (..., n, k): selection needs all k values
    k = len(xs)
    if mask is None:
        if mode == "lower":
            return stacked.median(dim=-1).values
        ordered = stacked.sort(dim=-1).values
        return (ordered[..., (k - 1) // 2] + ordered[..., k // 2]) / 2
    m = mask[..., None, :]
    ordered = torch.where(m, stacked, math.inf).sort(dim=-1).values
    count = m.sum(-1, keepdim=True).expand(*ordered.shape[:-1], 1)
    lo = ordered.gather(-1, (count - 1) // 2).squeeze(-1)
    if mode == "lower":
        return lo
    hi = ordered.gather(-1, count // 2).squeeze(-1)
    return (lo + hi) / 2


class _NormFn(torch.autograd.Function):
    """``(Σᵢ |xᵢ|^p)^(1/p)`` with a backward that gives 0 (not nan) where the norm is 0."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, p: float, *xs: Tensor) -> Tensor:  # type: ignore[override]
        dtype = xs[0].dtype
        acc_t = _acc_dtype(dtype)
        if math.isinf(p):
            acc = xs[0].abs().to(acc_t)
            for x in xs[1:]:
                acc = torch.maximum(acc, x.abs().to(acc_t))
        else:
            acc = xs[0].abs().to(acc_t).pow_(p)
            for x in xs[1:]:
                acc.add_(x.abs().pow(p))
            acc = acc.pow_(1.0 / p)
        out = _finish(acc, dtype)
        ctx.save_for_backward(out, *xs)
        ctx.p = p  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        out, *xs = ctx.saved_tensors  # type: ignore[attr-defined]
        p: float = ctx.p  # type: ignore[attr-defined]
        zero = out == 0
        grads: list[Tensor | None] = []
        if math.isinf(p):
            taken = torch.zeros_like(zero)
            for x in xs:
                hit = (x.abs() == out) & ~taken & ~zero
                taken = taken | hit
                grads.append(torch.where(hit, grad * x.sign(), 0))
        else:
            safe = torch.where(zero, 1, out)
            scale = torch.where(zero, 0, grad / safe.pow(p - 1))
            for x in xs:
                grads.append(scale * x.sign() * x.abs().pow(p - 1))
        return (None, *grads)


def fused_norm(xs: Sequence[Tensor], p: float = 2.0, mask: Tensor | None = None) -> Tensor:
    """Element-wise ``p``-norm ``(Σᵢ |xᵢ|^p)^(1/p)`` over the present inputs (``p ≥ 1`` or inf)."""
    if mask is not None:
        xs = [torch.where(_column(mask, i), x, 0) for i, x in enumerate(xs)]
    out: Tensor = _NormFn.apply(float(p), *xs)
    return out
