"""Stateless kernels shared by both faces of interfuse.

* :mod:`~interfuse.functional.elementwise`: copy-free sums, means, products, extrema, norms.
* :mod:`~interfuse.functional.statistics`: copy-free variance, standard deviation, log-sum-exp.
* :mod:`~interfuse.functional.concat`: concatenation with zero-fill for absent inputs.
* :mod:`~interfuse.functional.structured`: structured-matrix products in factored form.
"""

from interfuse.functional.concat import concat, masked_inputs
from interfuse.functional.elementwise import (
    check_mask,
    fused_max,
    fused_mean,
    fused_median,
    fused_min,
    fused_norm,
    fused_prod,
    fused_sum,
    weighted_sum,
)
from interfuse.functional.statistics import fused_logsumexp, fused_std, fused_var
from interfuse.functional.structured import (
    Inputs,
    as_tensor_input,
    dense_linear,
    dual_lowrank_kron_linear,
    dual_lowrank_kron_matrix,
    kron_linear,
    kron_matrix,
    lowrank_kron_linear,
    lowrank_kron_matrix,
    lowrank_linear,
    lowrank_matrix,
    random_adapted_linear,
    random_adapted_matrix,
)

__all__ = [
    "Inputs",
    "as_tensor_input",
    "check_mask",
    "concat",
    "dense_linear",
    "dual_lowrank_kron_linear",
    "dual_lowrank_kron_matrix",
    "fused_logsumexp",
    "fused_max",
    "fused_mean",
    "fused_median",
    "fused_min",
    "fused_norm",
    "fused_prod",
    "fused_std",
    "fused_sum",
    "fused_var",
    "kron_linear",
    "kron_matrix",
    "lowrank_kron_linear",
    "lowrank_kron_matrix",
    "lowrank_linear",
    "lowrank_matrix",
    "masked_inputs",
    "random_adapted_linear",
    "random_adapted_matrix",
    "weighted_sum",
]
