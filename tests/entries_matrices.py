"""Registry entries: the structured matrices, one per family of ``MATRICES`` (plus each with a
bias). A new family is picked up with its default options; ``OPTIONS`` only makes the small
test shape exercise the families' structure (ranks and factors below the defaults)."""

from __future__ import annotations

from typing import Any

import torch

from interfuse.config import from_config
from interfuse.matrices import MATRICES
from tests.registry import ModuleEntry

IN, OUT, ROWS = 12, 6, 5

#: Options for the test shape 12 → 6; families not listed use their defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "lowrank": {"rank": 2},
    "kronecker": {"p": 2, "q": 3},
    "lowrank_kronecker": {"rank": 2, "p": 3, "q": 2},
    "dual_lowrank_kronecker": {"rank": 2, "p": 2, "q": 4},
    "random_adapted": {"rank": 3, "seed": 7},
}


def _sample(dtype: torch.dtype) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (torch.randn(ROWS, IN, dtype=dtype),), {}


def _matrix(cls: type, suffix: str = "", **kw: Any) -> ModuleEntry:
    return ModuleEntry(
        id=f"matrix-{cls.__name__}{suffix}",
        factory=lambda: cls(IN, OUT, **kw),
        sample=_sample,
        roundtrip=lambda m: from_config(m.to_config()),
        out_shape=(ROWS, OUT),
    )


ENTRIES = [_matrix(cls, **OPTIONS.get(name, {})) for name, cls in MATRICES.items()] + [
    _matrix(cls, "-bias", bias=True, **OPTIONS.get(name, {})) for name, cls in MATRICES.items()
]
