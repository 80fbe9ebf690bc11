"""tinyBIG 0.2.1's fusion and interdependence API, name for name, on the interfuse core.

The modules mirror tinyBIG's (``interfuse.tinybig.fusion.metric_fusion``,
``interfuse.tinybig.interdependence.parameterized_interdependence``,
``interfuse.tinybig.module.base_fusion``, ...), so that tinyBIG code migrates by renaming
``tinybig.`` to ``interfuse.tinybig.`` in its imports. ``interfuse.tinybig.fusion`` is the
package of the fusion classes (its base class is ``interfuse.tinybig.fusion.fusion``; it is not
re-exported here, so that the name ``fusion`` keeps meaning the package; the same holds for
``interdependence``). Every other class is exported below, in one sorted ``__all__``; where a
stricter check doubts a call tinyBIG computed, it warns with :class:`TinybigWarning`.
"""

# ruff: noqa: F401 - the imports are the exports (the computed __all__ below)
from inspect import ismodule as _is_module

from interfuse.tinybig import config
from interfuse.tinybig._base import TinybigFunction
from interfuse.tinybig.config import from_config, instantiation_from_configs
from interfuse.tinybig.errors import (
    TinybigWarning,
    ValueAssertionError,
    ValueAttributeError,
    ValueIndexError,
    ValueRuntimeError,
)
from interfuse.tinybig.fusion import (
    average_fusion,
    concatenation_fusion,
    dual_lphm_parameterized_concatenation_fusion,
    hm_parameterized_concatenation_fusion,
    l1_norm_fusion,
    l2_norm_fusion,
    lowrank_parameterized_concatenation_fusion,
    lphm_parameterized_concatenation_fusion,
    max_fusion,
    mean_fusion,
    median_fusion,
    metric_fusion,
    min_fusion,
    parameterized_concatenation_fusion,
    parameterized_weighted_summation_fusion,
    prod_fusion,
    random_matrix_adaption_parameterized_concatenation_fusion,
    sum_fusion,
    summation_fusion,
    weighted_summation_fusion,
)

# interdependence (the base class ``interdependence`` is not re-exported, so that the name
# ``interdependence`` keeps meaning the module interfuse.tinybig.interdependence)
from interfuse.tinybig.interdependence import (
    dual_lphm_parameterized_bilinear_interdependence,
    dual_lphm_parameterized_interdependence,
    hm_parameterized_bilinear_interdependence,
    hm_parameterized_interdependence,
    hybrid_interdependence,
    lowrank_parameterized_bilinear_interdependence,
    lowrank_parameterized_interdependence,
    lphm_parameterized_bilinear_interdependence,
    lphm_parameterized_interdependence,
    parameterized_bilinear_interdependence,
    parameterized_interdependence,
    parameterized_rpn_interdependence,
    random_matrix_adaption_parameterized_bilinear_interdependence,
    random_matrix_adaption_parameterized_interdependence,
)

#: The classes and functions imported above, and ``config``: not the subpackages ``fusion`` and
#: ``interdependence`` (whose base classes of those names keep tinyBIG's paths).
__all__ = sorted(
    k for k, v in globals().items() if k[0] != "_" and (k == "config" or not _is_module(v))
)
