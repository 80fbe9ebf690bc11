"""Argument checks shared by every module: each raises ``ValueError``/``TypeError`` naming
the argument, the value received and what was expected."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "as_int",
    "check_dims",
    "check_divides",
    "check_positive_int",
    "check_seed",
    "check_tensor_list",
    "resolve_choice",
]


def as_int(name: str, value: object, expected: str = "an int") -> int:
    """``value`` as a Python ``int`` under the one integer policy of both faces.

    Python ints, numpy integers (any :class:`numbers.Integral`) and 0-d integer tensors are
    accepted; bools (Python's, numpy's or tensors) and everything else raise ``TypeError``
    naming ``name``, the value and ``expected``.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if (
        isinstance(value, Tensor)
        and value.ndim == 0
        and not (value.dtype == torch.bool or value.is_floating_point() or value.is_complex())
    ):
        return int(value.item())
    raise TypeError(f"{name} must be {expected}, got {value!r} of type {type(value).__name__}")


def check_positive_int(name: str, value: object) -> int:
    """``value`` as a positive ``int`` (see :func:`as_int`): ``TypeError`` for a non-integer,
    ``ValueError`` for one below 1."""
    result = as_int(name, value, "a positive int")
    if result <= 0:
        raise ValueError(f"{name} must be a positive int, got {result}")
    return result


#: The seeds ``torch.Generator.manual_seed`` takes.
SEED_RANGE = (-(2**63), 2**64 - 1)


def check_seed(value: object, name: str = "seed") -> int:
    """``value`` as a seed ``torch.Generator.manual_seed`` takes (an integer, see
    :func:`as_int`, in :data:`SEED_RANGE`), else ``TypeError`` / ``ValueError`` naming it."""
    result = as_int(name, value)
    low, high = SEED_RANGE
    if not low <= result <= high:
        raise ValueError(f"{name} must be in [-2**63, 2**64 - 1] (a 64-bit seed), got {result}")
    return result


def check_factory_dtype(dtype: object) -> Any:
    """Return ``dtype`` if it is ``None`` or a floating ``torch.dtype`` (the dtype of a
    module's parameters), else raise ``TypeError``."""
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(
            f"dtype must be a floating torch.dtype such as torch.float32 (the parameters' "
            f"dtype), got {dtype!r}"
        )
    return dtype


def check_divides(divisor_name: str, divisor: int, name: str, value: int) -> int:
    """Return ``value // divisor`` if ``divisor`` divides ``value``, else raise ``ValueError``."""
    if value % divisor != 0:
        raise ValueError(
            f"{divisor_name}={divisor} must divide {name}={value} (the Kronecker factor sizes "
            f"are {name}/{divisor_name}); choose a divisor of {value}: {_divisors(value)}"
        )
    return value // divisor


def _divisors(value: int) -> list[int]:
    return [d for d in range(1, value + 1) if value % d == 0]


def check_dims(name: str, dims: object) -> tuple[int, ...]:
    """Return ``dims`` as a non-empty tuple of positive ints, else raise."""
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence):
        raise TypeError(f"{name} must be a list or tuple of positive ints, got {dims!r}")
    if len(dims) == 0:
        raise ValueError(f"{name} must name at least one input width, got {list(dims)!r}")
    return tuple(check_positive_int(f"{name}[{i}]", d) for i, d in enumerate(dims))


def check_tensor_list(name: str, xs: object, *, same_shape: bool = False) -> list[Tensor]:
    """Validate a non-empty list/tuple of floating tensors with equal leading shapes.

    Leading shapes are everything but the last (feature) dimension; ``same_shape`` also
    demands equal last dimensions. Dtypes and devices must agree, since the fused result
    has one of each.
    """
    if isinstance(xs, Tensor):
        raise TypeError(
            f"{name} must be a list or tuple of tensors, got a single Tensor of shape "
            f"{tuple(xs.shape)}; pass list(t.unbind(0)) to fuse along its first dimension"
        )
    if not isinstance(xs, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of tensors, got {type(xs).__name__}")
    if len(xs) == 0:
        raise ValueError(f"{name} must hold at least one tensor, got an empty {type(xs).__name__}")
    first = xs[0]
    for i, t in enumerate(xs):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}[{i}] must be a torch.Tensor, got {type(t).__name__}")
        if not (t.is_floating_point() or t.is_complex()):
            raise TypeError(
                f"{name}[{i}] must have a floating dtype, got {t.dtype}; convert with .float()"
            )
        if t.ndim == 0:
            raise ValueError(f"{name}[{i}] must have at least one dimension, got a 0-d tensor")
        if t.dtype != first.dtype:
            raise TypeError(
                f"{name}[{i}] has dtype {t.dtype} but {name}[0] has {first.dtype}; "
                "all inputs must share one dtype"
            )
        if t.device != first.device:
            raise ValueError(
                f"{name}[{i}] is on {t.device} but {name}[0] is on {first.device}; "
                "move all inputs to one device"
            )
        if same_shape:
            if t.shape != first.shape:
                raise ValueError(
                    f"{name}[{i}] has shape {tuple(t.shape)} but {name}[0] has "
                    f"{tuple(first.shape)}; this fusion needs identical shapes"
                )
        elif t.shape[:-1] != first.shape[:-1]:
            raise ValueError(
                f"{name}[{i}] has leading shape {tuple(t.shape[:-1])} but {name}[0] has "
                f"{tuple(first.shape[:-1])}; all dimensions but the last must agree"
            )
    return list(xs)


def resolve_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-insensitive), else raise listing them."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {list(choices)}, got {value!r}")
    key = value.lower()
    if key not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return key
