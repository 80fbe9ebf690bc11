r"""Element-wise fusion kernels over a list of ``k`` equally shaped tensors.

None of these stacks its inputs into a ``(k, ...)`` copy: each accumulates into one
output-sized buffer, reading every input once (median is the exception: selecting the
middle value needs all ``k`` values at once, so it sorts a stacked copy).

``mask`` marks the inputs that are present: a bool tensor of shape ``(k,)`` (one flag per
input) or ``(..., k)`` (per row; its leading dims broadcast against the inputs' leading dims).
Absent inputs are skipped, never multiplied by zero, so a ``nan`` placeholder stays harmless.
Low-precision inputs (float16, bfloat16) accumulate in float32.

How the kernels reach the memory-bandwidth floor
-------------------------------------------------
Reading ``k`` inputs and writing one output is the least any fusion can do. A running
accumulation ``acc += xᵢ`` over whole tensors also reads and writes ``acc`` ``k`` times; on
the CPU the kernels therefore walk the output in blocks of :data:`BLOCK_BYTES` and fold all
``k`` inputs into one block before moving on, so the accumulator stays in cache and memory
sees (nearly) only the ``k`` reads and one write. Each block is a handful of large vectorized
ATen calls, so the Python loop costs microseconds per block. On other devices the whole
tensor is one block (their caches are too small for blocking to pay; launch count matters).

Training uses :class:`torch.autograd.Function`\ s whose forward saves only the inputs and the
output (no intermediate accumulators) and whose backward is blocked the same way: a sum hands
the same gradient to every input, a weighted sum computes ``wᵢ·g`` and ``⟨g, xᵢ⟩`` in one
pass, max/min route ``g`` to the first input that attains the extreme (as ``torch.max(dim)``
does), a product uses prefix and suffix products (exact with zeros, no division). With
``create_graph=True`` the backward falls back to differentiable reference formulas, so higher
derivatives work. Inputs that are not plain, contiguous, equally shaped tensors of one dtype,
and code traced by :func:`torch.compile`, take the reference formulas (which the compiler fuses
into one loop anyway).

Per-row masks are applied with float arithmetic (``x·m``: several times faster than
``torch.where`` over bool masks on the CPU); any block whose result is not finite (a ``nan``
or ``inf`` placeholder leaking, or a float32 overflow) is recomputed exactly with
``torch.where`` (and in float64 where that helps), so the semantics above hold.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from interfuse.functional._common import (
    SMALL_BYTES,
    _acc_dtype,
    _along_stack,
    _check_xs,
    _column,
    _count,
    _finish,
    _overflow_safe,
    _plain,
    _under_transform,
    _wide_dtype,
    check_mask,
)

__all__ = [
    "BLOCK_BYTES",
    "SMALL_BYTES",
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

#: Bytes of accumulator per cache block on the CPU (4 MiB: measured best on a 2-core EPYC with
#: 1 MiB L2 per core and a 32 MiB L3; 1-8 MiB are within noise of each other, 256 KiB and less
#: lose to the Python loop, see ``docs/benchmarks.md``).
BLOCK_BYTES = 4 * 1024 * 1024
#: The product's backward uses blocks this many times smaller than k-fold (see _prod_backward).
_PROD_BLOCKS = 2


# =============================================================================================
# Reference formulas: differentiable, any shapes/dtypes, what torch.compile traces. The blocked
# kernels below must agree with them (tests/functional compare the two).
# =============================================================================================
def _weighted_sum_ref(
    xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None, renormalize: bool
) -> Tensor:
    dtype = xs[0].dtype
    acc_t = _acc_dtype(dtype)
    w = weights.to(acc_t)
    per_row = w.ndim > 1

    def weight(i: int) -> Tensor:
        return w[..., i, None] if per_row else w[i]

    if mask is None:
        # .to(acc_t) first: a 0-d float32 weight does not promote a float16 tensor.
        acc = torch.mul(xs[0].to(acc_t), weight(0))
        for i in range(1, len(xs)):
            acc = acc + xs[i].to(acc_t) * weight(i)
        return _finish(acc, dtype)
    acc = torch.zeros((), dtype=acc_t, device=xs[0].device)
    for i, x in enumerate(xs):
        # where() before the product: an absent nan/inf placeholder never meets a weight, so
        # neither the value nor the weight's gradient can turn nan.
        acc = acc + torch.where(_column(mask, i), x.to(acc_t), 0) * weight(i)
    if renormalize:
        present = torch.where(mask, w, 0).sum(-1)
        scale = w.sum(-1) / present
        acc = acc * (scale if scale.ndim == 0 else scale[..., None])
    return _finish(acc, dtype)


def _sum_acc(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    acc_t = _acc_dtype(xs[0].dtype)
    acc = torch.zeros((), dtype=acc_t, device=xs[0].device)
    for i, x in enumerate(xs):
        x = x.to(acc_t)  # a 0-d float32 accumulator does not promote a float16 tensor
        acc = acc + (x if mask is None else torch.where(_column(mask, i), x, 0))
    return acc


def _sum_ref(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    return _finish(_sum_acc(xs, mask), xs[0].dtype)


def _mean_ref(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    total = _sum_acc(xs, mask)
    if mask is None:
        return _finish(total / len(xs), xs[0].dtype)
    return _finish(total / _count(mask, total.dtype), xs[0].dtype)


def _prod_chain(xs: Sequence[Tensor], mask: Tensor | None, acc_t: torch.dtype) -> Tensor:
    acc = xs[0].to(acc_t) if mask is None else torch.where(_column(mask, 0), xs[0], 1).to(acc_t)
    for i in range(1, len(xs)):
        x = xs[i] if mask is None else torch.where(_column(mask, i), xs[i], 1)
        acc = acc * x.to(acc_t)
    return acc


def _prod_ref(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    dtype = xs[0].dtype
    acc = _overflow_safe(lambda t: _prod_chain(xs, mask, t), _acc_dtype(dtype), xs[0].device)
    return _finish(acc, dtype)


def _extreme_ref(xs: Sequence[Tensor], mask: Tensor | None, pick_max: bool) -> Tensor:
    # A strict comparison keeps the first of tied inputs, so the gradient goes to it as in the
    # blocked kernels (torch.maximum would split it); nan wins, as there.
    def pick(acc: Tensor, x: Tensor) -> Tensor:
        wins = (x > acc) if pick_max else (x < acc)
        return torch.where(wins | x.isnan(), x, acc)

    if mask is None:
        acc = xs[0]
        for x in xs[1:]:
            acc = pick(acc, x)
        return acc.clone() if len(xs) == 1 else acc
    fill = -math.inf if pick_max else math.inf
    acc = torch.where(_column(mask, 0), xs[0], fill)
    for i in range(1, len(xs)):
        acc = pick(acc, torch.where(_column(mask, i), xs[i], fill))
    return acc


def _pow_sum(xs: Sequence[Tensor], p: float, acc_t: torch.dtype) -> Tensor:
    acc = xs[0].abs().to(acc_t).pow(p)
    for x in xs[1:]:
        acc = acc + x.abs().to(acc_t).pow(p)
    return acc


class _NormRefFn(torch.autograd.Function):
    """``(Σᵢ |xᵢ|^p)^(1/p)`` with a backward that gives 0 (not nan) where the norm is 0."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, *args: Any) -> Tensor:
        # p comes last: dynamo mis-binds a leading non-tensor followed by *varargs.
        xs: tuple[Tensor, ...] = args[:-1]
        p: float = args[-1]
        dtype = xs[0].dtype
        acc_t = _acc_dtype(dtype)
        if math.isinf(p):
            acc = xs[0].abs().to(acc_t)
            for x in xs[1:]:
                acc = torch.maximum(acc, x.abs().to(acc_t))
        else:
            acc = _overflow_safe(lambda t: _pow_sum(xs, p, t), acc_t, xs[0].device)
            acc = acc.pow(1.0 / p)
        out = _finish(acc, dtype)
        ctx.save_for_backward(out, *xs)
        ctx.p = p  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor | None, ...]:
        out, *xs = ctx.saved_tensors  # type: ignore[attr-defined]
        p: float = ctx.p  # type: ignore[attr-defined]
        return (*_norm_grads_ref(xs, out, grad, p), None)


