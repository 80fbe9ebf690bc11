r"""Build tinyBIG-face functions from configs, including configs written by tinyBIG 0.2.1 itself.

A config is ``{"function_class": <path>, "function_parameters": {...}}`` (other key names as in
tinyBIG: ``head_class`` / ``head_parameters``, ...). ``<path>`` is a class of the face under
``interfuse.tinybig`` (any module), under tinyBIG's own paths (``tinybig.fusion.metric_fusion.
max_fusion``), or any importable dotted path (``torch.nn.ReLU``). The module internals tinyBIG's
``to_config`` dumped (``training``, ``_buffers``, ..., ``metric``, ``weights``, ``A``,
``parameter_fabrication``; ``_interdependence_type`` becomes ``interdependence_type``) are
dropped; any other unknown key is a ``TypeError`` listing the accepted ones.

Example:
    >>> from interfuse.tinybig import max_fusion
    >>> m = instantiation_from_configs(max_fusion(dims=[2, 2]).to_config())
    >>> type(m).__name__
    'max_fusion'
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

__all__ = ["choices", "from_config", "instantiation_from_configs"]

_TINYBIG_JUNK = frozenset({"training", "metric", "A", "parameter_fabrication"})
_BATCH_NORMS = ("torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d")


def _registry() -> dict[str, type[nn.Module]]:
    import interfuse.tinybig as package
    from interfuse.tinybig import fusion, interdependence
    from interfuse.tinybig._base import TinybigFunction

    found: dict[str, type[nn.Module]] = {}
    for namespace in (package, fusion, interdependence):
        for name in namespace.__all__:
            obj = getattr(namespace, name, None)
            if isinstance(obj, type) and issubclass(obj, TinybigFunction):
                found[name] = obj
    found.pop("TinybigFunction", None)
    return found


def choices() -> list[str]:
    """Class names a ``tinybig.*`` or ``interfuse.tinybig.*`` config may name."""
    return sorted(_registry())


def _inherited(cls: type[nn.Module]) -> set[str]:
    # tinyBIG writes the bases' attributes (require_parameters of a max_fusion) into configs
    names: set[str] = set()
    for base in cls.__mro__[1:]:
        if base is nn.Module or not issubclass(base, nn.Module):
            continue
        names.update(inspect.signature(base.__init__).parameters)
    return names - {"self", "args", "kwargs"}


def _accepted(cls: type[nn.Module]) -> tuple[set[str], bool]:
    from interfuse.tinybig._base import _accepted_arguments

    named, takes_any = _accepted_arguments(cast(type, cls))
    return {p.name for p in named}, takes_any


def _clean_tinybig(params: Mapping[str, Any], cls: type[nn.Module]) -> dict[str, Any]:
    accepted, takes_any = _accepted(cls)
    inherited = _inherited(cls)
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "_interdependence_type":
            key = "interdependence_type"
        elif key.startswith("_") or key in _TINYBIG_JUNK:
            continue
        if key in inherited and key not in accepted and not takes_any:
            continue  # a base class's setting this class fixes
        if key not in accepted and not takes_any:
            # Beyond tinyBIG's own internals (above), an unknown key is a typo or a setting
            # this class does not have: dropping it would build something else silently.
            raise TypeError(
                f"{cls.__name__} does not take {key!r} (in function_parameters); it accepts "
                f"{sorted(accepted)}"
            )
        out[key] = value
    return out


def _clean_foreign(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if not k.startswith("_") and k != "training"}


def instantiation_from_configs(
    configs: Mapping[str, Any],
    class_name: str = "function_class",
    parameter_name: str = "function_parameters",
    device: str | torch.device = "cpu",
) -> Any:
    """Instantiate the class a config names with its parameters (tinyBIG's argument order).

    Args:
        configs: ``{class_name: path, parameter_name: {...}}`` (parameters optional).
        class_name: the key holding the class path.
        parameter_name: the key holding the constructor arguments.
        device: passed as ``device`` to classes that take it, unless the config sets it.

    Raises:
        ValueError: not a config, or an unknown class (the message lists the choices).
        TypeError: an ``interfuse.tinybig`` config with a key its class does not take.

    Example:
        >>> head = {"head_class": "tinybig.fusion.metric_fusion.max_fusion",
        ...         "head_parameters": {"dims": [2, 2], "training": True, "_buffers": {}}}
        >>> instantiation_from_configs(head, class_name="head_class",
        ...                            parameter_name="head_parameters").dims
        [2, 2]
        >>> instantiation_from_configs({"function_class": "torch.nn.ReLU"})
        ReLU()
    """
    if not isinstance(configs, Mapping) or class_name not in configs:
        raise ValueError(
            f"configs must be a dict with a {class_name!r} key (and optionally "
            f"{parameter_name!r}), got {configs!r}"
        )
    path = configs[class_name]
    if not isinstance(path, str) or not path:
        raise ValueError(f"configs[{class_name!r}] must be a dotted class path, got {path!r}")
    params = configs.get(parameter_name) or {}
    if not isinstance(params, Mapping):
        raise TypeError(
            f"configs[{parameter_name!r}] must be a dict of constructor arguments, got "
            f"{type(params).__name__}"
        )
    head, _, cls_name = path.rpartition(".")
    root = path.split(".", 1)[0]
    ours = head == "interfuse.tinybig" or head.startswith("interfuse.tinybig.")
    if root == "tinybig" or ours or not head:
        registry = _registry()
        if cls_name not in registry:
            raise ValueError(
                f"configs[{class_name!r}]={path!r} names no interfuse.tinybig class; choose one "
                f"of {sorted(registry)}"
            )
        cls = registry[cls_name]
        kwargs = dict(params) if ours else _clean_tinybig(params, cls)
        accepted, takes_any = _accepted(cls)
        unknown = sorted(set(kwargs) - accepted)
        if unknown and not takes_any:
            raise TypeError(
                f"config for {cls_name} has unknown keys {unknown}; it takes {sorted(accepted)}"
            )
        if "device" in accepted and "device" not in kwargs:
            kwargs["device"] = str(device)
        return cls(**kwargs)
    from interfuse.tinybig._base import import_object

    try:
        target = import_object(path)
    except (ImportError, AttributeError):
        raise ValueError(f"configs[{class_name!r}]={path!r} cannot be imported") from None
    kwargs = _clean_foreign(params)
    if path in _BATCH_NORMS or target in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d):
        kwargs.setdefault("device", device)
    return target(**kwargs)


def from_config(config: Mapping[str, Any], device: str | torch.device = "cpu") -> Any:
    """Build a tinyBIG-face function from ``to_config()`` output (or a tinyBIG-written config).

    :func:`instantiation_from_configs` with the default keys ``function_class`` /
    ``function_parameters`` (its Args and errors).

    Example:
        >>> f = from_config(tb.l2_norm_fusion(dims=[2, 2]).to_config())
        >>> f([torch.tensor([[3.0, 0.0]]), torch.tensor([[4.0, 1.0]])])
        tensor([[5., 1.]])
    """
    return instantiation_from_configs(config, device=device)
