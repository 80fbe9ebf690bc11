"""tinyBIG's ``tinybig.interdependence`` (its parameterized part): every class, in tinyBIG's
files, and the base class :class:`interdependence` (from
:mod:`interfuse.tinybig.module.base_interdependence`, whose docstring describes the types)."""

import interfuse.tinybig.interdependence.hybrid_interdependence as _hybrid
import interfuse.tinybig.interdependence.parameterized_bilinear_interdependence as _bilinear
import interfuse.tinybig.interdependence.parameterized_interdependence as _parameterized
import interfuse.tinybig.interdependence.parameterized_rpn_interdependence as _rpn
from interfuse.tinybig.interdependence.hybrid_interdependence import *  # noqa: F403
from interfuse.tinybig.interdependence.parameterized_bilinear_interdependence import *  # noqa: F403
from interfuse.tinybig.interdependence.parameterized_interdependence import *  # noqa: F403
from interfuse.tinybig.interdependence.parameterized_rpn_interdependence import *  # noqa: F403
from interfuse.tinybig.module.base_interdependence import (
    ATTRIBUTE_TYPES,
    INSTANCE_TYPES,
    INTERDEPENDENCE_TYPES,
    interdependence,
)

__all__ = ["ATTRIBUTE_TYPES", "INSTANCE_TYPES", "INTERDEPENDENCE_TYPES", "interdependence"]
__all__ += _hybrid.__all__
__all__ += _bilinear.__all__
__all__ += _parameterized.__all__
__all__ += _rpn.__all__
__all__.sort(key=lambda name: (not name.isupper(), name[0].islower(), name))  # as ruff sorts
