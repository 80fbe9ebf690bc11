r"""Structured-matrix products applied in factored form.

Every kernel computes ``y = x @ Wᵀ (+ bias)`` in the :class:`torch.nn.Linear` layout, where
``W`` has shape ``(out_features, in_features)``, **without building W**. ``x`` may be one
tensor of shape ``(..., in_features)`` or a list of tensors whose widths add up to
``in_features`` (a concatenation that is never materialized where the first factor is dense
along the input: dense, low-rank and random-adapted kernels accumulate one GEMM per piece).

| kernel | W | factors |
|---|---|---|
| :func:`dense_linear` | ``W`` | ``weight (out, in)`` |
| :func:`lowrank_linear` | ``L R`` | ``left (out, r)``, ``right (r, in)`` |
| :func:`kron_linear` | ``A ⊗ B`` | ``a (p, q)``, ``b (s, t)``; ``out = p·s``, ``in = q·t`` |
| :func:`lowrank_kron_linear` | ``A ⊗ (S T)`` | ``a (p, q)``, ``s_left (s, r)``, ``s_right (r, t)`` |
| :func:`dual_lowrank_kron_linear` | ``(P Q) ⊗ (S T)`` | ``p_left (p, r)``, ``p_right (r, q)``, ``s_left``, ``s_right`` |
| :func:`random_adapted_linear` | ``diag(λ_out) R_out diag(λ_r) R_inᵀ diag(λ_in)`` | ``r_out (out, r)``, ``r_in (in, r)``, scales |

The ``*_matrix`` functions materialize the same ``W`` (for tests, export and small sizes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Inputs",
    "as_tensor_input",
    "dense_linear",
    "dual_lowrank_kron_linear",
    "dual_lowrank_kron_matrix",
    "kron_linear",
    "kron_matrix",
    "lowrank_kron_linear",
    "lowrank_kron_matrix",
    "lowrank_linear",
    "lowrank_matrix",
    "random_adapted_linear",
    "random_adapted_matrix",
]

Inputs = Tensor | Sequence[Tensor]


def as_tensor_input(x: Inputs) -> Tensor:
    """Return ``x`` itself, or the concatenation of a list of pieces along the last dim."""
    if isinstance(x, Tensor):
        return x
    return x[0] if len(x) == 1 else torch.cat(list(x), dim=-1)


def _split_linear(xs: Sequence[Tensor], weight: Tensor) -> Tensor:
    """``cat(xs, -1) @ weight.T`` as one GEMM per piece accumulated in place (no concat copy)."""
    lead = xs[0].shape[:-1]
    out: Tensor | None = None
    offset = 0
    for x in xs:
        width = x.shape[-1]
        w_piece = weight[:, offset : offset + width]
        x2 = x.reshape(-1, width)
        # addmm_ overwrites only ``out``, which no backward formula needs, so autograd is safe.
        out = x2 @ w_piece.t() if out is None else out.addmm_(x2, w_piece.t())
        offset += width
    if offset != weight.shape[1]:
        raise ValueError(
            f"x: the input widths add up to {offset} but the matrix expects "
            f"in_features={weight.shape[1]}"
        )
    if out is None:  # pragma: no cover - callers pass at least one piece
        raise ValueError("x must hold at least one tensor")
    return out.reshape(*lead, weight.shape[0])


def _first_stage(x: Inputs, weight: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return F.linear(x, weight)
    if len(x) == 1:
        return F.linear(x[0], weight)
    return _split_linear(x, weight)


def dense_linear(x: Inputs, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weightᵀ + bias``; a list ``x`` is projected piece by piece, never concatenated."""
    y = _first_stage(x, weight)
    return y if bias is None else y + bias


