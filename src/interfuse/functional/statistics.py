r"""Element-wise statistics over ``k`` equally shaped inputs: variance, standard deviation and
log-sum-exp of the present inputs, without stacking them.

Each equals the matching :mod:`torch` reduction over the stacked *present* inputs (``dim=0``),
``correction`` included, but reads every input once into output-sized accumulators.

* Variance: the sum and the sum of squares in one pass, both shifted by a present value
  :math:`c` (the first present input): :math:`s_1 = \sum_{i \in P} (x_i - c)`,
  :math:`s_2 = \sum_{i \in P} (x_i - c)^2`, :math:`\operatorname{var} =
  (s_2 - s_1^2/n) / \max(0, n - \text{correction})`. The shift keeps the cancellation
  harmless when the values share a large common offset (``1e6 + noise`` in float32), which
  the unshifted textbook formula loses entirely.
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

import torch
from torch import Tensor

from interfuse.functional._common import _acc_dtype, _check_xs, _column, _count, _finish
from interfuse.functional.elementwise import _extreme_ref

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
    correction = _check_correction(correction)
    xs, mask = _check_xs("fused_var", xs, mask)
    return _finish(_var_acc(xs, mask, correction), xs[0].dtype)


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
    correction = _check_correction(correction)
    xs, mask = _check_xs("fused_std", xs, mask)
    var = _var_acc(xs, mask, correction)
    positive = var > 0
    std = torch.where(positive, torch.where(positive, var, 1).sqrt(), var)
    return _finish(std, xs[0].dtype)


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
    acc_t = _acc_dtype(xs[0].dtype)
    with torch.no_grad():
        top = _extreme_ref(xs, mask, pick_max=True).to(acc_t)
        top = torch.where(torch.isfinite(top), top, 0)
    total = torch.zeros((), dtype=acc_t, device=xs[0].device)
    for i, x in enumerate(xs):
        x = x.to(acc_t)
        if mask is not None:
            x = torch.where(_column(mask, i), x, -math.inf)
        total = total + torch.exp(x - top)
    return _finish(top + total.log(), xs[0].dtype)
