"""Modern interdependence modules: parameterized, bilinear and hybrid.

| class | ``A`` | depends on |
|---|---|---|
| :class:`ParameterizedInterdependence` | a structured matrix, ``(in_dim, out_dim)`` | parameters |
| :class:`BilinearInterdependence` | ``XᵀWX`` (attribute) / ``XWXᵀ`` (instance) | data and ``W`` |
| :class:`HybridInterdependence` | ``F(A₁, …, A_k)`` for any modern fusion ``F`` | its parts |

Attribute axis: ``Y = X A`` (mixes features); instance axis: ``Y = Aᵀ X`` (mixes rows). Inputs
are ``(..., b, m)`` with any leading batch dimensions.
"""

from interfuse.interdependence.base import Interdependence
from interfuse.interdependence.bilinear import BilinearInterdependence
from interfuse.interdependence.hybrid import HybridInterdependence, is_linear_fusion
from interfuse.interdependence.parameterized import ParameterizedInterdependence

__all__ = [
    "BilinearInterdependence",
    "HybridInterdependence",
    "Interdependence",
    "ParameterizedInterdependence",
    "is_linear_fusion",
]
