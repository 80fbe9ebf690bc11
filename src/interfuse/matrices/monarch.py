r"""Monarch matrices (Dao et al., 2022): full rank in ``O(n√n)`` parameters and flops.

``W = P L Pᵀ R`` with ``R`` block-diagonal (``k`` blocks of ``k × t``), ``L`` block-diagonal
(``k`` blocks of ``s × k``) and ``P`` a fixed grid transposition; ``in = k·t``, ``out = k·s``.
Entry by entry ``W_{uk+j, it+τ} = L_{jui} R_{ijτ}``: each of the ``k²`` blocks
``{rows uk + j} × {columns it + τ}`` is the rank-one product of its own two vectors, which
gives the Frobenius projection (:meth:`MonarchMatrix.from_dense`: the leading singular pair
of every block) and the parameter count ``k·(in + out)`` (``2n√n`` for ``n × n``, ``k = √n``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_positive_int
from interfuse.functional.structured import Inputs, _add_bias, _check_linear, as_tensor_input
from interfuse.matrices.base import StructuredMatrix, warn_structure

__all__ = ["MonarchMatrix", "choose_monarch_blocks", "monarch_linear", "monarch_matrix"]


def monarch_linear(x: Inputs, left: Tensor, right: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Monarch product :math:`y = x (P L P^\top R)^\top + b` (Dao et al. 2022), never building
    the ``(out, in)`` matrix.

    ``R`` is block-diagonal with ``k`` blocks ``right[i]`` of shape ``(k, t)``, ``L`` with
    ``k`` blocks ``left[j]`` of shape ``(s, k)``, and ``P`` transposes a grid (``Pᵀ`` the
    ``k × k`` one between them, ``P`` the ``k × s`` one at the output):

    .. math::
        y_{u k + j} = \sum_i L_{j u i} \sum_\tau R_{i j \tau}\, x_{i t + \tau}

    Two batched GEMMs: ``k·(in + out)`` multiply-adds per row, against ``in·out`` dense (for
    ``n × n`` with ``k = √n``: ``2n√n``). Every ``W`` entry is one product
    ``L_{jui} R_{ijτ}``, so each ``(i, j)`` block of ``W`` has rank one.

    Args:
        x: ``(..., k·t)``, or pieces whose widths add up to it (concatenated first).
        left: ``L``'s blocks, ``(k, s, k)``.
        right: ``R``'s blocks, ``(k, k, t)``.
        bias: ``(k·s,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the factors are not 3-D with matching ``k``, or ``x`` is not ``k·t`` wide.

    Shape:
        - x: ``(..., k·t)``; left: ``(k, s, k)``; right: ``(k, k, t)``.
        - Output: ``(..., k·s)``.

    Example:
        >>> x, left, right = torch.randn(5, 6), torch.randn(2, 4, 2), torch.randn(2, 2, 3)
        >>> y = monarch_linear(x, left, right)
        >>> y.shape, torch.allclose(y, x @ monarch_matrix(left, right).T, atol=1e-5)
        (torch.Size([5, 8]), True)
    """
    k, s, t = _check_monarch(left, right)
    _check_linear("monarch_linear", x, k * t, k * s, bias)
    x = as_tensor_input(x)
    lead = x.shape[:-1]
    rows = x.reshape(-1, k, t).transpose(0, 1)  # (k, N, t): block i of every row, no copy
    # z[i] = R_i X_iᵀ, (k_i, k_j, N): its j-th slices over i are unit-stride rows, which the
    # second batched GEMM reads in place (the Pᵀ permutation costs no copy).
    z = torch.bmm(right, rows.transpose(1, 2))
    v = torch.bmm(left, z.transpose(0, 1))  # (k_j, s, N)
    y = v.permute(2, 1, 0).reshape(*lead, s * k)  # P: output u·k + j
    return _add_bias(y, bias)


