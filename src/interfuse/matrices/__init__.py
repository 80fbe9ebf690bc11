"""Parameter-efficient structured matrices shared by fusion and interdependence.

Every class is a :class:`StructuredMatrix`: an ``nn.Module`` of shape
``(out_features, in_features)`` that owns its factors, applies itself as ``x @ Wᵀ`` in
factored form, counts its parameters (also before construction, via
:meth:`StructuredMatrix.count_parameters`) and can :meth:`~StructuredMatrix.materialize` ``W``.
"""

from interfuse.matrices.base import StructuredMatrix
from interfuse.matrices.dense import DenseMatrix
from interfuse.matrices.kronecker import (
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    choose_kronecker_factors,
)
from interfuse.matrices.lowrank import LowRankMatrix
from interfuse.matrices.parametrize import register_structured_weight
from interfuse.matrices.random_adapted import RandomAdaptedMatrix
from interfuse.matrices.registry import MATRICES, matrix_class, resolve_matrix

__all__ = [
    "MATRICES",
    "DenseMatrix",
    "DualLowRankKroneckerMatrix",
    "KroneckerMatrix",
    "LowRankKroneckerMatrix",
    "LowRankMatrix",
    "RandomAdaptedMatrix",
    "StructuredMatrix",
    "choose_kronecker_factors",
    "matrix_class",
    "register_structured_weight",
    "resolve_matrix",
]
