"""Structured matrices by name: the resolver behind ``matrix='lowrank'`` arguments."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from interfuse._names import NameResolver
from interfuse._validation import check_factory_dtype
from interfuse.matrices.base import StructuredMatrix
from interfuse.matrices.dense import DenseMatrix
from interfuse.matrices.kronecker import (
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
)
from interfuse.matrices.lowrank import LowRankMatrix
from interfuse.matrices.monarch import MonarchMatrix
from interfuse.matrices.random_adapted import RandomAdaptedMatrix

__all__ = ["MATRICES", "matrix_class", "resolve_matrix"]

#: Canonical name → class; aliases follow the RPN 2 paper's names. Adding a family is one
#: file and one entry here: tests, docs tables and the bench iterate this dict.
MATRICES: dict[str, type[StructuredMatrix]] = {
    "dense": DenseMatrix,
    "lowrank": LowRankMatrix,
    "kronecker": KroneckerMatrix,
    "lowrank_kronecker": LowRankKroneckerMatrix,
    "dual_lowrank_kronecker": DualLowRankKroneckerMatrix,
    "random_adapted": RandomAdaptedMatrix,
    "monarch": MonarchMatrix,
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
_NAMES: NameResolver[StructuredMatrix] = NameResolver(
    "matrix", StructuredMatrix, MATRICES, _ALIASES, "Matrix", "a name or a StructuredMatrix"
)


def matrix_class(name: str | type[StructuredMatrix]) -> type[StructuredMatrix]:
    """The structured-matrix class registered under ``name``.

    A name is a key of :data:`MATRICES` or one of the RPN 2 paper's aliases (``'full'``,
    ``'low_rank'``, ``'hm'``, ``'lphm'``, ``'dual_lphm'``, ``'rma'``,
    ``'random_matrix_adaption'``) or a class name (``'LowRankMatrix'``); case, ``-``, ``_`` and
    the ``Matrix`` suffix do not matter (the resolver shared with
    :func:`~interfuse.fusion.fusion_class`).

    Args:
        name: a name or alias, or a :class:`~interfuse.matrices.StructuredMatrix` subclass
            (returned unchanged).

    Returns:
        The class.

    Raises:
        TypeError: ``name`` is neither a string nor a ``StructuredMatrix`` subclass.
        ValueError: an unknown name (the message lists the choices).

    Example:
        >>> matrix_class("lphm")
        <class 'interfuse.matrices.kronecker.LowRankKroneckerMatrix'>
        >>> matrix_class("Low-Rank") is matrix_class("LowRankMatrix") is LowRankMatrix
        True
    """
    return _NAMES.resolve(name)


def resolve_matrix(
    matrix: str | StructuredMatrix | type[StructuredMatrix],
    in_features: int,
    out_features: int,
    **kwargs: Any,
) -> StructuredMatrix:
    """Build (or check) a structured matrix of shape ``(out_features, in_features)``.

    Args:
        matrix: a name or alias (see :func:`matrix_class`) or a class, built with ``kwargs``;
            or an instance, returned unchanged once its shape is checked.
        in_features: width of the input.
        out_features: width of the output.
        **kwargs: constructor options of the class (``rank``, ``p``, ``q``, ``seed``, ``mode``,
            ``device``, ``dtype``, ...).

    Returns:
        The matrix.

    Raises:
        TypeError: an option the class does not take (the message lists those it takes), or
            options given with an instance.
        ValueError: an unknown name, or an instance of another shape.

    Example:
        >>> resolve_matrix("lowrank", 64, 32, rank=4)
        LowRankMatrix(in_features=64, out_features=32, rank=4)
        >>> resolve_matrix(LowRankMatrix(64, 32), 16, 32)
        Traceback (most recent call last):
        ValueError: matrix has in_features=64, out_features=32 but in_features=16, ...
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


_FACTORY_KEYS = ("in_features", "out_features", "device", "dtype")


def build_owned_matrix(
    owner: str,
    matrix: object,
    in_features: int,
    out_features: int,
    options: object,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> StructuredMatrix:
    """The structured matrix a module owns (``ProjectedConcatFusion``, the interdependences).

    ``matrix`` is a name, a class (built with ``options``, ``device`` and ``dtype``) or an
    instance (its shape checked, moved to ``device``/``dtype`` if given). The owner sets the
    shape, device and dtype, so ``options`` may not.

    Args:
        owner: the owning class's name, for messages.
        matrix: a name or alias, a concrete :class:`StructuredMatrix` class, or an instance.
        in_features: width of the input.
        out_features: width of the output.
        options: the class's other constructor options (``rank``, ``p``, ...), or ``None``.
        device: device of the matrix.
        dtype: floating dtype of the matrix.

    Returns:
        The matrix.

    Raises:
        TypeError: ``options`` is not a dict, sets the shape, device or dtype, is given with an
            instance, or holds an option the class does not take; ``matrix`` is of another
            kind or an abstract class; ``dtype`` is not floating.
        ValueError: an unknown name, or an instance of another shape.

    Example:
        >>> build_owned_matrix("MyModule", "lowrank", 8, 4, {"rank": 2})
        LowRankMatrix(in_features=8, out_features=4, rank=2)
    """
    dtype = check_factory_dtype(dtype)
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"matrix_options must be a dict or None, got {options!r}")
    chosen = dict(options or {})
    taken = sorted(k for k in chosen if k in _FACTORY_KEYS)
    if taken:
        raise TypeError(
            f"matrix_options must not set {taken}: {owner} sets in_features={in_features}, "
            f"out_features={out_features} and passes its own device and dtype"
        )
    if isinstance(matrix, StructuredMatrix):
        if chosen:
            raise TypeError(
                f"matrix_options {sorted(chosen)} apply only when matrix is a name or a class, "
                f"not an instance ({type(matrix).__name__})"
            )
        built = resolve_matrix(matrix, in_features, out_features)
        if device is not None or dtype is not None:
            built = built.to(device=device, dtype=dtype)
        return built
    if not isinstance(matrix, (str, type)):
        raise TypeError(
            f"matrix must be a name from {sorted(MATRICES)}, a StructuredMatrix class or an "
            f"instance, got {matrix!r}"
        )
    if isinstance(matrix, type) and inspect.isabstract(matrix):
        raise TypeError(
            f"matrix must be a concrete StructuredMatrix class, got the abstract "
            f"{matrix.__name__}; choose one of {sorted(MATRICES)}"
        )
    # A class that is no StructuredMatrix fails in resolve_matrix with a clear TypeError.
    return resolve_matrix(matrix, in_features, out_features, **chosen, device=device, dtype=dtype)
