"""One name resolver for the registries of fusions and matrices.

A registry is a ``dict`` of canonical name → class plus a ``dict`` of alias → canonical name;
:class:`NameResolver` reads both at each call, so an entry added to the dict is found at once.
A name matches when it equals a canonical name, an alias or a registered class's name, with
case, ``-``, ``_`` and the family's suffix ignored: ``'SumFusion'``, ``'sum'`` and ``'Sum'``
are one fusion; ``'LowRankMatrix'``, ``'low-rank'`` and ``'lowrank'`` one matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

__all__ = ["NameResolver"]

T = TypeVar("T")


class NameResolver(Generic[T]):
    """Resolves names (canonical, alias or class name) to the classes of one registry.

    Args:
        kind: what is resolved, for messages (``'fusion'``, ``'matrix'``).
        base: the base class; a subclass passed instead of a name is returned unchanged.
        classes: canonical name → class (the registry itself, read at each call).
        aliases: alias → canonical name.
        suffix: the class-name suffix that may be left out (``'Fusion'``, ``'Matrix'``).
        accepted: how the type error describes what is accepted.

    Example:
        >>> names = NameResolver("matrix", object, {"lowrank": int}, {"low_rank": "lowrank"},
        ...                      "Matrix", "a name")
        >>> names.key("Low-Rank_Matrix"), names.resolve("LOW_RANK")
        ('lowrank', <class 'int'>)
    """

    def __init__(
        self,
        kind: str,
        base: type,
        classes: Mapping[str, type[T]],
        aliases: Mapping[str, str],
        suffix: str,
        accepted: str,
    ) -> None:
        self.kind, self.base, self.classes, self.aliases = kind, base, classes, aliases
        self.suffix, self.accepted = suffix.lower(), accepted

    def key(self, name: str) -> str:
        """``name`` with case, ``-``, ``_`` and the suffix removed."""
        key = name.lower().replace("-", "").replace("_", "")
        if key.endswith(self.suffix) and key != self.suffix:
            key = key[: -len(self.suffix)]
        return key

    def resolve(self, name: object) -> type[T]:
        """The registered class for ``name`` (a class deriving from ``base`` passes through).

        Raises:
            TypeError: ``name`` is neither a string nor a subclass of ``base``.
            ValueError: an unknown name (the message lists the names and aliases).
        """
        if isinstance(name, type) and issubclass(name, self.base):
            return name  # type: ignore[return-value]
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} must be {self.accepted}, got {name!r}")
        wanted = self.key(name)
        for canonical, cls in self.classes.items():
            if wanted in (self.key(canonical), self.key(cls.__name__)):
                return cls
        for alias, canonical in self.aliases.items():
            if wanted == self.key(alias):
                return self.classes[canonical]
        raise ValueError(
            f"{self.kind} must be one of {sorted(self.classes)} or the aliases "
            f"{sorted(self.aliases)}, got {name!r}"
        )