def _norm_grads_ref(xs: Sequence[Tensor], out: Tensor, grad: Tensor, p: float) -> list[Tensor]:
    zero = out == 0
    grads: list[Tensor] = []
    if math.isinf(p):
        taken = torch.zeros_like(zero)
        for x in xs:
            hit = (x.abs() == out) & ~taken & ~zero
            taken = taken | hit
            grads.append(torch.where(hit, grad * x.sign(), 0))
    else:
        # ∂out/∂xᵢ = sign(xᵢ)·(|xᵢ|/out)^(p-1): the ratio is at most 1, so nothing overflows.
        safe = torch.where(zero, 1, out)
        scale = torch.where(zero, 0, grad)
        for x in xs:
            grads.append(scale * x.sign() * (x.abs() / safe).pow(p - 1))
    return grads


def _norm_ref(xs: Sequence[Tensor], p: float, mask: Tensor | None) -> Tensor:
    if mask is not None:
        xs = [torch.where(_column(mask, i), x, 0) for i, x in enumerate(xs)]
    if _under_transform(xs):
        # Autograd's own norm (forward-mode and batching rules included), on the stack.
        stacked = torch.stack(list(xs))
        norm = torch.linalg.vector_norm(stacked, ord=p, dim=0, dtype=_acc_dtype(stacked.dtype))
        return _finish(norm, stacked.dtype)
    out: Tensor = _NormRefFn.apply(*xs, float(p))
    return out


# =============================================================================================
# Blocked kernels
# =============================================================================================
@dataclass
class _Plan:
    """How to walk ``k`` equally shaped contiguous inputs in cache-sized blocks.

    Every input is viewed flat, or as ``(units, unit)`` rows (``by_row``) when there is a
    per-row mask (``rows``, ``(units, k)``) or per-row weights; ``unit`` is the last dim.
    ``present`` lists the inputs taking part (a ``(k,)`` mask selects them up front).
    """

    k: int
    shape: torch.Size
    dtype: torch.dtype
    acc_t: torch.dtype
    device: torch.device
    present: list[int]
    rows: Tensor | None
    unit: int
    units: int
    per_block: int
    by_row: bool

    def view(self, t: Tensor) -> Tensor:
        # Flat without per-row data; (units, unit) with it, even for width 1, where the
        # (units, k) mask or weight columns must broadcast over (units, 1) rows.
        return t.view(self.units, self.unit) if self.by_row else t.view(-1)

    def blocks(self, per_block: int | None = None) -> Iterator[tuple[int, int]]:
        per = per_block or self.per_block
        for start in range(0, self.units, per):
            yield start, min(start + per, self.units)

    def scratch(self, dtype: torch.dtype, per_block: int | None = None) -> Tensor:
        n = min(per_block or self.per_block, self.units)
        shape = (n, self.unit) if self.by_row else (n,)
        return torch.empty(shape, dtype=dtype, device=self.device)

    def rowf(self, dtype: torch.dtype) -> Tensor:
        """The per-row mask as ``(units, k)`` floats (1 present, 0 absent)."""
        if self.rows is None:  # pragma: no cover - callers check
            raise ValueError("no per-row mask")
        return self.rows.to(dtype)


