r"""Element-wise fusion kernels over a list of ``k`` equally shaped tensors.

``mask`` marks the inputs that are present: a bool tensor of shape ``(k,)`` (one flag per
input) or ``(..., k)`` (per row; its leading dims broadcast to the inputs' leading dims).
Absent inputs are skipped, never multiplied by zero, so a ``nan`` placeholder stays harmless.
Low-precision inputs (float16, bfloat16) accumulate in float32; inputs of different dtypes
are promoted with torch's rules first.

Three paths, one semantics
--------------------------
Every kernel is one :class:`~interfuse.functional._blocks._Op` with three formulas, chosen by
one dispatcher (:func:`~interfuse.functional._blocks._run`):

* **plain** (inputs of at most :data:`SMALL_BYTES` in all, and code being traced or
  exported): what a user would write, ``torch.stack`` and one reduction, or for up to four
  inputs a chain of binary ops; a few microseconds, handled natively by autograd, the
  compilers and the exporters. Its copy is at most ``SMALL_BYTES``.
* **blocked** (larger inputs): copy-free, below.
* **reference**: stack-free differentiable formulas for :func:`torch.compile` (which fuses
  them into one loop), :mod:`torch.func` transforms, odd inputs (non-contiguous, subclasses),
  recomputed blocks and double backward.

All three skip absent inputs, send max/min gradients to the first input attaining the
extreme (as ``torch.max(dim)``), and keep products and norms finite wherever their float64
values are (``tests/functional`` compares them).

How the blocked kernels reach the memory-bandwidth floor
--------------------------------------------------------
None of them stacks its inputs into a ``(k, ...)`` copy (median is the exception: selecting the
middle value needs all ``k`` values at once, so it sorts a stacked copy). Reading ``k`` inputs
and writing one output is the least any fusion can do. A running accumulation ``acc += xᵢ``
over whole tensors also reads and writes ``acc`` ``k`` times; on the CPU the kernels therefore
walk the output in blocks of :data:`BLOCK_BYTES` and fold all ``k`` inputs into one block
before moving on, so the accumulator stays in cache and memory sees (nearly) only the ``k``
reads and one write. Each block is a handful of large vectorized ATen calls, so the Python loop
costs microseconds per block. One driver walks the blocks for every op
(:func:`~interfuse.functional._blocks._blocked_forward`, ``_blocked_backward``: scratch,
gradient buffers, finiteness checks, exact recomputation of failed blocks); an op is its
per-block steps. On other devices the whole tensor is one block (their caches are
too small for blocking to pay; launch count matters).

Training uses :class:`torch.autograd.Function`\ s whose forward saves only the inputs and the
output (no intermediate accumulators) and whose backward is blocked the same way: a sum hands
the same gradient to every input, a weighted sum computes ``wᵢ·g`` and ``⟨g, xᵢ⟩`` in one
pass, max/min route ``g`` to the first input that attains the extreme (as ``torch.max(dim)``
does), a product uses prefix and suffix products (exact with zeros, no division). With
``create_graph=True`` the backward falls back to differentiable reference formulas, so higher
derivatives work.

Per-row masks are applied with float arithmetic (``x·m``: several times faster than
``torch.where`` over bool masks on the CPU); any block whose result is not finite (a ``nan``
or ``inf`` placeholder leaking, or a float32 overflow) is recomputed exactly with
``torch.where`` (and in float64 where that helps), so the semantics above hold.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any

import torch
from torch import Tensor

from interfuse.functional._blocks import (
    BLOCK_BYTES,
    _Block,
    _blocked_backward,
    _blocked_forward,
    _Grad,
    _mask_of,
    _needs_autograd,
    _Op,
    _order,
    _Plan,
    _run,
)
from interfuse.functional._common import (
    SMALL_BYTES,
    _acc_dtype,
    _along_stack,
    _check_xs,
    _column,
    _count,
    _finish,
    _is_exporting,
    _overflow_safe,
    _under_transform,
    _wide_dtype,
    check_mask,
    onnx_exporting,
    reads_cheaply,
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

#: The product's backward uses blocks this many times smaller than k-fold (see _prod_backward).
_PROD_BLOCKS = 2
#: The max/min backward uses blocks this many times smaller: its output, gradient, running
#: remainder and the gradient being written then stay in cache between the three passes per
#: input (1 MiB blocks: ~10% faster forward+backward at k = 8, 4096 × 1024 than 4 MiB).
_HIT_BLOCKS = 4
#: Norms that need no per-block finiteness check without a per-row mask (which may hide
#: placeholders): a maximum of |xᵢ| cannot overflow, and redoing a block gives the same values.
#: (The L1 norm keeps its check: a block redone in float64 rounds its finite entries from
#: float64, and skipping that saved no measurable time.)
_UNCHECKED_NORMS = (math.inf,)


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
    acc = _overflow_safe(lambda t: _prod_chain(xs, mask, t), _acc_dtype(dtype), xs[0])
    return _finish(acc, dtype)


def _extreme_ref(xs: Sequence[Tensor], mask: Tensor | None, pick_max: bool) -> Tensor:
    # A strict comparison keeps the first of tied inputs, so the gradient goes to it as in the
    # blocked kernels (torch.maximum would split it); nan wins, as there.
    def pick(acc: Tensor, x: Tensor) -> Tensor:
        wins = (x > acc) if pick_max else (x < acc)
        return torch.where(wins | (x != x), x, acc)  # x != x: nan (isnan is 4x slower compiled)

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


def _extreme_compiled(xs: Sequence[Tensor], mask: Tensor | None, pick_max: bool) -> Tensor:
    """The max/min under ``torch.compile``: ``torch.maximum``/``minimum`` chains, whose
    training graphs inductor compiles into one loop (the strict-comparison chain of
    :func:`_extreme_ref` compiles to 8-9x the bandwidth with autograd at k = 8, 4096x1024).
    Values are the same, nan included; a gradient at an exact tie is split between the tied
    inputs, as ``torch.maximum`` splits it."""
    op = torch.maximum if pick_max else torch.minimum
    if mask is not None:
        fill = -math.inf if pick_max else math.inf
        xs = [torch.where(_column(mask, i), x, fill) for i, x in enumerate(xs)]
    acc = xs[0]
    for x in xs[1:]:
        acc = op(acc, x)
    return acc.clone() if len(xs) == 1 else acc


def _pow_sum(xs: Sequence[Tensor], p: float, acc_t: torch.dtype) -> Tensor:
    def term(x: Tensor) -> Tensor:
        x = x.to(acc_t)
        return x.abs() if p == 1 else x.square() if p == 2 else x.abs().pow(p)

    acc = term(xs[0])
    for x in xs[1:]:
        acc = acc + term(x)
    return acc


def _norm_value(xs: Sequence[Tensor], p: float) -> Tensor:
    """``(Σᵢ |xᵢ|^p)^(1/p)``, accumulated in at least float32 (float64 where that overflows)."""
    dtype = xs[0].dtype
    acc_t = _acc_dtype(dtype)
    if p == math.inf:
        acc = xs[0].abs().to(acc_t)
        for x in xs[1:]:
            acc = torch.maximum(acc, x.abs().to(acc_t))
    else:
        acc = _overflow_safe(lambda t: _pow_sum(xs, p, t), acc_t, xs[0])
        acc = acc if p == 1 else acc.sqrt() if p == 2 else acc.pow(1.0 / p)
    return _finish(acc, dtype)


class _NormRefFn(torch.autograd.Function):
    """``(Σᵢ |xᵢ|^p)^(1/p)`` with a backward that gives 0 (not nan) where the norm is 0."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, *args: Any) -> Tensor:
        # p comes last: dynamo mis-binds a leading non-tensor followed by *varargs.
        xs: tuple[Tensor, ...] = args[:-1]
        p: float = args[-1]
        out = _norm_value(xs, p)
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
    if p == math.inf:
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
    if not _needs_autograd(*xs):  # the Function's apply costs more than a small forward
        return _norm_value(xs, float(p))
    out: Tensor = _NormRefFn.apply(*xs, float(p))
    return out


