r"""tinyBIG's ``tinybig.module.base_fusion``: the base class :class:`fusion`.

As in tinyBIG, no fusion owns learnable weights: a parameterized one reports ``calculate_l()``
and takes ``w`` on every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interfuse._validation import as_int, check_dims
from interfuse.tinybig._base import TinybigFunction
from interfuse.tinybig.errors import (
    ValueAssertionError,
    ValueIndexError,
    ValueRuntimeError,
    warn,
)

__all__ = ["Device", "Dims", "check_inputs", "fusion"]

Device = str | torch.device
Dims = Sequence[int]


def check_inputs(x: object, *, same_shape: bool) -> list[Tensor]:
    """tinyBIG's input checks, in its order, with clear messages (its errors' types)."""
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


class fusion(TinybigFunction):
    r"""Base of every tinyBIG fusion: combines a list of ``k`` tensors into one.

    Holds the per-input widths ``dims = [n_1, …, n_k]`` (optional), the flag
    ``require_parameters`` and the pre/post-processing functions. Subclasses implement
    ``calculate_n`` (output width), ``calculate_l`` (length of ``w``) and ``forward``; on this
    base class the three raise ``NotImplementedError``. As in tinyBIG, ``calculate_n``,
    ``calculate_l`` and ``forward`` take further positional and keyword arguments and ignore
    them. Pre-processing sees the stacked ``(k, *s)`` tensor when every input has the same shape
    (so a function can act across inputs), else each input alone; inputs that do not match
    ``dims`` are fused as given where the class can (a :class:`TinybigWarning`), as in tinyBIG.

    Args:
        dims: widths ``n_i`` of the inputs' last dimension, or ``None``.
        name: the function's name.
        require_parameters: whether ``forward`` needs ``w``.
        preprocess_functions: applied to the inputs (postprocess: to the output); these and
            ``device`` as :class:`~interfuse.tinybig.TinybigFunction`.

    Shape:
        - Input: a list of ``k`` tensors ``(*, n_i)``.
        - Output: ``(*, calculate_n())``.

    Example:
        >>> f = fusion(dims=[3, 3])
        >>> f.get_num(), f.get_dim(1)
        (2, 3)
    """

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
        pre_post = (preprocess_functions, postprocess_functions)
        configs = (preprocess_function_configs, postprocess_function_configs)
        super().__init__(name, *pre_post, *configs, device)
        if dims is not None and not isinstance(dims, (list, tuple)):
            raise TypeError(f"dims must be a list or tuple of positive ints or None, got {dims!r}")
        checked = None if dims is None else check_dims("dims", dims)
        self.dims: Dims | None = (
            checked if checked is None or isinstance(dims, tuple) else list(checked)
        )
        if not isinstance(require_parameters, bool):
            warn(
                f"require_parameters should be a bool, got {require_parameters!r}; taken as "
                f"{bool(require_parameters)} (as tinyBIG did)"
            )
        self.require_parameters = bool(require_parameters)

    def get_dims(self) -> Dims | None:
        """The input widths ``dims`` (or ``None``)."""
        return self.dims

    def get_num(self) -> int:
        """The number of inputs ``k = len(dims)``, or 0 if ``dims`` is ``None``."""
        return 0 if self.dims is None else len(self.dims)

    def get_dim(self, index: int) -> int | None:
        """``dims[index]`` (``None`` without ``dims``); a ``ValueIndexError`` outside
        ``[0, len(dims))`` (tinyBIG let ``index == len(dims)`` through to an ``IndexError``)."""
        if self.dims is None:
            return None
        k = len(self.dims)
        try:
            i = as_int("index", index)
        except TypeError:
            i = -1
        if not 0 <= i < k:
            raise ValueIndexError(
                f"index must be an int in [0, {k - 1}] for dims={list(self.dims)}, got {index!r}"
            )
        return self.dims[i]

    def calculate_n(self, dims: Dims | None = None, *args: Any, **kwargs: Any) -> int:
        """The output width for inputs of widths ``dims`` (default: ``self.dims``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement calculate_n()")

    def calculate_l(self, *args: Any, **kwargs: Any) -> int:
        """The number of scalars ``w`` must hold (0 if none)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement calculate_l()")

    def forward(
        self,
        x: Sequence[Tensor],
        w: Tensor | None = None,
        device: Device = "cpu",
        *args: Any,
        **kwargs: Any,
    ) -> Tensor:
        """Fuse the list ``x`` (with ``w`` where ``require_parameters``) in tinyBIG's order: check
        the inputs, compare them with ``dims``, pre-process, fuse (``_fuse``), post-process."""
        if type(self)._fuse is fusion._fuse:
            raise NotImplementedError(f"{type(self).__name__} does not implement forward()")
        xs = check_inputs(x, same_shape=self._same_shape)
        self._check_widths(xs)
        self._check_against_dims(xs)
        xs = self._pre_process_list(xs, device)
        return self.post_process(self._fuse(xs, w), device=device)

    #: Whether the inputs must share one shape (else only their leading dimensions).
    _same_shape: bool = True

    def _check_widths(self, xs: list[Tensor]) -> None:
        """Hook: raise where the widths cannot be computed on (before the ``dims`` warning)."""

    def _fuse(self, xs: list[Tensor], w: Tensor | None) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def _check_against_dims(self, xs: Sequence[Tensor]) -> None:
        # tinyBIG never compared them (spec B-F5); a class that cannot compute raises itself
        if self.dims is None:
            return
        widths = [t.shape[-1] for t in xs]
        if widths != list(self.dims):
            warn(
                f"{type(self).__name__}: the inputs have widths {widths} but dims="
                f"{list(self.dims)}; computed on the inputs as given, as tinyBIG did"
            )

    def _pre_process_list(self, xs: list[Tensor], device: Device) -> list[Tensor]:
        if not self.preprocess_functions:
            return xs
        if all(t.shape == xs[0].shape for t in xs):
            return list(self.pre_process(torch.stack(xs), device=device).unbind(0))
        return [self.pre_process(t, device=device) for t in xs]

    def _dims_or_raise(self, dims: Dims | None) -> Dims:
        dims = dims if dims is not None else self.dims
        if dims is None:
            raise ValueAssertionError(
                f"{type(self).__name__}.calculate_n needs dims: pass dims= here or at "
                "construction, got None"
            )
        return dims

    def _equal_dims_n(self, dims: Dims | None) -> int:
        dims = self._dims_or_raise(dims)
        if len(dims) == 0 or any(d != dims[0] for d in dims):
            raise ValueAssertionError(
                f"{type(self).__name__} fuses inputs of one width; dims must be all equal, "
                f"got {list(dims)}"
            )
        return int(dims[0])
