"""Concatenation of inputs of different widths, with zero-fill for absent inputs."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from interfuse.functional.elementwise import _column

__all__ = ["concat", "masked_inputs"]


def masked_inputs(xs: Sequence[Tensor], mask: Tensor | None) -> list[Tensor]:
    """Replace absent inputs by zeros (``torch.where``, so a ``nan`` placeholder cannot leak)."""
    if mask is None:
        return list(xs)
    return [torch.where(_column(mask, i), x, 0) for i, x in enumerate(xs)]


def concat(xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
    """Concatenate along the last dimension; absent inputs contribute zeros of their width."""
    pieces = masked_inputs(xs, mask)
    return pieces[0].clone() if len(pieces) == 1 else torch.cat(pieces, dim=-1)
