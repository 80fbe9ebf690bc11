"""Structural checks that need no timing: which kernels a face calls, which shapes it allocates."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

#: The shared kernels of :mod:`interfuse.functional`.
KERNELS = (
    "weighted_sum",
    "fused_sum",
    "fused_mean",
    "fused_max",
    "fused_min",
    "fused_prod",
    "fused_norm",
    "fused_median",
    "fused_var",
    "fused_std",
    "fused_logsumexp",
    "concat",
    "dense_linear",
    "lowrank_linear",
    "kron_linear",
    "lowrank_kron_linear",
    "dual_lowrank_kron_linear",
    "random_adapted_linear",
)


@contextmanager
def count_kernels() -> Iterator[Counter[str]]:
    """Count calls of the shared kernels, wherever they were imported from, while active."""
    calls: Counter[str] = Counter()
    patched: list[tuple[Any, str, Any]] = []

    depth = 0  # only the outermost kernel call counts (a public kernel calls its unchecked self)

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal depth
            if depth == 0:
                calls[name] += 1
            depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                depth -= 1

        return counted

    wrappers: dict[int, Callable[..., Any]] = {}
    # Every loaded module of the package: a kernel is counted whichever module imported it.
    modules = [
        mod
        for name, mod in list(sys.modules.items())
        if name.startswith("interfuse.") and not name.startswith("interfuse.bench")
    ]
    for mod in modules:
        for name in KERNELS:
            # the unchecked variant (``_dense_linear``) a module calls after its own checks
            # is the same kernel
            for attr in (name, "_" + name):
                original = getattr(mod, attr, None)
                if original is None or not callable(original):
                    continue
                if id(original) not in wrappers:
                    wrappers[id(original)] = wrap(name, original)
                patched.append((mod, attr, original))
                setattr(mod, attr, wrappers[id(original)])
    # Tables of kernels held by reference (e.g. tinybig's METRICS) are patched entry by entry.
    patched_items: list[tuple[dict[Any, Any], Any, Any]] = []
    for mod in modules:
        for value in list(vars(mod).values()):
            if not isinstance(value, dict):
                continue
            for key, entry in list(value.items()):
                if callable(entry) and id(entry) in wrappers:
                    patched_items.append((value, key, entry))
                    value[key] = wrappers[id(entry)]
    try:
        yield calls
    finally:
        for mod, name, original in patched:
            setattr(mod, name, original)
        for table, key, entry in patched_items:
            table[key] = entry


class _ShapeRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: set[tuple[int, ...]] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.shapes.add(tuple(t.shape))
        return out


def produced_shapes(fn: Callable[[], object]) -> set[tuple[int, ...]]:
    """Shapes of every tensor an ATen op returned while ``fn()`` ran (backward included)."""
    with _ShapeRecorder() as rec:
        fn()
    return rec.shapes
