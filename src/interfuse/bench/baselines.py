"""The optional third-party baselines of ``interfuse bench``: PyTorch Geometric and tinyBIG.

These are the only variants a run may skip: each loader returns the package's module, or
``None`` and records why in :data:`SKIPPED` (the report lists it). interfuse's own modules are
never loaded "optionally": a constructor that fails makes the bench fail.

**tinyBIG 0.2.1** pins ``torch==2.2.2`` and ``torchvision``, so it is installed without its
dependencies (``pip install --no-deps tinybig==0.2.1``), and its top-level ``__init__`` cannot
be run here (it imports its data loaders, which need Python ≥ 3.12 and torchvision). The
loader builds the ``tinybig`` package object by hand (its path, without running its
``__init__``) and imports ``tinybig.module`` (which pulls the fusion modules in the order
tinyBIG's own ``__init__`` does, avoiding its circular import), then ``tinybig.fusion`` and
``tinybig.interdependence``. A third-party module those need and that is not installed
(``torchvision``, ``torchtext``, ...) is replaced by an empty stub in ``sys.modules``: the
fusion and interdependence code never calls it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from typing import Any

#: Baselines that could not be loaded: package → reason (filled by the loaders).
SKIPPED: dict[str, str] = {}
_CACHE: dict[str, Any] = {}


def pyg_aggr() -> Any | None:
    """``torch_geometric.nn.aggr``, or ``None`` (recorded in :data:`SKIPPED`)."""
    if "pyg" in _CACHE:
        return _CACHE["pyg"]
    try:
        with warnings.catch_warnings():
            # PyG scripts modules with torch.jit at import time: its warnings, not the run's.
            warnings.simplefilter("ignore")
            module: Any = importlib.import_module("torch_geometric.nn.aggr")
    except ImportError as err:
        SKIPPED["PyTorch Geometric"] = (
            f"not importable ({err}); `pip install 'interfuse[bench]'` adds the `pyg` column"
        )
        module = None
    _CACHE["pyg"] = module
    return module


class _Stub(types.ModuleType):
    """A stand-in for a missing third-party module: every attribute is another stub."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        child = _Stub(f"{self.__name__}.{name}")
        child.__path__ = []
        sys.modules[child.__name__] = child
        setattr(self, name, child)
        return child

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self


def _fresh_tinybig_package(location: list[str]) -> None:
    for name in [m for m in sys.modules if m == "tinybig" or m.startswith("tinybig.")]:
        del sys.modules[name]
    package = types.ModuleType("tinybig")
    package.__path__ = list(location)
    package.__spec__ = importlib.util.find_spec("tinybig")
    sys.modules["tinybig"] = package


def tinybig_original() -> Any | None:
    """tinyBIG 0.2.1's own code: a namespace of its modules ``fusion``, ``metric`` (the
    metric fusions) and ``interdependence``.

    ``None`` when tinyBIG is not installed or is another version (recorded in
    :data:`SKIPPED`).
    """
    if "tinybig" in _CACHE:
        return _CACHE["tinybig"]
    _CACHE["tinybig"] = result = _load_tinybig()
    return result


def _load_tinybig() -> Any | None:
    from importlib import metadata

    try:
        version = metadata.version("tinybig")
    except metadata.PackageNotFoundError:
        SKIPPED["tinyBIG 0.2.1"] = (
            "not installed: `pip install --no-deps tinybig==0.2.1` adds the `original` column"
        )
        return None
    if version != "0.2.1":
        SKIPPED["tinyBIG 0.2.1"] = f"tinybig {version} is installed, the bench compares 0.2.1"
        return None
    spec = importlib.util.find_spec("tinybig")
    if spec is None or not spec.submodule_search_locations:
        SKIPPED["tinyBIG 0.2.1"] = "tinybig is installed but has no package directory"
        return None
    location = list(spec.submodule_search_locations)
    stubbed: list[str] = []
    for _ in range(50):
        _fresh_tinybig_package(location)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module("tinybig.module")
                fusion = importlib.import_module("tinybig.fusion")
                # (``tinybig.fusion.metric_fusion`` is the class of that name, not the module)
                metric = importlib.import_module("tinybig.fusion.metric_fusion")
                interdependence = importlib.import_module("tinybig.interdependence")
        except ModuleNotFoundError as err:
            missing = err.name or ""
            if not missing or missing.split(".")[0] == "tinybig" or missing in stubbed:
                SKIPPED["tinyBIG 0.2.1"] = f"its fusion modules do not import: {err}"
                return None
            stub = _Stub(missing)
            stub.__path__ = []
            sys.modules[missing] = stub
            stubbed.append(missing)
            continue
        # The stubs served tinyBIG's imports only: later imports elsewhere (torch.compile
        # probes torchvision, for one) must see the package as missing, as it is.
        for name in [m for m in sys.modules if isinstance(sys.modules[m], _Stub)]:
            del sys.modules[name]
        return types.SimpleNamespace(
            fusion=fusion, metric=metric, interdependence=interdependence, stubbed=tuple(stubbed)
        )
    SKIPPED["tinyBIG 0.2.1"] = f"too many missing modules while importing it: {stubbed}"
    return None


def notes() -> list[str]:
    """One line per skipped baseline, for the report."""
    return [f"{name} baseline skipped: {why}." for name, why in sorted(SKIPPED.items())]
