"""Error classes of the tinyBIG face.

Where tinyBIG 0.2.1 raised ``AssertionError`` (or crashed with ``AttributeError``,
``IndexError``, ``RuntimeError``), interfuse raises a clear message in a class that derives
from ``ValueError`` *and* the original's type, so both ``except ValueError`` and existing
``except AssertionError`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "ValueAssertionError",
    "ValueAttributeError",
    "ValueIndexError",
    "ValueRuntimeError",
]


class ValueAssertionError(ValueError, AssertionError):
    """A bad value where tinyBIG raised ``AssertionError``."""


class ValueAttributeError(ValueError, AttributeError):
    """A missing value where tinyBIG crashed with ``AttributeError`` (e.g. ``w=None``)."""


class ValueIndexError(ValueError, IndexError):
    """An out-of-range index where tinyBIG raised ``IndexError``."""


class ValueRuntimeError(ValueError, RuntimeError):
    """A shape mismatch where tinyBIG crashed inside a matmul or reshape (``RuntimeError``)."""
