"""Dense (unstructured) matrix: the reference every structured matrix is compared with."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from interfuse.functional.structured import Inputs, dense_linear
from interfuse.matrices.base import StructuredMatrix

__all__ = ["DenseMatrix"]


class DenseMatrix(StructuredMatrix):
    r"""A full matrix ``W ∈ R^{out×in}``: ``l = out·in`` parameters.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        mode: ``'auto'``, ``'factored'`` or ``'dense'`` (the same product here).
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameter.
        dtype: dtype of the parameter.

    Shape:
        - Input: ``(..., in_features)`` or a list of pieces whose widths add up to it
          (projected piece by piece, never concatenated).
        - Output: ``(..., out_features)``.

    Example:
        >>> m = DenseMatrix(6, 3)
        >>> m(torch.randn(2, 6)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, mode, bias)
        kw = self._factory(device, dtype)
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **kw))
        self._init_bias(**kw)
        self.reset_parameters()

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        return in_features * out_features

    def reset_parameters(self) -> None:
        # The nn.Linear initialization: U(-1/√in, 1/√in).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self._reset_bias()

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        return options, {"weight": weight}

    def reset_to_identity(self) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.eye(self.out_features, self.in_features))

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return dense_linear(x, self.weight, bias)

    def use_factored(self, rows: int) -> bool:
        return True  # the "factored" kernel is the dense GEMM, with split accumulation

    def materialize(self) -> Tensor:
        return self.weight

    def factored_flops(self, rows: int) -> int:
        return rows * self.in_features * self.out_features

    def build_flops(self) -> int:
        return 0
