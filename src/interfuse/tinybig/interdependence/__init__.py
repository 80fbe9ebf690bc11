"""tinyBIG's ``tinybig.interdependence`` (the parameterized part): every class, and the base
class :class:`interdependence`.

The classes live in the files tinyBIG keeps them in (``parameterized_interdependence``,
``parameterized_bilinear_interdependence``, ``parameterized_rpn_interdependence``,
``hybrid_interdependence``; the base in :mod:`interfuse.tinybig.module.base_interdependence`,
whose docstring describes the types and the deliberate differences from tinyBIG), so that
tinyBIG code migrates by renaming ``tinybig.`` to ``interfuse.tinybig.`` in its imports.
"""

from interfuse.tinybig.interdependence.hybrid_interdependence import hybrid_interdependence
from interfuse.tinybig.interdependence.parameterized_bilinear_interdependence import (
    dual_lphm_parameterized_bilinear_interdependence,
    hm_parameterized_bilinear_interdependence,
    lowrank_parameterized_bilinear_interdependence,
    lphm_parameterized_bilinear_interdependence,
    parameterized_bilinear_interdependence,
    random_matrix_adaption_parameterized_bilinear_interdependence,
)
from interfuse.tinybig.interdependence.parameterized_interdependence import (
    dual_lphm_parameterized_interdependence,
    hm_parameterized_interdependence,
    lowrank_parameterized_interdependence,
    lphm_parameterized_interdependence,
    parameterized_interdependence,
    random_matrix_adaption_parameterized_interdependence,
)
from interfuse.tinybig.interdependence.parameterized_rpn_interdependence import (
    DataTransformation,
    ParameterFabrication,
    parameterized_rpn_interdependence,
)
from interfuse.tinybig.module.base_interdependence import (
    ATTRIBUTE_TYPES,
    INSTANCE_TYPES,
    INTERDEPENDENCE_TYPES,
    interdependence,
)

__all__ = [
    "ATTRIBUTE_TYPES",
    "INSTANCE_TYPES",
    "INTERDEPENDENCE_TYPES",
    "DataTransformation",
    "ParameterFabrication",
    "dual_lphm_parameterized_bilinear_interdependence",
    "dual_lphm_parameterized_interdependence",
    "hm_parameterized_bilinear_interdependence",
    "hm_parameterized_interdependence",
    "hybrid_interdependence",
    "interdependence",
    "lowrank_parameterized_bilinear_interdependence",
    "lowrank_parameterized_interdependence",
    "lphm_parameterized_bilinear_interdependence",
    "lphm_parameterized_interdependence",
    "parameterized_bilinear_interdependence",
    "parameterized_interdependence",
    "parameterized_rpn_interdependence",
    "random_matrix_adaption_parameterized_bilinear_interdependence",
    "random_matrix_adaption_parameterized_interdependence",
]