# =============================================================================================
# Blocked kernels: every op is a step per cache-sized block, run by the drivers of _blocks.py
# (_blocked_forward, _blocked_backward).
# =============================================================================================
class _Kind(enum.Enum):
    """What a linear fusion ``Σᵢ cᵢ xᵢ`` computes (its coefficients ``cᵢ``)."""

    SUM = "sum"
    MEAN = "mean"
    WEIGHTED = "weighted"


_SUM, _MEAN, _WEIGHTED = _Kind.SUM, _Kind.MEAN, _Kind.WEIGHTED


def _fold(
    xb: Sequence[Tensor],
    order: Sequence[int],
    acc: Tensor,
    same: bool,
    binary: Callable[..., Tensor],
) -> Tensor:
    """``acc = x₀ ∘ x₁ ∘ …`` over ``order`` with ``binary(a, b, out=)`` (add, mul, maximum, ...);
    ``same``: ``acc`` has the inputs' dtype, so the first two inputs go straight into it."""
    first, rest = order[0], list(order[1:])
    if same and rest:
        binary(xb[first], xb[rest[0]], out=acc)
        rest = rest[1:]
    else:
        acc.copy_(xb[first])
    for i in rest:
        binary(acc, xb[i], out=acc)
    return acc


def _linear_forward(
    plan: _Plan, kind: _Kind, w: Tensor | None, renormalize: bool, xs: Sequence[Tensor]
) -> Tensor:
    """``Σᵢ cᵢ xᵢ`` per block. Sum and mean over whole inputs are plain adds; otherwise the
    coefficients are one weight per input (``(k,)``) or per row (``(units, k)``: presence ×
    weight), followed by one scale (renormalization; a per-row mean's 1/count)."""
    same = plan.acc_t == plan.dtype
    order = _order(plan)
    weighted = kind == _WEIGHTED and w is not None
    coef: Tensor | None = None  # (k,) or, by row, (units, k)
    scale: Tensor | None = None  # 0-d or, by row, (units, 1)
    if plan.by_row:
        m = _presence(plan, plan.acc_t)
        coef = (m * w if weighted and w is not None else m).expand(plan.units, plan.k)
        scale = _row_scale(plan, kind, w, renormalize, m)
    elif weighted and w is not None:
        coef = w
        if renormalize and len(order) < plan.k:
            scale = w.sum() / w[order].sum()

    def step(block: _Block, acc: Tensor) -> Tensor:
        xb = block.xs
        if coef is None:
            _fold(xb, order, acc, same, torch.add)
            if kind == _MEAN:
                acc.div_(len(order))
            return acc
        c = coef[block.a : block.b] if plan.by_row else coef
        first = order[0]
        if same:
            torch.mul(xb[first], c[..., first : first + 1] if plan.by_row else c[first], out=acc)
        else:
            acc.copy_(xb[first]).mul_(c[..., first : first + 1] if plan.by_row else c[first])
        for i in order[1:]:
            acc.addcmul_(xb[i], c[..., i : i + 1] if plan.by_row else c[i])
        if scale is not None:
            acc.mul_(scale[block.a : block.b] if plan.by_row else scale)
        return acc

    def redo(block: _Block, mask: Tensor | None) -> Tensor:
        if weighted and w is not None:
            wb = w if w.ndim == 1 else w[block.a : block.b]
            return _weighted_sum_ref(block.xs, wb, mask, renormalize)
        return (_mean_ref if kind == _MEAN else _sum_ref)(block.xs, mask)

    # Only a per-row mask can leak a placeholder (x·0 = nan): the blocks are checked then.
    return _blocked_forward(plan, xs, step, redo if plan.rows is not None else None)[0]


