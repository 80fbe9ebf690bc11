"""Structured matrices by name: the resolver behind ``matrix='lowrank'`` arguments."""

from __future__ import annotations

import inspect
from typing import Any

from interfuse.matrices.base import StructuredMatrix
from interfuse.matrices.dense import DenseMatrix
from interfuse.matrices.kronecker import (
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
)
from interfuse.matrices.lowrank import LowRankMatrix
from interfuse.matrices.random_adapted import RandomAdaptedMatrix

__all__ = ["MATRICES", "matrix_class", "resolve_matrix"]

#: Canonical name → class; aliases follow the RPN 2 paper's names.
MATRICES: dict[str, type[StructuredMatrix]] = {
    "dense": DenseMatrix,
    "lowrank": LowRankMatrix,
    "kronecker": KroneckerMatrix,
    "lowrank_kronecker": LowRankKroneckerMatrix,
    "dual_lowrank_kronecker": DualLowRankKroneckerMatrix,
    "random_adapted": RandomAdaptedMatrix,
}
_ALIASES = {
    "full": "dense",
    "low_rank": "lowrank",
    "hm": "kronecker",
    "lphm": "lowrank_kronecker",
    "dual_lphm": "dual_lowrank_kronecker",
    "rma": "random_adapted",
    "random_matrix_adaption": "random_adapted",
}


def matrix_class(name: str | type[StructuredMatrix]) -> type[StructuredMatrix]:
    """The class registered under ``name`` (or its alias); errors list the choices."""
    if isinstance(name, type) and issubclass(name, StructuredMatrix):
        return name
    if not isinstance(name, str):
        raise TypeError(f"matrix must be a name or a StructuredMatrix, got {name!r}")
    key = name.lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in MATRICES:
        choices = sorted(MATRICES) + sorted(_ALIASES)
        raise ValueError(f"matrix must be one of {choices}, got {name!r}")
    return MATRICES[key]


def resolve_matrix(
    matrix: str | StructuredMatrix | type[StructuredMatrix],
    in_features: int,
    out_features: int,
    **kwargs: Any,
) -> StructuredMatrix:
    """Build (or check) a structured matrix of shape ``(out_features, in_features)``.

    ``matrix`` is a name from :data:`MATRICES` (with ``kwargs`` passed to its constructor), a
    class, or an instance whose shape must match.
    """
    if isinstance(matrix, StructuredMatrix):
        if kwargs:
            raise TypeError(
                f"matrix options {sorted(kwargs)} apply only when matrix is a name, not an instance"
            )
        if (matrix.in_features, matrix.out_features) != (in_features, out_features):
            raise ValueError(
                f"matrix has in_features={matrix.in_features}, out_features={matrix.out_features}"
                f" but in_features={in_features}, out_features={out_features} are needed"
            )
        return matrix
    cls = matrix_class(matrix)
    options = sorted(set(inspect.signature(cls).parameters) - {"in_features", "out_features"})
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise TypeError(f"{cls.__name__} does not take the options {unknown}; it takes {options}")
    return cls(in_features, out_features, **kwargs)
