"""Low-rank matrix ``W = L R``."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_positive_int
from interfuse.functional.structured import Inputs, lowrank_linear, lowrank_matrix
from interfuse.matrices.base import StructuredMatrix, warn_structure

__all__ = ["LowRankMatrix", "energy_rank", "svd_factors"]


def svd_factors(matrix: Tensor, rank: int | float) -> tuple[Tensor, Tensor]:
    """The balanced truncated SVD ``M ≈ L R``: ``L = U_r Σ_r^{1/2}``, ``R = Σ_r^{1/2} V_rᵀ``.

    The Frobenius-optimal rank-``r`` approximation (Eckart–Young). A rank above the matrix's
    smaller side gives zero columns of ``L`` and rows of ``R``.

    Args:
        matrix: ``M``, ``(m, n)``.
        rank: ``r`` as an int, or a float in ``(0, 1]``: the smallest rank keeping that
            fraction of the squared singular values (:func:`energy_rank`).

    Returns:
        ``L`` ``(m, r)`` and ``R`` ``(r, n)``.

    Example:
        >>> m = torch.randn(5, 1) @ torch.randn(1, 4)
        >>> left, right = svd_factors(m, 0.999)
        >>> left.shape, torch.allclose(left @ right, m, atol=1e-5)
        (torch.Size([5, 1]), True)
    """
    u, sv, vh = torch.linalg.svd(matrix, full_matrices=False)
    if isinstance(rank, float):
        rank = energy_rank(sv, rank)
    rank = check_positive_int("rank", rank)
    k = min(rank, sv.numel())
    root = sv[:k].sqrt()
    left = matrix.new_zeros(matrix.shape[0], rank)
    right = matrix.new_zeros(rank, matrix.shape[1])
    left[:, :k] = u[:, :k] * root
    right[:k] = root[:, None] * vh[:k]
    return left, right


def energy_rank(singular_values: Tensor, fraction: float) -> int:
    """The smallest rank ``r`` with ``Σ_{i<r} σ_i² >= fraction · Σ σ_i²``.

    Args:
        singular_values: ``σ``, sorted in decreasing order.
        fraction: the share of the squared singular values to keep, in ``(0, 1]``.

    Returns:
        ``r`` (at least 1).

    Example:
        >>> energy_rank(torch.tensor([3.0, 2.0, 1.0]), 0.9)  # 9 + 4 = 13 of 14
        2
    """
    if not 0.0 < fraction <= 1.0 or math.isnan(fraction):
        raise ValueError(f"rank as a float is a fraction in (0, 1], got {fraction!r}")
    energy = singular_values.double().square()
    total = float(energy.sum())
    if total == 0.0:
        return 1
    kept = torch.cumsum(energy, 0) / total
    # A float tolerance so that fraction=1.0 stops at the numerical rank's sum, not past it.
    return int((kept < fraction - 1e-12).sum()) + 1


class LowRankMatrix(StructuredMatrix):
    r"""A rank-``r`` matrix ``W = L R`` with ``L ∈ R^{out×r}``, ``R ∈ R^{r×in}``.

    Parameters: ``l = r·(in + out)``. Applied as ``(x Rᵀ) Lᵀ``: ``r·(in + out)`` multiply-adds
    per row instead of ``in·out``. A rank of ``min(in, out)`` or more has more parameters than
    the dense matrix and warns (:class:`~interfuse.matrices.StructureWarning`).

    :meth:`from_dense` truncates the SVD ``W = U Σ Vᵀ`` (the Eckart–Young optimum):
    ``L = U_r Σ_r^{1/2}``, ``R = Σ_r^{1/2} V_rᵀ``; ``rank`` may there be a float in ``(0, 1]``,
    the smallest rank keeping that fraction of ``Σ σ_i²``.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        rank: the rank ``r``.
        mode: ``'auto'`` (choose the cheaper product), ``'factored'`` or ``'dense'``.
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(..., in_features)`` or a list of pieces whose widths add up to it.
        - Output: ``(..., out_features)``.

    Example:
        >>> m = LowRankMatrix(4096, 1024, rank=8)
        >>> m.num_parameters
        40960
    """

    config_keys = ("rank",)

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int = 8,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, mode, bias)
        self.rank = check_positive_int("rank", rank)
        if rank >= min(in_features, out_features):
            warn_structure(
                f"LowRankMatrix with rank={rank} >= min(in_features, out_features)="
                f"{min(in_features, out_features)} has {rank * (in_features + out_features)} "
                f"parameters, more than the dense matrix's {in_features * out_features}; use "
                "DenseMatrix or a smaller rank"
            )
        kw = self._factory(device, dtype)
        self.left = nn.Parameter(torch.empty(out_features, rank, **kw))
        self.right = nn.Parameter(torch.empty(rank, in_features, **kw))
        self._init_bias(**kw)
        self.reset_parameters()

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        rank = check_positive_int("rank", kwargs.get("rank", 8))
        return rank * (in_features + out_features)

    def reset_parameters(self) -> None:
        # Var(W) = r·Var(L)·Var(R) = 1/(3·in), the variance of nn.Linear's initialization.
        nn.init.uniform_(self.left, -1 / math.sqrt(self.rank), 1 / math.sqrt(self.rank))
        bound = math.sqrt(3 / self.in_features)
        nn.init.uniform_(self.right, -bound, bound)
        self._reset_bias()

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        left, right = svd_factors(weight, options.get("rank", 8))
        return {**options, "rank": left.shape[1]}, {"left": left, "right": right}

    def reset_to_identity(self) -> None:
        if self.rank < min(self.in_features, self.out_features):
            super().reset_to_identity()
        with torch.no_grad():
            self.left.copy_(torch.eye(self.out_features, self.rank))
            self.right.copy_(torch.eye(self.rank, self.in_features))

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return lowrank_linear(x, self.left, self.right, bias)

    def materialize(self) -> Tensor:
        return lowrank_matrix(self.left, self.right)

    def factored_flops(self, rows: int) -> int:
        return rows * self.rank * (self.in_features + self.out_features)

    def build_flops(self) -> int:
        return self.rank * self.in_features * self.out_features
