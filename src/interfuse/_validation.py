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
    "autocast_dtype",
    "check_dims",
    "check_divides",
    "check_operand",
    "check_positive_int",
    "check_seed",
    "check_tensor_list",
    "promote_floating",
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


def check_tensor_list(
    name: str,
    xs: object,
    *,
    same_shape: bool = False,
    widths: tuple[int, ...] | None = None,
    owner: str = "",
) -> list[Tensor]:
    """Validate a non-empty list/tuple of floating tensors with equal leading shapes on one
    device; return it as a list, promoted to one dtype.

    Leading shapes are everything but the last (feature) dimension; ``same_shape`` also
    demands equal last dimensions, ``widths`` (for ``owner``, a name for the message) these
    last dimensions (checked when the count matches: a count differing is the caller's error
    to name). Inputs of different floating dtypes are promoted with torch's rules
    (:func:`promote_floating`), as ``torch.stack``/``torch.cat`` do. Every call runs this
    (validation is on every call), so the common case is one cheap pass; the detailed
    messages come from a second pass that runs only when the first fails.
    """
    if (type(xs) is list or type(xs) is tuple) and xs and isinstance(xs[0], Tensor):
        if _fast_check(xs, same_shape, widths=widths):
            return list(xs)
        if _fast_check(xs, same_shape, mixed_ok=True, widths=widths):
            return promote_floating(xs)
    _explain_tensor_list(name, xs, same_shape)
    tensors = promote_floating(xs)  # type: ignore[arg-type]
    if widths is not None and len(tensors) == len(widths):
        found = tuple([t.shape[-1] for t in tensors])
        if found != tuple(widths):
            raise ValueError(
                f"{name} have widths {list(found)} but {owner} was built for in_dims={list(widths)}"
            )
    return tensors


def _fast_check(
    xs: Sequence[Tensor],
    same_shape: bool,
    mixed_ok: bool = False,
    widths: tuple[int, ...] | None = None,
) -> bool:
    """The common case in one pass of attribute reads that cost tens of nanoseconds each (no
    ``torch.Size`` slicing, no ``torch.device`` objects on the CPU): floating tensors of one
    dtype (any floating dtypes with ``mixed_ok``), shapes and device as the first's, last
    dimensions ``widths``."""
    first = xs[0]
    shape, dtype = first.shape, first.dtype
    nd = len(shape)
    if not dtype.is_floating_point or nd == 0:
        return False
    if widths is not None and (len(xs) != len(widths) or shape[-1] != widths[0]):
        return False
    cpu = first.is_cpu
    device = None if cpu else first.device
    lead = shape[:-1] if not same_shape and nd != 2 else None
    for i in range(1, len(xs)):  # the first is the reference: its checks above are all it needs
        t = xs[i]
        if not isinstance(t, Tensor):
            return False
        ts = t.shape
        if same_shape:
            if ts != shape:
                return False
        elif nd == 2:
            if len(ts) != 2 or ts[0] != shape[0]:
                return False
        elif len(ts) == 0 or ts[:-1] != lead:
            return False
        if widths is not None and ts[-1] != widths[i]:
            return False
        if not t.is_cpu if cpu else t.device != device:
            return False
        if t.dtype is not dtype and not (mixed_ok and t.dtype.is_floating_point):
            return False
    return True


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


def check_operand(
    name: str, x: Tensor, ref: Tensor, owner: str, *, holder: str = "the module"
) -> None:
    """``x`` must be on ``ref``'s device and, outside autocast, of ``ref``'s dtype (the dtype
    of ``owner``'s parameters), as :class:`torch.nn.Linear` demands. Under autocast any
    floating dtype is accepted: the product runs in the autocast dtype. The messages advise
    moving or converting the input or ``holder`` (what holds ``ref``).

    Raises:
        ValueError: ``x`` is on another device.
        TypeError: ``x`` has another dtype, outside autocast.

    Example:
        >>> check_operand("x", torch.ones(2, dtype=torch.float64), torch.ones(2), "Dense")
        Traceback (most recent call last):
        TypeError: x has dtype torch.float64 but Dense has dtype torch.float32; convert ...
    """
    if not (x.is_cpu and ref.is_cpu) and x.device != ref.device:  # no device objects on CPU
        raise ValueError(
            f"{name} is on {x.device} but {owner} is on {ref.device}; "
            f"move the input or {holder} (.to(device))"
        )
    if x.dtype != ref.dtype and autocast_dtype(x.device.type) is None:
        raise TypeError(
            f"{name} has dtype {x.dtype} but {owner} has dtype {ref.dtype}; "
            f"convert the input ({name}.to({ref.dtype})) or {holder} (.to({x.dtype}))"
        )


def resolve_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices`` (case-insensitive), else raise listing them."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {list(choices)}, got {value!r}")
    key = value.lower()
    if key not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return key
