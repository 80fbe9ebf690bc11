"""Registry entries: the tinyBIG-face interdependence classes (one per class)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import interfuse.tinybig as tb
from interfuse.tinybig.config import instantiation_from_configs
from tests.registry import ModuleEntry
from tests.tinybig.rpn_doubles import LowRankReconciliation, TaylorExpansion

B, M = 4, 6


# -- entries ---------------------------------------------------------------------------------------


def _roundtrip(module: nn.Module) -> nn.Module:
    rebuilt: nn.Module = instantiation_from_configs(module.to_config())  # type: ignore[operator]
    return rebuilt


def _sample_for(
    factory: Callable[[], Any], rows: int
) -> Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]]:
    def sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        n_w = factory().calculate_l()
        x = torch.randn(rows, M, dtype=dtype)
        w = torch.randn(1, n_w, dtype=dtype) / max(1.0, n_w**0.25)
        return (), {"x": x, "w": w}

    return sample


def _entry(
    cls: type,
    out_shape: tuple[int, ...],
    rows: int = B,
    suffix: str = "",
    **kwargs: Any,
) -> ModuleEntry:
    def factory() -> nn.Module:
        module: nn.Module = cls(**kwargs)
        return module

    return ModuleEntry(
        id=f"tinybig-{cls.__name__}{suffix}",
        factory=factory,
        sample=_sample_for(factory, rows),
        roundtrip=_roundtrip,
        out_shape=out_shape,
    )


def _hybrid() -> nn.Module:
    parts = [
        tb.lowrank_parameterized_interdependence(b=B, m=M, m_prime=3, r=2),
        tb.parameterized_bilinear_interdependence(b=B, m=M, interdependence_type="attribute"),
    ]
    fusion = tb.lowrank_parameterized_concatenation_fusion(n=4, dims=[3, M], r=2)
    return tb.hybrid_interdependence(
        b=B, m=M, interdependence_functions=parts, fusion_function=fusion
    )


ATTR = {"interdependence_type": "attribute"}
INST = {"interdependence_type": "instance"}

ENTRIES = [
    # data-free family: attribute type with 7 rows (any batch), instance type with b rows
    _entry(tb.parameterized_interdependence, (7, 5), rows=7, b=B, m=M, m_prime=5),
    _entry(
        tb.lowrank_parameterized_interdependence, (3, M), rows=B, b=B, m=M, b_prime=3, r=2, **INST
    ),
    _entry(tb.hm_parameterized_interdependence, (7, 4), rows=7, b=B, m=M, m_prime=4, p=3, q=2),
    _entry(
        tb.lphm_parameterized_interdependence, (2, M), b=B, m=M, b_prime=2, r=1, p=2, q=1, **INST
    ),
    _entry(
        tb.dual_lphm_parameterized_interdependence,
        (5, 4),
        rows=5,
        b=B,
        m=M,
        m_prime=4,
        r=2,
        p=2,
        q=2,
        kronecker=True,
    ),
    _entry(
        tb.random_matrix_adaption_parameterized_interdependence,
        (7, 5),
        rows=7,
        b=B,
        m=M,
        m_prime=5,
        r=2,
        seed=3,
    ),
    # bilinear family: attribute type needs batch == b; instance type takes any batch
    _entry(tb.parameterized_bilinear_interdependence, (5, M), rows=5, b=B, m=M),
    _entry(tb.lowrank_parameterized_bilinear_interdependence, (B, M), b=B, m=M, r=2, **ATTR),
    _entry(tb.hm_parameterized_bilinear_interdependence, (5, M), rows=5, b=B, m=M, p=2, q=3),
    _entry(
        tb.lphm_parameterized_bilinear_interdependence,
        (B, M),
        b=B,
        m=M,
        r=1,
        p=2,
        q=2,
        kronecker=True,
        **ATTR,
    ),
    _entry(
        tb.dual_lphm_parameterized_bilinear_interdependence, (5, M), rows=5, b=B, m=M, r=1, p=3, q=2
    ),
    _entry(
        tb.random_matrix_adaption_parameterized_bilinear_interdependence,
        (B, M),
        b=B,
        m=M,
        r=2,
        **ATTR,
    ),
    # rpn: any transformation and fabrication
    _entry(
        tb.parameterized_rpn_interdependence,
        (B, 3),
        b=B,
        m=M,
        m_prime=3,
        data_transformation=TaylorExpansion(2),
        parameter_fabrication=LowRankReconciliation(1),
    ),
    ModuleEntry(
        id="tinybig-hybrid_interdependence",
        factory=_hybrid,
        sample=_sample_for(_hybrid, B),
        roundtrip=_roundtrip,
        out_shape=(B, 4),
    ),
]
