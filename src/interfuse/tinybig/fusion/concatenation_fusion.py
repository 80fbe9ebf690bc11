r"""tinyBIG's ``tinybig.fusion.concatenation_fusion``: concatenation along the last dimension."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interfuse import functional as fn
from interfuse.tinybig.module.base_fusion import Dims, fusion

__all__ = ["concatenation_fusion"]


class concatenation_fusion(fusion):
    r"""Concatenation of ``k`` inputs along the last dimension (their widths may differ).

    .. math:: \text{fusion}(A_1, …, A_k) = A_1 \sqcup \cdots \sqcup A_k, \qquad n = \sum_i n_i

    ``require_parameters`` is accepted and ignored (always ``False``).

    Args:
        dims: widths ``n_i`` of the inputs, or ``None``.
        require_parameters: ignored, as in tinyBIG.
        **kwargs: every other argument as :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)`` with equal leading dimensions.
        - Output: ``(*, Σ n_i)``.

    Example:
        >>> f = concatenation_fusion(dims=[2, 1])
        >>> f.calculate_n()
        3
        >>> f([torch.zeros(1, 2), torch.ones(1, 1)])
        tensor([[0., 0., 1.]])
    """

    def __init__(
        self,
        dims: Dims | None = None,
        name: str = "concatenation_fusion",
        require_parameters: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dims=dims, name=name, require_parameters=False, **kwargs)

    def calculate_n(self, dims: Dims | None = None, *args: Any, **kwargs: Any) -> int:
        """``Σ dims`` (the concatenated width); a ``ValueAssertionError`` if ``dims`` is unknown."""
        return int(sum(self._dims_or_raise(dims)))

    def calculate_l(self, *args: Any, **kwargs: Any) -> int:
        """0: concatenation takes no parameters."""
        return 0

    _same_shape = False

    def _fuse(self, xs: list[Tensor], w: Tensor | None) -> Tensor:
        return fn.concat(xs)
