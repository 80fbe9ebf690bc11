r"""Element-wise fusions: ``k`` inputs of one shape ``(..., n)`` give one output ``(..., n)``.

Every class calls one kernel of :mod:`interfuse.functional`, which accumulates into a single
output-sized buffer instead of stacking the inputs into a ``(k, ..., n)`` copy (the median,
which must see all ``k`` values at once, is the exception). :math:`P` below is the set of
present inputs (all of them without a mask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_factory_dtype, check_positive_int, resolve_choice
from interfuse.functional import elementwise as ew

# The kernels without their checks (check_inputs ran the same ones), bound to the public
# kernels' names: one lookup per call, and tools that count kernel calls see them.
from interfuse.functional.elementwise import _fused_max as fused_max
from interfuse.functional.elementwise import _fused_mean as fused_mean
from interfuse.functional.elementwise import _fused_median as fused_median
from interfuse.functional.elementwise import _fused_min as fused_min
from interfuse.functional.elementwise import _fused_norm as fused_norm
from interfuse.functional.elementwise import _fused_prod as fused_prod
from interfuse.functional.elementwise import _fused_sum as fused_sum
from interfuse.functional.elementwise import _weighted_sum as weighted_sum
from interfuse.fusion.base import Fusion

__all__ = [
    "MaxFusion",
    "MeanFusion",
    "MedianFusion",
    "MinFusion",
    "NormFusion",
    "ProdFusion",
    "SumFusion",
    "WeightedSumFusion",
]

_NORMALIZE = ("none", "softmax")
_MEDIAN_MODES = ("lower", "mean")


class _Elementwise(Fusion):
    """Element-wise fusions: identical input shapes, output width ``n``."""

    same_shape = True

    def out_features(self, in_dims: Sequence[int]) -> int:
        return self.check_in_dims(in_dims)[0]


class _ParameterFree(_Elementwise):
    """Element-wise fusions without parameters; ``num_inputs`` is optional (positional here, as
    in :class:`WeightedSumFusion`; keyword-only where the first argument is the fusion's own)."""

    def __init__(self, num_inputs: int | None = None) -> None:
        super().__init__(num_inputs)

    def get_config(self) -> dict[str, Any]:
        return {"num_inputs": self.num_inputs}


class WeightedSumFusion(_Elementwise):
    r"""Weighted sum :math:`y = \sum_i w_i x_i` with fixed or learnable weights.

    With ``normalize='softmax'`` the weights used are :math:`\operatorname{softmax}(w)`. With a
    mask the present weights are rescaled to keep the total,
    :math:`y = \frac{\sum_j w_j}{\sum_{i \in P} w_i} \sum_{i \in P} w_i x_i`: for weights that
    sum to one (softmax, or the default :math:`1/k`) this is the weighted mean of the present
    inputs (with softmax: a softmax over the present inputs only). Unnormalized weights whose
    present part sums to zero give a non-finite result; prefer ``'softmax'`` with masks.

    Args:
        num_inputs: the number of inputs ``k``.
        weights: initial weights, ``k`` numbers (logits when ``normalize='softmax'``);
            ``None`` gives :math:`1/k` each. :meth:`reset_parameters` restores them.
        learnable: ``True``: an ``nn.Parameter`` ``weight``; ``False``: a buffer (fixed, in the
            ``state_dict``, moved by ``.to()``).
        normalize: ``'none'`` or ``'softmax'``.
        device: device of the weights.
        dtype: dtype of the weights.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``.
        - mask: ``(k,)`` or ``(..., k)``, bool.
        - Output: ``(..., n)``.

    Example:
        >>> f = WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], learnable=False)
        >>> f([torch.full((2, 4), v) for v in (1.0, 2.0, 3.0)])[0]
        tensor([2.1000, 2.1000, 2.1000, 2.1000])
        >>> f.num_parameters, WeightedSumFusion(3).num_parameters
        (0, 3)
    """

    weight: Tensor

    def __init__(
        self,
        num_inputs: int,
        weights: Sequence[float] | Tensor | None = None,
        learnable: bool = True,
        normalize: str = "none",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(check_positive_int("num_inputs", num_inputs))
        dtype = check_factory_dtype(dtype)
        self.initial_weights = _check_weights(weights, num_inputs)
        if not isinstance(learnable, bool):
            raise TypeError(f"learnable must be a bool, got {learnable!r}")
        self.learnable = learnable
        self.normalize = resolve_choice("normalize", normalize, _NORMALIZE)
        weight = torch.empty(num_inputs, device=device, dtype=dtype)
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer("weight", weight)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = len(self.weight)
        init = self.initial_weights or (1.0 / k,) * k
        with torch.no_grad():
            self.weight.copy_(torch.tensor(init, dtype=self.weight.dtype))

    def fusion_weights(self) -> Tensor:
        """The weights the sum uses: ``weight``, or its softmax."""
        return self.weight.softmax(0) if self.normalize == "softmax" else self.weight

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return weighted_sum(xs, self.fusion_weights(), mask, True)

    def get_config(self) -> dict[str, Any]:
        weights = None if self.initial_weights is None else list(self.initial_weights)
        return {
            "num_inputs": self.num_inputs,
            "weights": weights,
            "learnable": self.learnable,
            "normalize": self.normalize,
        }


def _check_weights(weights: object, k: int) -> tuple[float, ...] | None:
    if weights is None:
        return None
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (Sequence, Tensor)):
        raise TypeError(f"weights must be a sequence of {k} numbers or a tensor, got {weights!r}")
    try:
        values = torch.as_tensor(weights, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"weights must hold {k} numbers, got {weights!r}") from err
    if values.ndim != 1 or values.numel() != k:
        raise ValueError(
            f"weights must have shape ({k},) for num_inputs={k}, got shape {tuple(values.shape)}"
        )
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"weights must be finite, got {values.tolist()}")
    return tuple(values.tolist())


