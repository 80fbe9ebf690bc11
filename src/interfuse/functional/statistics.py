r"""Element-wise statistics over ``k`` equally shaped inputs: variance, standard deviation and
log-sum-exp of the present inputs, without stacking them.

Each equals the matching :mod:`torch` reduction over the stacked *present* inputs (``dim=0``),
``correction`` included. Like the other element-wise kernels they take the plain path on
small inputs (``torch.var/std/logsumexp`` of the stack) and copy-free blocked kernels on large
ones (``torch.var`` over a stack's first dimension is a slow strided reduction on the CPU: the
blocked variance is about 10× faster at k = 4, 2048 × 1024):

* Variance: per cache-sized block the mean of the present values, then the deviations from
  that (rounded) mean, :math:`s_1 = \sum_{i \in P} (x_i - \mu')`,
  :math:`s_2 = \sum_{i \in P} (x_i - \mu')^2`, :math:`\operatorname{var} =
  (s_2 - s_1^2/n) / \max(0, n - \text{correction})` (the corrected two-pass algorithm: every
  input is read once from memory, twice from cache; a large common offset such as
  ``1e6 + noise`` in float32 does not cancel the result away). The stack-free reference
  formula (compile, transforms, masked small inputs) shifts by the first present value.
* Log-sum-exp: :math:`m + \log \sum_{i \in P} e^{x_i - m}` with :math:`m` the maximum of the
  present values (0 where it is infinite, so ``-inf`` rows give ``-inf`` and ``+inf`` rows
  ``+inf``, as :func:`torch.logsumexp`).

Absent values are replaced by a neutral value with ``torch.where`` *before* any arithmetic,
so a ``nan`` placeholder in an absent input reaches neither the result nor a gradient.
Low-precision inputs accumulate in float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

from interfuse.functional._blocks import (
    _Block,
    _blocked_backward,
    _blocked_forward,
    _Grad,
    _mask_of,
    _Op,
    _order,
    _Plan,
    _run,
)
from interfuse.functional._common import (
    _acc_dtype,
    _check_xs,
    _column,
    _count,
    _finish,
)
from interfuse.functional.elementwise import _chain, _eager, _extreme_ref, _presence, _stacked

__all__ = ["fused_logsumexp", "fused_std", "fused_var"]


def _check_correction(correction: object) -> float:
    if isinstance(correction, bool) or not isinstance(correction, (int, float)):
        raise TypeError(
            f"correction must be a non-negative number (1: Bessel's correction), got "
            f"{correction!r} of type {type(correction).__name__}"
        )
    if not correction >= 0:
        raise ValueError(f"correction must be a non-negative number, got {correction}")
    return float(correction)


def _shift(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    """The first present value of every entry (0 where none is), detached: the variance does
    not depend on the shift, so holding it constant leaves the gradient exact."""
    if mask is None:
        return xs[0].detach()
    c = torch.where(_column(mask, len(xs) - 1), xs[-1].detach(), 0)
    for i in range(len(xs) - 2, -1, -1):
        c = torch.where(_column(mask, i), xs[i].detach(), c)
    return c


def _var_acc(xs: Sequence[Tensor], mask: Tensor | None, correction: float) -> Tensor:
    acc_t = _acc_dtype(xs[0].dtype)
    c = _shift(xs, mask).to(acc_t)
    s1 = torch.zeros((), dtype=acc_t, device=xs[0].device)
    s2 = s1
    for i, x in enumerate(xs):
        x = x.to(acc_t)
        d = (x if mask is None else torch.where(_column(mask, i), x, c)) - c
        s1 = s1 + d
        s2 = s2 + d * d
    n = float(len(xs)) if mask is None else _count(mask, acc_t)
    dof = (n - correction).clamp(min=0) if isinstance(n, Tensor) else max(0.0, n - correction)
    return (s2 - s1 * s1 / n).clamp(min=0) / dof


def fused_var(xs: Sequence[Tensor], mask: Tensor | None = None, correction: float = 1) -> Tensor:
    r"""Element-wise variance of the present inputs ``P``, as ``torch.var(stack, dim=0)``.

    .. math:: \operatorname{var} = \frac{1}{\max(0, |P| - \text{correction})}
        \sum_{i \in P} (x_i - \bar x)^2

    Computed from the sum and the sum of squares of the values shifted by the first present
    one, in one pass (numerically sound with a large common offset). Fewer present inputs
    than ``correction + 1`` give what :func:`torch.var` gives (``nan`` or ``inf``).

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.
        correction: subtracted from the count (1: the unbiased estimate, 0: the population
            variance).

    Returns:
        The variance, of the inputs' shape and dtype.

    Raises:
        TypeError: ``correction`` is not a number.
        ValueError: ``correction`` is negative.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]), torch.tensor([5.0, 8.0])]
        >>> fused_var(xs)
        tensor([ 4., 12.])
        >>> fused_var(xs, mask=torch.tensor([True, True, False]), correction=0)
        tensor([1., 0.])
    """
    return _spread("fused_var", _VAR_OP, xs, mask, correction)


def _spread(kernel: str, op: _Op, xs: Sequence[Tensor], mask: object, correction: object) -> Tensor:
    correction = _check_correction(correction)
    xs, checked = _check_xs(kernel, xs, mask)
    return _run(op, xs, checked, correction)


def fused_std(xs: Sequence[Tensor], mask: Tensor | None = None, correction: float = 1) -> Tensor:
    r"""Element-wise standard deviation of the present inputs, as ``torch.std(stack, dim=0)``:
    the square root of :func:`fused_var`. Its gradient is 0 (not ``nan``) where all present
    values are equal, as :func:`torch.std` gives.

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.
        correction: subtracted from the count (1: Bessel's correction).

    Returns:
        The standard deviation, of the inputs' shape and dtype.

    Raises:
        TypeError: ``correction`` is not a number.
        ValueError: ``correction`` is negative.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0]), torch.tensor([5.0, 8.0])]
        >>> fused_std(xs, correction=0) ** 2
        tensor([2.6667, 8.0000])
    """
    return _spread("fused_std", _STD_OP, xs, mask, correction)


def fused_logsumexp(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Element-wise :math:`\log \sum_{i \in P} e^{x_i}` of the present inputs, as
    ``torch.logsumexp(stack, dim=0)``, computed stably as
    :math:`m + \log \sum_{i \in P} e^{x_i - m}` with :math:`m = \max_{i \in P} x_i`.

    Its gradient is the softmax of the present inputs (0 for absent ones).

    Args:
        xs: the ``k`` inputs, all of one shape.
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The log-sum-exp, of the inputs' shape and dtype.

    Shape:
        - xs: ``k`` tensors ``(..., n)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([0.0, 1000.0]), torch.tensor([0.0, 1000.0])]
        >>> fused_logsumexp(xs)  # log 2 and 1000 + log 2, no overflow
        tensor([6.9315e-01, 1.0007e+03])
        >>> fused_logsumexp(xs, mask=torch.tensor([True, False]))
        tensor([   0., 1000.])
    """
    xs, mask = _check_xs("fused_logsumexp", xs, mask)
    return _run(_LSE_OP, xs, mask)


