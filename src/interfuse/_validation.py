"""Argument checks shared by every module: each raises ``ValueError``/``TypeError`` naming
the argument, the value received and what was expected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "autocast_dtype",
    "check_dims",
    "check_divides",
    "check_operand",
    "check_positive_int",
    "check_tensor_list",
    "promote_floating",
    "resolve_choice",
]


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is a positive ``int`` (bools rejected), else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be a positive int, got {value!r} of type {type(value).__name__}"
        )
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value}")
    return value


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
    """Validate a non-empty list/tuple of floating tensors with equal leading shapes on one
    device; return it as a list, promoted to one dtype.

    Leading shapes are everything but the last (feature) dimension; ``same_shape`` also
    demands equal last dimensions. Inputs of different floating dtypes are promoted with
    torch's rules (:func:`promote_floating`), as ``torch.stack``/``torch.cat`` do. Every call
    runs this (validation is on every call), so the common case is one cheap pass; the
    detailed messages come from a second pass that runs only when the first fails.
    """
    if type(xs) is list or type(xs) is tuple:
        try:
            first = xs[0]
            shape, device, dtype = first.shape, first.device, first.dtype
            ok = first.is_floating_point() and len(shape) > 0
            mixed = False
            lead = shape[:-1]
            for t in xs:
                if not ok:
                    break
                ok = (
                    isinstance(t, Tensor)
                    and (t.shape == shape if same_shape else t.shape[:-1] == lead)
                    and t.device == device
                    and t.is_floating_point()
                    and t.ndim > 0
                )
                mixed = mixed or t.dtype != dtype
        except (IndexError, AttributeError, TypeError):
            ok = False
        if ok:
            return promote_floating(xs) if mixed else list(xs)
    _explain_tensor_list(name, xs, same_shape)
    return promote_floating(xs)  # type: ignore[arg-type]  # pragma: no cover - raised above


def _explain_tensor_list(name: str, xs: object, same_shape: bool) -> None:
    """Raise the error that names what is wrong with ``xs`` (the slow, detailed pass)."""
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
        if t.is_complex():
            raise TypeError(
                f"{name} must hold real floating tensors, got dtype {t.dtype}; "
                "fuse the real and imaginary parts separately"
            )
        if not t.is_floating_point():
            raise TypeError(
                f"{name}[{i}] must have a floating dtype, got {t.dtype}; convert with .float()"
            )
        if t.ndim == 0:
            raise ValueError(f"{name}[{i}] must have at least one dimension, got a 0-d tensor")
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


def promote_floating(xs: Sequence[Tensor]) -> list[Tensor]:
    """``xs`` converted to their common dtype by torch's promotion rules
    (:func:`torch.promote_types`; float32 and bfloat16 give float32, float16 and bfloat16 give
    float32), as ``torch.stack``/``torch.cat`` promote; the tensors already of that dtype are
    returned as they are (no copy).

    Example:
        >>> xs = [torch.ones(1), torch.ones(1, dtype=torch.bfloat16)]
        >>> [t.dtype for t in promote_floating(xs)]
        [torch.float32, torch.float32]
    """
    dtype = xs[0].dtype
    for t in xs[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t if t.dtype == dtype else t.to(dtype) for t in xs]


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype :func:`torch.autocast` computes in on ``device_type`` now, or ``None`` outside
    autocast (and on device types autocast does not know, such as ``'meta'``, where
    :func:`torch.is_autocast_enabled` would raise).

    Example:
        >>> autocast_dtype("cpu") is None
        True
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     autocast_dtype("cpu")
        torch.bfloat16
        >>> autocast_dtype("meta") is None
        True
    """
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def check_operand(name: str, x: Tensor, ref: Tensor, owner: str) -> None:
    """``x`` must be on ``ref``'s device and, outside autocast, of ``ref``'s dtype (the dtype
    of ``owner``'s parameters), as :class:`torch.nn.Linear` demands. Under autocast any
    floating dtype is accepted: the product runs in the autocast dtype.

    Raises:
        ValueError: ``x`` is on another device.
        TypeError: ``x`` has another dtype, outside autocast.

    Example:
        >>> check_operand("x", torch.ones(2, dtype=torch.float64), torch.ones(2), "Dense")
        Traceback (most recent call last):
        TypeError: x has dtype torch.float64 but Dense has dtype torch.float32; convert ...
    """
    if x.device != ref.device:
        raise ValueError(
            f"{name} is on {x.device} but {owner} is on {ref.device}; "
            "move the input or the module (.to(device))"
        )
    if x.dtype != ref.dtype and autocast_dtype(x.device.type) is None:
        raise TypeError(
            f"{name} has dtype {x.dtype} but {owner} has dtype {ref.dtype}; "
            f"convert the input ({name}.to({ref.dtype})) or the module (.to({x.dtype}))"
        )


def resolve_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-insensitive), else raise listing them."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {list(choices)}, got {value!r}")
    key = value.lower()
    if key not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return key
