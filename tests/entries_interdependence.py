"""Registry entries: the modern interdependence modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import interfuse
from interfuse.config import from_config
from tests.registry import ModuleEntry

B, M = 4, 6


def _roundtrip(module: nn.Module) -> nn.Module:
    return from_config(module.to_config())  # type: ignore[operator]


def _sample(
    *shape: int,
) -> Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]]:
    def sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (torch.randn(*shape, dtype=dtype),), {}

    return sample


def _entry(
    id: str, factory: Callable[[], nn.Module], in_shape: tuple[int, ...], out: tuple[int, ...]
) -> ModuleEntry:
    return ModuleEntry(
        id=f"interdependence-{id}",
        factory=factory,
        sample=_sample(*in_shape),
        roundtrip=_roundtrip,
        out_shape=out,
    )


ENTRIES = [
    _entry(
        "ParameterizedInterdependence",
        lambda: interfuse.ParameterizedInterdependence(
            M, 4, matrix="lowrank_kronecker", matrix_options={"rank": 2, "p": 2, "q": 3}
        ),
        (2, B, M),
        (2, B, 4),
    ),
    _entry(
        "ParameterizedInterdependence-instance",
        lambda: interfuse.ParameterizedInterdependence(
            B, 3, matrix="random_adapted", axis="instance", matrix_options={"rank": 2, "seed": 3}
        ),
        (2, B, M),
        (2, 3, M),
    ),
    _entry(
        "BilinearInterdependence",
        lambda: interfuse.BilinearInterdependence(B, matrix="lowrank", matrix_options={"rank": 2}),
        (2, B, M),
        (2, B, M),
    ),
    _entry(
        "BilinearInterdependence-instance",
        lambda: interfuse.BilinearInterdependence(
            M,
            matrix="kronecker",
            axis="instance",
            order="data_first",
            matrix_options={"p": 2, "q": 3},
        ),
        (2, B, M),
        (2, B, M),
    ),
    _entry(
        "HybridInterdependence",
        lambda: interfuse.HybridInterdependence(
            [
                interfuse.ParameterizedInterdependence(
                    M, matrix="lowrank", matrix_options={"rank": 2}
                ),
                interfuse.BilinearInterdependence(B, matrix="kronecker"),
            ],
            interfuse.WeightedSumFusion(2),
            strategy="outputs",
        ),
        (2, B, M),
        (2, B, M),
    ),
    _entry(
        "HybridInterdependence-instance",
        lambda: interfuse.HybridInterdependence(
            [
                interfuse.BilinearInterdependence(M, axis="instance"),
                interfuse.ParameterizedInterdependence(B, 3, axis="instance", matrix="rma"),
                interfuse.ParameterizedInterdependence(B, 2, axis="instance"),
            ],
            interfuse.ProjectedConcatFusion([B, 3, 2], 3, matrix="lowrank"),
        ),
        (2, B, M),
        (2, 3, M),
    ),
]
