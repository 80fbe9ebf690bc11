"""Helpers shared by the reliability tests: casting sample inputs, running registry entries."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from tests.registry import ALL_ENTRIES, ModuleEntry


def cast(obj: Any, dtype: torch.dtype) -> Any:
    """``obj`` with every floating tensor (nested in lists, tuples, dicts) cast to ``dtype``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(cast(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: cast(v, dtype) for k, v in obj.items()}
    return obj


def sample(entry: ModuleEntry, dtype: torch.dtype = torch.float32, seed: int = 1234) -> Any:
    """The entry's sample ``(args, kwargs)``, drawn in float32 from ``seed`` then cast."""
    torch.manual_seed(seed)
    return cast(entry.sample(torch.float32), dtype)


def build(entry: ModuleEntry, seed: int = 0) -> nn.Module:
    """A fresh module of the entry, initialized from ``seed``, in eval mode."""
    torch.manual_seed(seed)
    return entry.factory().eval()


def converted(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A deep copy of ``module`` moved to ``dtype``."""
    return copy.deepcopy(module).to(dtype)


def is_tinybig(module: nn.Module) -> bool:
    """Whether ``module`` belongs to the tinyBIG face (``w`` passed in, ``device`` on forward)."""
    return type(module).__module__.startswith("interfuse.tinybig")


MODERN_ENTRIES = [e for e in ALL_ENTRIES if not is_tinybig(e.factory())]
TINYBIG_ENTRIES = [e for e in ALL_ENTRIES if is_tinybig(e.factory())]
