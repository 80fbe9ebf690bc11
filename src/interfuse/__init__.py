"""interfuse: fusion operators and parameterized interdependence matrices for PyTorch.

Two faces on one core: the modern API exported here (modules that own their parameters) and
:mod:`interfuse.tinybig`, the tinyBIG 0.2.1 API name for name.
"""

from interfuse.config import dump_config, from_config, load_config

# fusion
from interfuse.fusion import (
    AttentionFusion,
    ConcatFusion,
    Fusion,
    GatedFusion,
    LogSumExpFusion,
    MaxFusion,
    MeanFusion,
    MedianFusion,
    MinFusion,
    NormFusion,
    ProdFusion,
    ProjectedConcatFusion,
    StdFusion,
    SumFusion,
    VarFusion,
    WeightedSumFusion,
    resolve_fusion,
)

# interdependence
from interfuse.interdependence import (
    BilinearInterdependence,
    HybridInterdependence,
    Interdependence,
    ParameterizedInterdependence,
)
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
    "AttentionFusion",
    "BilinearInterdependence",
    "ConcatFusion",
    "DenseMatrix",
    "DualLowRankKroneckerMatrix",
    "Fusion",
    "GatedFusion",
    "HybridInterdependence",
    "Interdependence",
    "KroneckerMatrix",
    "LogSumExpFusion",
    "LowRankKroneckerMatrix",
    "LowRankMatrix",
    "MaxFusion",
    "MeanFusion",
    "MedianFusion",
    "MinFusion",
    "NormFusion",
    "ParameterizedInterdependence",
    "ProdFusion",
    "ProjectedConcatFusion",
    "RandomAdaptedMatrix",
    "StdFusion",
    "StructuredMatrix",
    "SumFusion",
    "VarFusion",
    "WeightedSumFusion",
    "__version__",
    "dump_config",
    "from_config",
    "load_config",
    "resolve_fusion",
]