# =============================================================================================
# Blocked variance / standard deviation (large inputs): per cache-sized block, the mean of the
# present values, then the sum of squared deviations from it (two passes over data in cache,
# one over memory; exact like torch.var's two-pass algorithm).
# =============================================================================================
#: Variance and log-sum-exp keep three or four accumulators per block: blocks this many times
#: smaller keep their scratch at one block's worth of memory in all (peak ≈ output + 1 block).
_STAT_BLOCK_DIVISOR = 4


def _var_plain(ts: Sequence[Tensor], mask: Tensor | None, correction: float, root: bool) -> Tensor:
    # torch.var/std over a stack's first dimension is a slow strided reduction on the CPU (6x
    # the stack-free reference at k = 3, (32, 64); 40x at k = 4, (256, 256)): natively
    # only where a compiler or exporter records the graph.
    if mask is None and not _eager():
        reduce = torch.std if root else torch.var
        return reduce(torch.stack(list(ts)), 0, correction=correction)
    return _var_reference(ts, mask, correction, root)


def _var_reference(
    ts: Sequence[Tensor], mask: Tensor | None, correction: float, root: bool
) -> Tensor:
    var = _var_acc(ts, mask, correction)
    if root:
        positive = var > 0
        var = torch.where(positive, torch.where(positive, var, 1).sqrt(), var)
    return _finish(var, ts[0].dtype)


def _block_mean(
    order: Sequence[int], block: _Block, m: Tensor | None, n: Tensor | float, acc: Tensor
) -> None:
    """``acc = Σ_P xᵢ / n`` over the block (absent entries as ``x·0``: a placeholder that is
    not finite makes the block non-finite, and the caller redoes it)."""
    acc.zero_()
    for i in order:
        if m is None:
            acc.add_(block.xs[i])
        else:
            acc.addcmul_(block.xs[i], m[block.a : block.b, i : i + 1])
    acc.div_(_rows(n, block))


