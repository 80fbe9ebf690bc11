"""Low-rank matrix ``W = L R``."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_positive_int
from interfuse.functional.structured import Inputs, lowrank_linear, lowrank_matrix
from interfuse.matrices.base import StructuredMatrix

__all__ = ["LowRankMatrix"]


class LowRankMatrix(StructuredMatrix):
    r"""A rank-``r`` matrix ``W = L R`` with ``L ∈ R^{out×r}``, ``R ∈ R^{r×in}``.

    Parameters: ``l = r·(in + out)``. Applied as ``(x Rᵀ) Lᵀ``: ``r·(in + out)`` multiply-adds
    per row instead of ``in·out``.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        rank: the rank ``r``.
        mode: ``'auto'`` (choose the cheaper product), ``'factored'`` or ``'dense'``.
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
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, mode)
        self.rank = check_positive_int("rank", rank)
        kw = self._factory(device, dtype)
        self.left = nn.Parameter(torch.empty(out_features, rank, **kw))
        self.right = nn.Parameter(torch.empty(rank, in_features, **kw))
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