def _presence(plan: _Plan, dtype: torch.dtype) -> Tensor:
    """Presence as floats (1 present, 0 absent): ``(units, k)`` with a per-row mask, else
    ``(k,)``."""
    if plan.rows is not None:
        return plan.rows.to(dtype)
    m = torch.zeros(plan.k, dtype=dtype, device=plan.device)
    m[plan.present] = 1
    return m


def _row_scale(
    plan: _Plan, kind: _Kind, w: Tensor | None, renormalize: bool, m: Tensor
) -> Tensor | None:
    """Per-row factor ``(units, 1)`` (or ``(1,)``) applied after the masked accumulation, or
    ``None``; ``w`` is ``(k,)`` or ``(units, k)``, ``m`` :func:`_presence`."""
    masked = plan.rows is not None or len(plan.present) < plan.k
    if kind == _MEAN:
        return 1 / m.sum(-1, keepdim=True)
    if kind == _WEIGHTED and w is not None and renormalize and masked:
        return w.sum(-1, keepdim=True) / (m * w).sum(-1, keepdim=True)
    return None


def _weight_rows(plan: _Plan, w: Tensor | None) -> Tensor | None:
    """Per-row weights ``(..., k)`` as ``(units, k)`` (a view where they are not broadcast);
    ``(k,)`` weights as they are."""
    if w is None or w.ndim == 1:
        return w
    return w.expand(*plan.shape[:-1], plan.k).reshape(plan.units, plan.k)


