"""One registry of every public module of both faces, driving the shared contract tests.

Each area contributes a ``tests/entries_<area>.py`` module exposing ``ENTRIES``, a list of
:class:`ModuleEntry`. :data:`ALL_ENTRIES` collects them all (sorted by file name).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModuleEntry:
    """How to build one module and call it.

    ``factory()`` returns a fresh module (float32; a different random init on each call is
    fine). ``sample(dtype)`` returns ``(args, kwargs)`` for ``module(*args, **kwargs)``; args may
    nest lists/tuples of tensors. Floating tensors in args are gradchecked in float64 together
    with the module's parameters. ``roundtrip(module)`` rebuilds the module from its config
    (``None`` when the class has no config). ``out_shape`` is checked when given.
    """

    id: str
    factory: Callable[[], nn.Module]
    sample: Callable[[torch.dtype], tuple[tuple[Any, ...], dict[str, Any]]]
    roundtrip: Callable[[nn.Module], nn.Module] | None = None
    out_shape: tuple[int, ...] | None = None
    gradcheck: bool = True
    # forward is not differentiable everywhere (max/min/median ties are avoided by sample data)
    tags: frozenset[str] = field(default_factory=frozenset)

    def __repr__(self) -> str:
        return self.id


def _collect() -> list[ModuleEntry]:
    entries: list[ModuleEntry] = []
    here = Path(__file__).parent
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda i: i.name):
        if info.name.startswith("entries_"):
            module = importlib.import_module(f"tests.{info.name}")
            entries.extend(module.ENTRIES)
    ids = [e.id for e in entries]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuntimeError(f"duplicate registry ids: {sorted(dupes)}")
    return entries


ALL_ENTRIES: list[ModuleEntry] = _collect()
