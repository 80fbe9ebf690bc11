"""interfuse: fusion operators and parameterized interdependence matrices for PyTorch.

Two faces on one core: the modern API exported here (modules that own their parameters) and
:mod:`interfuse.tinybig`, the tinyBIG 0.2.1 API name for name.
"""

from interfuse.config import dump_config, from_config, load_config

# fusion
from interfuse.fusion import (
    ConcatFusion,
    Fusion,
    MaxFusion,
    MeanFusion,
    MedianFusion,
    MinFusion,
    NormFusion,
    ProdFusion,
    ProjectedConcatFusion,
    SumFusion,
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
    MonarchMatrix,
    RandomAdaptedMatrix,
    ReplacedLinear,
    StructuredMatrix,
    replace_linear,
)

__version__ = "0.1.0"

__all__ = [
    "BilinearInterdependence",
    "ConcatFusion",
    "DenseMatrix",
    "DualLowRankKroneckerMatrix",
    "Fusion",
    "HybridInterdependence",
    "Interdependence",
    "KroneckerMatrix",
    "LowRankKroneckerMatrix",
    "LowRankMatrix",
    "MaxFusion",
    "MeanFusion",
    "MedianFusion",
    "MinFusion",
    "MonarchMatrix",
    "NormFusion",
    "ParameterizedInterdependence",
    "ProdFusion",
    "ProjectedConcatFusion",
    "RandomAdaptedMatrix",
    "ReplacedLinear",
    "StructuredMatrix",
    "SumFusion",
    "WeightedSumFusion",
    "__version__",
    "dump_config",
    "from_config",
    "load_config",
    "replace_linear",
    "resolve_fusion",
]
