"""Error classes of the tinyBIG face.

Where tinyBIG 0.2.1 raised ``AssertionError`` (or crashed with ``AttributeError``,
``IndexError``, ``RuntimeError``), interfuse raises a clear message in a class that derives
from ``ValueError`` *and* the original's type, so both ``except ValueError`` and existing
``except AssertionError`` clauses keep working.

Example:
    >>> isinstance(ValueAssertionError("dims must be positive"), AssertionError)
    True
    >>> isinstance(ValueIndexError("index 3 is out of range"), (ValueError, IndexError))
    True
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

__all__ = [
    "TinybigWarning",
    "ValueAssertionError",
    "ValueAttributeError",
    "ValueIndexError",
    "ValueRuntimeError",
    "warn",
]


class TinybigWarning(UserWarning):
    """A call tinyBIG 0.2.1 accepted and computed, which a stricter check of this face doubts.

    The result is tinyBIG's; the warning says what looks wrong (e.g. inputs that do not match
    ``dims``). Silence it with ``warnings.simplefilter("ignore", TinybigWarning)`` or make it
    an error with ``"error"``.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out = tb.concatenation_fusion(dims=[2, 2, 2])([torch.ones(1, 2)] * 2)
        >>> out.shape, caught[0].category.__name__
        (torch.Size([1, 4]), 'TinybigWarning')
    """


def warn(message: str) -> None:
    """Warn with :class:`TinybigWarning`, attributed to the caller's line: the first frame
    outside interfuse and torch (a module call passes through both)."""
    import torch

    roots = (str(Path(__file__).parents[1]), str(Path(torch.__file__).parent))
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(roots):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, TinybigWarning, stacklevel=level)


class ValueAssertionError(ValueError, AssertionError):
    """A bad value where tinyBIG raised ``AssertionError`` (both ``except`` clauses catch it)."""


class ValueAttributeError(ValueError, AttributeError):
    """A missing value where tinyBIG crashed with ``AttributeError`` (e.g. ``w=None``)."""


class ValueIndexError(ValueError, IndexError):
    """An out-of-range index where tinyBIG raised ``IndexError``."""


class ValueRuntimeError(ValueError, RuntimeError):
    """A shape mismatch where tinyBIG crashed inside a matmul or reshape (``RuntimeError``)."""
