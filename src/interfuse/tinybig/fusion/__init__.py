"""tinyBIG's ``tinybig.fusion``: every fusion class, and the base class :class:`fusion`.

The classes live in the files tinyBIG keeps them in (``basic_fusion``, ``metric_fusion``,
``concatenation_fusion``, ``parameterized_concatenation_fusion``; the base in
:mod:`interfuse.tinybig.module.base_fusion`), so that tinyBIG code migrates by renaming
``tinybig.`` to ``interfuse.tinybig.`` in its imports.
"""

from interfuse.tinybig.fusion.basic_fusion import (
    average_fusion,
    parameterized_weighted_summation_fusion,
    summation_fusion,
    weighted_summation_fusion,
)
from interfuse.tinybig.fusion.concatenation_fusion import concatenation_fusion
from interfuse.tinybig.fusion.metric_fusion import (
    METRICS,
    l1_norm_fusion,
    l2_norm_fusion,
    max_fusion,
    mean_fusion,
    median_fusion,
    metric_fusion,
    min_fusion,
    prod_fusion,
    sum_fusion,
)
from interfuse.tinybig.fusion.parameterized_concatenation_fusion import (
    dual_lphm_parameterized_concatenation_fusion,
    hm_parameterized_concatenation_fusion,
    lowrank_parameterized_concatenation_fusion,
    lphm_parameterized_concatenation_fusion,
    parameterized_concatenation_fusion,
    random_matrix_adaption_parameterized_concatenation_fusion,
)
from interfuse.tinybig.module.base_fusion import fusion

__all__ = [
    "METRICS",
    "average_fusion",
    "concatenation_fusion",
    "dual_lphm_parameterized_concatenation_fusion",
    "fusion",
    "hm_parameterized_concatenation_fusion",
    "l1_norm_fusion",
    "l2_norm_fusion",
    "lowrank_parameterized_concatenation_fusion",
    "lphm_parameterized_concatenation_fusion",
    "max_fusion",
    "mean_fusion",
    "median_fusion",
    "metric_fusion",
    "min_fusion",
    "parameterized_concatenation_fusion",
    "parameterized_weighted_summation_fusion",
    "prod_fusion",
    "random_matrix_adaption_parameterized_concatenation_fusion",
    "sum_fusion",
    "summation_fusion",
    "weighted_summation_fusion",
]
