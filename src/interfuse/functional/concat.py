"""Concatenation of inputs of different widths, with zero-fill for absent inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interfuse.functional._common import _check_xs, _column

__all__ = ["concat", "masked_inputs"]


def masked_inputs(xs: Sequence[Tensor], mask: Tensor | None) -> list[Tensor]:
    """The inputs with every absent one replaced by zeros of its shape.

    Zeros come from ``torch.where``, not a multiplication, so a ``nan`` placeholder in an absent
    input cannot leak. The mask's type, shape and device are checked, not that it leaves an
    input present (see :func:`~interfuse.functional.check_mask`).

    Args:
        xs: the ``k`` inputs, ``(..., n_i)`` each (the same leading dims).
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        A new list; without a mask it holds the input tensors themselves.

    Shape:
        - xs: ``k`` tensors ``(..., n_i)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``k`` tensors ``(..., n_i)``.

    Example:
        >>> xs = [torch.ones(2), torch.full((3,), float("nan"))]
        >>> masked_inputs(xs, torch.tensor([True, False]))
        [tensor([1., 1.]), tensor([0., 0., 0.])]
    """
    xs, mask = _check_xs("masked_inputs", xs, mask, same_width=False)
    return _zero_absent(xs, mask)


def _zero_absent(xs: Sequence[Tensor], mask: Tensor | None) -> list[Tensor]:
    if mask is None:
        return list(xs)
    return [torch.where(_column(mask, i), x, 0) for i, x in enumerate(xs)]


def concat(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    r"""Concatenation along the last dimension, :math:`y = [x_1, \dots, x_k]`.

    Absent inputs contribute zeros of their width (see :func:`masked_inputs`), so the output
    width is always :math:`\sum_i n_i`. The result never aliases an input (a single input is
    cloned).

    Args:
        xs: the ``k`` inputs, ``(..., n_i)`` each (the same leading dims).
        mask: bool ``(k,)`` or ``(..., k)``, the inputs present; ``None``: all of them.

    Returns:
        The concatenation.

    Shape:
        - xs: ``k`` tensors ``(..., n_i)``; mask: ``(k,)`` or ``(..., k)``.
        - Output: ``(..., Σ n_i)``.

    Example:
        >>> xs = [torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0, 4.0], [5.0, 6.0]])]
        >>> concat(xs, mask=torch.tensor([[True, True], [True, False]]))
        tensor([[1., 3., 4.],
                [2., 0., 0.]])
    """
    xs, mask = _check_xs("concat", xs, mask, same_width=False)
    return _concat(xs, mask)


def _concat(xs: Sequence[Tensor], mask: Tensor | None) -> Tensor:
    if mask is None and len(xs) > 1:
        return torch.cat(list(xs), dim=-1)
    pieces = _zero_absent(xs, mask)
    return pieces[0].clone() if len(pieces) == 1 else torch.cat(pieces, dim=-1)
