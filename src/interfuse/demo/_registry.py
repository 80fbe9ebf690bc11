"""Keep the demo's classes out of the library-wide config registry.

Every concrete :class:`~interfuse.config.Configurable` registers itself by class name, so that
:func:`~interfuse.config.from_config` can rebuild it. The demo's network, heads and expansions
are examples, not part of the library: registering them globally would change what
:func:`~interfuse.config.registered` lists (and every message that lists it) as soon as
``interfuse.demo`` is imported. :func:`demo_only` takes a class back out of that registry
into :data:`DEMO_REGISTRY`, and :func:`demo_classes_registered` puts them in only while the
demo rebuilds a saved model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from interfuse.config import REGISTRY, Configurable

__all__ = ["DEMO_REGISTRY", "demo_classes_registered", "demo_only"]

#: The demo's configurable classes by name.
DEMO_REGISTRY: dict[str, type[Configurable]] = {}

C = TypeVar("C", bound=type[Configurable])


def demo_only(cls: C) -> C:
    """Class decorator: move ``cls`` from the library registry to :data:`DEMO_REGISTRY`."""
    if REGISTRY.get(cls.__name__) is cls:
        del REGISTRY[cls.__name__]
    DEMO_REGISTRY[cls.__name__] = cls
    return cls


@contextmanager
def demo_classes_registered() -> Iterator[None]:
    """Register the demo's classes for the duration of the ``with`` block, then restore the
    registry exactly as it was."""
    saved = {name: REGISTRY.get(name) for name in DEMO_REGISTRY}
    REGISTRY.update(DEMO_REGISTRY)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                REGISTRY.pop(name, None)
            else:
                REGISTRY[name] = previous