def monarch_matrix(left: Tensor, right: Tensor) -> Tensor:
    r"""Materialize the Monarch matrix :math:`W = P L P^\top R` (see :func:`monarch_linear`):
    :math:`W_{u k + j,\, i t + \tau} = L_{j u i} R_{i j \tau}`.

    Args:
        left: ``L``'s blocks, ``(k, s, k)``.
        right: ``R``'s blocks, ``(k, k, t)``.

    Returns:
        ``W``.

    Shape:
        - left: ``(k, s, k)``; right: ``(k, k, t)``.
        - Output: ``(k·s, k·t)``.

    Example:
        >>> eye = torch.eye(2).expand(2, 2, 2)  # L_jui = δ_ui and R_ijτ = δ_jτ: W = I
        >>> torch.equal(monarch_matrix(eye, eye), torch.eye(4))
        True
    """
    k, s, t = _check_monarch(left, right)
    # w[u, j, i, τ] = left[j, u, i] · right[i, j, τ]
    w = left.permute(1, 0, 2).unsqueeze(-1) * right.transpose(0, 1).unsqueeze(0)
    return w.reshape(s * k, k * t)


def _check_monarch(left: Tensor, right: Tensor) -> tuple[int, int, int]:
    for name, f in (("left", left), ("right", right)):
        if not isinstance(f, Tensor) or f.ndim != 3:
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"monarch: {name} must be a 3-D tensor of blocks, got {got}")
    k = right.shape[0]
    if right.shape[1] != k or left.shape[0] != k or left.shape[2] != k:
        raise ValueError(
            f"monarch: left must be (k, s, k) and right (k, k, t) with one k, got "
            f"{tuple(left.shape)} and {tuple(right.shape)}"
        )
    return k, left.shape[1], right.shape[2]


def choose_monarch_blocks(in_features: int, out_features: int) -> int:
    """The default number of blocks ``k`` of a Monarch matrix.

    The smallest common divisor ``k`` of ``in_features`` and ``out_features`` with
    ``k² >= min(in_features, out_features)`` (so that the matrix can have full rank, with the
    fewest parameters ``k·(in + out)``): ``√n`` for ``n × n`` when ``n`` is a square. When no
    common divisor is that large (e.g. coprime sizes), the greatest common divisor, whose
    ``k²`` caps the rank: a :class:`~interfuse.matrices.StructureWarning` says so.

    Args:
        in_features: width of the input.
        out_features: width of the output.

    Returns:
        ``k``.

    Example:
        >>> choose_monarch_blocks(4096, 4096), choose_monarch_blocks(4096, 1024)
        (64, 32)
        >>> choose_monarch_blocks(12, 6)
        3
    """
    check_positive_int("in_features", in_features)
    check_positive_int("out_features", out_features)
    need = min(in_features, out_features)
    gcd = math.gcd(in_features, out_features)
    for k in range(1, gcd + 1):
        if gcd % k == 0 and k * k >= need:
            return k
    if need >= 16:
        warn_structure(
            f"MonarchMatrix {in_features} → {out_features}: the largest number of blocks "
            f"dividing both sizes is {gcd}, so the rank is at most {gcd * gcd} of {need}; "
            "choose sizes with a larger common divisor (e.g. pad them) for a full-rank Monarch"
        )
    return gcd