def _linear_backward(
    plan: _Plan,
    kind: _Kind,
    renormalize: bool,
    w: Tensor | None,
    xs: Sequence[Tensor],
    g: _Grad,
) -> tuple[list[Tensor | None], Tensor | None]:
    """``gxᵢ = cᵢ·g`` and, for weights, ``dᵢ = ⟨g, xᵢ⟩`` (per block, or per row) in one pass;
    ``g.needs`` starts with the weights' flag."""
    k, acc_t = plan.k, plan.acc_t
    out, grad = g.out, g.grad
    need_x = list(g.needs[1:])
    need_w = bool(g.needs[0]) and w is not None
    order = _order(plan)
    if not plan.by_row:
        scale: Tensor | None = None
        if kind == _WEIGHTED and w is not None and renormalize and len(order) < k:
            scale = w.sum() / w[order].sum()
        if kind != _WEIGHTED or w is None:
            shared = grad if kind == _SUM else grad / len(order)
            return [shared if need_x[i] and i in order else None for i in range(k)], None
        coef = w if scale is None else w * scale
        dots = torch.zeros(k, plan.count(), dtype=acc_t, device=plan.device)
        low = acc_t != plan.dtype
        g32 = plan.scratch(acc_t) if low and need_w else None
        x32 = plan.scratch(acc_t) if low and need_w else None

        def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
            gb32 = g32[: block.n].copy_(gb) if g32 is not None else gb
            for i in order:
                if i in dst:
                    torch.mul(gb, coef[i], out=dst[i])
                if need_w:
                    xb = block.xs[i] if x32 is None else x32[: block.n].copy_(block.xs[i])
                    torch.dot(gb32, xb, out=dots[i, block.j])

        gx = _blocked_backward(plan, xs, out, grad, need_x, step)
        if not need_w:
            return gx, None
        d = dots.sum(1)
        if scale is None:
            return gx, d
        # y = s·u, u = Σ_P wᵢxᵢ, s = T/P: ∂/∂wᵢ = s·dᵢ·[i∈P] + ⟨g,u⟩·(1 − s·[i∈P])/P.
        m = _presence(plan, acc_t)
        total_p = w[order].sum()
        gu = (w * d * m).sum()
        return gx, scale * d * m + gu * (1 - scale * m) / total_p
    # Per-row mask or weights.
    m = _presence(plan, acc_t)
    row_scale = _row_scale(plan, kind, w, renormalize, m)
    coef = (m * w if kind == _WEIGHTED and w is not None else m).expand(plan.units, k)
    if row_scale is not None:
        coef = coef * row_scale
    dot_rows = torch.zeros(k, plan.units, dtype=acc_t, device=plan.device)

    def row_step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        a, b = block.a, block.b
        gb32 = gb.to(acc_t)
        for i in order:
            if i in dst:
                torch.mul(gb, coef[a:b, i : i + 1], out=dst[i])
            if need_w:
                torch.linalg.vecdot(gb32, block.xs[i].to(acc_t), out=dot_rows[i, a:b])

    gx = _blocked_backward(plan, xs, out, grad, need_x, row_step)
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
    if plan.rows is None:
        present = plan.present
        return _blocked_forward(
            plan, xs, lambda block, o: _fold(block.xs, present, o, True, op), acc_dtype=plan.dtype
        )[0]
    # Absent entries get ∓inf added (float arithmetic); a non-finite block is redone exactly.
    fill = -math.inf if pick_max else math.inf
    bias = torch.zeros(plan.rows.shape, dtype=plan.dtype, device=plan.device).masked_fill_(
        ~plan.rows, fill
    )
    tmp = plan.scratch(plan.dtype)

    def step(block: _Block, o: Tensor) -> Tensor:
        a, b = block.a, block.b
        torch.add(block.xs[0], bias[a:b, 0:1], out=o)
        for i in range(1, plan.k):
            op(o, torch.add(block.xs[i], bias[a:b, i : i + 1], out=tmp[: block.n]), out=o)
        return o

    def redo(block: _Block, mask: Tensor | None) -> Tensor:
        return _extreme_ref(block.xs, mask, pick_max)

    return _blocked_forward(plan, xs, step, redo, acc_dtype=plan.dtype)[0]


