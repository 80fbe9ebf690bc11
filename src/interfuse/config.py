"""Configs of the modern API: ``to_config`` / ``from_config``, a registry by name, JSON, YAML.

A config is ``{"class": "<registered name>", "params": {...}}`` where ``params`` are the
constructor arguments (JSON- and YAML-safe; a nested module appears as its own config).
Every concrete class deriving from :class:`Configurable` registers itself under its class
name. ``device`` and ``dtype`` are not part of a config: pass them to :func:`from_config`.

Example:
    >>> m = LowRankMatrix(64, 32, rank=4)
    >>> from_config(m.to_config()).shape
    torch.Size([32, 64])
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from torch import nn

__all__ = [
    "REGISTRY",
    "Configurable",
    "dump_config",
    "from_config",
    "load_config",
    "registered",
]

_C = TypeVar("_C", bound="Configurable")

#: Registered name → class.
REGISTRY: dict[str, type[Configurable]] = {}


class Configurable:
    """Mixin giving a module ``to_config()`` / ``from_config()`` and registration by class name.

    Every public concrete subclass registers itself in :data:`REGISTRY` under its class name
    when the class is created. A subclass implements :meth:`get_config`, returning its
    constructor arguments, so that ``cls(**params)`` rebuilds an equivalent module; the mixin
    takes no constructor arguments of its own.

    Example:
        >>> m = LowRankMatrix(64, 32, rank=4)
        >>> isinstance(m, Configurable), LowRankMatrix.config_name
        (True, 'LowRankMatrix')
        >>> m.to_config()
        {'class': 'LowRankMatrix',
         'params': {'in_features': 64, 'out_features': 32, 'rank': 4, 'mode': 'auto'}}
        >>> LowRankMatrix.from_config(m.to_config(), dtype=torch.float64).left.dtype
        torch.float64
    """

    #: Registered name; set automatically to the class name for public concrete classes.
    config_name: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_") or inspect.isabstract(cls):
            return
        cls.config_name = cls.__name__
        REGISTRY[cls.__name__] = cls

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-safe values (nested modules as configs)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_config()")

    def to_config(self) -> dict[str, Any]:
        """``{"class": name, "params": get_config()}``, JSON- and YAML-safe."""
        return {"class": type(self).__name__, "params": _encode(self.get_config())}

    @classmethod
    def from_config(cls: type[_C], config: dict[str, Any], **factory: Any) -> _C:
        """Rebuild a module of this class (or a subclass) from its :meth:`to_config` output.

        Same as the module-level :func:`from_config`, and checks the class.

        Raises:
            TypeError: the config describes a class that is not ``cls`` or a subclass of it.
        """
        module = _build(config, factory)
        if not isinstance(module, cls):
            raise TypeError(
                f"config describes {type(module).__name__}, which is not a {cls.__name__}"
            )
        return module


def _encode(value: Any) -> Any:
    if isinstance(value, Configurable):
        return value.to_config()
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-safe")


def _is_config(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"class", "params"}


def _decode(value: Any, factory: dict[str, Any]) -> Any:
    if _is_config(value):
        return _build(value, factory)
    if isinstance(value, list):
        return [_decode(v, factory) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v, factory) for k, v in value.items()}
    return value


def registered() -> list[str]:
    """The class names :func:`from_config` accepts, sorted.

    Returns:
        The keys of :data:`REGISTRY`.

    Example:
        >>> "LowRankMatrix" in registered(), registered() == sorted(REGISTRY)
        (True, True)
    """
    return sorted(REGISTRY)


def from_config(config: dict[str, Any], **factory: Any) -> nn.Module:
    """Build a module from :meth:`Configurable.to_config` output.

    Nested configs (the parts of a hybrid, the matrix of a fusion) are built first, with the
    same ``factory`` arguments.

    Args:
        config: ``{"class": name, "params": {...}}``, ``name`` one of :func:`registered`.
        **factory: ``device=`` / ``dtype=``, passed to every constructor that takes them.

    Returns:
        The new module, freshly initialized (load a ``state_dict`` for trained weights).

    Raises:
        ValueError: unknown class (the message lists the registered names) or bad layout.
        TypeError: a parameter the class does not take, or a required one missing (the
            message lists those it takes).

    Example:
        >>> config = {"class": "LowRankMatrix",
        ...           "params": {"in_features": 64, "out_features": 32, "rank": 4}}
        >>> m = from_config(config, dtype=torch.float64)
        >>> m, m.left.dtype
        (LowRankMatrix(in_features=64, out_features=32, rank=4), torch.float64)
        >>> from_config({"class": "Linear", "params": {}})
        Traceback (most recent call last):
        ValueError: config class 'Linear' is not registered; choose one of [...]
    """
    return _build(config, factory)


def _build(config: Any, factory: dict[str, Any]) -> nn.Module:
    if not isinstance(config, dict) or not _is_config(config):
        raise ValueError(
            f"config must be a dict with exactly the keys 'class' and 'params', got {config!r}"
        )
    name, params = config["class"], config["params"]
    if name not in REGISTRY:
        raise ValueError(f"config class {name!r} is not registered; choose one of {registered()}")
    if not isinstance(params, dict):
        raise TypeError(f"config params must be a dict, got {type(params).__name__}")
    cls = REGISTRY[name]
    signature = inspect.signature(cls).parameters
    accepted = set(signature)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise TypeError(
            f"config for {name} has unknown keys {unknown}; it takes {sorted(accepted)}"
        )
    required = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    missing = sorted(
        k
        for k, p in signature.items()
        if p.kind in required and p.default is p.empty and k not in params and k not in factory
    )
    if missing:
        raise TypeError(
            f"config for {name} lacks required keys {missing}; it takes {sorted(accepted)}"
        )
    kwargs = {k: _decode(v, factory) for k, v in params.items()}
    kwargs.update({k: v for k, v in factory.items() if k in accepted})
    module = cls(**kwargs)
    if not isinstance(module, nn.Module):  # pragma: no cover - every registered class is one
        raise TypeError(f"{name} is not an nn.Module")
    return module


def dump_config(module: Configurable, path: str | Path) -> None:
    """Write ``module.to_config()`` to a file: YAML for ``.yaml`` / ``.yml``, JSON otherwise.

    Only the constructor arguments are written; save the weights with the ``state_dict``.

    Args:
        module: the module to describe.
        path: the file to write (replaced if it exists).

    Raises:
        TypeError: a config value that is not JSON-safe.
        ImportError: a YAML path without PyYAML (the ``yaml`` extra).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     dump_config(MeanFusion(num_inputs=3), f"{tmp}/fusion.yaml")
        ...     print(open(f"{tmp}/fusion.yaml").read())
        class: MeanFusion
        params:
          num_inputs: 3
        <BLANKLINE>
    """
    path = Path(path)
    config = module.to_config()
    if path.suffix in (".yaml", ".yml"):
        import yaml  # the ``yaml`` extra

        path.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        path.write_text(json.dumps(config, indent=2))


def load_config(path: str | Path, **factory: Any) -> nn.Module:
    """Build the module described by a file written by :func:`dump_config`.

    The file is read as YAML for ``.yaml`` / ``.yml``, as JSON otherwise, and passed to
    :func:`from_config`.

    Args:
        path: the file to read.
        **factory: ``device=`` / ``dtype=``, passed to every constructor that takes them.

    Returns:
        The new module, freshly initialized.

    Raises:
        ValueError: unreadable JSON, an unknown class or a bad layout.
        TypeError: a parameter the class does not take, or a required one missing.
        ImportError: a YAML path without PyYAML (the ``yaml`` extra).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     dump_config(LowRankMatrix(64, 32, rank=4), f"{tmp}/matrix.json")
        ...     load_config(f"{tmp}/matrix.json")
        LowRankMatrix(in_features=64, out_features=32, rank=4)
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text)
    else:
        config = json.loads(text)
    return from_config(config, **factory)