def lowrank_linear(x: Inputs, left: Tensor, right: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ (left @ right)ᵀ`` as ``(x @ rightᵀ) @ leftᵀ``: ``r·(in + out)`` flops per row."""
    return F.linear(_first_stage(x, right), left, bias)


def lowrank_matrix(left: Tensor, right: Tensor) -> Tensor:
    """Materialize ``left @ right``."""
    return left @ right


def _kron_core(x: Tensor, a: Tensor, b_apply: _BApply, s: int, t: int) -> Tensor:
    p, q = a.shape
    lead = x.shape[:-1]
    if x.shape[-1] != q * t:
        raise ValueError(
            f"x has width {x.shape[-1]} but the Kronecker matrix expects in_features={q * t}"
        )
    # y[i, k] = Σ_j a[i, j] (X bᵀ)[j, k] with X = x viewed as (q, t): first contract the wide
    # axis t with one large GEMM, then mix the q blocks with a.
    z = b_apply(x.reshape(-1, t)).reshape(-1, q, s)  # (N, q, s)
    y = torch.matmul(a, z)  # (N, p, s)
    return y.reshape(*lead, p * s)


class _BApply:
    """Applies the right Kronecker factor ``B`` (s, t) to rows: ``rows @ Bᵀ``."""

    def __init__(self, b: Tensor | None = None, left: Tensor | None = None, right: Tensor | None = None):
        self.b, self.left, self.right = b, left, right

    def __call__(self, rows: Tensor) -> Tensor:
        if self.b is not None:
            return F.linear(rows, self.b)
        if self.left is None or self.right is None:  # pragma: no cover - constructed internally
            raise ValueError("B needs either b or (left, right)")
        return F.linear(F.linear(rows, self.right), self.left)


def _add_bias(y: Tensor, bias: Tensor | None) -> Tensor:
    return y if bias is None else y + bias


def kron_linear(x: Inputs, a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ (a ⊗ b)ᵀ`` via ``a X bᵀ`` on ``x`` viewed as ``(q, t)`` blocks, never forming ``a ⊗ b``."""
    s, t = b.shape
    return _add_bias(_kron_core(as_tensor_input(x), a, _BApply(b=b), s, t), bias)


def kron_matrix(a: Tensor, b: Tensor) -> Tensor:
    """Materialize ``a ⊗ b`` (:func:`torch.kron`)."""
    return torch.kron(a, b)


def lowrank_kron_linear(
    x: Inputs, a: Tensor, s_left: Tensor, s_right: Tensor, bias: Tensor | None = None
) -> Tensor:
    """``x @ (a ⊗ (s_left @ s_right))ᵀ`` with the low-rank factor applied in two thin GEMMs."""
    s, t = s_left.shape[0], s_right.shape[1]
    b_apply = _BApply(left=s_left, right=s_right)
    return _add_bias(_kron_core(as_tensor_input(x), a, b_apply, s, t), bias)


def lowrank_kron_matrix(a: Tensor, s_left: Tensor, s_right: Tensor) -> Tensor:
    """Materialize ``a ⊗ (s_left @ s_right)``."""
    return torch.kron(a, s_left @ s_right)


def dual_lowrank_kron_linear(
    x: Inputs,
    p_left: Tensor,
    p_right: Tensor,
    s_left: Tensor,
    s_right: Tensor,
    bias: Tensor | None = None,
) -> Tensor:
    """``x @ ((p_left @ p_right) ⊗ (s_left @ s_right))ᵀ``; the small ``(p, q)`` factor is built."""
    return lowrank_kron_linear(x, p_left @ p_right, s_left, s_right, bias)


def dual_lowrank_kron_matrix(
    p_left: Tensor, p_right: Tensor, s_left: Tensor, s_right: Tensor
) -> Tensor:
    """Materialize ``(p_left @ p_right) ⊗ (s_left @ s_right)``."""
    return torch.kron(p_left @ p_right, s_left @ s_right)


def random_adapted_linear(
    x: Inputs,
    r_out: Tensor,
    r_in: Tensor,
    scale_rank: Tensor,
    scale_out: Tensor | None = None,
    scale_in: Tensor | None = None,
    bias: Tensor | None = None,
) -> Tensor:
    """``x @ Wᵀ`` for ``W = diag(scale_out) r_out diag(scale_rank) r_inᵀ diag(scale_in)``.

    ``r_out`` is ``(out, r)`` and ``r_in`` is ``(in, r)`` (usually frozen random buffers); the
    diagonal scalings are broadcasts, never ``diag`` matrices.
    """
    if scale_in is not None:
        x = x * scale_in if isinstance(x, Tensor) else as_tensor_input(x) * scale_in
    h = _first_stage(x, r_in.t()) * scale_rank
    y = F.linear(h, r_out)
    if scale_out is not None:
        y = y * scale_out
    return _add_bias(y, bias)


def random_adapted_matrix(
    r_out: Tensor,
    r_in: Tensor,
    scale_rank: Tensor,
    scale_out: Tensor | None = None,
    scale_in: Tensor | None = None,
) -> Tensor:
    """Materialize ``diag(scale_out) r_out diag(scale_rank) r_inᵀ diag(scale_in)``."""
    w = (r_out * scale_rank) @ r_in.t()
    if scale_out is not None:
        w = w * scale_out[:, None]
    if scale_in is not None:
        w = w * scale_in
    return w
