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
from interfuse.fusion.base import Fusion, Inputs, MaskLike

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

    def __init__(
        self,
        num_inputs: int | None = None,
        *,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(num_inputs, names=names, input_dropout=input_dropout)

    def get_config(self) -> dict[str, Any]:
        return {"num_inputs": self.num_inputs}


class WeightedSumFusion(_Elementwise):
    r"""Weighted sum :math:`y = \gamma \sum_i w_i x_i` with fixed or learnable weights: a
    ScalarMix (Peters et al. 2018) layer mix when ``normalize='softmax', scale=True``.

    With ``normalize='softmax'`` the weights used are :math:`\operatorname{softmax}(w)`. With a
    mask the present weights are rescaled to keep the total,
    :math:`y = \gamma \frac{\sum_j w_j}{\sum_{i \in P} w_i} \sum_{i \in P} w_i x_i`: for
    weights that sum to one (softmax, or the default :math:`1/k`) this is the weighted mean of
    the present inputs (with softmax: a softmax over the present inputs only). Unnormalized
    weights whose present part sums to zero give a non-finite result; prefer ``'softmax'``
    with masks.

    With ``per_feature=True`` every input has one weight per feature, :math:`w_i \in R^n`
    (the softmax and the renormalization then act per feature), and
    :math:`y = \gamma \sum_i w_i \odot x_i`. The scale :math:`\gamma` (``scale=True``) is a
    learnable scalar starting at 1; without it :math:`\gamma = 1`.

    Args:
        num_inputs: the number of inputs ``k``.
        weights: initial weights, ``k`` numbers, or (``per_feature``) ``k`` rows of
            ``num_features`` numbers (logits when ``normalize='softmax'``); ``None``: from
            ``init``. :meth:`reset_parameters` restores them.
        learnable: ``True``: an ``nn.Parameter`` ``weight``; ``False``: a buffer (fixed, in the
            ``state_dict``, moved by ``.to()``).
        normalize: ``'none'`` or ``'softmax'``.
        device: device of the weights.
        dtype: dtype of the weights.
        scale: add the learnable scale :math:`\gamma` (the parameter ``gamma``).
        per_feature: weights ``(k, num_features)`` instead of ``(k,)``.
        num_features: the width ``n`` of the inputs; needed with ``per_feature`` only.
        init: without ``weights``: ``'uniform'`` (:math:`1/k` each) or ``'last'`` (all the
            weight on the last input, so the fusion starts as the identity on it: a residual
            at init, as DenseFormer starts; needs ``normalize='none'``).
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

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
        >>> mix = WeightedSumFusion(3, normalize="softmax", scale=True)  # ScalarMix
        >>> mix.num_parameters
        4
        >>> dense = WeightedSumFusion(3, per_feature=True, num_features=4, init="last")
        >>> dense([torch.full((2, 4), v) for v in (1.0, 2.0, 3.0)])[0]
        tensor([3., 3., 3., 3.], grad_fn=<SelectBackward0>)
    """

    linear = True
    weight: Tensor
    gamma: Tensor | None

    def __init__(
        self,
        num_inputs: int,
        weights: Sequence[float] | Sequence[Sequence[float]] | Tensor | None = None,
        learnable: bool = True,
        normalize: str = "none",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        scale: bool = False,
        per_feature: bool = False,
        num_features: int | None = None,
        init: str = "uniform",
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(
            check_positive_int("num_inputs", num_inputs), names=names, input_dropout=input_dropout
        )
        dtype = check_factory_dtype(dtype)
        for name, flag in (
            ("learnable", learnable),
            ("scale", scale),
            ("per_feature", per_feature),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        self.learnable, self.scale, self.per_feature = learnable, scale, per_feature
        self.normalize = resolve_choice("normalize", normalize, _NORMALIZE)
        self.init = resolve_choice("init", init, _INITS)
        if per_feature:
            if num_features is None:
                raise ValueError(
                    "per_feature=True needs num_features (the inputs' width n: the weights are "
                    "(k, n))"
                )
            self.num_features: int | None = check_positive_int("num_features", num_features)
        elif num_features is not None:
            raise ValueError(
                f"num_features={num_features!r} applies only with per_feature=True "
                "(per-input weights are (k,))"
            )
        else:
            self.num_features = None
        if self.init == "last" and self.normalize == "softmax":
            raise ValueError(
                "init='last' needs normalize='none': a softmax cannot put all the weight on one "
                "input"
            )
        if weights is not None and self.init != "uniform":
            raise ValueError(f"give weights or init={init!r}, not both")
        self.initial_weights = _check_weights(weights, num_inputs, self.num_features)
        shape = (num_inputs,) if self.num_features is None else (num_inputs, self.num_features)
        weight = torch.empty(shape, device=device, dtype=dtype)
        if learnable:
            self.weight = nn.Parameter(weight)
        else:
            self.register_buffer("weight", weight)
        if scale:
            self.gamma = nn.Parameter(torch.empty((), device=device, dtype=dtype))
        else:
            self.register_parameter("gamma", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r"""Restore the initial weights (``weights``, else ``init``) and :math:`\gamma = 1`."""
        k = self.weight.shape[0]
        if self.initial_weights is not None:
            init = torch.tensor(self.initial_weights, dtype=torch.float64)
        elif self.init == "last":
            init = torch.zeros(k, dtype=torch.float64)
            init[-1] = 1.0
        else:
            init = torch.full((k,), 1.0 / k, dtype=torch.float64)
        if init.ndim < self.weight.ndim:
            init = init[:, None]
        with torch.no_grad():
            self.weight.copy_(init.expand(self.weight.shape))
            if self.gamma is not None:
                self.gamma.fill_(1.0)

    def fusion_weights(self) -> Tensor:
        r"""The weights the sum uses, ``(k,)`` or ``(k, n)``: ``weight``, or its softmax over
        the inputs (:math:`\gamma` not included)."""
        return self.weight.softmax(0) if self.normalize == "softmax" else self.weight

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        if self.num_features is None:
            out = weighted_sum(xs, self.fusion_weights(), mask, True)
        else:
            if xs[0].shape[-1] != self.num_features:
                raise ValueError(
                    f"xs have width {xs[0].shape[-1]} but WeightedSumFusion was built for "
                    f"num_features={self.num_features}"
                )
            out = _per_feature_sum(xs, self.fusion_weights(), mask)
        return out if self.gamma is None else out * self.gamma.to(out.dtype)

    def out_features(self, in_dims: Sequence[int]) -> int:
        n = super().out_features(in_dims)
        if self.num_features is not None and n != self.num_features:
            raise ValueError(
                f"in_dims={list(in_dims)} differ from num_features={self.num_features} "
                "WeightedSumFusion was built for"
            )
        return n

    def get_config(self) -> dict[str, Any]:
        weights = None if self.initial_weights is None else _as_lists(self.initial_weights)
        return {
            "num_inputs": self.num_inputs,
            "weights": weights,
            "learnable": self.learnable,
            "normalize": self.normalize,
            "scale": self.scale,
            "per_feature": self.per_feature,
            "num_features": self.num_features,
            "init": self.init,
        }


_INITS = ("uniform", "last")
_Weights = tuple[float, ...] | tuple[tuple[float, ...], ...]


def _as_lists(weights: _Weights) -> list[Any]:
    return [list(w) if isinstance(w, tuple) else w for w in weights]


def _check_weights(weights: object, k: int, n: int | None) -> _Weights | None:
    if weights is None:
        return None
    what = f"{k} numbers" if n is None else f"{k} numbers or {k} rows of {n}"
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (Sequence, Tensor)):
        raise TypeError(f"weights must be a sequence of {what} or a tensor, got {weights!r}")
    try:
        values = torch.as_tensor(weights, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"weights must hold {what}, got {weights!r}") from err
    shapes = [(k,)] if n is None else [(k,), (k, n)]
    if tuple(values.shape) not in shapes:
        expected = " or ".join(str(s) for s in shapes).replace(",)", ",)")
        raise ValueError(
            f"weights must have shape {expected} for num_inputs={k}"
            f"{'' if n is None else f', num_features={n}'}, got shape {tuple(values.shape)}"
        )
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"weights must be finite, got {values.tolist()}")
    if values.ndim == 1:
        return tuple(values.tolist())
    return tuple(tuple(row) for row in values.tolist())


def _per_feature_sum(xs: Sequence[Tensor], weights: Tensor, mask: Tensor | None) -> Tensor:
    r""":math:`\sum_{i \in P} w_i \odot x_i`, renormalized per feature for the absent inputs'
    weights; ``weights`` is ``(k, n)``. Absent inputs are skipped by ``torch.where``."""
    w = weights.to(xs[0].dtype)
    if mask is None:
        acc = xs[0] * w[0]
        for i in range(1, len(xs)):
            acc = torch.addcmul(acc, xs[i], w[i])
        return acc
    acc = torch.zeros((), dtype=xs[0].dtype, device=xs[0].device)
    present = torch.zeros((), dtype=xs[0].dtype, device=xs[0].device)
    for i, x in enumerate(xs):
        flag = mask[..., i] if mask.ndim == 1 else mask[..., i, None]
        acc = acc + torch.where(flag, x * w[i], 0)
        present = present + torch.where(flag, w[i], 0)
    return acc * (w.sum(0) / present)


class SumFusion(_ParameterFree):
    r"""Sum of the present inputs, :math:`y = \sum_{i \in P} x_i`.

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> SumFusion()([torch.ones(2, 3)] * 4)[0]
        tensor([4., 4., 4.])
    """

    linear = True

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_sum(xs, mask)


class MeanFusion(_ParameterFree):
    r"""Mean of the present inputs, :math:`y = \frac{1}{|P|} \sum_{i \in P} x_i`.

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0]), torch.tensor([5.0, 1.0])]
        >>> MeanFusion()(xs, mask=torch.tensor([True, True, False]))
        tensor([2., 4.])
    """

    linear = True

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_mean(xs, mask)


class ProdFusion(_ParameterFree):
    r"""Element-wise product of the present inputs, :math:`y = \prod_{i \in P} x_i`.

    Accumulated in at least float32 (recomputed in float64 where float32 overflows).

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> ProdFusion()([torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])
        tensor([3., 8.])
    """

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_prod(xs, mask)


class MaxFusion(_ParameterFree):
    r"""Element-wise maximum of the present inputs, :math:`y = \max_{i \in P} x_i`.

    The gradient goes to the first input attaining the maximum (as ``torch.max(dim)``).

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> MaxFusion()([torch.tensor([1.0, 5.0]), torch.tensor([3.0, 4.0])])
        tensor([3., 5.])
    """

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_max(xs, mask)


class MinFusion(_ParameterFree):
    r"""Element-wise minimum of the present inputs, :math:`y = \min_{i \in P} x_i`.

    The gradient goes to the first input attaining the minimum (as ``torch.min(dim)``).

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> MinFusion()([torch.tensor([1.0, 5.0]), torch.tensor([3.0, 4.0])])
        tensor([1., 4.])
    """

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
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
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([v]) for v in (1.0, 4.0, 2.0, 3.0)]
        >>> MedianFusion()(xs), MedianFusion(mode="mean")(xs)
        (tensor([2.]), tensor([2.5000]))
    """

    def __init__(
        self,
        mode: str = "lower",
        *,
        num_inputs: int | None = None,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(num_inputs=num_inputs, names=names, input_dropout=input_dropout)
        self.mode = resolve_choice("mode", mode, _MEDIAN_MODES)

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
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
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> NormFusion(p=2.0)([torch.tensor([3.0, 0.0]), torch.tensor([4.0, -2.0])])
        tensor([5., 2.])
    """

    def __init__(
        self,
        p: float | str = 2.0,
        *,
        num_inputs: int | None = None,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(num_inputs=num_inputs, names=names, input_dropout=input_dropout)
        self.p = ew.check_norm_order(math.inf if p == "inf" else p)

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_norm(xs, self.p, mask)

    def get_config(self) -> dict[str, Any]:
        return {"p": "inf" if math.isinf(self.p) else self.p, **super().get_config()}