class MonarchMatrix(StructuredMatrix):
    r"""``W = P L Pᵀ R`` with block-diagonal ``L``, ``R`` (Monarch): ``l = k·(in + out)``.

    ``R`` has ``k`` blocks ``(k, t)``, ``L`` has ``k`` blocks ``(s, k)``, ``t = in/k``,
    ``s = out/k``; ``P`` transposes a grid. Applied as two batched GEMMs
    (:func:`monarch_linear`): ``k·(in + out)`` multiply-adds
    per row instead of ``in·out``. Full rank is possible when ``k² >= min(in, out)``; the
    ``n × n`` Monarch with ``k = √n`` holds the identity (:meth:`reset_to_identity`).

    Sizes: ``num_blocks`` must divide both ``in_features`` and ``out_features`` (non-square
    sizes are fine, e.g. ``4096 → 1024`` with ``k = 32``). Sizes without a large common divisor
    get a small ``k`` and a capped rank (with a warning, see :func:`choose_monarch_blocks`):
    pad such sizes rather than rely on it.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        num_blocks: ``k``, dividing both widths; ``None``: :func:`choose_monarch_blocks`.
        mode: ``'auto'``, ``'factored'`` or ``'dense'``.
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(..., in_features)`` (a list of pieces is concatenated first).
        - Output: ``(..., out_features)``.

    Example:
        >>> m = MonarchMatrix(4096, 4096)
        >>> m.num_blocks, m.num_parameters  # 64 · (4096 + 4096), against 16,777,216 dense
        (64, 524288)
        >>> x = torch.randn(3, 16)
        >>> small = MonarchMatrix(16, 16)
        >>> torch.allclose(small(x), x @ small.materialize().T, atol=1e-5)
        True
    """

    config_keys = ("num_blocks",)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_blocks: int | None = None,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, mode, bias)
        k = _resolve_blocks(in_features, out_features, num_blocks)
        self.num_blocks = k
        self.t, self.s = in_features // k, out_features // k
        kw = self._factory(device, dtype)
        self.left = nn.Parameter(torch.empty(k, self.s, k, **kw))
        self.right = nn.Parameter(torch.empty(k, k, self.t, **kw))
        self._init_bias(**kw)
        self.reset_parameters()
        self._warn_if_larger_than_dense()

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        k = _resolve_blocks(in_features, out_features, kwargs.get("num_blocks"))
        return k * (in_features + out_features)

    def reset_parameters(self) -> None:
        # Each entry of W is one product L·R: Var(W) = (1/k)·(1/(3t)) = 1/(3·in), as nn.Linear.
        bound_left = math.sqrt(3 / self.num_blocks)
        nn.init.uniform_(self.left, -bound_left, bound_left)
        nn.init.uniform_(self.right, -1 / math.sqrt(self.t), 1 / math.sqrt(self.t))
        self._reset_bias()

    @classmethod
    def identity_options(cls, dim: int, **options: Any) -> dict[str, Any]:
        chosen = dict(options)
        root = math.isqrt(dim)
        if "num_blocks" not in chosen and root * root == dim:
            chosen["num_blocks"] = root
        return chosen

    def reset_to_identity(self) -> None:
        k = self.num_blocks
        if self.in_features != self.out_features or k * k != self.in_features:
            raise ValueError(
                f"MonarchMatrix can start as the identity only when square with num_blocks² = "
                f"in_features; got in_features={self.in_features}, "
                f"out_features={self.out_features}, num_blocks={k}"
            )
        # W_{uk+j, ik+τ} = L_jui R_ijτ = δ_ui δ_jτ.
        eye = torch.eye(k, device=self.left.device, dtype=self.left.dtype)
        with torch.no_grad():
            self.left.copy_(eye.expand(k, k, k))  # left[j, u, i] = δ_ui
            self.right.copy_(eye.expand(k, k, k))  # right[i, j, τ] = δ_jτ

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        out_features, in_features = weight.shape
        k = _resolve_blocks(in_features, out_features, options.get("num_blocks"))
        s, t = out_features // k, in_features // k
        # blocks[j, i] = W[u·k + j, i·t + τ] over (u, τ): (k, k, s, t)
        blocks = weight.reshape(s, k, k, t).permute(1, 2, 0, 3)
        u, sv, vh = torch.linalg.svd(blocks, full_matrices=False)
        root = sv[..., 0].sqrt()  # (k_j, k_i)
        left = (u[..., 0] * root[..., None]).permute(0, 2, 1)  # left[j, u, i]
        right = (vh[..., 0, :] * root[..., None]).transpose(0, 1)  # right[i, j, τ]
        return {**options, "num_blocks": k}, {"left": left, "right": right}

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return monarch_linear(x, self.left, self.right, bias)

    def materialize(self) -> Tensor:
        return monarch_matrix(self.left, self.right)

    def factored_flops(self, rows: int) -> int:
        return rows * self.num_blocks * (self.in_features + self.out_features)


def _resolve_blocks(in_features: int, out_features: int, num_blocks: int | None) -> int:
    if num_blocks is None:
        return choose_monarch_blocks(in_features, out_features)
    k = check_positive_int("num_blocks", num_blocks)
    if in_features % k or out_features % k:
        gcd = math.gcd(in_features, out_features)
        common = [d for d in range(1, gcd + 1) if gcd % d == 0]
        raise ValueError(
            f"num_blocks={k} must divide both in_features={in_features} and "
            f"out_features={out_features} (the blocks are in/k wide and out/k tall); choose "
            f"one of {common}"
        )
    return k
