r"""tinyBIG 0.2.1's fusion functions, name for name, on the interfuse core.

A fusion combines a list of ``k`` tensors ``x = [A_1, …, A_k]`` (any leading dimensions; the
fused axis is the last one, ``n_i = A_i.size(-1)``) into one tensor. As in tinyBIG, nobody here
owns learnable weights: a parameterized fusion reports ``calculate_l()`` and takes ``w`` on
every call. Every formula runs on :mod:`interfuse.functional` (element-wise kernels that never
stack their inputs; projections through :class:`~interfuse.tinybig.fabrication.Fabrication`,
which applies a list of inputs piece by piece instead of concatenating them).

* :class:`weighted_summation_fusion`: ``Σ αᵢ Aᵢ``; ``n = n₁``; ``l = k`` with
  ``require_parameters``, else 0. :class:`summation_fusion` (``α = 1``),
  :class:`average_fusion` (``α = 1/k``): ``l = 0``.
  :class:`parameterized_weighted_summation_fusion`: ``α = w``, ``l = k``.
* :class:`mean_fusion`, :class:`sum_fusion`, :class:`prod_fusion`, :class:`max_fusion`,
  :class:`min_fusion`, :class:`median_fusion`, :class:`l1_norm_fusion`,
  :class:`l2_norm_fusion` (all :class:`metric_fusion`): element-wise; ``n = n₁``, ``l = 0``.
* :class:`concatenation_fusion`: ``A₁ ⊔ … ⊔ A_k``; ``n = D = Σ nᵢ``, ``l = 0``.
* :class:`parameterized_concatenation_fusion`: ``(A₁ ⊔ … ⊔ A_k) Wᵀ`` with ``W ∈ R^{n×D}``:

  | variant | ``W`` | ``l`` |
  |---|---|---|
  | (plain) | ``reshape(w)`` | ``nD`` |
  | ``lowrank_`` | ``U V`` | ``r(n + D)`` |
  | ``hm_`` | from ``A (p, q)``, ``B (n/p, D/q)`` | ``pq + nD/(pq)`` |
  | ``lphm_`` | as hm, ``B = S T`` | ``pq + r(n/p + D/q)`` |
  | ``dual_lphm_`` | as hm, ``A = P Q``, ``B = S T`` | ``r(p + q + n/p + D/q)`` |
  | ``random_matrix_adaption_`` | ``Λ₁ R_A Λ₂ R_Bᵀ`` | ``n + r`` |

Errors follow tinyBIG's types: where it raised ``AssertionError`` (or crashed with
``AttributeError``, ``RuntimeError``, ``IndexError``) these raise
:mod:`~interfuse.tinybig.errors` classes that also derive from ``ValueError``, with a message
naming the argument, the value received and what was expected.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from interfuse import functional as fn
from interfuse.tinybig._base import TinybigFunction, import_object
from interfuse.tinybig.errors import (
    ValueAssertionError,
    ValueAttributeError,
    ValueIndexError,
    ValueRuntimeError,
)
from interfuse.tinybig.fabrication import Fabrication, given_random_factors

__all__ = [
    "METRICS",
    "average_fusion",
    "concatenation_fusion",
    "dual_lphm_parameterized_concatenation_fusion",
    "fusion",
    "hm_parameterized_concatenation_fusion",
    "l1_norm_fusion",
    "l2_norm_fusion",
    "lowrank_parameterized_concatenation_fusion",
    "lphm_parameterized_concatenation_fusion",
    "max_fusion",
    "mean_fusion",
    "median_fusion",
    "metric_fusion",
    "min_fusion",
    "parameterized_concatenation_fusion",
    "parameterized_weighted_summation_fusion",
    "prod_fusion",
    "random_matrix_adaption_parameterized_concatenation_fusion",
    "sum_fusion",
    "summation_fusion",
    "weighted_summation_fusion",
]

Device = str | torch.device
Dims = Sequence[int]


def _check_dims(dims: object) -> list[int] | None:
    if dims is None:
        return None
    if isinstance(dims, (str, bytes)) or not isinstance(dims, (list, tuple)):
        raise TypeError(f"dims must be a list or tuple of positive ints or None, got {dims!r}")
    if len(dims) == 0:
        raise ValueError("dims must name at least one input width, got an empty list")
    checked = []
    for i, d in enumerate(dims):
        try:  # any integer type (numpy's too), as tinyBIG stored dims as given
            value = operator.index(d) if not isinstance(d, bool) else 0
        except TypeError:
            value = 0
        if value <= 0:
            raise ValueError(f"dims[{i}] must be a positive int, got {d!r} (dims={list(dims)})")
        checked.append(value)
    return checked


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be a positive int, got {value!r} of type {type(value).__name__}"
        )
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


def _check_inputs(x: object, *, same_shape: bool) -> list[Tensor]:
    """tinyBIG's input checks, in its order, with clear messages."""
    if isinstance(x, Tensor):
        raise ValueRuntimeError(
            f"x must be a list or tuple of tensors, got a single Tensor of shape {tuple(x.shape)} "
            "(tinyBIG failed on it with RuntimeError); pass list(t.unbind(0)) to fuse along dim 0"
        )
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"x must be a list or tuple of tensors, got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(
            f"x cannot be empty: expected at least one tensor, got an empty {type(x).__name__}"
        )
    for i, t in enumerate(x):
        if not isinstance(t, Tensor):
            raise TypeError(f"x[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim == 0:
            raise ValueError(f"x[{i}] must have at least one dimension, got a 0-d tensor")
        if t.device != x[0].device:
            raise ValueRuntimeError(
                f"x[{i}] is on {t.device} but x[0] is on {x[0].device}; move all inputs to one "
                "device (tinyBIG failed here with RuntimeError)"
            )
    first = x[0].shape
    for i, t in enumerate(x):
        if same_shape and t.shape != first:
            raise ValueError(
                f"x must have the same shape: x[{i}] has shape {tuple(t.shape)} but x[0] has "
                f"{tuple(first)}"
            )
        if not same_shape and t.shape[:-1] != first[:-1]:
            raise ValueError(
                f"excluding the last dimension, x must have one shape: x[{i}] has leading shape "
                f"{tuple(t.shape[:-1])} but x[0] has {tuple(first[:-1])}"
            )
    return list(x)


def _require_floating(xs: Sequence[Tensor], who: str) -> None:
    """Means, norms and weighted sums need floating inputs (tinyBIG's mean and norms failed on
    integers with RuntimeError; its weighted sums silently promoted)."""
    for i, t in enumerate(xs):
        if not t.is_floating_point():
            raise ValueRuntimeError(
                f"x[{i}] has dtype {t.dtype} but {who} needs floating inputs; convert with .float()"
            )


class fusion(TinybigFunction):
    r"""Base of every tinyBIG fusion: combines a list of ``k`` tensors into one.

    Holds the per-input widths ``dims = [n_1, …, n_k]`` (optional), the flag
    ``require_parameters`` and the pre/post-processing functions. Subclasses implement
    ``calculate_n`` (output width), ``calculate_l`` (length of ``w``) and ``forward``; on this
    base class the three raise ``NotImplementedError``.

    Args:
        dims: widths ``n_i`` of the inputs' last dimension, or ``None``.
        name: the function's name.
        require_parameters: whether ``forward`` needs ``w``.
        preprocess_functions: callables or built-in names applied to the inputs (see
            :mod:`interfuse.tinybig._base`).
        postprocess_functions: the same, applied to the output.
        preprocess_function_configs: configs of the pre-processing functions.
        postprocess_function_configs: configs of the post-processing functions.
        device: device string for functions built from configs and for buffers.

    Shape:
        - Input: a list of ``k`` tensors ``(*, n_i)``.
        - Output: ``(*, calculate_n())``.

    Example:
        >>> f = fusion(dims=[3, 3])
        >>> f.get_num(), f.get_dim(1)
        (2, 3)
    """

    #: Error for "x holds a different number of tensors than dims": tinyBIG's weighted sums
    #: asserted it; its parameterized concatenation failed in a matmul (RuntimeError).
    _count_error: type[ValueError] = ValueAssertionError

    def __init__(
        self,
        dims: Dims | None = None,
        name: str = "base_fusion",
        require_parameters: bool = False,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        checked = _check_dims(dims)
        self.dims: Dims | None = (
            None if checked is None else (tuple(checked) if isinstance(dims, tuple) else checked)
        )
        if not isinstance(require_parameters, bool):
            raise TypeError(f"require_parameters must be a bool, got {require_parameters!r}")
        self.require_parameters = require_parameters

    # -- getters --------------------------------------------------------------------------------
    def get_dims(self) -> Dims | None:
        """The input widths ``dims`` (or ``None``)."""
        return self.dims

    def get_num(self) -> int:
        """The number of inputs ``k = len(dims)``, or 0 if ``dims`` is ``None``."""
        return 0 if self.dims is None else len(self.dims)

    def get_dim(self, index: int) -> int | None:
        """``dims[index]``; ``None`` if ``dims`` is ``None``.

        Raises:
            ValueIndexError: ``index`` is not in ``[0, len(dims))`` (tinyBIG let
                ``index == len(dims)`` through to an ``IndexError``).
        """
        if self.dims is None:
            return None
        k = len(self.dims)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < k:
            raise ValueIndexError(
                f"index must be an int in [0, {k - 1}] for dims={list(self.dims)}, got {index!r}"
            )
        return self.dims[index]

    # -- abstract -------------------------------------------------------------------------------
    def calculate_n(self, dims: Dims | None = None) -> int:
        """The output width for inputs of widths ``dims`` (default: ``self.dims``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement calculate_n()")

    def calculate_l(self) -> int:
        """The number of scalars ``w`` must hold (0 if none)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement calculate_l()")

    def forward(
        self, x: Sequence[Tensor], w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """Fuse the list ``x`` (with parameters ``w`` where ``require_parameters``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    # -- shared helpers -------------------------------------------------------------------------
    def _check_against_dims(self, xs: Sequence[Tensor]) -> None:
        """Compare the real inputs with ``dims`` (tinyBIG never did, spec B-F5)."""
        if self.dims is None:
            return
        if len(xs) != len(self.dims):
            raise self._count_error(
                f"x holds {len(xs)} tensors but dims={list(self.dims)} expects {len(self.dims)}"
            )
        for i, (t, d) in enumerate(zip(xs, self.dims)):
            if t.shape[-1] != d:
                raise ValueRuntimeError(
                    f"x[{i}] has width {t.shape[-1]} (shape {tuple(t.shape)}) but dims[{i}]={d}; "
                    f"dims={list(self.dims)}"
                )

    def _pre_process_list(self, xs: list[Tensor], device: Device) -> list[Tensor]:
        """tinyBIG's pre-processing: on the stacked ``(k, *s)`` tensor when all shapes agree
        (so a function can act across inputs), else on each input. No copy without functions."""
        if not self.preprocess_functions:
            return xs
        if all(t.shape == xs[0].shape for t in xs):
            return list(self.pre_process(torch.stack(xs), device=device).unbind(0))
        return [self.pre_process(t, device=device) for t in xs]

    def _equal_dims_n(self, dims: Dims | None) -> int:
        dims = dims if dims is not None else self.dims
        if dims is None:
            raise ValueAssertionError(
                f"{type(self).__name__}.calculate_n needs dims: pass dims= here or at "
                "construction, got None"
            )
        if len(dims) == 0 or any(d != dims[0] for d in dims):
            raise ValueAssertionError(
                f"{type(self).__name__} fuses inputs of one width; dims must be all equal, "
                f"got {list(dims)}"
            )
        return int(dims[0])


# ---------------------------------------------------------------------------------------------
# weighted summation family
# ---------------------------------------------------------------------------------------------


def _weights_vector(name: str, value: Tensor, k: int | None) -> Tensor:
    """Accept ``(k,)``, ``(k, 1)`` or ``(1, k)`` and return the ``(k,)`` view."""
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
    """``weights`` as given: a tensor, or a (nested) list of numbers such as ``to_config``
    writes (built in the default floating dtype)."""
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
    ``w`` may be shaped ``(k,)``, ``(k, 1)`` or ``(1, k)``.

    :meth:`to_config` writes the fixed weights as a list of floats (JSON/YAML-safe) and the
    constructor accepts such a list, so ``from_config(f.to_config())`` computes what ``f``
    does. A list is built in the default dtype (``torch.get_default_dtype()``); load the
    ``state_dict`` as well to keep other dtypes.

    Args:
        dims: widths of the inputs (all equal), or ``None``.
        weights: the fixed weights ``α``: a tensor or a (nested) list of numbers, ``(k,)``,
            ``(k, 1)`` or ``(1, k)``.
        name: the function's name.
        require_parameters: take the weights from ``w`` instead.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: device of the weights buffer.

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
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims=dims,
            name=name,
            require_parameters=require_parameters,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        buffer = None
        if weights is not None:
            vec = _weights_vector(
                "weights",
                _as_weights_tensor(weights),
                None if self.dims is None else len(self.dims),
            )
            if vec.is_floating_point() and not bool(torch.isfinite(vec).all()):
                raise ValueError(f"weights must be finite, got {vec.tolist()}")
            dtype = vec.dtype if vec.is_floating_point() else torch.get_default_dtype()
            buffer = vec.detach().to(device=self.device, dtype=dtype, copy=True)
        self.register_buffer("weights", buffer)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "weights"
        incoming = state_dict.get(key)
        if self.weights is None and isinstance(incoming, Tensor):
            # Built without weights (require_parameters, or a config holding weights=None):
            # take the weights' shape from the state.
            self.weights = torch.empty_like(incoming, device=self.device)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _config_value(self, key: str, value: Any) -> Any:
        if key == "weights" and self.weights is not None and not self.weights.is_meta:
            # The current fixed weights, as plain floats (the recorded argument is None).
            return self.weights.detach().cpu().tolist()
        return super()._config_value(key, value)

    def calculate_n(self, dims: Dims | None = None) -> int:
        """``dims[0]`` (all widths must be equal).

        Raises:
            ValueAssertionError: ``dims`` is ``None`` here and at construction, or unequal.
        """
        return self._equal_dims_n(dims)

    def calculate_l(self) -> int:
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

    def forward(
        self, x: Sequence[Tensor], w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """``Σᵢ αᵢ xᵢ`` (``α = w`` when ``require_parameters``)."""
        xs = _check_inputs(x, same_shape=True)
        self._check_against_dims(xs)
        xs = self._pre_process_list(xs, device)
        weights = self._fuse_weights(w, len(xs))
        _require_floating(xs, type(self).__name__)
        return self.post_process(fn.weighted_sum(xs, weights), device=device)


class summation_fusion(weighted_summation_fusion):
    r"""Sum of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k) = \sum_{i=1}^k A_i

    The weights are ``ones(k)``, a registered buffer. ``dims`` is required (tinyBIG sized the
    weights from it); ``require_parameters`` is accepted and ignored (always ``False``).

    Args:
        dims: widths of the inputs (all equal).
        name: the function's name.
        require_parameters: ignored, as in tinyBIG.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: device of the weights buffer.

    Shape:
        - Input: ``k = len(dims)`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> summation_fusion(dims=[2, 2])([torch.ones(1, 2), torch.ones(1, 2)])
        tensor([[2., 2.]])
    """

    def __init__(
        self,
        dims: Dims,
        name: str = "summation_fusion",
        require_parameters: bool = False,
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        checked = _check_dims(dims)
        if checked is None:
            raise TypeError(
                f"{type(self).__name__} requires dims (a list of input widths), got None"
            )
        super().__init__(
            dims=dims,
            weights=self._fixed_weights(len(checked)),
            name=name,
            require_parameters=False,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )

    @staticmethod
    def _fixed_weights(k: int) -> Tensor:
        return torch.ones(k)


class average_fusion(summation_fusion):
    r"""Mean of ``k`` equally shaped inputs, as a weighted sum with weights ``1/k``.

    .. math:: \text{fusion}(A_1, …, A_k) = \frac{1}{k}\sum_{i=1}^k A_i

    ``tinybig.fusion.mean_fusion`` is *not* this class but the metric :class:`mean_fusion`
    (same numbers up to rounding). ``dims`` is required; ``require_parameters`` is ignored.

    Args:
        dims: widths of the inputs (all equal).
        name: the function's name.
        require_parameters: ignored, as in tinyBIG.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: device of the weights buffer.

    Shape:
        - Input: ``k = len(dims)`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> average_fusion(dims=[2, 2])([torch.ones(1, 2), torch.zeros(1, 2)])
        tensor([[0.5000, 0.5000]])
    """

    def __init__(
        self,
        dims: Dims,
        name: str = "average_fusion",
        require_parameters: bool = False,
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims=dims,
            name=name,
            require_parameters=require_parameters,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )

    @staticmethod
    def _fixed_weights(k: int) -> Tensor:
        return torch.ones(k) / k


class parameterized_weighted_summation_fusion(weighted_summation_fusion):
    r"""Weighted sum of ``k`` equally shaped inputs with the weights taken from ``w``.

    .. math:: \text{fusion}(A_1, …, A_k) = \sum_{i=1}^k w_i A_i, \qquad l = k

    ``w`` may be ``(k,)``, ``(k, 1)`` or ``(1, k)``. tinyBIG rejected ``(1, k)`` (the shape its
    heads and layers pass), which made this class unusable as a channel or head fusion there;
    it is accepted here. ``require_parameters`` is accepted and ignored (always ``True``).

    Args:
        dims: widths of the inputs (all equal), or ``None``.
        name: the function's name.
        require_parameters: ignored, as in tinyBIG.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``; ``w``: ``(k,)``, ``(k, 1)`` or ``(1, k)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = parameterized_weighted_summation_fusion(dims=[2, 2])
        >>> f.calculate_l()
        2
        >>> f([torch.ones(1, 2), torch.ones(1, 2)], w=torch.tensor([[0.5, 2.0]]))
        tensor([[2.5000, 2.5000]])
    """

    def __init__(
        self,
        dims: Dims | None = None,
        name: str = "parameterized_weighted_summation_fusion",
        require_parameters: bool = True,
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims=dims,
            weights=None,
            name=name,
            require_parameters=True,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


# ---------------------------------------------------------------------------------------------
# metric fusions
# ---------------------------------------------------------------------------------------------

#: Named metrics of :class:`metric_fusion` and the kernels computing them over the k inputs.
METRICS: dict[str, Callable[[Sequence[Tensor]], Tensor]] = {
    "mean": fn.fused_mean,
    "sum": fn.fused_sum,
    "prod": fn.fused_prod,
    "max": fn.fused_max,
    "min": fn.fused_min,
    "median": lambda xs: fn.fused_median(xs, mode="lower"),
    "l1_norm": lambda xs: fn.fused_norm(xs, p=1.0),
    "l2_norm": lambda xs: fn.fused_norm(xs, p=2.0),
}

BatchMetric = Callable[[Tensor], Tensor]


def _resolve_metric(metric: object) -> str | BatchMetric:
    if isinstance(metric, str):
        if metric in METRICS:
            return metric
        try:
            target = import_object(metric)
        except (ImportError, AttributeError):
            target = None
        if not callable(target):
            raise ValueError(
                f"metric must be one of {sorted(METRICS)}, a dotted path to a batch metric, or a "
                f"callable, got {metric!r}"
            )
        return target
    if callable(metric):
        return metric
    raise ValueAssertionError(
        f"metric must be callable or one of {sorted(METRICS)}, got {metric!r} of type "
        f"{type(metric).__name__}"
    )


class metric_fusion(fusion):
    r"""Element-wise metric over ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \text{metric}(A_1(i, j), …, A_k(i, j))

    ``metric`` is a name (``'mean'``, ``'sum'``, ``'prod'``, ``'max'``, ``'min'``,
    ``'median'`` (lower median, as ``torch.median``), ``'l1_norm'``, ``'l2_norm'``), computed
    by the copy-free kernels, or a tinyBIG batch metric: a callable mapping ``(N, k)`` to
    ``(N,)`` (given as the callable or its dotted import path), applied as tinyBIG did to the
    stacked inputs. ``dims`` is required but may be ``None``; ``w`` is ignored and
    ``calculate_l()`` is 0. tinyBIG rejected ``require_parameters`` here (``TypeError``), and so
    does this class.

    Args:
        dims: widths of the inputs (all equal), or ``None``.
        metric: the metric name or a batch metric callable.
        name: the function's name.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> metric_fusion([1, 1], metric="max")([torch.tensor([1.0]), torch.tensor([3.0])])
        tensor([3.])
    """

    def __init__(
        self,
        dims: Dims | None,
        metric: str | BatchMetric,
        name: str = "metric_fusion",
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims=dims,
            name=name,
            require_parameters=False,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        self.metric: str | BatchMetric = _resolve_metric(metric)

    def _config_value(self, key: str, value: Any) -> Any:
        if key == "metric" and not isinstance(value, str) and callable(value):
            path = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
            try:
                found = import_object(path)
            except (ImportError, AttributeError):
                found = None
            if found is not value:
                raise TypeError(
                    f"metric={value!r} cannot be written to a config: use one of {sorted(METRICS)} "
                    "or a module-level function (written as its import path)"
                )
            return path
        return super()._config_value(key, value)

    def calculate_n(self, dims: Dims | None = None) -> int:
        """``dims[0]`` (all widths must be equal).

        Raises:
            ValueAssertionError: ``dims`` is ``None`` here and at construction, or unequal.
        """
        return self._equal_dims_n(dims)

    def calculate_l(self) -> int:
        """0: metric fusions take no parameters."""
        return 0

    def forward(
        self, x: Sequence[Tensor], w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """The metric over the ``k`` inputs, element by element (``w`` is ignored)."""
        xs = _check_inputs(x, same_shape=True)
        self._check_against_dims(xs)
        xs = self._pre_process_list(xs, device)
        if isinstance(self.metric, str):
            if self.metric in ("mean", "l1_norm", "l2_norm"):
                _require_floating(xs, type(self).__name__)
            out = METRICS[self.metric](xs)
        else:
            shape = xs[0].shape
            stacked = torch.stack(xs, dim=-1).reshape(-1, len(xs))
            out = self.metric(stacked).reshape(shape)
        return self.post_process(out, device=device)


class _named_metric_fusion(metric_fusion):
    """Shared constructor of the fixed-metric fusions (``metric`` is the class's ``_metric``)."""

    _metric: str = "mean"

    def __init__(
        self,
        name: str = "metric_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims,
            self._metric,
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class mean_fusion(_named_metric_fusion):
    r"""Element-wise mean of ``k`` equally shaped inputs (tinyBIG's default channel/head fusion).

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \frac{1}{k}\sum_{m=1}^k A_m(i, j)

    ``tinybig.fusion.mean_fusion`` is this class, not :class:`average_fusion` (same numbers up
    to rounding).

    A :class:`metric_fusion` with ``metric='mean'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = mean_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[ 2., -1.]])
    """

    _metric = "mean"

    def __init__(
        self,
        name: str = "mean_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class sum_fusion(_named_metric_fusion):
    r"""Element-wise sum of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \sum_{m=1}^k A_m(i, j)

    A :class:`metric_fusion` with ``metric='sum'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = sum_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[ 4., -2.]])
    """

    _metric = "sum"

    def __init__(
        self,
        name: str = "sum_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class prod_fusion(_named_metric_fusion):
    r"""Element-wise product of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \prod_{m=1}^k A_m(i, j)

    No log-domain handling: the product can overflow or underflow, as in tinyBIG.

    A :class:`metric_fusion` with ``metric='prod'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = prod_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[ 3., -8.]])
    """

    _metric = "prod"

    def __init__(
        self,
        name: str = "prod_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class max_fusion(_named_metric_fusion):
    r"""Element-wise maximum of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \max_m A_m(i, j)

    A :class:`metric_fusion` with ``metric='max'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = max_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[3., 2.]])
    """

    _metric = "max"

    def __init__(
        self,
        name: str = "max_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class min_fusion(_named_metric_fusion):
    r"""Element-wise minimum of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \min_m A_m(i, j)

    A :class:`metric_fusion` with ``metric='min'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = min_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[ 1., -4.]])
    """

    _metric = "min"

    def __init__(
        self,
        name: str = "min_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class median_fusion(_named_metric_fusion):
    r"""Element-wise median of ``k`` equally shaped inputs (the lower one when ``k`` is even).

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \operatorname{median}_m A_m(i, j)

    With an even ``k`` this is the lower of the two middle values (``torch.median``), as in
    tinyBIG: ``median(1, 4) = 1``.

    A :class:`metric_fusion` with ``metric='median'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = median_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[ 1., -4.]])
    """

    _metric = "median"

    def __init__(
        self,
        name: str = "median_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class l1_norm_fusion(_named_metric_fusion):
    r"""Element-wise L1 norm of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \sum_{m=1}^k |A_m(i, j)|

    Exported from the package (tinyBIG only had it in ``tinybig.fusion.metric_fusion``).

    A :class:`metric_fusion` with ``metric='l1_norm'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = l1_norm_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[4., 6.]])
    """

    _metric = "l1_norm"

    def __init__(
        self,
        name: str = "l1_norm_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class l2_norm_fusion(_named_metric_fusion):
    r"""Element-wise L2 norm of ``k`` equally shaped inputs.

    .. math:: \text{fusion}(A_1, …, A_k)(i, j) = \sqrt{\sum_{m=1}^k A_m(i, j)^2}

    Exported from the package (tinyBIG only had it in ``tinybig.fusion.metric_fusion``); its
    gradient is 0 (not ``nan``) where every input is 0.

    A :class:`metric_fusion` with ``metric='l2_norm'``; ``w`` is ignored, ``calculate_l()`` is 0
    and passing ``require_parameters`` is a ``TypeError`` (as in tinyBIG).

    Args:
        name: the function's name.
        dims: widths of the inputs (all equal), or ``None``; keyword-only and required, as in
            tinyBIG (whose subclasses took ``(name, **kwargs)``).
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors of one shape ``(*, n)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = l2_norm_fusion(dims=[2, 2])
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, 2.0]])])
        tensor([[3.1623, 4.4721]])
    """

    _metric = "l2_norm"

    def __init__(
        self,
        name: str = "l2_norm_fusion",
        *,
        dims: Dims | None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            name,
            dims=dims,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


# ---------------------------------------------------------------------------------------------
# concatenation
# ---------------------------------------------------------------------------------------------


class concatenation_fusion(fusion):
    r"""Concatenation of ``k`` inputs along the last dimension (their widths may differ).

    .. math:: \text{fusion}(A_1, …, A_k) = A_1 \sqcup \cdots \sqcup A_k, \qquad n = \sum_i n_i

    Pre-processing sees the stacked ``(k, *s)`` tensor when every input has the same shape
    (cross-input functions such as a layer norm over all of them), else each input alone, as in
    tinyBIG. ``require_parameters`` is accepted and ignored (always ``False``).

    Args:
        dims: widths ``n_i`` of the inputs, or ``None``.
        name: the function's name.
        require_parameters: ignored, as in tinyBIG.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

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
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims=dims,
            name=name,
            require_parameters=False,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )

    def calculate_n(self, dims: Dims | None = None) -> int:
        """``Σ dims`` (the concatenated width).

        Raises:
            ValueAssertionError: ``dims`` is ``None`` here and at construction.
        """
        dims = dims if dims is not None else self.dims
        if dims is None:
            raise ValueAssertionError(
                f"{type(self).__name__}.calculate_n needs dims: pass dims= here or at "
                "construction, got None"
            )
        return int(sum(dims))

    def calculate_l(self) -> int:
        """0: concatenation takes no parameters."""
        return 0

    def forward(
        self, x: Sequence[Tensor], w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """``x[0] ⊔ … ⊔ x[k-1]`` along the last dimension (``w`` is ignored)."""
        xs = _check_inputs(x, same_shape=False)
        self._check_against_dims(xs)
        xs = self._pre_process_list(xs, device)
        return self.post_process(fn.concat(xs), device=device)


# ---------------------------------------------------------------------------------------------
# parameterized concatenation family
# ---------------------------------------------------------------------------------------------


class parameterized_concatenation_fusion(fusion):
    r"""Concatenation followed by a learned projection to ``n`` outputs, ``W`` read from ``w``.

    .. math:: \text{fusion}(A_1, …, A_k) = (A_1 \sqcup \cdots \sqcup A_k)\, W^\top,
              \qquad W = \text{reshape}(w) \in R^{n \times D},\; D = \sum_i n_i,\; l = nD

    ``W`` has the :class:`torch.nn.Linear` layout: ``w`` is ``W`` row-major. ``n`` defaults to
    ``dims[0]`` when all widths are equal. The concatenation is never built where the product
    allows it: each input meets its own column block of ``W``. Variants structure ``W`` (their
    ``l`` is smaller): :class:`lowrank_parameterized_concatenation_fusion`,
    :class:`hm_parameterized_concatenation_fusion`,
    :class:`lphm_parameterized_concatenation_fusion`,
    :class:`dual_lphm_parameterized_concatenation_fusion`,
    :class:`random_matrix_adaption_parameterized_concatenation_fusion`.
    ``require_parameters`` is accepted and ignored (always ``True``).

    Args:
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths ``n_i`` of the inputs (needed for ``calculate_l`` and ``forward``).
        name: the function's name.
        require_parameters: ignored, as in tinyBIG.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)`` with equal leading dimensions; ``w``: ``(1, l)``,
          ``(l,)`` or any 2-D shape of ``l`` elements.
        - Output: ``(*, n)``.

    Example:
        >>> f = parameterized_concatenation_fusion(n=1, dims=[1, 1])
        >>> f.calculate_l()
        2
        >>> f([torch.ones(1, 1), torch.ones(1, 1)], w=torch.tensor([[2.0, 3.0]]))
        tensor([[5.]])
    """

    _kind: str = "reshape"
    _count_error = ValueRuntimeError

    def __init__(
        self,
        n: int | None = None,
        dims: Dims | None = None,
        name: str = "parameterized_concatenation_fusion",
        require_parameters: bool = True,
        *,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        super().__init__(
            dims=dims,
            name=name,
            require_parameters=True,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        if n is not None:
            self.n = _positive_int("n", n)
        else:
            if self.dims is None or any(d != self.dims[0] for d in self.dims):
                raise ValueAssertionError(
                    "n is required unless dims are all equal (then n = dims[0]); got n=None and "
                    f"dims={None if self.dims is None else list(self.dims)}"
                )
            self.n = int(self.dims[0])
        self.parameter_fabrication = self._make_fabrication()

    def _make_fabrication(self) -> Fabrication:
        return Fabrication(kind=self._kind)

    @property
    def D(self) -> int | None:
        """The concatenated width ``Σ dims`` (``None`` without ``dims``)."""
        return None if self.dims is None else int(sum(self.dims))

    def _require_D(self, what: str) -> int:
        D = self.D
        if D is None:
            raise ValueError(
                f"{type(self).__name__}.{what} needs dims to know the concatenated width "
                f"D = sum(dims); got dims=None (n={self.n})"
            )
        return D

    def calculate_n(self, dims: Dims | None = None) -> int:
        """The output width ``n`` (``dims`` is ignored, as in tinyBIG)."""
        return self.n

    def calculate_l(self) -> int:
        """The length of ``w`` (``n·D`` here; smaller for the structured variants).

        Raises:
            ValueError: ``dims`` is ``None``.
        """
        return self.parameter_fabrication.calculate_l(self.n, self._require_D("calculate_l"))

    def _random_factors(self) -> tuple[Tensor, Tensor] | None:
        return None

    def forward(
        self, x: Sequence[Tensor], w: Tensor | None = None, device: Device = "cpu"
    ) -> Tensor:
        """``cat(x) @ Wᵀ`` with ``W`` fabricated from ``w``."""
        xs = _check_inputs(x, same_shape=False)
        D = self._require_D("forward")
        self._check_against_dims(xs)
        xs = self._pre_process_list(xs, device)
        if w is None:
            raise ValueAttributeError(
                f"w is required: {type(self).__name__} needs l={self.calculate_l()} parameters "
                "(shape (1, l)), got w=None"
            )
        if not isinstance(w, Tensor):
            raise TypeError(f"w must be a torch.Tensor, got {type(w).__name__}")
        if self._kind == "reshape" and w.numel() != self.n * D:
            raise ValueRuntimeError(
                f"w must hold l=n*D={self.n}*{D}={self.n * D} parameters "
                f"(shape (1, {self.n * D})), got shape {tuple(w.shape)}"
            )
        out = self.parameter_fabrication.apply(
            xs, w, self.n, D, random_factors=self._random_factors()
        )
        return self.post_process(out, device=device)

    def matrix(self, w: Tensor) -> Tensor:
        """Materialize ``W`` of shape ``(n, D)`` from ``w`` (for inspection and tests)."""
        return self.parameter_fabrication.matrix(
            w, self.n, self._require_D("matrix"), random_factors=self._random_factors()
        )


class lowrank_parameterized_concatenation_fusion(parameterized_concatenation_fusion):
    r"""Parameterized concatenation with a rank-``r`` matrix ``W = U V``.

    .. math:: W = U V,\quad U = \text{reshape}(w_{:rn}) \in R^{n \times r},\;
              V = \text{reshape}(w_{rn:}) \in R^{r \times D},\qquad l = r(n + D)

    Applied as ``(x Vᵀ) Uᵀ`` (``r(n + D)`` flops per row), each input meeting its own block of
    ``V``. Arguments after ``name`` are keyword-only, as ``n`` and ``dims`` were in tinyBIG.

    Args:
        r: the rank.
        name: the function's name.
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths of the inputs.
        require_parameters: ignored, as in tinyBIG.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)``; ``w``: ``(1, l)`` or ``(l,)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = lowrank_parameterized_concatenation_fusion(r=1, n=2, dims=[2, 2])
        >>> f.calculate_l()
        6
    """

    _kind = "lowrank"

    def __init__(
        self,
        r: int = 2,
        name: str = "lowrank_parameterized_concatenation_fusion",
        *,
        n: int | None = None,
        dims: Dims | None = None,
        require_parameters: bool = True,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        self.r = _positive_int("r", r)
        super().__init__(
            n=n,
            dims=dims,
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )

    def _make_fabrication(self) -> Fabrication:
        return Fabrication(kind="lowrank", r=self.r)


class _hm_family(parameterized_concatenation_fusion):
    """Shared checks of the hm / lphm / dual_lphm fusions (p | n and q | D, the code's rule)."""

    p: int
    q: int
    r: int | None = None
    kronecker: bool = False

    def _set_pq(self, p: int, q: int | None, kronecker: bool) -> None:
        self.p = _positive_int("p", p)
        self.q = self.p if q is None else _positive_int("q", q)
        if not isinstance(kronecker, bool):
            raise TypeError(f"kronecker must be a bool, got {kronecker!r}")
        self.kronecker = kronecker

    def _check_pq(self) -> None:
        if self.n % self.p != 0:
            raise ValueAssertionError(
                f"p={self.p} must divide the output width n={self.n} (n % p = {self.n % self.p}); "
                f"divisors of n: {[d for d in range(1, self.n + 1) if self.n % d == 0]}"
            )
        if self.dims is None:
            raise ValueAssertionError(
                f"{type(self).__name__} needs dims to check that q divides D = sum(dims); "
                "got dims=None"
            )
        D = int(sum(self.dims))
        if D % self.q != 0:
            raise ValueAssertionError(
                f"q={self.q} must divide the concatenated width D=sum(dims)={D} (D % q = "
                f"{D % self.q}); divisors of D: {[d for d in range(1, D + 1) if D % d == 0]}"
            )

    def _make_fabrication(self) -> Fabrication:
        self._check_pq()
        return Fabrication(kind=self._kind, r=self.r, p=self.p, q=self.q, kronecker=self.kronecker)


class hm_parameterized_concatenation_fusion(_hm_family):
    r"""Parameterized concatenation with a "hypercomplex" (HM) matrix from two small factors.

    With ``s = n/p`` and ``t = D/q``, ``a = w[:pq]`` and ``b = w[pq:]`` (``l = pq + st``):

    * default (tinyBIG's numbers): ``W = reshape(outer(a, b), (n, D))``, the reshaped outer
      product tinyBIG 0.2.1 computes (rank 1 in general);
    * ``kronecker=True``: ``W = a.view(p, q) ⊗ b.view(s, t)``, the Kronecker product its docs
      and paper describe (rank ``rank(A)·rank(B)``), applied without building ``W``.

    The two agree when ``q == 1`` or ``p == n``. ``p`` must divide ``n`` and ``q`` must divide
    ``D`` (the code's rule; tinyBIG's docstring had them swapped). ``q`` defaults to ``p``.

    Args:
        p: rows of the first factor.
        q: columns of the first factor (default ``p``).
        name: the function's name.
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths of the inputs (required).
        require_parameters: ignored, as in tinyBIG.
        kronecker: use the true Kronecker product.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)``; ``w``: ``(1, l)`` or ``(l,)``.
        - Output: ``(*, n)``.

    Example:
        >>> x = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]
        >>> w = torch.arange(1.0, 9.0).view(1, 8)
        >>> hm_parameterized_concatenation_fusion(p=2, n=4, dims=[2, 2])(x, w)
        tensor([[ 70., 140., 210., 280.]])
        >>> hm_parameterized_concatenation_fusion(p=2, n=4, dims=[2, 2], kronecker=True)(x, w)
        tensor([[ 95., 129., 207., 281.]])
    """

    _kind = "hm"

    def __init__(
        self,
        p: int,
        q: int | None = None,
        name: str = "hm_parameterized_concatenation_fusion",
        *,
        n: int | None = None,
        dims: Dims | None = None,
        require_parameters: bool = True,
        kronecker: bool = False,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        self._set_pq(p, q, kronecker)
        super().__init__(
            n=n,
            dims=dims,
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class lphm_parameterized_concatenation_fusion(_hm_family):
    r"""HM fusion whose second factor is low-rank: ``B = S T`` (LPHM).

    With ``s = n/p``, ``t = D/q``: ``a = w[:pq]``, ``S = w[pq:pq+sr].view(s, r)``,
    ``T = w[pq+sr:].view(r, t)``, ``l = pq + r(s + t)``. By default ``W`` is tinyBIG's
    ``reshape(outer(a, vec(S T)), (n, D))``; with ``kronecker=True`` it is
    ``a.view(p, q) ⊗ (S T)``. ``p | n`` and ``q | D``; ``q`` defaults to ``p``.

    Args:
        r: the rank of ``B``.
        p: rows of the first factor.
        q: columns of the first factor (default ``p``).
        name: the function's name.
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths of the inputs (required).
        require_parameters: ignored, as in tinyBIG.
        kronecker: use the true Kronecker product.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)``; ``w``: ``(1, l)`` or ``(l,)``.
        - Output: ``(*, n)``.

    Example:
        >>> x = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]
        >>> f = lphm_parameterized_concatenation_fusion(r=1, p=2, n=4, dims=[2, 2])
        >>> f.calculate_l(), f(x, torch.arange(1.0, 9.0).view(1, 8))
        (8, tensor([[ 433.,  866., 1299., 1732.]]))
    """

    _kind = "lphm"

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str = "lphm_parameterized_concatenation_fusion",
        *,
        n: int | None = None,
        dims: Dims | None = None,
        require_parameters: bool = True,
        kronecker: bool = False,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        self.r = _positive_int("r", r)
        self._set_pq(p, q, kronecker)
        super().__init__(
            n=n,
            dims=dims,
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class dual_lphm_parameterized_concatenation_fusion(_hm_family):
    r"""HM fusion with both factors low-rank: ``A = P Q``, ``B = S T`` (dual LPHM).

    With ``s = n/p``, ``t = D/q``: ``P (p, r)``, ``Q (r, q)``, ``S (s, r)``, ``T (r, t)`` read
    consecutively from ``w``, ``l = r(p + q + s + t)``. By default ``W`` is tinyBIG's
    ``reshape(outer(vec(P Q), vec(S T)), (n, D))``; with ``kronecker=True`` it is
    ``(P Q) ⊗ (S T)``. ``p | n`` and ``q | D``; ``q`` defaults to ``p``.

    Args:
        r: the rank of both factors.
        p: rows of the first factor.
        q: columns of the first factor (default ``p``).
        name: the function's name.
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths of the inputs (required).
        require_parameters: ignored, as in tinyBIG.
        kronecker: use the true Kronecker product.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: see :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)``; ``w``: ``(1, l)`` or ``(l,)``.
        - Output: ``(*, n)``.

    Example:
        >>> x = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]
        >>> f = dual_lphm_parameterized_concatenation_fusion(r=1, p=2, n=4, dims=[2, 2])
        >>> f.calculate_l(), f(x, torch.arange(1.0, 9.0).view(1, 8))
        (8, tensor([[1299., 1732., 2598., 3464.]]))
    """

    _kind = "dual_lphm"

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str = "dual_lphm_parameterized_concatenation_fusion",
        *,
        n: int | None = None,
        dims: Dims | None = None,
        require_parameters: bool = True,
        kronecker: bool = False,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        self.r = _positive_int("r", r)
        self._set_pq(p, q, kronecker)
        super().__init__(
            n=n,
            dims=dims,
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )


class random_matrix_adaption_parameterized_concatenation_fusion(parameterized_concatenation_fusion):
    r"""Parameterized concatenation with a random-matrix-adapted ``W`` (frozen random factors).

    .. math:: W = \Lambda_1 R_A \Lambda_2 R_B^\top,\quad \Lambda_1 = \text{diag}(w_{:n}),\;
              \Lambda_2 = \text{diag}(w_{n:n+r}),\qquad l = n + r

    ``R_A ∈ R^{n×r}`` and ``R_B ∈ R^{D×r}`` are ``random_factors`` if given, else drawn from
    ``N(0, 1)`` with a CPU generator seeded by ``seed`` (``R_A`` first). They are registered
    buffers ``R_A`` / ``R_B``: saved in the ``state_dict``, moved by ``.to()``, never
    redrawn (tinyBIG drew them unseeded on the first call and did not save them). The diagonal
    scalings are broadcasts, never ``diag`` matrices. ``l = n + r`` follows tinyBIG's code (its
    docstring said ``D + r``).

    Args:
        r: the rank.
        name: the function's name.
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths of the inputs (needed to draw ``R_B``).
        require_parameters: ignored, as in tinyBIG.
        seed: seed of the random factors.
        random_factors: ``(R_A, R_B)`` of shapes ``(n, r)`` and ``(D, r)`` to use instead.
        preprocess_functions: see :class:`fusion`.
        postprocess_functions: see :class:`fusion`.
        preprocess_function_configs: see :class:`fusion`.
        postprocess_function_configs: see :class:`fusion`.
        device: device of the random-factor buffers.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)``; ``w``: ``(1, l)`` or ``(l,)``.
        - Output: ``(*, n)``.

    Example:
        >>> f = random_matrix_adaption_parameterized_concatenation_fusion(r=2, n=3, dims=[2, 2, 2])
        >>> f.calculate_l(), tuple(f.R_B.shape)
        (5, (6, 2))
    """

    _kind = "random_matrix_adaption"

    def __init__(
        self,
        r: int = 2,
        name: str = "random_matrix_adaption_parameterized_concatenation_fusion",
        *,
        n: int | None = None,
        dims: Dims | None = None,
        require_parameters: bool = True,
        seed: int = 0,
        random_factors: tuple[Tensor, Tensor] | None = None,
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: Device = "cpu",
    ) -> None:
        self.r = _positive_int("r", r)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        super().__init__(
            n=n,
            dims=dims,
            name=name,
            preprocess_functions=preprocess_functions,
            postprocess_functions=postprocess_functions,
            preprocess_function_configs=preprocess_function_configs,
            postprocess_function_configs=postprocess_function_configs,
            device=device,
        )
        ra, rb = self._draw(random_factors)
        self.register_buffer("R_A", ra)
        self.register_buffer("R_B", rb)

    def _make_fabrication(self) -> Fabrication:
        return Fabrication(kind="random_matrix_adaption", r=self.r)

    def _draw(self, given: tuple[Tensor, Tensor] | None) -> tuple[Tensor | None, Tensor | None]:
        D = self.D
        if given is None:
            if D is None:
                return None, None
            gen = torch.Generator().manual_seed(self.seed)
            ra = torch.randn(self.n, self.r, generator=gen)
            rb = torch.randn(D, self.r, generator=gen)
            return ra.to(self.device), rb.to(self.device)
        return given_random_factors(given, self.n, D, self.r, self.device)

    def _random_factors(self) -> tuple[Tensor, Tensor] | None:
        ra, rb = self._buffers.get("R_A"), self._buffers.get("R_B")
        return None if ra is None or rb is None else (ra, rb)
