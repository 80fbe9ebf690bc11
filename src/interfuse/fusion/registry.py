"""Fusions by name: the resolver behind ``fusion='mean'`` arguments."""

from __future__ import annotations

import inspect
from typing import Any

from interfuse.fusion.attention import AttentionFusion
from interfuse.fusion.base import Fusion
from interfuse.fusion.concat import ConcatFusion, ProjectedConcatFusion
from interfuse.fusion.elementwise import (
    MaxFusion,
    MeanFusion,
    MedianFusion,
    MinFusion,
    NormFusion,
    ProdFusion,
    SumFusion,
    WeightedSumFusion,
)
from interfuse.fusion.gated import GatedFusion
from interfuse.fusion.statistics import LogSumExpFusion, StdFusion, VarFusion

__all__ = ["FUSIONS", "fusion_class", "resolve_fusion"]

#: Canonical name → class.
FUSIONS: dict[str, type[Fusion]] = {
    "weighted_sum": WeightedSumFusion,
    "sum": SumFusion,
    "mean": MeanFusion,
    "prod": ProdFusion,
    "max": MaxFusion,
    "min": MinFusion,
    "median": MedianFusion,
    "norm": NormFusion,
    "concat": ConcatFusion,
    "projected_concat": ProjectedConcatFusion,
    "var": VarFusion,
    "std": StdFusion,
    "logsumexp": LogSumExpFusion,
    "attention": AttentionFusion,
    "gated": GatedFusion,
}
#: Other accepted names (tinyBIG's words among them) → canonical name.
_ALIASES = {
    "weighted_summation": "weighted_sum",
    "summation": "sum",
    "average": "mean",
    "product": "prod",
    "maximum": "max",
    "minimum": "min",
    "concatenation": "concat",
    "projected": "projected_concat",
    "parameterized_concatenation": "projected_concat",
    "variance": "var",
    "std_dev": "std",
    "attn": "attention",
    "gmu": "gated",
}


def _key(name: str) -> str:
    """Case, ``-``/``_`` and a ``Fusion`` suffix do not matter: ``'SumFusion'`` is ``'sum'``."""
    key = name.lower().replace("-", "").replace("_", "")
    return key[: -len("fusion")] if key.endswith("fusion") and key != "fusion" else key


_LOOKUP = {_key(k): k for k in FUSIONS} | {_key(a): k for a, k in _ALIASES.items()}


def fusion_class(name: str | type[Fusion]) -> type[Fusion]:
    """The fusion class registered under ``name``.

    A name is a key of :data:`FUSIONS`, an alias (tinyBIG's words among them:
    ``'summation'``, ``'average'``, ``'concatenation'``, ``'parameterized_concatenation'``,
    ...) or a class name (``'SumFusion'``); case, ``-`` and ``_`` do not matter.

    Args:
        name: a name, alias or class name, or a :class:`~interfuse.fusion.Fusion` subclass
            (returned unchanged).

    Returns:
        The class.

    Raises:
        TypeError: ``name`` is neither a string nor a ``Fusion`` subclass.
        ValueError: an unknown name (the message lists the names and aliases).

    Example:
        >>> fusion_class("average")
        <class 'interfuse.fusion.elementwise.MeanFusion'>
        >>> fusion_class("Projected-Concat") is ProjectedConcatFusion
        True
    """
    if isinstance(name, type) and issubclass(name, Fusion):
        return name
    if not isinstance(name, str):
        raise TypeError(f"fusion must be a name, a Fusion class or a Fusion, got {name!r}")
    canonical = _LOOKUP.get(_key(name))
    if canonical is None:
        raise ValueError(
            f"fusion must be one of {sorted(FUSIONS)} (aliases: {sorted(_ALIASES)}), got {name!r}"
        )
    return FUSIONS[canonical]


def resolve_fusion(fusion: str | Fusion | type[Fusion], **kwargs: Any) -> Fusion:
    """Build a fusion from a name or class, or return an instance unchanged.

    Args:
        fusion: a name, alias or class name (see :func:`fusion_class`) or a class, built with
            ``kwargs``; or an instance, returned as is.
        **kwargs: constructor arguments of the class (``num_inputs``, ``weights``, ``in_dims``,
            ``out_dim``, ...).

    Returns:
        The fusion.

    Raises:
        TypeError: an argument the class does not take or a required one missing (the
            message lists those it takes), or arguments given with an instance.
        ValueError: an unknown name.

    Example:
        >>> resolve_fusion("median", mode="mean")
        MedianFusion(mode='mean', num_inputs=None)
        >>> resolve_fusion("projected", in_dims=[4, 4], out_dim=2).out_features([4, 4])
        2
    """
    if isinstance(fusion, Fusion):
        if kwargs:
            raise TypeError(
                f"fusion options {sorted(kwargs)} apply only when fusion is a name or a class, "
                f"not an instance ({type(fusion).__name__})"
            )
        return fusion
    cls = fusion_class(fusion)
    signature = inspect.signature(cls).parameters
    unknown = sorted(set(kwargs) - set(signature))
    if unknown:
        raise TypeError(f"{cls.__name__} does not take {unknown}; it takes {list(signature)}")
    missing = [
        k
        for k, p in signature.items()
        if p.default is p.empty and p.kind is not p.VAR_KEYWORD and k not in kwargs
    ]
    if missing:
        raise TypeError(f"{cls.__name__} needs {missing}; it takes {list(signature)}")
    return cls(**kwargs)
