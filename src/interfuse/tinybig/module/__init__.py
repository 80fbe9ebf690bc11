"""tinyBIG's ``tinybig.module`` (the bases of the fusion and interdependence functions)."""

from interfuse.tinybig.module.base_function import function
from interfuse.tinybig.module.base_fusion import fusion
from interfuse.tinybig.module.base_interdependence import interdependence

__all__ = ["function", "fusion", "interdependence"]
