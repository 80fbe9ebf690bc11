"""Doctests of ``src/interfuse``: where they are collected and the names they may use.

The examples read as if after ``import torch; from torch import nn; from interfuse import *``
(and the same for the other modern packages); the tinyBIG face is ``tb``. A module's own
globals win over these names, so ``from_config`` in ``interfuse.tinybig.config`` stays the
tinyBIG one.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import torch
from _pytest.doctest import DoctestModule
from torch import nn

import interfuse
import interfuse.tinybig as tb

_TESTS = Path(__file__).parent / "tests"
_PACKAGES = (
    "interfuse",
    "interfuse.matrices",
    "interfuse.fusion",
    "interfuse.interdependence",
    "interfuse.functional",
    "interfuse.config",
)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(
    file_path: Path, parent: pytest.Collector
) -> Generator[None, list[pytest.Collector], list[pytest.Collector]]:
    collectors = yield
    if _TESTS not in file_path.parents:
        return collectors
    # tests/ holds no doctests, and importing its helpers as doctest modules runs them out of
    # order: tests/entries_*.py imported before tests/registry.py is a circular import.
    return [c for c in collectors if not isinstance(c, DoctestModule)]


def _names() -> dict[str, Any]:
    names: dict[str, Any] = {"torch": torch, "nn": nn, "interfuse": interfuse, "tb": tb}
    for package in _PACKAGES:
        module = importlib.import_module(package)
        names.update({name: getattr(module, name) for name in module.__all__})
    return names


_NAMES = _names()


@pytest.fixture(autouse=True)
def _doctest_names(request: pytest.FixtureRequest, doctest_namespace: dict[str, Any]) -> None:
    dtest = getattr(request.node, "dtest", None)
    if dtest is None:  # not a doctest
        return
    # doctest_namespace is shared by every doctest and overrides the module's globals, so a
    # name the module defines itself is taken back out rather than shadowed.
    for name, value in _NAMES.items():
        if name in dtest.globs and dtest.globs[name] is not value:
            doctest_namespace.pop(name, None)
        else:
            doctest_namespace[name] = value