class SumFusion(_ParameterFree):
    r"""Sum of the present inputs, :math:`y = \sum_{i \in P} x_i`.

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> SumFusion()([torch.ones(2, 3)] * 4)[0]
        tensor([4., 4., 4.])
    """

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_sum(xs, mask)


class MeanFusion(_ParameterFree):
    r"""Mean of the present inputs, :math:`y = \frac{1}{|P|} \sum_{i \in P} x_i`.

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0]), torch.tensor([5.0, 1.0])]
        >>> MeanFusion()(xs, mask=torch.tensor([True, True, False]))
        tensor([2., 4.])
    """

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_mean(xs, mask)


class ProdFusion(_ParameterFree):
    r"""Element-wise product of the present inputs, :math:`y = \prod_{i \in P} x_i`.

    Accumulated in at least float32 (recomputed in float64 where float32 overflows).

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> ProdFusion()([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])
        tensor([3., 8.])
    """

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_prod(xs, mask)


class MaxFusion(_ParameterFree):
    r"""Element-wise maximum of the present inputs, :math:`y = \max_{i \in P} x_i`.

    The gradient goes to the first input attaining the maximum (as ``torch.max(dim)``).

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> MaxFusion()([torch.tensor([1.0, 5.0]), torch.tensor([3.0, 4.0])])
        tensor([3., 5.])
    """

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_max(xs, mask)


class MinFusion(_ParameterFree):
    r"""Element-wise minimum of the present inputs, :math:`y = \min_{i \in P} x_i`.

    The gradient goes to the first input attaining the minimum (as ``torch.min(dim)``).

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> MinFusion()([torch.tensor([1.0, 5.0]), torch.tensor([3.0, 4.0])])
        tensor([1., 4.])
    """

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_min(xs, mask)


class MedianFusion(_ParameterFree):
    r"""Element-wise median of the present inputs.

    With :math:`v_{(1)} \le \dots \le v_{(m)}` the ``m = |P|`` present values sorted,
    ``mode='lower'`` gives :math:`v_{(\lceil m/2 \rceil)}` (the lower middle value for even
    ``m``, as :func:`torch.median` and tinyBIG) and ``mode='mean'`` gives
    :math:`\tfrac12 (v_{(\lceil m/2 \rceil)} + v_{(\lfloor m/2 \rfloor + 1)})`. Selection needs
    all ``k`` values at once, so this fusion, alone, works on a stacked copy.

    Args:
        mode: ``'lower'`` or ``'mean'``.
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([v]) for v in (1.0, 4.0, 2.0, 3.0)]
        >>> MedianFusion()(xs), MedianFusion(mode="mean")(xs)
        (tensor([2.]), tensor([2.5000]))
    """

    def __init__(self, mode: str = "lower", *, num_inputs: int | None = None) -> None:
        super().__init__(num_inputs=num_inputs)
        self.mode = resolve_choice("mode", mode, _MEDIAN_MODES)

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_median(xs, mask, self.mode)

    def get_config(self) -> dict[str, Any]:
        return {"mode": self.mode, **super().get_config()}


class NormFusion(_ParameterFree):
    r"""Element-wise ``p``-norm of the present inputs,
    :math:`y = \left(\sum_{i \in P} |x_i|^p\right)^{1/p}` (:math:`\max_{i \in P} |x_i|` for
    :math:`p = \infty`).

    ``p=1`` is tinyBIG's ``l1_norm_fusion``, ``p=2`` its ``l2_norm_fusion``. The gradient is
    0 (not ``nan``) where the norm is 0.

    Args:
        p: the order, a number ``≥ 1``, or ``math.inf`` (also spelled ``"inf"``, which is how
            configs store it: strict JSON has no infinity).
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> NormFusion(p=2.0)([torch.tensor([3.0, 0.0]), torch.tensor([4.0, -2.0])])
        tensor([5., 2.])
    """

    def __init__(self, p: float | str = 2.0, *, num_inputs: int | None = None) -> None:
        super().__init__(num_inputs=num_inputs)
        self.p = ew.check_norm_order(math.inf if p == "inf" else p)

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_norm(xs, self.p, mask)

    def get_config(self) -> dict[str, Any]:
        return {"p": "inf" if math.isinf(self.p) else self.p, **super().get_config()}