def _rows(t: Tensor | float, block: _Block) -> Tensor | float:
    """A per-row ``(units, 1)`` quantity's rows in the block; a number as it is."""
    return t[block.a : block.b] if isinstance(t, Tensor) else t


def _counts(plan: _Plan, correction: float) -> tuple[Tensor | None, Tensor | float, Tensor | float]:
    """Presence ``m`` (per-row masks only), the count ``n`` and the degrees of freedom."""
    m = _presence(plan, plan.acc_t) if plan.rows is not None else None
    n = m.sum(-1, keepdim=True) if m is not None else float(len(plan.present))
    dof = (n - correction).clamp(min=0) if isinstance(n, Tensor) else max(0.0, n - correction)
    return m, n, dof


def _var_forward(
    plan: _Plan, ts: Sequence[Tensor], correction: float, root: bool
) -> tuple[Tensor, Any]:
    per = max(1, plan.per_block // _STAT_BLOCK_DIVISOR)
    m, n, dof = _counts(plan, correction)
    order = _order(plan)
    mean, s1, dev = (plan.scratch(plan.acc_t, per) for _ in range(3))

    def step(block: _Block, acc: Tensor) -> Tensor:
        mu, acc1, d = mean[: block.n], s1[: block.n], dev[: block.n]
        _block_mean(order, block, m, n, mu)
        # The corrected two-pass algorithm: deviations from the rounded mean μ', whose error
        # the S₁²/n term removes (a float32 mean of 1e6 + noise is off by ~0.06).
        acc1.zero_()
        acc.zero_()
        for i in order:
            torch.sub(block.xs[i], mu, out=d)
            if m is not None:
                d.mul_(m[block.a : block.b, i : i + 1])
            acc1.add_(d)
            acc.addcmul_(d, d)
        acc.sub_(acc1.square_().div_(_rows(n, block))).clamp_(min=0)
        acc.div_(_rows(dof, block))
        if root:
            acc.sqrt_()
        return mu

    def redo(block: _Block, mask: Tensor | None) -> Tensor:
        return _var_reference(block.xs, mask, correction, root)

    return _blocked_forward(plan, ts, step, redo if m is not None else None, per_block=per)[0], None


def _var_backward(
    plan: _Plan, ts: Sequence[Tensor], g: _Grad, correction: float, root: bool
) -> list[Tensor | None]:
    """``∂var/∂xᵢ = 2(xᵢ − x̄)/dof``; ``∂std/∂xᵢ = (xᵢ − x̄)/(dof·std)``, 0 where std = 0."""
    per = max(1, plan.per_block // _STAT_BLOCK_DIVISOR)
    order = _order(plan)
    full = _mask_of(plan)
    if plan.rows is not None and full is not None:  # exact zeros for absent entries (nan)
        ts = [torch.where(_column(full, i), x, 0) for i, x in enumerate(ts)]
    m, n, dof = _counts(plan, correction)
    mean, h, dev = (plan.scratch(plan.acc_t, per) for _ in range(3))

    def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        mu, hb, d = mean[: block.n], h[: block.n], dev[: block.n]
        _block_mean(order, block, m, n, mu)
        hb.zero_()  # the mean's correction Σ(xᵢ − μ')/n, as in the forward
        for i in order:
            torch.sub(block.xs[i], mu, out=d)
            if m is not None:
                d.mul_(m[block.a : block.b, i : i + 1])
            hb.add_(d)
        mu.add_(hb.div_(_rows(n, block)))
        hb.copy_(gb).div_(_rows(dof, block))
        if root:
            hb.div_(block.out).masked_fill_(block.out == 0, 0)
        else:
            hb.mul_(2)
        for i, gi in dst.items():
            torch.mul(torch.sub(block.xs[i], mu), hb, out=gi)
            if block.rows is not None:
                gi.masked_fill_(~block.rows[:, i : i + 1], 0)

    return _blocked_backward(plan, ts, g.out, g.grad, g.needs, step, per_block=per)


def _var_op(root: bool) -> _Op:
    return _Op(
        "fused_std" if root else "fused_var",
        lambda ts, mask, c: _var_plain(ts, mask, c, root),
        lambda ts, mask, c: _var_reference(ts, mask, c, root),
        lambda plan, ts, c: _var_forward(plan, ts, c, root),
        lambda plan, ts, g, c: _var_backward(plan, ts, g, c, root),
    )


_VAR_OP, _STD_OP = _var_op(False), _var_op(True)


# =============================================================================================
# Blocked log-sum-exp (large inputs): per block the maximum of the present values, then the
# sum of exp(xᵢ − max); absent entries get −inf added (float arithmetic; a block whose result
# is not finite is redone with the reference formula).
# =============================================================================================
def _lse_plain(ts: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    if _chain(ts, mask) and len(ts) > 1 and _eager():
        # logaddexp (one fused op per input) skips the stack and logsumexp's five passes:
        # 2.5x faster at k = 3 of (32, 64), as fast with the backward. Eager only: the
        # exporters know logsumexp.
        out = torch.logaddexp(ts[0], ts[1])
        for x in ts[2:]:
            out = torch.logaddexp(out, x)
        return out
    return torch.logsumexp(_stacked(ts, mask, -math.inf), 0)


def _lse_reference(ts: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    acc_t = _acc_dtype(ts[0].dtype)
    with torch.no_grad():
        top = _extreme_ref(ts, mask, pick_max=True).to(acc_t)
        top = torch.where(torch.isfinite(top), top, 0)
    total = torch.zeros((), dtype=acc_t, device=ts[0].device)
    for i, x in enumerate(ts):
        x = x.to(acc_t)
        if mask is not None:
            x = torch.where(_column(mask, i), x, -math.inf)
        total = total + torch.exp(x - top)
    return _finish(top + total.log(), ts[0].dtype)


def _absent_bias(plan: _Plan) -> Tensor | None:
    """``(units, k)``: 0 for present entries, −inf for absent ones (per-row masks only)."""
    if plan.rows is None:
        return None
    bias = torch.zeros(plan.rows.shape, dtype=plan.acc_t, device=plan.device)
    return bias.masked_fill_(~plan.rows, -math.inf)


def _lse_forward(plan: _Plan, ts: Sequence[Tensor]) -> tuple[Tensor, Any]:
    per = max(1, plan.per_block // _STAT_BLOCK_DIVISOR)
    bias = _absent_bias(plan)
    order = _order(plan)
    top_s, tmp_s = (plan.scratch(plan.acc_t, per) for _ in range(2))

    def step(block: _Block, acc: Tensor) -> Tensor:
        a, b = block.a, block.b
        top, t = top_s[: block.n], tmp_s[: block.n]
        for pos, i in enumerate(order):
            dst = top if pos == 0 else t
            if bias is None:
                dst.copy_(block.xs[i])
            else:
                torch.add(block.xs[i], bias[a:b, i : i + 1], out=dst)
            if pos:
                torch.maximum(top, t, out=top)
        top.copy_(torch.where(torch.isfinite(top), top, 0))
        acc.zero_()
        for i in order:
            torch.sub(block.xs[i], top, out=t)
            if bias is not None:
                t.add_(bias[a:b, i : i + 1])
            acc.add_(t.exp_())
        return acc.log_().add_(top)

    def redo(block: _Block, mask: Tensor | None) -> Tensor:
        return _lse_reference(block.xs, mask)

    return _blocked_forward(plan, ts, step, redo if bias is not None else None, per_block=per)[
        0
    ], None


def _lse_backward(plan: _Plan, ts: Sequence[Tensor], g: _Grad) -> list[Tensor | None]:
    """``∂/∂xᵢ = exp(xᵢ − out)``, the softmax of the present inputs; exactly 0 for absent ones."""
    per = max(1, plan.per_block // _STAT_BLOCK_DIVISOR)
    tmp = plan.scratch(plan.acc_t, per)

    def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        t = tmp[: block.n]
        for i, gi in dst.items():
            torch.sub(block.xs[i], block.out, out=t)
            torch.mul(t.exp_(), gb, out=gi)
            if block.rows is not None:
                gi.masked_fill_(~block.rows[:, i : i + 1], 0)

    return _blocked_backward(plan, ts, g.out, g.grad, g.needs, step, per_block=per)


_LSE_OP = _Op("fused_logsumexp", _lse_plain, _lse_reference, _lse_forward, _lse_backward)

# The kernels without their checks, for modules that ran the same ones (Fusion.check_inputs).
_fused_var = partial(_run, _VAR_OP)
_fused_std = partial(_run, _STD_OP)
_fused_logsumexp = partial(_run, _LSE_OP)
