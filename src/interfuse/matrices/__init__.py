"""Parameter-efficient structured matrices shared by fusion and interdependence.

Every class is a :class:`StructuredMatrix`: an ``nn.Module`` of shape
``(out_features, in_features)`` that owns its factors, applies itself as ``x @ Wᵀ`` in
factored form, counts its parameters (also before construction, via
:meth:`StructuredMatrix.count_parameters`), can :meth:`~StructuredMatrix.materialize` ``W``,
starts from a trained weight (:meth:`~StructuredMatrix.from_dense`) and merges back to
``nn.Linear`` (:meth:`~StructuredMatrix.to_linear`). The families are listed once, in
:data:`MATRICES`.
"""

from interfuse.matrices.base import StructuredMatrix, StructureWarning
from interfuse.matrices.convert import ReplacedLinear, replace_linear
from interfuse.matrices.dense import DenseMatrix
from interfuse.matrices.kronecker import (
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    choose_kronecker_factors,
    nearest_kronecker,
)
from interfuse.matrices.lowrank import LowRankMatrix
from interfuse.matrices.monarch import MonarchMatrix, choose_monarch_blocks
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
    "MonarchMatrix",
    "RandomAdaptedMatrix",
    "ReplacedLinear",
    "StructureWarning",
    "StructuredMatrix",
    "choose_kronecker_factors",
    "choose_monarch_blocks",
    "matrix_class",
    "nearest_kronecker",
    "register_structured_weight",
    "replace_linear",
    "resolve_matrix",
]