def _plan(xs: Sequence[Tensor], mask: Tensor | None, by_row: bool = False) -> _Plan | None:
    """A blocked plan for ``xs`` (viewed as rows with ``by_row`` or a per-row mask), or
    ``None`` where the reference formulas must run."""
    if len(xs) == 0 or torch.compiler.is_compiling() or _under_transform(xs):
        return None
    x0 = xs[0]
    if not isinstance(x0, Tensor) or torch.overrides.has_torch_function(tuple(xs)):
        return None
    if x0.ndim == 0 or not x0.is_floating_point() or x0.numel() == 0:
        return None
    if x0.device.type == "meta":  # no values: the finiteness checks cannot run
        return None
    for x in xs:
        if (
            not isinstance(x, Tensor)
            or x.shape != x0.shape
            or x.dtype != x0.dtype
            or x.device != x0.device
            or not x.is_contiguous()
        ):
            return None
    k = len(xs)
    present = list(range(k))
    rows: Tensor | None = None
    if mask is not None:
        if (
            not isinstance(mask, Tensor)
            or mask.dtype != torch.bool
            or mask.ndim == 0
            or mask.shape[-1] != k
            or mask.device != x0.device
            or torch.overrides.has_torch_function((mask,))
        ):
            return None
        if mask.ndim == 1:
            present = [i for i, flag in enumerate(mask.tolist()) if flag]
            if not present:
                return None  # nothing present: leave the degenerate case to the reference
        else:
            lead = x0.shape[:-1]
            try:
                full = mask.expand(*lead, k)
            except RuntimeError:
                return None
            if bool(full.all()):
                mask = None
            else:
                rows = full.reshape(-1, k)
    acc_t = _acc_dtype(x0.dtype)
    itemsize = torch.empty((), dtype=acc_t).element_size()
    block = max(1, BLOCK_BYTES // itemsize) if x0.device.type == "cpu" else x0.numel()
    by_row = by_row or rows is not None
    if not by_row:
        unit, units = 1, x0.numel()
    else:
        unit = x0.shape[-1] if x0.shape[-1] > 0 else 1
        units = x0.numel() // unit
    per_block = max(1, block // unit)
    return _Plan(
        k, x0.shape, x0.dtype, acc_t, x0.device, present, rows, unit, units, per_block, by_row
    )


def _needs_autograd(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _differentiable_grads(
    reference: Callable[..., Tensor], tensors: Sequence[Tensor], needs: Sequence[bool], grad: Tensor
) -> list[Tensor | None]:
    """Gradients of ``reference(*tensors)`` that can be differentiated again (create_graph)."""
    targets = [t for t, n in zip(tensors, needs) if n]
    with torch.enable_grad():
        out = reference(*tensors)
        found = torch.autograd.grad(out, targets, grad, create_graph=True, allow_unused=True)
    it = iter(found)
    return [next(it) if n else None for n in needs]


class _Checks:
    """One check value per block (a sum: finite iff the block is), then one host sync."""

    def __init__(self, plan: _Plan, per_block: int | None = None) -> None:
        per = per_block or plan.per_block
        self.values = torch.empty(-(-plan.units // per), dtype=plan.acc_t, device=plan.device)
        self.n = 0

    def add(self, block: Tensor) -> None:
        torch.sum(block.reshape(-1), 0, dtype=self.values.dtype, out=self.values[self.n])
        self.n += 1

    def failed(self) -> list[int]:
        ok = torch.isfinite(self.values[: self.n]).tolist()
        return [i for i, good in enumerate(ok) if not good]


def _grad_contiguous(grad: Tensor, plan: _Plan) -> Tensor:
    g = grad if grad.is_contiguous() else grad.contiguous()
    return plan.view(g)


# --- linear family: sum, mean, weighted sum -------------------------------------------------
_SUM, _MEAN, _WEIGHTED = "sum", "mean", "weighted"


def _linear_forward(
    plan: _Plan, kind: str, w: Tensor | None, renormalize: bool, xs: Sequence[Tensor]
) -> Tensor:
    out = torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
    ov = plan.view(out)
    xv = [plan.view(x) for x in xs]
    acc_t = plan.acc_t
    same = acc_t == plan.dtype
    scratch = None if same else plan.scratch(acc_t)
    present = plan.present
    if not plan.by_row:
        scale: Tensor | None = None
        if kind == _WEIGHTED and w is not None and renormalize and len(present) < plan.k:
            scale = w.sum() / w[present].sum()
        for a, b in plan.blocks():
            acc = ov[a:b] if scratch is None else scratch[: b - a]
            first = present[0]
            if kind == _WEIGHTED and w is not None:
                if same:
                    torch.mul(xv[first][a:b], w[first], out=acc)
                else:
                    acc.copy_(xv[first][a:b]).mul_(w[first])
                for i in present[1:]:
                    acc.addcmul_(xv[i][a:b], w[i])
                if scale is not None:
                    acc.mul_(scale)
            else:
                rest = present[1:]
                if same and rest:
                    torch.add(xv[first][a:b], xv[rest[0]][a:b], out=acc)
                    rest = rest[1:]
                else:
                    acc.copy_(xv[first][a:b])
                for i in rest:
                    acc.add_(xv[i][a:b])
                if kind == _MEAN:
                    acc.div_(len(present))
            if scratch is not None:
                ov[a:b].copy_(acc)
        return out
    # Per-row mask or weights: coefficients c[r, i] = mᵣᵢ·wᵣᵢ, then a per-row scale (mean,
    # renormalize).
    m = _presence(plan, acc_t)
    coef = m * w if kind == _WEIGHTED and w is not None else m
    coef = coef.expand(plan.units, plan.k)
    row_scale = _row_scale(plan, kind, w, renormalize, m)
    order = _order(plan)
    flags = _Checks(plan) if plan.rows is not None else None
    spans = list(plan.blocks())
    for a, b in spans:
        acc = ov[a:b] if scratch is None else scratch[: b - a]
        first = order[0]
        if same:
            torch.mul(xv[first][a:b], coef[a:b, first : first + 1], out=acc)
        else:
            acc.copy_(xv[first][a:b]).mul_(coef[a:b, first : first + 1])
        for i in order[1:]:
            acc.addcmul_(xv[i][a:b], coef[a:b, i : i + 1])
        if row_scale is not None:
            acc.mul_(row_scale[a:b])
        if flags is not None:
            flags.add(acc)
        if scratch is not None:
            ov[a:b].copy_(acc)
    rows = plan.rows
    failed = flags.failed() if flags is not None else []
    for j in failed:
        if rows is None:  # pragma: no cover - flags exist only with a per-row mask
            break
        a, b = spans[j]
        exact = [x[a:b] for x in xv]
        if kind == _WEIGHTED and w is not None:
            ref = _weighted_sum_ref(exact, w if w.ndim == 1 else w[a:b], rows[a:b], renormalize)
        else:
            ref = (_mean_ref if kind == _MEAN else _sum_ref)(exact, rows[a:b])
        ov[a:b].copy_(ref)
    return out


def _order(plan: _Plan) -> list[int]:
    """The inputs a blocked loop visits: the present ones, or all with a per-row mask."""
    return plan.present if plan.rows is None else list(range(plan.k))


def _presence(plan: _Plan, dtype: torch.dtype) -> Tensor:
    """Presence as floats (1 present, 0 absent): ``(units, k)`` with a per-row mask, else
    ``(k,)``."""
    if plan.rows is not None:
        return plan.rows.to(dtype)
    m = torch.zeros(plan.k, dtype=dtype, device=plan.device)
    m[plan.present] = 1
    return m


def _row_scale(
    plan: _Plan, kind: str, w: Tensor | None, renormalize: bool, m: Tensor
) -> Tensor | None:
    """Per-row factor ``(units, 1)`` (or ``(1,)``) applied after the masked accumulation, or
    ``None``; ``w`` is ``(k,)`` or ``(units, k)``, ``m`` :func:`_presence`."""
    masked = plan.rows is not None or len(plan.present) < plan.k
    if kind == _MEAN:
        return 1 / m.sum(-1, keepdim=True)
    if kind == _WEIGHTED and w is not None and renormalize and masked:
        return w.sum(-1, keepdim=True) / (m * w).sum(-1, keepdim=True)
    return None


class _LinearFn(torch.autograd.Function):
    """``Σᵢ cᵢ xᵢ`` (sum, mean, weighted sum) with a blocked, allocation-light backward."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        plan: _Plan,
        kind: str,
        renormalize: bool,
        w: Tensor | None,
        *xs: Tensor,
    ) -> Tensor:
        out = _linear_forward(plan, kind, _weight_rows(plan, w), renormalize, xs)
        ctx.plan, ctx.kind, ctx.renormalize = plan, kind, renormalize  # type: ignore[attr-defined]
        if kind == _WEIGHTED and w is not None:  # sum/mean gradients do not need the inputs
            ctx.save_for_backward(w, *xs)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        plan: _Plan = ctx.plan
        kind: str = ctx.kind
        renormalize: bool = ctx.renormalize
        needs = ctx.needs_input_grad[3:]
        saved = ctx.saved_tensors
        w: Tensor | None = saved[0] if saved else None
        xs: tuple[Tensor, ...] = tuple(saved[1:])
        if torch.is_grad_enabled() and kind == _WEIGHTED and w is not None:
            mask = _mask_of(plan)
            found = _differentiable_grads(
                lambda wt, *ts: _weighted_sum_ref(ts, wt, mask, renormalize), (w, *xs), needs, grad
            )
            return (None, None, None, *found)
        gx, gw = _linear_backward(plan, kind, renormalize, _weight_rows(plan, w), xs, grad, needs)
        if gw is not None and w is not None and w.ndim > 1:
            gw = gw.view(*plan.shape[:-1], plan.k).sum_to_size(w.shape)
        return (None, None, None, gw, *_fill_absent(gx, plan, needs[1:]))


def _weight_rows(plan: _Plan, w: Tensor | None) -> Tensor | None:
    """Per-row weights ``(..., k)`` as ``(units, k)`` (a view where they are not broadcast);
    ``(k,)`` weights as they are."""
    if w is None or w.ndim == 1:
        return w
    return w.expand(*plan.shape[:-1], plan.k).reshape(plan.units, plan.k)


def _linear_backward(
    plan: _Plan,
    kind: str,
    renormalize: bool,
    w: Tensor | None,
    xs: Sequence[Tensor],
    grad: Tensor,
    needs: Sequence[bool],
) -> tuple[list[Tensor | None], Tensor | None]:
    k, acc_t = plan.k, plan.acc_t
    need_x = list(needs[1:])
    need_w = bool(needs[0]) and w is not None
    gx: list[Tensor | None] = [None] * k
    if not plan.by_row:
        present = plan.present
        scale: Tensor | None = None
        if kind == _WEIGHTED and w is not None and renormalize and len(present) < k:
            scale = w.sum() / w[present].sum()
        if kind != _WEIGHTED or w is None:
            shared = grad if kind == _SUM else grad / len(present)
            for i in present:
                if need_x[i]:
                    gx[i] = shared
            return gx, None
        # Weighted: gxᵢ = s·wᵢ·g and dᵢ = ⟨g, xᵢ⟩ in one blocked pass over g.
        g = _grad_contiguous(grad, plan)
        xv = [plan.view(x) for x in xs]
        coef = w if scale is None else w * scale
        bufs = {
            i: torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
            for i in present
            if need_x[i]
        }
        views = {i: plan.view(t) for i, t in bufs.items()}
        spans = list(plan.blocks())
        dots = torch.zeros(k, len(spans), dtype=acc_t, device=plan.device)
        low = acc_t != plan.dtype
        g32 = plan.scratch(acc_t) if low and need_w else None
        x32 = plan.scratch(acc_t) if low and need_w else None
        for j, (a, b) in enumerate(spans):
            gb = g[a:b]
            gb32 = g32[: b - a].copy_(gb) if g32 is not None else gb
            for i in present:
                if i in views:
                    torch.mul(gb, coef[i], out=views[i][a:b])
                if need_w:
                    xb = xv[i][a:b]
                    if x32 is not None:
                        xb = x32[: b - a].copy_(xb)
                    torch.dot(gb32, xb, out=dots[i, j])
        for i, t in bufs.items():
            gx[i] = t
        if not need_w:
            return gx, None
        d = dots.sum(1)
        if scale is None:
            return gx, d
        # y = s·u, u = Σ_P wᵢxᵢ, s = T/P: ∂/∂wᵢ = s·dᵢ·[i∈P] + ⟨g,u⟩·(1 − s·[i∈P])/P.
        m = torch.zeros(k, dtype=acc_t, device=plan.device)
        m[present] = 1
        total_p = w[present].sum()
        gu = (w * d * m).sum()
        return gx, scale * d * m + gu * (1 - scale * m) / total_p
    # Per-row mask or weights.
    m = _presence(plan, acc_t)
    row_scale = _row_scale(plan, kind, w, renormalize, m)
    coef = (m * w if kind == _WEIGHTED and w is not None else m).expand(plan.units, k)
    if row_scale is not None:
        coef = coef * row_scale
    order = _order(plan)
    if torch.is_grad_enabled():  # create_graph for sum/mean: plain, differentiable products
        lead = (*plan.shape[:-1], 1)
        for i in order:
            if need_x[i]:
                gx[i] = grad * coef[:, i].reshape(lead).to(plan.dtype)
        return gx, None
    g = _grad_contiguous(grad, plan)
    xv = [plan.view(x) for x in xs]
    bufs = {
        i: torch.empty(plan.shape, dtype=plan.dtype, device=plan.device) for i in order if need_x[i]
    }
    views = {i: plan.view(t) for i, t in bufs.items()}
    dot_rows = torch.zeros(k, plan.units, dtype=acc_t, device=plan.device)
    for a, b in plan.blocks():
        gb = g[a:b]
        gb32 = gb.to(acc_t)
        for i in order:
            if i in views:
                torch.mul(gb, coef[a:b, i : i + 1], out=views[i][a:b])
            if need_w:
                torch.linalg.vecdot(gb32, xv[i][a:b].to(acc_t), out=dot_rows[i, a:b])
    for i, t in bufs.items():
        gx[i] = t
    if not need_w or w is None:
        return gx, None
    # dᵣᵢ = ⟨gᵣ, xᵣᵢ⟩ over present entries only (absent ones may hold nan placeholders).
    rows = plan.rows
    d = dot_rows.t() if rows is None else torch.where(rows, dot_rows.t(), 0)
    if row_scale is None:
        gw = d
    else:
        # y = s·u, u = Σ_P wᵢxᵢ, s = T/P: ∂/∂wᵢ = s·dᵢ·[i∈P] + ⟨g,u⟩·(1 − s·[i∈P])/P, per row.
        s = row_scale  # (units, 1) = Tᵣ / Pᵣ
        total_p = (m * w).sum(-1, keepdim=True)  # Pᵣ
        gu = (d * m * w).sum(-1, keepdim=True)  # ⟨gᵣ, uᵣ⟩
        gw = s * d * m + gu * (1 - s * m) / total_p
    return gx, gw.expand(plan.units, k) if w.ndim > 1 else gw.reshape(-1, k).sum(0)


# --- max / min -----------------------------------------------------------------------------
def _extreme_forward(plan: _Plan, xs: Sequence[Tensor], pick_max: bool) -> Tensor:
    op = torch.maximum if pick_max else torch.minimum
    out = torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
    ov = plan.view(out)
    xv = [plan.view(x) for x in xs]
    if plan.rows is None:
        present = plan.present
        for a, b in plan.blocks():
            o = ov[a:b]
            if len(present) == 1:
                o.copy_(xv[present[0]][a:b])
                continue
            op(xv[present[0]][a:b], xv[present[1]][a:b], out=o)
            for i in present[2:]:
                op(o, xv[i][a:b], out=o)
        return out
    # Absent entries get ∓inf added (float arithmetic); a non-finite block is redone exactly.
    fill = -math.inf if pick_max else math.inf
    bias = torch.zeros(plan.rows.shape, dtype=plan.dtype, device=plan.device).masked_fill_(
        ~plan.rows, fill
    )
    tmp = plan.scratch(plan.dtype)
    flags = _Checks(plan)
    spans = list(plan.blocks())
    for a, b in spans:
        o = ov[a:b]
        torch.add(xv[0][a:b], bias[a:b, 0:1], out=o)
        for i in range(1, plan.k):
            t = torch.add(xv[i][a:b], bias[a:b, i : i + 1], out=tmp[: b - a])
            op(o, t, out=o)
        flags.add(o)
    for j in flags.failed():
        a, b = spans[j]
        ov[a:b].copy_(_extreme_ref([x[a:b] for x in xv], plan.rows[a:b], pick_max))
    return out


class _ExtremeFn(torch.autograd.Function):
    """Element-wise max/min; the gradient goes to the first input attaining the extreme."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, plan: _Plan, pick_max: bool, *xs: Tensor
    ) -> Tensor:
        out = _extreme_forward(plan, xs, pick_max)
        ctx.plan, ctx.pick_max = plan, pick_max  # type: ignore[attr-defined]
        ctx.save_for_backward(out, *xs)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        plan: _Plan = ctx.plan
        out, *xs = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        if torch.is_grad_enabled():
            mask = _mask_of(plan)
            found = _differentiable_grads(
                lambda *ts: _extreme_ref(ts, mask, ctx.pick_max), xs, needs, grad
            )
            return (None, None, *found)
        return (
            None,
            None,
            *_fill_absent(_first_hit_grads(plan, xs, out, grad, needs), plan, needs),
        )


def _fill_absent(
    grads: Sequence[Tensor | None], plan: _Plan, needs: Sequence[bool]
) -> list[Tensor | None]:
    """Zeros, not ``None``, for the inputs a ``(k,)`` mask left out and that need a gradient.

    The blocked kernels never touch absent inputs, but the reference formulas (under
    ``torch.compile``, for instance) give them zeros, as ``torch.stack`` code does; optimizers
    treat the two differently (``None``: no step; zeros: momentum and weight decay still act),
    so eager and compiled training would part ways.
    """
    return [
        torch.zeros(plan.shape, dtype=plan.dtype, device=plan.device) if g is None and n else g
        for g, n in zip(grads, needs, strict=True)
    ]


def _mask_of(plan: _Plan) -> Tensor | None:
    if plan.rows is not None:
        return plan.rows.view(*plan.shape[:-1], plan.k)
    if len(plan.present) < plan.k:
        mask = torch.zeros(plan.k, dtype=torch.bool, device=plan.device)
        mask[plan.present] = True
        return mask
    return None


def _first_hit_grads(
    plan: _Plan, xs: Sequence[Tensor], out: Tensor, grad: Tensor, needs: Sequence[bool]
) -> list[Tensor | None]:
    """Route ``grad`` to the first present input equal to ``out``.

    ``rest`` holds the gradient not yet routed (``g`` at first): ``gᵢ = [xᵢ = out]·rest`` and
    ``rest -= gᵢ``, three passes per input with float 0/1 masks (bool ops are several times
    slower on the CPU). Inputs that need no gradient still update ``rest`` (in scratch).
    """
    k = plan.k
    g = _grad_contiguous(grad, plan)
    ov = plan.view(out)
    xv = [plan.view(x) for x in xs]
    order = plan.present if plan.rows is None else list(range(k))
    rows_f = plan.rowf(plan.dtype) if plan.rows is not None else None
    bufs = {
        i: torch.empty(plan.shape, dtype=plan.dtype, device=plan.device) for i in order if needs[i]
    }
    views = {i: plan.view(t) for i, t in bufs.items()}
    rest = plan.scratch(plan.dtype)
    spare = plan.scratch(plan.dtype)
    for a, b in plan.blocks():
        n = b - a
        ob, gb = ov[a:b], g[a:b]
        for pos, i in enumerate(order):
            last = pos == len(order) - 1
            if last and i not in views:
                break
            dst = views[i][a:b] if i in views else spare[:n]
            torch.eq(xv[i][a:b], ob, out=dst)
            if rows_f is not None:
                dst.mul_(rows_f[a:b, i : i + 1])
            dst.mul_(gb if pos == 0 else rest[:n])
            if not last:
                if pos == 0:
                    torch.sub(gb, dst, out=rest[:n])
                else:
                    rest[:n].sub_(dst)
    return [bufs.get(i) for i in range(k)]


# --- product --------------------------------------------------------------------------------
def _prod_block(xb: Sequence[Tensor], present: Sequence[int], acc: Tensor, same: bool) -> Tensor:
    first = present[0]
    rest = list(present[1:])
    if same and rest:
        torch.mul(xb[first], xb[rest[0]], out=acc)
        rest = rest[1:]
    else:
        acc.copy_(xb[first])
    for i in rest:
        acc.mul_(xb[i])
    return acc


def _prod_forward(plan: _Plan, xs: Sequence[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
    """The product, and the unit ranges recomputed exactly (float64 and/or ``torch.where``)."""
    out = torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
    ov = plan.view(out)
    xv = [plan.view(x) for x in xs]
    acc_t = plan.acc_t
    same = acc_t == plan.dtype
    scratch = None if same else plan.scratch(acc_t)
    rows_f = plan.rowf(acc_t) if plan.rows is not None else None
    tmp = plan.scratch(acc_t) if plan.rows is not None else None
    flags = _Checks(plan)
    spans = list(plan.blocks())
    for a, b in spans:
        acc = ov[a:b] if scratch is None else scratch[: b - a]
        if rows_f is None or tmp is None:
            _prod_block([x[a:b] for x in xv], plan.present, acc, same)
        else:
            # acc ← where(m, acc·x, acc) as lerp(acc, acc·x, m): torch.lerp evaluates
            # end − (end − start)(1 − w) for w ≥ 0.5, so w ∈ {0, 1} selects exactly. A nan
            # placeholder still makes the block non-finite and it is redone exactly.
            acc.fill_(1)
            t = tmp[: b - a]
            for i in range(plan.k):
                acc.lerp_(torch.mul(acc, xv[i][a:b], out=t), rows_f[a:b, i : i + 1])
        flags.add(acc)
        if scratch is not None:
            ov[a:b].copy_(acc)
    bad = flags.failed()
    mask = _mask_of(plan)
    for j in bad:
        a, b = spans[j]
        block_mask = plan.rows[a:b] if plan.rows is not None else mask
        ov[a:b].copy_(_prod_ref([x[a:b] for x in xv], block_mask))
    return out, [spans[j] for j in bad]


class _ProdFn(torch.autograd.Function):
    """``Πᵢ xᵢ``; backward by prefix and suffix products (exact with zeros, no division)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, plan: _Plan, *xs: Tensor) -> Tensor:
        out, bad = _prod_forward(plan, xs)
        ctx.plan, ctx.bad = plan, bad  # type: ignore[attr-defined]
        ctx.save_for_backward(*xs)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        plan: _Plan = ctx.plan
        xs = ctx.saved_tensors
        needs = ctx.needs_input_grad[1:]
        mask = _mask_of(plan)
        if torch.is_grad_enabled():
            found = _differentiable_grads(lambda *ts: _prod_ref(ts, mask), xs, needs, grad)
            return (None, *found)
        return (None, *_fill_absent(_prod_backward(plan, xs, grad, needs, ctx.bad), plan, needs))


def _prod_backward(
    plan: _Plan,
    xs: Sequence[Tensor],
    grad: Tensor,
    needs: Sequence[bool],
    bad: Sequence[tuple[int, int]],
) -> list[Tensor | None]:
    k, acc_t = plan.k, plan.acc_t
    order = plan.present if plan.rows is None else list(range(k))
    g = _grad_contiguous(grad, plan)
    xv = [plan.view(x) for x in xs]
    bufs = {i: torch.empty(plan.shape, dtype=plan.dtype, device=plan.device) for i in order}
    views = {i: plan.view(t) for i, t in bufs.items()}
    low = acc_t != plan.dtype
    # The k prefix products of a block are read back by the suffix pass, so the block shrinks
    # k-fold to keep them in cache (and, in low precision, where they live in float32
    # scratch, to keep that scratch at one block's worth of memory).
    per = max(1, plan.per_block * _PROD_BLOCKS // len(order))
    pre = [plan.scratch(acc_t, per) for _ in order] if low else None
    run = plan.scratch(acc_t, per)
    can_widen = _wide_dtype(acc_t, plan.device) is not None
    for a, b in plan.blocks(per):
        n = b - a
        # Blocks whose forward overflowed float32 are differentiated in float64 too.
        wide = can_widen and any(a < hi and lo < b for lo, hi in bad)
        work_t = torch.float64 if wide else acc_t
        if plan.rows is not None:
            vals = _masked_values(plan, xv, a, b, one=1.0)
        else:
            vals = [xv[i][a:b] for i in order]
        if wide:
            vals = [v.to(work_t) for v in vals]
            prefix = [torch.empty(v.shape, dtype=work_t, device=plan.device) for v in vals]
            r = torch.empty(vals[0].shape, dtype=work_t, device=plan.device)
        else:
            prefix = [p[:n] for p in pre] if pre is not None else [views[i][a:b] for i in order]
            r = run[:n]
        # prefixⱼ = Π_{i<j} vᵢ, then run = g·Π_{i>j} vᵢ from the end: gradⱼ = prefixⱼ·run.
        prefix[0].fill_(1)
        for pos in range(1, len(order)):
            torch.mul(prefix[pos - 1], vals[pos - 1], out=prefix[pos])
        r.copy_(g[a:b])
        for pos in range(len(order) - 1, -1, -1):
            prefix[pos].mul_(r)
            if pos > 0:
                r.mul_(vals[pos])
        for pos, i in enumerate(order):
            dst = views[i][a:b]
            if prefix[pos].data_ptr() != dst.data_ptr():
                dst.copy_(prefix[pos])
            if plan.rows is not None:
                dst.mul_(plan.rows[a:b, i : i + 1].to(dst.dtype))
    return [bufs[i] if needs[i] and i in bufs else None for i in range(k)]


def _masked_values(plan: _Plan, xv: Sequence[Tensor], a: int, b: int, one: float) -> list[Tensor]:
    """``where(m, x, one)`` for every input over rows ``a:b``, computed as ``x·m + one·(1 − m)``
    (float ops: bool ``where`` is several times slower on the CPU) and redone exactly with
    ``torch.where`` for an input whose block comes out non-finite (a nan/inf placeholder)."""
    rows = plan.rows
    if rows is None:  # pragma: no cover - callers check
        raise ValueError("no per-row mask")
    m = rows[a:b].to(plan.dtype)
    out = []
    for i in range(plan.k):
        v = torch.mul(xv[i][a:b], m[:, i : i + 1])
        if one != 0.0:
            v.add_(1 - m[:, i : i + 1], alpha=one)
        if not bool(torch.isfinite(v.sum(dtype=plan.acc_t))):
            v = torch.where(rows[a:b, i : i + 1], xv[i][a:b], one)
        out.append(v)
    return out


# --- p-norms --------------------------------------------------------------------------------
def _norm_block(
    xb: Sequence[Tensor], order: Sequence[int], p: float, acc: Tensor, tmp: Tensor, same: bool
) -> None:
    """``acc = Σ |xᵢ|^p`` (``max |xᵢ|`` for p = inf) over ``order`` (no root taken)."""
    first = xb[order[0]]
    if p == 2.0:
        if same:
            torch.mul(first, first, out=acc)
        else:
            acc.zero_().addcmul_(first, first)
        for i in order[1:]:
            acc.addcmul_(xb[i], xb[i])
    elif p == 1.0 or math.isinf(p):
        torch.abs(first, out=acc) if same else acc.copy_(first).abs_()
        for i in order[1:]:
            t = torch.abs(xb[i], out=tmp)
            if math.isinf(p):
                torch.maximum(acc, t, out=acc)
            else:
                acc.add_(t)
    else:
        acc.copy_(first).abs_().pow_(p)
        for i in order[1:]:
            acc.add_(tmp.copy_(xb[i]).abs_().pow_(p))


def _norm_forward(plan: _Plan, xs: Sequence[Tensor], p: float) -> Tensor:
    out = torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
    ov = plan.view(out)
    xv = [plan.view(x) for x in xs]
    acc_t = plan.acc_t
    same = acc_t == plan.dtype
    scratch = None if same else plan.scratch(acc_t)
    tmp = plan.scratch(acc_t if p not in (1.0, 2.0) and not math.isinf(p) else plan.dtype)
    masked = plan.scratch(plan.dtype) if plan.rows is not None else None
    rows_f = plan.rowf(plan.dtype) if plan.rows is not None else None
    order = plan.present if plan.rows is None else list(range(plan.k))
    flags = _Checks(plan)
    spans = list(plan.blocks())
    for a, b in spans:
        n = b - a
        acc = ov[a:b] if scratch is None else scratch[:n]
        if rows_f is None or masked is None:
            _norm_block([x[a:b] for x in xv], order, p, acc, tmp[:n], same)
        else:
            # Absent entries are zeroed as x·m (a nan placeholder is caught by the check).
            acc.zero_()
            for i in order:
                xm = torch.mul(xv[i][a:b], rows_f[a:b, i : i + 1], out=masked[:n])
                _norm_accumulate(xm, p, acc, tmp[:n])
        flags.add(acc)
        if not math.isinf(p):
            if p == 2.0:
                acc.sqrt_()
            elif p != 1.0:
                acc.pow_(1.0 / p)
        if scratch is not None:
            ov[a:b].copy_(acc)
    mask = _mask_of(plan)
    for j in flags.failed():
        a, b = spans[j]
        block_mask = plan.rows[a:b] if plan.rows is not None else mask
        with torch.no_grad():
            ov[a:b].copy_(_norm_ref([x[a:b] for x in xv], p, block_mask))
    return out


def _norm_accumulate(x: Tensor, p: float, acc: Tensor, tmp: Tensor) -> None:
    if p == 2.0:
        acc.addcmul_(x, x)
    elif math.isinf(p):
        torch.maximum(acc, torch.abs(x, out=tmp) if tmp.dtype == x.dtype else x.abs(), out=acc)
    elif p == 1.0:
        acc.add_(torch.abs(x, out=tmp) if tmp.dtype == x.dtype else x.abs())
    else:
        acc.add_(tmp.copy_(x).abs_().pow_(p))


class _NormFn(torch.autograd.Function):
    """Blocked ``(Σᵢ |xᵢ|^p)^(1/p)``; gradient 0 (not nan) where the norm is 0."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, plan: _Plan, p: float, *xs: Tensor
    ) -> Tensor:
        out = _norm_forward(plan, xs, p)
        ctx.plan, ctx.p = plan, p  # type: ignore[attr-defined]
        ctx.save_for_backward(out, *xs)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        plan: _Plan = ctx.plan
        p: float = ctx.p
        out, *xs = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        mask = _mask_of(plan)
        if torch.is_grad_enabled() or p not in (1.0, 2.0):
            if torch.is_grad_enabled():
                found = _differentiable_grads(lambda *ts: _norm_ref(ts, p, mask), xs, needs, grad)
                return (None, None, *found)
            xs_m = (
                xs
                if mask is None
                else [torch.where(_column(mask, i), x, 0) for i, x in enumerate(xs)]
            )
            grads = _norm_grads_ref(xs_m, out, grad, p)
            if mask is not None:
                grads = [torch.where(_column(mask, i), gi, 0) for i, gi in enumerate(grads)]
            return (None, None, *[gi if n else None for gi, n in zip(grads, needs)])
        blocked = _norm_backward(plan, xs, out, grad, needs, p)
        return (None, None, *_fill_absent(blocked, plan, needs))


def _norm_backward(
    plan: _Plan, xs: Sequence[Tensor], out: Tensor, grad: Tensor, needs: Sequence[bool], p: float
) -> list[Tensor | None]:
    """p = 2: gᵢ = xᵢ·(g/out); p = 1: gᵢ = sign(xᵢ)·g; 0 where out = 0 (then every present
    xᵢ = 0) and for absent entries."""
    k, acc_t = plan.k, plan.acc_t
    g = _grad_contiguous(grad, plan)
    ov = plan.view(out)
    xv = [plan.view(x) for x in xs]
    order = plan.present if plan.rows is None else list(range(k))
    bufs = {
        i: torch.empty(plan.shape, dtype=plan.dtype, device=plan.device) for i in order if needs[i]
    }
    views = {i: plan.view(t) for i, t in bufs.items()}
    h = plan.scratch(acc_t) if p == 2.0 else plan.scratch(plan.dtype)
    rows_f = plan.rowf(plan.dtype) if plan.rows is not None else None
    for a, b in plan.blocks():
        n = b - a
        hb = h[:n]
        if p == 2.0:
            torch.div(g[a:b], ov[a:b], out=hb)
            if bool(ov[a:b].amin() == 0):  # out ≥ 0: a cheap test before the rare fix-up
                hb.masked_fill_(ov[a:b] == 0, 0)
        for i in order:
            if i not in views:
                continue
            dst = views[i][a:b]
            if p == 2.0:
                torch.mul(xv[i][a:b], hb, out=dst)
            else:
                torch.mul(torch.sign(xv[i][a:b], out=hb), g[a:b], out=dst)
            if rows_f is not None and plan.rows is not None:
                # Absent rows get 0 as x·m; a nan placeholder there is redone with where.
                dst.mul_(rows_f[a:b, i : i + 1])
                if not bool(torch.isfinite(dst.sum(dtype=acc_t))):
                    exact = torch.where(plan.rows[a:b, i : i + 1], xv[i][a:b], 0)
                    if p == 2.0:
                        dst.copy_(exact * hb)
                    else:
                        dst.copy_(exact.sign() * g[a:b])
    return [bufs.get(i) for i in range(k)]


# =============================================================================================
# Plain formulas: what runs for small inputs and under tracing/export. One stack and one
# reduction, as a user would write, with the same semantics as the kernels (absent inputs
# skipped with torch.where, ties to the first input, overflow-safe products and norms).
# =============================================================================================
def _stacked(xs: Sequence[Tensor], mask: Tensor | None, fill: float) -> Tensor:
    stacked = torch.stack(list(xs))
    if mask is None:
        return stacked
    return torch.where(_along_stack(mask, stacked.ndim), stacked, fill)


def _sum_plain(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    return _stacked(xs, mask, 0).sum(0)


def _mean_plain(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.stack(list(xs)).mean(0)
    total = _stacked(xs, mask, 0).sum(0, dtype=_acc_dtype(xs[0].dtype))
    return _finish(total / _count(mask, total.dtype), xs[0].dtype)


def _weighted_sum_plain(
    xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None, renormalize: bool
) -> Tensor:
    stacked = torch.stack(list(xs))
    dtype = stacked.dtype
    if mask is None and weights.ndim == 1 and weights.dtype == dtype == _acc_dtype(dtype):
        return (weights @ stacked.flatten(1)).view(stacked.shape[1:])  # one GEMV
    acc_t = _acc_dtype(dtype)
    w = weights.to(acc_t)
    if mask is not None:
        present = torch.where(mask, w, 0)
        if renormalize:
            present = present * (w.sum(-1, keepdim=True) / present.sum(-1, keepdim=True))
        w = present
        stacked = torch.where(_along_stack(mask, stacked.ndim), stacked, 0)
    return _finish((stacked.to(acc_t) * _along_stack(w, stacked.ndim)).sum(0), dtype)


def _extreme_plain(xs: Sequence[Tensor], mask: Tensor | None, pick_max: bool) -> Tensor:
    # max(dim)/min(dim) route the gradient to the first input attaining the extreme (amax
    # would split it between ties) and propagate nan.
    if pick_max:
        return _stacked(xs, mask, -math.inf).max(0).values
    return _stacked(xs, mask, math.inf).min(0).values


def _prod_plain(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    dtype = xs[0].dtype
    acc_t = _acc_dtype(dtype)
    wide = _wide_dtype(acc_t, xs[0].device) or acc_t  # k factors: float64 does not overflow
    return _finish(_stacked(xs, mask, 1).prod(0, dtype=wide), dtype)


def _norm_plain(xs: Sequence[Tensor], p: float, mask: Tensor | None) -> Tensor:
    stacked = _stacked(xs, mask, 0)
    if math.isinf(p):  # exact in any dtype; max(dim) sends the gradient to the first tie
        return stacked.abs().max(0).values
    dtype = stacked.dtype
    acc_t = _acc_dtype(dtype)
    # Σ|x|^p overflows float32 early; converting first keeps the backward in float64 too.
    wide = _wide_dtype(acc_t, stacked.device) or acc_t
    return _finish(torch.linalg.vector_norm(stacked.to(wide), p, 0), dtype)


# =============================================================================================
# Public kernels: check, then dispatch. Modules call the _fused_* entry points directly (they
# have checked the same things in Fusion.check_inputs).
# =============================================================================================
def weighted_sum(
    xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None = None, renormalize: bool = True
) -> Tensor:
    r"""Weighted sum :math:`y = \sum_{i \in P} w_i x_i` over the present inputs ``P``, in one pass.

    ``weights`` is ``(k,)`` (one weight per input) or ``(..., k)`` (one weight per input and
    row, e.g. attention scores; its leading dims broadcast to the inputs' leading dims), so
    per row :math:`y_r = \sum_{i \in P_r} w_{ri} x_{ri}`. Neither form stacks the inputs.

    With a mask and ``renormalize``, each row is scaled by
    :math:`\sum_j w_{rj} / \sum_{i \in P_r} w_{ri}` (the row's weights over all ``k`` inputs
    divided by those over its present inputs), so the present weights keep the row's full
    total: for weights that sum to one in every row (a softmax) the result is the softmax
    over the present inputs only. Weights whose present part sums to zero then give a
    non-finite result. Without a mask ``renormalize`` does nothing.

    Args:
        xs: the ``k`` inputs, all of one shape.
        weights: ``(k,)`` or ``(..., k)`` (differentiable).
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.
        renormalize: rescale for the absent inputs' weights (only with a mask).

    Returns:
        The weighted sum, of the inputs' shape and dtype.

    Raises:
        TypeError: ``weights`` is not a tensor.
        ValueError: ``weights`` does not end in ``k`` or its leading dims do not broadcast to
            the inputs' leading dims.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; weights: ``(k,)`` or ``(..., k)``; mask: ``(k,)`` or
          ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0]), torch.tensor([7.0, 7.0])]
        >>> w = torch.tensor([0.5, 0.25, 0.25])
        >>> weighted_sum(xs, w, mask=torch.tensor([True, True, False]))  # (0.5 x₁ + 0.25 x₂) / 0.75
        tensor([4., 8.])
        >>> weighted_sum(xs, w, mask=torch.tensor([True, True, False]), renormalize=False)
        tensor([3., 6.])
        >>> rows = [torch.tensor([[1.0], [2.0]]), torch.tensor([[10.0], [20.0]])]
        >>> weighted_sum(rows, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))  # one weight per row
        tensor([[ 1.],
                [11.]])
    """
    xs, mask = _check_xs("weighted_sum", xs, mask)
    _check_weights(weights, xs)
    return _weighted_sum(xs, weights, mask, renormalize)


def _weighted_sum(
    xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None, renormalize: bool
) -> Tensor:
    if _plain(xs):
        return _weighted_sum_plain(xs, weights, mask, renormalize)
    plan = _plan(xs, mask, by_row=weights.ndim > 1)
    if (
        plan is None
        or weights.device != plan.device
        or torch.overrides.has_torch_function((weights,))
        or _under_transform((weights,))
    ):
        return _weighted_sum_ref(xs, weights, mask, renormalize)
    w = weights.to(plan.acc_t)
    if _needs_autograd(w, *xs):
        out: Tensor = _LinearFn.apply(plan, _WEIGHTED, renormalize, w, *xs)
        return out
    return _linear_forward(plan, _WEIGHTED, _weight_rows(plan, w), renormalize, xs)


def _check_weights(weights: object, xs: Sequence[Tensor]) -> None:
    k = len(xs)
    if not isinstance(weights, Tensor):
        raise TypeError(
            f"weighted_sum: weights must be a torch.Tensor of shape ({k},) or (..., {k}), "
            f"got {type(weights).__name__}"
        )
    if weights.ndim == 0 or weights.shape[-1] != k:
        raise ValueError(
            f"weighted_sum: weights must have shape ({k},) or (..., {k}) for {k} inputs, "
            f"got {tuple(weights.shape)}"
        )
    if weights.ndim > 1:
        lead = xs[0].shape[:-1]
        try:
            fits = torch.broadcast_shapes(weights.shape[:-1], lead) == lead
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"weighted_sum: weights have leading shape {tuple(weights.shape[:-1])}, which "
                f"does not broadcast to the inputs' leading shape {tuple(lead)}"
            )


def fused_sum(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Element-wise sum :math:`y = \sum_{i \in P} x_i` of the present inputs ``P``.

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The sum, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([[1.0, -2.0], [3.0, 4.0]]), torch.tensor([[5.0, 6.0], [-7.0, 8.0]])]
        >>> fused_sum(xs, mask=torch.tensor([[True, False], [True, True]]))  # per-row mask
        tensor([[ 1., -2.],
                [-4., 12.]])
    """
    xs, mask = _check_xs("fused_sum", xs, mask)
    return _fused_sum(xs, mask)


def fused_mean(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Element-wise mean :math:`y = \frac{1}{|P|} \sum_{i \in P} x_i` of the present inputs ``P``.

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The mean, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> nan = float("nan")  # an absent input's placeholder does not leak
        >>> xs = [torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0]), torch.tensor([nan, nan])]
        >>> fused_mean(xs, mask=torch.tensor([True, True, False]))
        tensor([ 5.5000, 11.0000])
    """
    xs, mask = _check_xs("fused_mean", xs, mask)
    return _fused_mean(xs, mask)


def _fused_sum(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    return _unweighted(_SUM, xs, mask)


def _fused_mean(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    return _unweighted(_MEAN, xs, mask)


def _unweighted(kind: str, xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    """A weight-free linear fusion: plain formula, blocked kernel, or reference formula."""
    if _plain(xs):
        return (_sum_plain if kind == _SUM else _mean_plain)(xs, mask)
    plan = _plan(xs, mask)
    if plan is None:
        return (_sum_ref if kind == _SUM else _mean_ref)(xs, mask)
    if _needs_autograd(*xs):
        out: Tensor = _LinearFn.apply(plan, kind, False, None, *xs)
        return out
    return _linear_forward(plan, kind, None, False, xs)


def fused_prod(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Element-wise product :math:`y = \prod_{i \in P} x_i` of the present inputs ``P``.

    Accumulated in at least float32. A running product that overflows float32 where the
    float64 one does not (e.g. twenty inputs of 1e4 then twenty of 1e-4) is recomputed in
    float64, so the result is finite wherever the float64 product is. The gradient uses prefix
    and suffix products (exact with zeros, no division).

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The product, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> fused_prod([torch.tensor([2.0, 3.0]), torch.tensor([4.0, 0.5])])
        tensor([8.0000, 1.5000])
        >>> fused_prod([torch.full((2,), 1e30), torch.full((2,), 1e30), torch.full((2,), 1e-30)])
        tensor([1.0000e+30, 1.0000e+30])
    """
    xs, mask = _check_xs("fused_prod", xs, mask)
    return _fused_prod(xs, mask)


def _fused_prod(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    if _plain(xs):
        return _prod_plain(xs, mask)
    plan = _plan(xs, mask)
    if plan is None:
        return _prod_ref(xs, mask)
    if _needs_autograd(*xs):
        out: Tensor = _ProdFn.apply(plan, *xs)
        return out
    return _prod_forward(plan, xs)[0]


def _fused_extreme(xs: Sequence[Tensor], mask: Tensor | None, pick_max: bool) -> Tensor:
    if _plain(xs):
        return _extreme_plain(xs, mask, pick_max)
    plan = _plan(xs, mask)
    if plan is None:
        return _extreme_ref(xs, mask, pick_max)
    if _needs_autograd(*xs):
        out: Tensor = _ExtremeFn.apply(plan, pick_max, *xs)
        return out
    return _extreme_forward(plan, xs, pick_max)


def _fused_max(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    return _fused_extreme(xs, mask, pick_max=True)


def _fused_min(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    return _fused_extreme(xs, mask, pick_max=False)


def fused_max(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Element-wise maximum :math:`y = \max_{i \in P} x_i` of the present inputs ``P``.

    The gradient goes to the first input attaining the maximum (as ``torch.max(dim)`` does).

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The maximum, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([[1.0, -2.0], [3.0, 4.0]]), torch.tensor([[5.0, 6.0], [-7.0, 8.0]])]
        >>> fused_max(xs)
        tensor([[5., 6.],
                [3., 8.]])
        >>> fused_max(xs, mask=torch.tensor([[True, False], [True, True]]))
        tensor([[ 1., -2.],
                [ 3.,  8.]])
    """
    xs, mask = _check_xs("fused_max", xs, mask)
    return _fused_extreme(xs, mask, pick_max=True)


def fused_min(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Element-wise minimum :math:`y = \min_{i \in P} x_i` of the present inputs ``P``.

    The gradient goes to the first input attaining the minimum (as ``torch.min(dim)`` does).

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The minimum, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 9.0]), torch.tensor([4.0, 2.0]), torch.tensor([-5.0, -5.0])]
        >>> fused_min(xs, mask=torch.tensor([True, True, False]))
        tensor([1., 2.])
    """
    xs, mask = _check_xs("fused_min", xs, mask)
    return _fused_extreme(xs, mask, pick_max=False)


def fused_median(xs: Sequence[Tensor], mask: Tensor | None = None, mode: str = "lower") -> Tensor:
    """Element-wise median over the present inputs.

    The one kernel that stacks: selecting the middle value needs all ``k`` values at once, so
    it sorts a ``(..., n, k)`` copy.

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.
        mode: for an even count, ``'lower'`` takes the lower middle value (as
            :func:`torch.median` and tinyBIG do), ``'mean'`` the mean of the two.

    Returns:
        The median, of the inputs' shape and dtype.

    Raises:
        ValueError: ``mode`` is neither ``'lower'`` nor ``'mean'``.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([v]) for v in (1.0, 5.0, 3.0, 4.0)]
        >>> fused_median(xs), fused_median(xs, mode="mean")
        (tensor([3.]), tensor([3.5000]))
        >>> fused_median(xs, mask=torch.tensor([True, True, True, False]))
        tensor([3.])
    """
    if mode not in ("lower", "mean"):
        raise ValueError(f"mode must be 'lower' or 'mean', got {mode!r}")
    xs, mask = _check_xs("fused_median", xs, mask)
    return _fused_median(xs, mask, mode)


def _fused_median(xs: Sequence[Tensor], mask: Tensor | None, mode: str) -> Tensor:
    stacked = torch.stack(list(xs), dim=-1)  # (..., n, k): selection needs all k values
    k = len(xs)
    if mask is None:
        if mode == "lower":
            return stacked.median(dim=-1).values  # propagates nan itself
        ordered = stacked.sort(dim=-1).values
        return _nan_if_any(
            stacked, None, _midpoint(ordered[..., (k - 1) // 2], ordered[..., k // 2])
        )
    m = mask[..., None, :]
    ordered = torch.where(m, stacked, math.inf).sort(dim=-1).values
    count = m.sum(-1, keepdim=True).expand(*ordered.shape[:-1], 1)
    lo = ordered.gather(-1, (count - 1) // 2).squeeze(-1)
    if mode == "lower":
        return _nan_if_any(stacked, m, lo)
    hi = ordered.gather(-1, count // 2).squeeze(-1)
    return _nan_if_any(stacked, m, _midpoint(lo, hi))


def _midpoint(lo: Tensor, hi: Tensor) -> Tensor:
    """``(lo + hi) / 2`` without overflow: ``lo + hi`` of two large float16 values is inf where
    their mean is not (``lo/2 + hi/2`` would lose the last bit of subnormals instead)."""
    if not lo.is_floating_point():
        return (lo + hi) / 2
    return lo + (hi - lo) / 2 if lo.dtype in (torch.float16, torch.bfloat16) else (lo + hi) / 2


def _nan_if_any(stacked: Tensor, present: Tensor | None, out: Tensor) -> Tensor:
    """``nan`` where a present value is ``nan``, as :meth:`torch.Tensor.median` gives: sorting
    puts ``nan`` last, after the ``inf`` that stands in for absent inputs, or past the middle."""
    if not out.is_floating_point():
        return out
    bad = stacked.isnan()
    if present is not None:
        bad = bad & present
    return torch.where(bad.any(-1), torch.nan, out)


def fused_norm(xs: Sequence[Tensor], p: float = 2.0, mask: Tensor | None = None) -> Tensor:
    r"""Element-wise ``p``-norm :math:`y = (\sum_{i \in P} |x_i|^p)^{1/p}` over the present inputs.

    ``p = inf`` gives :math:`\max_{i \in P} |x_i|`. Accumulated in at least float32 (float64
    where ``Σ |xᵢ|^p`` overflows float32). The gradient is 0 (not ``nan``) where the norm is 0.

    Args:
        xs: the ``k`` inputs, all of one shape.
        p: the order, ``p ≥ 1`` or ``float('inf')``.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The norm, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([3.0, -1.0]), torch.tensor([4.0, 2.0])]
        >>> fused_norm(xs)
        tensor([5.0000, 2.2361])
        >>> fused_norm(xs, p=1), fused_norm(xs, p=float("inf"))
        (tensor([7., 3.]), tensor([4., 2.]))
    """
    p = check_norm_order(p)
    xs, mask = _check_xs("fused_norm", xs, mask)
    return _fused_norm(xs, p, mask)


def check_norm_order(p: object) -> float:
    """``p`` as a float if it is a number ``≥ 1`` or ``inf`` (bools rejected), else raise."""
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"p must be a number >= 1 or math.inf, got {p!r}")
    if math.isnan(p) or p < 1:
        raise ValueError(f"p must be a number >= 1 or math.inf, got {p}")
    return float(p)


def _fused_norm(xs: Sequence[Tensor], p: float, mask: Tensor | None) -> Tensor:
    if _plain(xs):
        return _norm_plain(xs, p, mask)
    plan = _plan(xs, mask)
    if plan is None:
        return _norm_ref(xs, p, mask)
    if _needs_autograd(*xs):
        out: Tensor = _NormFn.apply(plan, p, *xs)
        return out
    return _norm_forward(plan, xs, p)