def _first_hit_grads(plan: _Plan, xs: Sequence[Tensor], g: _Grad) -> list[Tensor | None]:
    """Route ``grad`` to the first present input equal to ``out``.

    ``rest`` holds the gradient not yet routed (``g`` at first): ``gᵢ = [xᵢ = out]·rest`` and
    ``rest -= gᵢ``, three passes per input with float 0/1 masks (bool ops are several times
    slower on the CPU). Inputs that need no gradient still update ``rest`` (in scratch).
    """
    order = _order(plan)
    rows_f = plan.rowf(plan.dtype) if plan.rows is not None else None
    per = max(1, plan.per_block // _HIT_BLOCKS)
    rest_s, spare = plan.scratch(plan.dtype, per), plan.scratch(plan.dtype, per)

    def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        rest = rest_s[: block.n]
        for pos, i in enumerate(order):
            last = pos == len(order) - 1
            if last and i not in dst:
                break
            hit = dst[i] if i in dst else spare[: block.n]
            torch.eq(block.xs[i], block.out, out=hit)
            if rows_f is not None:
                hit.mul_(rows_f[block.a : block.b, i : i + 1])
            hit.mul_(gb if pos == 0 else rest)
            if not last:
                if pos == 0:
                    torch.sub(gb, hit, out=rest)
                else:
                    rest.sub_(hit)

    return _blocked_backward(plan, xs, g.out, g.grad, g.needs, step, per_block=per)


# --- product --------------------------------------------------------------------------------
def _prod_forward(plan: _Plan, xs: Sequence[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
    """The product, and the unit ranges recomputed exactly (float64 and/or ``torch.where``)."""
    same = plan.acc_t == plan.dtype
    rows_f = plan.rowf(plan.acc_t) if plan.rows is not None else None
    tmp = plan.scratch(plan.acc_t) if plan.rows is not None else None

    def step(block: _Block, acc: Tensor) -> Tensor:
        if rows_f is None or tmp is None:
            return _fold(block.xs, plan.present, acc, same, torch.mul)
        # acc ← where(m, acc·x, acc) as lerp(acc, acc·x, m): torch.lerp evaluates
        # end − (end − start)(1 − w) for w ≥ 0.5, so w ∈ {0, 1} selects exactly. A nan
        # placeholder still makes the block non-finite and it is redone exactly.
        acc.fill_(1)
        t = tmp[: block.n]
        for i in range(plan.k):
            acc.lerp_(torch.mul(acc, block.xs[i], out=t), rows_f[block.a : block.b, i : i + 1])
        return acc

    return _blocked_forward(plan, xs, step, lambda block, mask: _prod_ref(block.xs, mask))


def _prod_backward(plan: _Plan, xs: Sequence[Tensor], g: _Grad) -> list[Tensor | None]:
    """Prefix and suffix products (no division); ``g.state``: the unit ranges the forward
    recomputed, differentiated in float64 too."""
    bad: Sequence[tuple[int, int]] = g.state
    acc_t = plan.acc_t
    order = _order(plan)
    low = acc_t != plan.dtype
    # The k prefix products of a block are read back by the suffix pass, so the block shrinks
    # k-fold to keep them in cache (and, in low precision, where they live in float32
    # scratch, to keep that scratch at one block's worth of memory).
    per = max(1, plan.per_block * _PROD_BLOCKS // len(order))
    pre = [plan.scratch(acc_t, per) for _ in order] if low else None
    run = plan.scratch(acc_t, per)
    can_widen = _wide_dtype(acc_t, plan.device) is not None

    def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        a, b, n = block.a, block.b, block.n
        # Blocks whose forward overflowed float32 are differentiated in float64 too.
        wide = can_widen and any(a < hi and lo < b for lo, hi in bad)
        vals = (
            _masked_values(plan, block, one=1.0)
            if block.rows is not None
            else [block.xs[i] for i in order]
        )
        if wide:
            vals = [v.to(torch.float64) for v in vals]
            prefix = [torch.empty_like(v) for v in vals]
            r = torch.empty_like(vals[0])
        else:
            prefix = [p[:n] for p in pre] if pre is not None else [dst[i] for i in order]
            r = run[:n]
        # prefixⱼ = Π_{i<j} vᵢ, then run = g·Π_{i>j} vᵢ from the end: gradⱼ = prefixⱼ·run.
        # prefix₀ = 1 is never formed (1·v and 1·run are exact): two passes fewer.
        last = len(order) - 1
        if last:
            prefix[1].copy_(vals[0])
        for pos in range(2, last + 1):
            torch.mul(prefix[pos - 1], vals[pos - 1], out=prefix[pos])
        if last and r.dtype == gb.dtype == vals[last].dtype:
            prefix[last].mul_(gb)
            torch.mul(gb, vals[last], out=r)
            last -= 1
        else:
            r.copy_(gb)
        for pos in range(last, 0, -1):
            prefix[pos].mul_(r)
            r.mul_(vals[pos])
        prefix[0].copy_(r)
        for pos, i in enumerate(order):
            if prefix[pos].data_ptr() != dst[i].data_ptr():
                dst[i].copy_(prefix[pos])
            if block.rows is not None:
                dst[i].masked_fill_(~block.rows[:, i : i + 1], 0)  # exactly 0, even next to inf

    grads = _blocked_backward(plan, xs, g.out, g.grad, [True] * plan.k, step, per_block=per)
    return [gi if need else None for gi, need in zip(grads, g.needs)]  # every prefix is written


def _masked_values(plan: _Plan, block: _Block, one: float) -> list[Tensor]:
    """``where(m, x, one)`` for every input of the block, computed as ``x·m + one·(1 − m)``
    (float ops: bool ``where`` is several times slower on the CPU) and redone exactly with
    ``torch.where`` for an input whose block comes out non-finite (a nan/inf placeholder)."""
    rows = block.rows
    if rows is None:  # pragma: no cover - callers check
        raise ValueError("no per-row mask")
    m = rows.to(plan.dtype)
    out = []
    for i, x in enumerate(block.xs):
        v = torch.mul(x, m[:, i : i + 1])
        if one != 0.0:
            v.add_(1 - m[:, i : i + 1], alpha=one)
        if not bool(torch.isfinite(v.sum(dtype=plan.acc_t))):
            v = torch.where(rows[:, i : i + 1], x, one)
        out.append(v)
    return out


# --- p-norms --------------------------------------------------------------------------------
def _norm_accumulate(x: Tensor, p: float, acc: Tensor, tmp: Tensor, first: bool) -> None:
    """``acc (+)= |x|^p`` (``acc = max(acc, |x|)`` for p = inf); ``first`` sets ``acc``."""
    if p == 2.0:
        if not first:
            acc.addcmul_(x, x)
        elif acc.dtype == x.dtype:
            torch.mul(x, x, out=acc)
        else:
            acc.zero_().addcmul_(x, x)
    elif p == 1.0 or p == math.inf:
        if first:
            torch.abs(x, out=acc) if acc.dtype == x.dtype else acc.copy_(x).abs_()
            return
        t = torch.abs(x, out=tmp) if tmp.dtype == x.dtype else x.abs()
        torch.maximum(acc, t, out=acc) if p == math.inf else acc.add_(t)
    elif first:
        acc.copy_(x).abs_().pow_(p)
    else:
        acc.add_(tmp.copy_(x).abs_().pow_(p))


def _norm_forward(plan: _Plan, xs: Sequence[Tensor], p: float) -> Tensor:
    tmp = plan.scratch(plan.acc_t if p not in (1.0, 2.0) and p != math.inf else plan.dtype)
    masked = plan.scratch(plan.dtype) if plan.rows is not None else None
    rows_f = plan.rowf(plan.dtype) if plan.rows is not None else None
    order = _order(plan)

    def step(block: _Block, acc: Tensor) -> Tensor:
        for pos, i in enumerate(order):
            x = block.xs[i]
            if rows_f is not None and masked is not None:
                # Absent entries are zeroed as x·m (a nan placeholder is caught by the check).
                x = torch.mul(x, rows_f[block.a : block.b, i : i + 1], out=masked[: block.n])
            _norm_accumulate(x, p, acc, tmp[: block.n], first=pos == 0)
        # The root keeps finiteness (acc ≥ 0): checking after it catches every non-finite entry.
        if p == 2.0:
            acc.sqrt_()
        elif p not in (1.0, math.inf):
            acc.pow_(1.0 / p)
        return acc

    def redo(block: _Block, mask: Tensor | None) -> Tensor:
        return _norm_ref(block.xs, p, mask)

    exact = plan.rows is None and p in _UNCHECKED_NORMS
    return _blocked_forward(plan, xs, step, None if exact else redo)[0]


def _norm_grads(plan: _Plan, xs: Sequence[Tensor], g: _Grad, p: float) -> list[Tensor | None]:
    """Blocked gradients for p = 1, 2; the reference gradient formula for other ``p``."""
    if p in (1.0, 2.0):
        return _norm_backward(plan, xs, g.out, g.grad, g.needs, p)
    mask = _mask_of(plan)
    if mask is not None:
        xs = [torch.where(_column(mask, i), x, 0) for i, x in enumerate(xs)]
    grads = _norm_grads_ref(xs, g.out, g.grad, p)
    if mask is not None:
        grads = [torch.where(_column(mask, i), gi, 0) for i, gi in enumerate(grads)]
    return [gi if n else None for gi, n in zip(grads, g.needs)]


def _norm_backward(
    plan: _Plan, xs: Sequence[Tensor], out: Tensor, grad: Tensor, needs: Sequence[bool], p: float
) -> list[Tensor | None]:
    """p = 2: gᵢ = xᵢ·(g/out); p = 1: gᵢ = sign(xᵢ)·g; 0 where out = 0 (then every present
    xᵢ = 0) and for absent entries."""
    order = _order(plan)
    h = plan.scratch(plan.acc_t) if p == 2.0 else plan.scratch(plan.dtype)
    rows_f = plan.rowf(plan.dtype) if plan.rows is not None else None

    def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        hb, ob = h[: block.n], block.out
        if p == 2.0:
            # g/out in float32 (h's dtype): g/out of a small float16 norm overflows float16,
            # though every xᵢ·g/out is at most g.
            hb.copy_(gb).div_(ob)
            if bool(ob.amin() == 0):  # out ≥ 0: a cheap test before the rare fix-up
                hb.masked_fill_(ob == 0, 0)
        for i in order:
            if i not in dst:
                continue
            x = block.xs[i]
            if p == 2.0:
                torch.mul(x, hb, out=dst[i])
            else:
                torch.mul(torch.sign(x, out=hb), gb, out=dst[i])
            if rows_f is not None and block.rows is not None:
                # Absent rows get 0 as x·m; a nan placeholder there is redone with where.
                dst[i].mul_(rows_f[block.a : block.b, i : i + 1])
                if not bool(torch.isfinite(dst[i].sum(dtype=plan.acc_t))):
                    exact = torch.where(block.rows[:, i : i + 1], x, 0)
                    dst[i].copy_(exact * hb if p == 2.0 else exact.sign() * gb)

    return _blocked_backward(plan, xs, out, grad, needs, step)


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


#: Up to this many inputs a chain of binary ops (x₁ + x₂ + x₃) beats stack + reduce on small
#: inputs: it skips the (k, ...) copy (measured at k = 3-4, (32, 64)-(256, 256): 1.5-2× faster).
_CHAIN = 4


def _chain(xs: Sequence[Tensor], mask: Tensor | None) -> bool:
    return mask is None and len(xs) <= _CHAIN and _acc_dtype(xs[0].dtype) == xs[0].dtype


def _sum_plain(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    if not _chain(xs, mask):
        return _stacked(xs, mask, 0).sum(0)
    if len(xs) == 1:
        return xs[0].clone()
    out = xs[0] + xs[1]
    for x in xs[2:]:
        out = out + x
    return out


@cache
def _count_tensor(k: int, dtype: torch.dtype) -> Tensor:
    """``k`` as a 0-d CPU tensor (CPU scalars combine with tensors on any device)."""
    return torch.tensor(float(k), dtype=dtype)


def _mean_plain(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    if mask is None:
        if not _chain(xs, None):
            return torch.stack(list(xs)).mean(0)
        # In place on the chain's own fresh result: one allocation less, safe under autograd
        # and vmap (the result is batched if any input is). Dividing by a cached 0-d tensor
        # skips wrapping a Python number (~1 µs, a third of this call); tracers get the number.
        total = _sum_plain(xs, None)
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return total.div_(len(xs))
        return total.div_(_count_tensor(len(xs), total.dtype))
    total = _stacked(xs, mask, 0).sum(0, dtype=_acc_dtype(xs[0].dtype))
    return _finish(total / _count(mask, total.dtype), xs[0].dtype)


#: Up to this many stacked elements a product and a sum beat the one GEMV, forward and with
#: autograd (k = 3 of (32, 64): 6.1 against 7.0 µs, 39 against 42 µs with the backward; from
#: k = 8 of (64, 64) the GEMV wins, 2x at k = 4 of (256, 256)).
_WEIGHTED_MULSUM_ELEMENTS = 8192


def _weighted_sum_plain(
    xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None, renormalize: bool
) -> Tensor:
    stacked = torch.stack(list(xs))
    dtype = stacked.dtype
    if mask is None and weights.ndim == 1 and weights.dtype == dtype == _acc_dtype(dtype):
        # The GEMV's call costs more on few elements. Not while tracing or exporting (the size
        # may be symbolic: comparing it would guard on the batch size), nor for weights on
        # another device (the GEMV takes meta inputs with CPU weights, a product does not).
        if (
            not (torch.compiler.is_compiling() or torch.jit.is_tracing())  # the exporters too
            and ((weights.is_cpu and stacked.is_cpu) or weights.device == stacked.device)
            and stacked.numel() <= _WEIGHTED_MULSUM_ELEMENTS
        ):
            return (stacked * _along_stack(weights, stacked.ndim)).sum(0)
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
    if _chain(xs, mask) and not _needs_autograd(*xs):  # values only: torch.maximum chains
        op = torch.maximum if pick_max else torch.minimum
        out = xs[0].clone() if len(xs) == 1 else op(xs[0], xs[1])
        for x in xs[2:]:
            out = op(out, x)
        return out
    # max(dim)/min(dim) route the gradient to the first input attaining the extreme (amax and
    # torch.maximum split it between ties) and propagate nan.
    if pick_max:
        return _stacked(xs, mask, -math.inf).max(0).values
    return _stacked(xs, mask, math.inf).min(0).values


def _prod_plain(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    """A chain of products in the accumulation dtype, redone in float64 where that overflowed
    (one sum tells: a finite sum proves every entry finite); float64 from the start where
    values cannot be read (compile, tracing; meta tensors and vmap fail the read) or should not
    be (an accelerator: :func:`reads_cheaply`)."""
    x0 = xs[0]
    dtype = x0.dtype
    acc_t = _acc_dtype(dtype)
    # Only a running product of three or more float32 factors can overflow where float64's
    # does not (two factors overflow float32 only if the result does). Not on MPS (no float64).
    widen = len(xs) > 2 and acc_t == torch.float32 and not x0.is_mps
    if widen and (torch.compiler.is_compiling() or torch.jit.is_tracing() or not reads_cheaply(x0)):
        return _finish(_stacked(xs, mask, 1).prod(0, dtype=torch.float64), dtype)
    if mask is None and len(xs) <= _CHAIN and acc_t == dtype:
        out = x0.clone() if len(xs) == 1 else x0 * xs[1]
        for x in xs[2:]:
            out = out * x
    else:
        out = _stacked(xs, mask, 1).prod(0, dtype=acc_t)
    if widen:
        try:  # the read costs ~1 µs; asking first whether it can run costs as much
            total = (out.detach() if out.requires_grad else out).sum().item()
        except (RuntimeError, NotImplementedError):  # meta tensors, vmap: no values here
            total = math.nan
        if not math.isfinite(total):
            out = _stacked(xs, mask, 1).prod(0, dtype=torch.float64)
    return _finish(out, dtype)


def _eager() -> bool:
    """Whether no compiler, tracer or exporter is recording (the plain formulas then need
    not be made of native ops only)."""
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing() or onnx_exporting())


def _norm_plain(xs: Sequence[Tensor], p: float, mask: Tensor | None) -> Tensor:
    if _eager():
        # vector_norm over a stack's first dimension is a slow strided reduction on the CPU:
        # 5-40x the stack-free reference at k = 3-4, (32, 64)-(256, 256) (docs/elementwise.md).
        return _norm_ref(xs, p, mask)
    stacked = _stacked(xs, mask, 0)
    if p == math.inf:  # exact in any dtype; max(dim) sends the gradient to the first tie
        return stacked.abs().max(0).values
    dtype = stacked.dtype
    acc_t = _acc_dtype(dtype)
    # Σ|x|^p overflows float32 early; converting first keeps the backward in float64 too.
    wide = _wide_dtype(acc_t, stacked.device) or acc_t
    return _finish(torch.linalg.vector_norm(stacked.to(wide), p, 0), dtype)


def _linear_op(kind: _Kind) -> _Op:
    def forward(plan: _Plan, ts: Sequence[Tensor], renormalize: bool = False) -> tuple[Tensor, Any]:
        w, xs = (ts[0], ts[1:]) if kind == _WEIGHTED else (None, ts)
        return _linear_forward(plan, kind, _weight_rows(plan, w), renormalize, xs), None

    def backward(
        plan: _Plan, ts: Sequence[Tensor], g: _Grad, renormalize: bool = False
    ) -> list[Tensor | None]:
        if kind != _WEIGHTED:
            return _linear_backward(
                plan, kind, False, None, ts, g._replace(needs=[False, *g.needs])
            )[0]
        w, xs = ts[0], ts[1:]
        gx, gw = _linear_backward(plan, kind, renormalize, _weight_rows(plan, w), xs, g)
        if gw is not None and w.ndim > 1:
            gw = gw.view(*plan.shape[:-1], plan.k).sum_to_size(w.shape)
        return [gw, *gx]

    if kind == _WEIGHTED:
        return _Op(
            "weighted_sum",
            lambda ts, mask, renorm: _weighted_sum_plain(ts[1:], ts[0], mask, renorm),
            lambda ts, mask, renorm: _weighted_sum_ref(ts[1:], ts[0], mask, renorm),
            forward,
            backward,
            weighted=True,
        )
    plain, reference = (_sum_plain, _sum_ref) if kind == _SUM else (_mean_plain, _mean_ref)
    return _Op(f"fused_{kind.value}", plain, reference, forward, backward)


#: max(dim)'s backward scatters through an index tensor: at k = 4, (256, 256) it costs 1.4-2.4×
#: the blocked first-hit backward, at (32, 64) 0.2×; 128 KiB sits between.
_EXTREME_PLAIN_GRAD_BYTES = 128 * 1024


def _extreme_op(pick_max: bool) -> _Op:
    return _Op(
        "fused_max" if pick_max else "fused_min",
        lambda ts, mask: _extreme_plain(ts, mask, pick_max),
        lambda ts, mask: _extreme_ref(ts, mask, pick_max),
        lambda plan, ts: (_extreme_forward(plan, ts, pick_max), None),
        _first_hit_grads,
        plain_grad_bytes=_EXTREME_PLAIN_GRAD_BYTES,
        compiled=lambda ts, mask: _extreme_compiled(ts, mask, pick_max),
    )


_SUM_OP, _MEAN_OP, _WEIGHTED_OP = (_linear_op(kind) for kind in _Kind)
_MAX_OP, _MIN_OP = _extreme_op(True), _extreme_op(False)
_PROD_OP = _Op(
    "fused_prod",
    _prod_plain,
    _prod_ref,
    _prod_forward,
    _prod_backward,
)
_NORM_OP = _Op(
    "fused_norm",
    lambda ts, mask, p: _norm_plain(ts, p, mask),
    lambda ts, mask, p: _norm_ref(ts, p, mask),
    lambda plan, ts, p: (_norm_forward(plan, ts, p), None),
    _norm_grads,
)


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
    return _run(_WEIGHTED_OP, (weights, *xs), mask, renormalize)


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


# The modules' entries, after their own checks (a partial: one Python frame less per call).
_fused_sum = partial(_run, _SUM_OP)


_fused_mean = partial(_run, _MEAN_OP)


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


_fused_prod = partial(_run, _PROD_OP)
_fused_max = partial(_run, _MAX_OP)
_fused_min = partial(_run, _MIN_OP)


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
    return _fused_max(xs, mask)


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
    return _fused_min(xs, mask)


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
    if mask is None and len(xs) == 3 and not _needs_autograd(*xs):
        # The middle of three values (either mode) by four min/max ops, nan propagating as in
        # median: about 10x faster than sorting a stack at (32, 64). The gradient needs the
        # index median(dim) returns, so autograd takes the general path.
        a, b, c = xs
        return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
    stacked = torch.stack(list(xs), dim=-1)  # (..., n, k): selection needs all k values
    k = len(xs)
    if mask is None:
        # ONNX has no median over a dim (either exporter): sort when exporting.
        exporting = torch.jit.is_tracing() or _is_exporting()
        if mode == "lower" and not exporting:
            return stacked.median(dim=-1).values  # propagates nan itself
        ordered = stacked.sort(dim=-1).values
        mid = ordered[..., (k - 1) // 2]
        if mode != "lower":
            mid = _midpoint(mid, ordered[..., k // 2])
        return _nan_if_any(stacked, None, mid)
    m = mask[..., None, :]
    ordered = torch.where(m, stacked, math.inf).sort(dim=-1).values
    count = m.sum(-1, keepdim=True).expand(*ordered.shape[:-1], 1)
    lo = ordered.gather(-1, (count - 1) // 2).squeeze(-1)
    if mode == "lower":
        return _nan_if_any(stacked, m, lo)
    hi = ordered.gather(-1, count // 2).squeeze(-1)
    return _nan_if_any(stacked, m, _midpoint(lo, hi))


def _midpoint(lo: Tensor, hi: Tensor) -> Tensor:
    """``(lo + hi) / 2``, in float32 for float16/bfloat16: ``lo + hi`` of two large float16
    values is inf where their mean is not."""
    acc_t = _acc_dtype(lo.dtype)
    if acc_t == lo.dtype:
        return (lo + hi) / 2
    return ((lo.to(acc_t) + hi.to(acc_t)) / 2).to(lo.dtype)


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
    return _run(_NORM_OP, xs, mask, p)
