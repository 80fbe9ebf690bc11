r"""tinyBIG's ``tinybig.fusion.basic_fusion``: weighted sums ``Σᵢ αᵢ Aᵢ`` of ``k`` equally
shaped inputs (on :func:`interfuse.functional.weighted_sum`), differing in where ``α`` comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from interfuse.functional.elementwise import _check_weights

# The kernel without the input checks forward ran (named as the bench's call counter knows it).
from interfuse.functional.elementwise import _weighted_sum as weighted_sum
from interfuse.tinybig.errors import ValueAssertionError, warn
from interfuse.tinybig.module.base_fusion import Dims, fusion

__all__ = [
    "average_fusion",
    "parameterized_weighted_summation_fusion",
    "summation_fusion",
    "weighted_summation_fusion",
]


def _weights_vector(name: str, value: Tensor, k: int | None) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    ok_shape = value.ndim == 1 or (value.ndim == 2 and 1 in value.shape)
    if not ok_shape or (k is not None and value.numel() != k):
        want = "k" if k is None else str(k)
        raise ValueAssertionError(
            f"{name} must have shape ({want},), ({want}, 1) or (1, {want})"
            + ("" if k is None else f" for k={k} inputs")
            + f", got shape {tuple(value.shape)}"
        )
    return value.reshape(-1)


def _as_weights_tensor(value: object) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return torch.tensor(value, dtype=torch.get_default_dtype())
        except (TypeError, ValueError, RuntimeError):
            pass
    raise TypeError(
        "weights must be a torch.Tensor or a list of numbers (nested for (k, 1) or (1, k)), "
        f"got {value!r}"
    )


class weighted_summation_fusion(fusion):
    r"""Weighted sum of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k) = \sum_{i=1}^k \alpha_i A_i

    The weights ``α`` are the fixed ``weights`` (a registered buffer: in the ``state_dict``,
    moved by ``.to()``) or, with ``require_parameters=True``, the ``w`` given to ``forward``.
    ``calculate_l()`` is ``k`` with ``require_parameters`` and 0 otherwise. ``weights`` and
    ``w`` may be shaped ``(k,)``, ``(k, 1)`` or ``(1, k)``. Integer inputs are promoted as
    tinyBIG's ``x * weights`` promoted them (with a :class:`TinybigWarning`).

    :meth:`to_config` writes the fixed weights as a list of floats, which the constructor
    accepts (in ``torch.get_default_dtype()``; load the ``state_dict`` to keep other dtypes).

    Args:
        dims: widths of the inputs (all equal), or ``None``.
        weights: the fixed weights ``α``: a tensor or a (nested) list of numbers, ``(k,)``,
            ``(k, 1)`` or ``(1, k)``.
        require_parameters: take the weights from ``w`` instead.
        **kwargs: every other argument as :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``; ``w``: ``(k,)``, ``(k, 1)`` or ``(1, k)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = weighted_summation_fusion(dims=[2, 2], weights=torch.tensor([0.25, 0.75]))
        >>> f([torch.ones(1, 2), torch.zeros(1, 2)])
        tensor([[0.2500, 0.2500]])
    """

    weights: Tensor | None

    def __init__(
        self,
        dims: Dims | None = None,
        weights: Tensor | Sequence[float] | Sequence[Sequence[float]] | None = None,
        name: str = "weighted_summation_fusion",
        *,
        require_parameters: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dims=dims, name=name, require_parameters=require_parameters, **kwargs)
        buffer = None
        if weights is not None:
            vec = _weights_vector("weights", _as_weights_tensor(weights), None)  # rank only
            if vec.is_floating_point() and not bool(torch.isfinite(vec).all()):
                raise ValueError(f"weights must be finite, got {vec.tolist()}")
            if self.dims is not None and vec.numel() != len(self.dims):
                warn(
                    f"{type(self).__name__}: {vec.numel()} weights for dims={list(self.dims)}; "
                    f"the fusion takes {vec.numel()} inputs, as in tinyBIG"
                )
            dtype = vec.dtype if vec.is_floating_point() else torch.get_default_dtype()
            buffer = vec.detach().to(device=self.device, dtype=dtype, copy=True)
        self.register_buffer("weights", buffer)

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        incoming = state_dict.get(prefix + "weights")
        if self.weights is None and isinstance(incoming, Tensor):
            # Built without weights (require_parameters, or a config holding weights=None):
            # take the weights' shape from the state.
            self.weights = torch.empty_like(incoming, device=self.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _config_value(self, key: str, value: Any) -> Any:
        if key == "weights" and self.weights is not None and not self.weights.is_meta:
            return self.weights.detach().cpu().tolist()  # the recorded argument is None
        return super()._config_value(key, value)

    def calculate_n(self, dims: Dims | None = None, *args: Any, **kwargs: Any) -> int:
        """``dims[0]``; a ``ValueAssertionError`` if ``dims`` are unequal or unknown."""
        return self._equal_dims_n(dims)

    def calculate_l(self, *args: Any, **kwargs: Any) -> int:
        """``k = len(dims)`` if ``require_parameters`` else 0."""
        return self.get_num() if self.require_parameters else 0

    def _fuse_weights(self, w: Tensor | None, k: int) -> Tensor:
        if self.require_parameters:
            if w is None:
                raise ValueAssertionError(
                    f"w is required: {type(self).__name__} takes its {k} weights from w, got w=None"
                )
            return _weights_vector("w", w, k)
        if self.weights is None:
            raise ValueAssertionError(
                f"{type(self).__name__} has no weights: pass weights= at construction, "
                "require_parameters=True with w, or load a state_dict holding them"
            )
        return _weights_vector("weights", self.weights, k)

    def _fuse(self, xs: list[Tensor], w: Tensor | None) -> Tensor:
        weights = self._fuse_weights(w, len(xs))
        dtype = torch.promote_types(xs[0].dtype, weights.dtype)
        if not xs[0].is_floating_point():
            warn(
                f"{type(self).__name__}: x has dtype {xs[0].dtype}; promoted to {dtype} by the "
                "weights, as tinyBIG did"
            )
            xs = [t.to(dtype) for t in xs]
        weights = weights.to(dtype)
        _check_weights(weights, xs)  # forward checked xs: the kernel's own check_xs is not rerun
        return weighted_sum(xs, weights, None, False)


class summation_fusion(weighted_summation_fusion):
    r"""Sum of ``k`` equally shaped inputs: :class:`weighted_summation_fusion` with ``α = 1``.

    .. math:: \text{fusion}(A_1, …, A_k) = \sum_{i=1}^k A_i

    ``dims`` is required (tinyBIG sized the weights from it); ``require_parameters`` is
    accepted and ignored (always ``False``). Other arguments as :class:`weighted_summation_fusion`.

    Example:
        >>> summation_fusion(dims=[2, 2])([torch.ones(1, 2), torch.ones(1, 2)])
        tensor([[2., 2.]])
    """

    _filled: ClassVar[tuple[str, ...]] = ("weights",)

    def __init__(
        self,
        dims: Dims,
        name: str = "summation_fusion",
        require_parameters: bool = False,
        **kwargs: Any,
    ) -> None:
        if dims is None:
            raise TypeError(
                f"{type(self).__name__} requires dims (a list of input widths), got None"
            )
        k = len(dims) if isinstance(dims, (list, tuple)) else 0
        super().__init__(dims=dims, weights=self._fixed_weights(k), name=name, **kwargs)

    @staticmethod
    def _fixed_weights(k: int) -> Tensor:
        return torch.ones(k)


class average_fusion(summation_fusion):
    r"""Mean of ``k`` equally shaped inputs: a weighted sum with ``α = 1/k``.

    .. math:: \text{fusion}(A_1, …, A_k) = \frac{1}{k}\sum_{i=1}^k A_i

    ``tinybig.fusion.mean_fusion`` is *not* this class but the metric
    :class:`~interfuse.tinybig.fusion.metric_fusion.mean_fusion` (same numbers up to rounding).
    Arguments as :class:`summation_fusion`.

    Example:
        >>> average_fusion(dims=[2, 2])([torch.ones(1, 2), torch.zeros(1, 2)])
        tensor([[0.5000, 0.5000]])
    """

    def __init__(
        self,
        dims: Dims,
        name: str = "average_fusion",
        require_parameters: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(dims=dims, name=name, **kwargs)

    @staticmethod
    def _fixed_weights(k: int) -> Tensor:
        return torch.ones(k) / max(k, 1)


class parameterized_weighted_summation_fusion(weighted_summation_fusion):
    r"""Weighted sum of ``k`` equally shaped inputs with the weights taken from ``w``.

    .. math:: \text{fusion}(A_1, …, A_k) = \sum_{i=1}^k w_i A_i, \qquad l = k

    ``w`` may be ``(k,)``, ``(k, 1)`` or ``(1, k)``. tinyBIG rejected ``(1, k)`` (the shape its
    heads and layers pass), which made this class unusable as a channel or head fusion there;
    it is accepted here. ``require_parameters`` is accepted and ignored (always ``True``);
    other arguments as :class:`weighted_summation_fusion`.

    Example:
        >>> f = parameterized_weighted_summation_fusion(dims=[2, 2])
        >>> f.calculate_l()
        2
        >>> f([torch.ones(1, 2), torch.ones(1, 2)], w=torch.tensor([[0.5, 2.0]]))
        tensor([[2.5000, 2.5000]])
    """

    _filled: ClassVar[tuple[str, ...]] = ("weights",)

    def __init__(
        self,
        dims: Dims | None = None,
        name: str = "parameterized_weighted_summation_fusion",
        require_parameters: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(dims=dims, name=name, require_parameters=True, **kwargs)
