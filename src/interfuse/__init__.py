"""interfuse: fusion operators and parameterized interdependence matrices for PyTorch.

Two faces on one core: the modern API exported here (modules that own their parameters) and
:mod:`interfuse.tinybig`, the tinyBIG 0.2.1 API name for name.
"""

from interfuse.matrices import (
    DenseMatrix,
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    LowRankMatrix,
    RandomAdaptedMatrix,
    StructuredMatrix,
)

__version__ = "0.1.0"

__all__ = [
    "DenseMatrix",
    "DualLowRankKroneckerMatrix",
    "KroneckerMatrix",
    "LowRankKroneckerMatrix",
    "LowRankMatrix",
    "RandomAdaptedMatrix",
    "StructuredMatrix",
    "__version__",
]
