"""Registry entries: the tinyBIG-face fusions (:mod:`interfuse.tinybig.fusion`).

Every fusion takes ``(x_list, w)``; ``w`` is an input here (tinyBIG's contract), so the
contract suite gradchecks it together with the inputs. The base class ``fusion`` has no
forward and is not listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import interfuse.tinybig.fusion as tbf
from interfuse.tinybig.config import instantiation_from_configs
from tests.registry import ModuleEntry

ROWS = 4
EQUAL = [3, 3, 3]
MIXED = [2, 3, 1]  # D = 6
N_OUT = 4


def _roundtrip(m: nn.Module) -> nn.Module:
    rebuilt: nn.Module = instantiation_from_configs(m.to_config())  # type: ignore[operator]
    return rebuilt


def _sampler(
    dims: list[int], n_w: int
) -> Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]]:
    def sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        xs = [torch.randn(ROWS, d, dtype=dtype) for d in dims]
        w = torch.randn(1, n_w, dtype=dtype) if n_w else None
        return (xs, w), {}

    return sample


def _entry(
    id_: str, factory: Callable[[], nn.Module], dims: list[int], n_w: int, n: int
) -> ModuleEntry:
    return ModuleEntry(
        id=f"tinybig-{id_}",
        factory=factory,
        sample=_sampler(dims, n_w),
        roundtrip=_roundtrip,
        out_shape=(ROWS, n),
    )


ENTRIES = [
    _entry(
        "weighted_summation_fusion",
        lambda: tbf.weighted_summation_fusion(dims=EQUAL, weights=torch.tensor([0.2, 0.5, 0.3])),
        EQUAL,
        0,
        3,
    ),
    _entry(
        "weighted_summation_fusion-w",
        lambda: tbf.weighted_summation_fusion(dims=EQUAL, require_parameters=True),
        EQUAL,
        3,
        3,
    ),
    _entry("summation_fusion", lambda: tbf.summation_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("average_fusion", lambda: tbf.average_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry(
        "parameterized_weighted_summation_fusion",
        lambda: tbf.parameterized_weighted_summation_fusion(dims=EQUAL),
        EQUAL,
        3,
        3,
    ),
    _entry("metric_fusion", lambda: tbf.metric_fusion(EQUAL, metric="l2_norm"), EQUAL, 0, 3),
    _entry("mean_fusion", lambda: tbf.mean_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry(
        "mean_fusion-prepost",
        lambda: tbf.mean_fusion(
            dims=EQUAL, preprocess_functions="layer_norm", postprocess_functions=[nn.Tanh()]
        ),
        EQUAL,
        0,
        3,
    ),
    _entry("sum_fusion", lambda: tbf.sum_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("prod_fusion", lambda: tbf.prod_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("max_fusion", lambda: tbf.max_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("min_fusion", lambda: tbf.min_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("median_fusion", lambda: tbf.median_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("l1_norm_fusion", lambda: tbf.l1_norm_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("l2_norm_fusion", lambda: tbf.l2_norm_fusion(dims=EQUAL), EQUAL, 0, 3),
    _entry("concatenation_fusion", lambda: tbf.concatenation_fusion(dims=MIXED), MIXED, 0, 6),
    _entry(
        "concatenation_fusion-layernorm",
        lambda: tbf.concatenation_fusion(dims=EQUAL, preprocess_functions=[nn.LayerNorm(3)]),
        EQUAL,
        0,
        9,
    ),
    _entry(
        "parameterized_concatenation_fusion",
        lambda: tbf.parameterized_concatenation_fusion(n=N_OUT, dims=MIXED),
        MIXED,
        N_OUT * 6,
        N_OUT,
    ),
    _entry(
        "lowrank_parameterized_concatenation_fusion",
        lambda: tbf.lowrank_parameterized_concatenation_fusion(r=2, n=N_OUT, dims=MIXED),
        MIXED,
        2 * (N_OUT + 6),
        N_OUT,
    ),
    _entry(
        "hm_parameterized_concatenation_fusion",
        lambda: tbf.hm_parameterized_concatenation_fusion(p=2, q=3, n=N_OUT, dims=MIXED),
        MIXED,
        6 + 2 * 2,
        N_OUT,
    ),
    _entry(
        "hm_parameterized_concatenation_fusion-kron",
        lambda: tbf.hm_parameterized_concatenation_fusion(
            p=2, q=3, n=N_OUT, dims=MIXED, kronecker=True
        ),
        MIXED,
        6 + 2 * 2,
        N_OUT,
    ),
    _entry(
        "lphm_parameterized_concatenation_fusion",
        lambda: tbf.lphm_parameterized_concatenation_fusion(r=1, p=2, q=3, n=N_OUT, dims=MIXED),
        MIXED,
        6 + 1 * (2 + 2),
        N_OUT,
    ),
    _entry(
        "lphm_parameterized_concatenation_fusion-kron",
        lambda: tbf.lphm_parameterized_concatenation_fusion(
            r=1, p=2, q=3, n=N_OUT, dims=MIXED, kronecker=True
        ),
        MIXED,
        6 + 1 * (2 + 2),
        N_OUT,
    ),
    _entry(
        "dual_lphm_parameterized_concatenation_fusion",
        lambda: tbf.dual_lphm_parameterized_concatenation_fusion(
            r=2, p=2, q=3, n=N_OUT, dims=MIXED
        ),
        MIXED,
        2 * (2 + 3 + 2 + 2),
        N_OUT,
    ),
    _entry(
        "dual_lphm_parameterized_concatenation_fusion-kron",
        lambda: tbf.dual_lphm_parameterized_concatenation_fusion(
            r=2, p=2, q=3, n=N_OUT, dims=MIXED, kronecker=True
        ),
        MIXED,
        2 * (2 + 3 + 2 + 2),
        N_OUT,
    ),
    _entry(
        "random_matrix_adaption_parameterized_concatenation_fusion",
        lambda: tbf.random_matrix_adaption_parameterized_concatenation_fusion(
            r=2, n=N_OUT, dims=MIXED, seed=3
        ),
        MIXED,
        N_OUT + 2,
        N_OUT,
    ),
]
