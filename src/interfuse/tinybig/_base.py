r"""Shared base of the tinyBIG face: pre/post-processing functions and constructor-based configs.

tinyBIG 0.2.1 lets every fusion and interdependence take ``preprocess_functions`` /
``postprocess_functions`` (a callable, a list or tuple of callables, or strings) and
``preprocess_function_configs`` / ``postprocess_function_configs`` (config dicts, a list of
them, or a dict of named configs). They are applied in order; ``None`` or ``[]`` is the
identity. Strings resolve as in the original: a plain name ``'sigmoid'`` becomes
``torch.nn.functional.sigmoid`` (lower-cased), a dotted path is imported, and the result must
be one of tinyBIG's built-ins:

* ``sigmoid``, ``relu``, ``leaky_relu``, ``tanh``, ``softplus``, ``silu``, ``celu``, ``gelu``:
  ``f(x)``;
* ``dropout``: ``F.dropout(x, p=0.5)`` (only in training mode, see below);
* ``layer_norm``: ``F.layer_norm(x, [x.size(-1)])``;
* ``torch.nn.BatchNorm1d`` / ``2d`` / ``3d``: a fresh ``BatchNorm(x.size(-1))`` on ``device``
  at each call;
* ``torch.exp``: ``torch.exp(x)``.

Where this differs from tinyBIG (unknown strings raise, ``'dropout'`` follows ``train()`` /
``eval()``, ``nn.Module`` functions are registered, configs hold the constructor arguments
only) is listed on the tinyBIG page of the documentation.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interfuse.tinybig.errors import warn

__all__ = [
    "BUILTIN_NAMES",
    "Builtin",
    "TinybigFunction",
    "apply_functions",
    "encode_functions",
    "import_object",
    "import_path",
    "resolve_functions",
]

#: Canonical names of tinyBIG's string-resolvable built-in functions (spec §1).
_PLAIN_NAMES = ("sigmoid", "relu", "leaky_relu", "tanh", "softplus", "silu", "celu", "gelu")
BUILTIN_NAMES: tuple[str, ...] = (
    *_PLAIN_NAMES,
    "dropout",
    "layer_norm",
    *(f"torch.nn.BatchNorm{i}d" for i in (1, 2, 3)),
    "torch.exp",
)


def _builtin_name(obj: object) -> str | None:
    """The canonical name of a built-in function object, or ``None``."""
    for name in BUILTIN_NAMES:
        if _lookup_builtin(name) is obj:
            return name
    return None


def _lookup_builtin(name: str) -> object:
    if name.startswith("torch."):
        return import_object(name)
    return getattr(F, name)


class Builtin:
    """One of tinyBIG's built-in pre/post-processing functions, applied its way (module table).

    Args:
        name: the canonical name, one of :data:`BUILTIN_NAMES`.
    """

    def __init__(self, name: str) -> None:
        if name not in BUILTIN_NAMES:
            raise ValueError(f"name must be one of {list(BUILTIN_NAMES)}, got {name!r}")
        self.name = name
        self.target = _lookup_builtin(name)

    def __call__(
        self, x: Tensor, device: str | torch.device = "cpu", training: bool = True
    ) -> Tensor:
        target = self.target
        if target is F.dropout:
            return F.dropout(x, p=0.5, training=training)
        if target is F.layer_norm:
            # int(): a plain int under the TorchScript tracer too (ONNX needs a constant shape)
            return F.layer_norm(x, [int(x.size(-1))])
        if isinstance(target, type) and issubclass(target, nn.Module):
            target = target(num_features=x.size(-1), device=device, dtype=x.dtype)
        return cast(Callable[[Tensor], Tensor], target)(x)

    def __repr__(self) -> str:
        return f"Builtin({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Builtin) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("Builtin", self.name))


ResolvedFunction = Callable[..., Tensor]


def import_object(path: str) -> Any:
    """Import ``'package.module.attr'`` and return ``attr``."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted import path")
    return getattr(importlib.import_module(module_name), attr)


def _resolve_string(value: str, argument: str) -> Builtin:
    allowed = (
        f"one of {list(BUILTIN_NAMES)} (plain names resolve to torch.nn.functional.<name>, "
        "dotted paths are imported)"
    )
    try:
        target = import_object(value) if "." in value else getattr(F, value.lower())
    except (ImportError, AttributeError, ValueError):
        raise ValueError(
            f"{argument}: cannot resolve the function {value!r}; expected {allowed}, a callable, "
            "or an nn.Module"
        ) from None
    name = _builtin_name(target)
    if name is None:
        raise ValueError(
            f"{argument}: the function {value!r} is not one of tinyBIG's built-in string "
            f"functions (tinyBIG ignored it silently); expected {allowed}, or pass the callable "
            "itself or an nn.Module"
        )
    return Builtin(name)


def _resolve_one(value: object, argument: str, device: str | torch.device) -> ResolvedFunction:
    if isinstance(value, str):
        return _resolve_string(value, argument)
    if isinstance(value, Mapping):
        return _instantiate(value, argument, device)
    if callable(value):
        name = _builtin_name(value)
        return Builtin(name) if name is not None else value
    raise TypeError(
        f"{argument}: expected a callable, a function name or a config dict, got {value!r} "
        f"of type {type(value).__name__}"
    )


def _instantiate(
    cfg: Mapping[str, Any], argument: str, device: str | torch.device
) -> ResolvedFunction:
    from interfuse.tinybig.config import instantiation_from_configs

    try:
        obj = instantiation_from_configs(dict(cfg), device=device)
    except (ValueError, TypeError, KeyError) as err:
        raise type(err)(f"{argument}: {err}") from err
    if not callable(obj):
        raise TypeError(
            f"{argument}: the config {dict(cfg)!r} built {obj!r}, which is not callable"
        )
    return obj


def resolve_functions(
    functions: object = None,
    configs: object = None,
    device: str | torch.device = "cpu",
    *,
    argument: str = "functions",
) -> list[ResolvedFunction]:
    """Turn tinyBIG-style ``functions`` / ``configs`` into a list of callables, validated now.

    ``functions`` (a callable, a string, a config dict, or a list/tuple of them) wins over
    ``configs`` (a config dict, a list of them, or a dict of named configs), as in tinyBIG.
    Strings and built-in function objects become :class:`Builtin`; an unknown name or a bad
    config is a ``ValueError``, any other entry a ``TypeError`` naming ``argument``. ``device``
    is given to functions built from configs (BatchNorm takes it).
    """
    if functions is not None:
        items = list(functions) if isinstance(functions, (list, tuple)) else [functions]
        single = not isinstance(functions, (list, tuple))
        return [
            _resolve_one(f, argument if single else f"{argument}[{i}]", device)
            for i, f in enumerate(items)
        ]
    if configs is None:
        return []
    cfg_arg = argument.replace("functions", "function_configs")
    if isinstance(configs, Mapping) and "function_class" in configs:
        return [_instantiate(configs, cfg_arg, device)]
    if isinstance(configs, (Mapping, list, tuple)):  # named configs, or a list of them
        pairs: Iterable[tuple[Any, Any]]
        pairs = configs.items() if isinstance(configs, Mapping) else enumerate(configs)
        return [
            _instantiate(_as_mapping(c, f"{cfg_arg}[{k!r}]"), f"{cfg_arg}[{k!r}]", device)
            for k, c in pairs
        ]
    raise TypeError(
        f"{cfg_arg}: expected a config dict, a list of them or a dict of named configs, got "
        f"{configs!r} of type {type(configs).__name__}"
    )


def _as_mapping(value: object, argument: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    raise TypeError(
        f"{argument}: expected a config dict, got {value!r} of type {type(value).__name__}"
    )


def apply_functions(
    x: Tensor,
    functions: Sequence[ResolvedFunction] | None,
    device: str | torch.device = "cpu",
    training: bool = True,
) -> Tensor:
    """Apply resolved ``functions`` to ``x`` in order (``None`` or ``[]``: identity); ``device``
    is for built-ins that create modules (BatchNorm), ``training`` says whether dropout drops."""
    if not functions:
        return x
    for f in functions:
        x = f(x, device=device, training=training) if isinstance(f, Builtin) else f(x)
    return x


def _json_safe(value: Any, argument: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, numbers.Integral):  # numpy's integers and the like
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, f"{argument}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, f"{argument}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"{argument}={value!r} of type {type(value).__name__} cannot be written to a config "
        "(only None, bool, int, float, str and lists/dicts of them)"
    )


def import_path(obj: object) -> str | None:
    """``obj``'s dotted import path if importing it gives ``obj`` back, else ``None``."""
    path = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
    try:
        return path if import_object(path) is obj else None
    except (ImportError, AttributeError):
        return None


def _module_config(module: nn.Module, argument: str) -> dict[str, Any]:
    cls = type(module)
    path = f"{cls.__module__}.{cls.__qualname__}"
    if import_path(cls) is None:
        raise TypeError(
            f"{argument}: the class of {module!r} cannot be imported back from {path!r}"
        )
    if isinstance(module, TinybigFunction):
        return module.to_config()
    params: dict[str, Any] = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "device", "dtype") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(module, name):
            if p.default is inspect.Parameter.empty:
                raise TypeError(
                    f"{argument}: cannot recover the constructor argument {name!r} of {path}; "
                    "pass it as a config dict instead"
                )
            continue
        value = getattr(module, name)
        if isinstance(p.default, bool) and (value is None or isinstance(value, Tensor)):
            value = value is not None  # e.g. ``bias=True`` stored as a Parameter
        try:
            params[name] = _json_safe(value, f"{argument}.{name}")
        except TypeError:
            raise TypeError(
                f"{argument}: the constructor argument {name}={value!r} of {path} cannot be "
                "written to a config; pass the function as a config dict instead"
            ) from None
    return {"function_class": path, "function_parameters": params}


def _encode_function(value: object, argument: str) -> str | dict[str, Any]:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return _json_safe(value, argument)
    if isinstance(value, nn.Module):
        return _module_config(value, argument)
    name = _builtin_name(value)
    if name is not None:
        return name
    raise TypeError(
        f"{argument}={value!r} cannot be written to a config: use a built-in name (one of "
        f"{list(BUILTIN_NAMES)}), an nn.Module of an importable class, or a config dict"
    )


def encode_functions(functions: object, argument: str) -> tuple[str, Any]:
    """Encode a ``*_functions`` argument for a config: ``('*_function_configs', configs)``
    when every entry is an ``nn.Module`` or a config dict (tinyBIG reads these too), else
    ``('*_functions', value)`` with built-ins as names; a ``TypeError`` for a lambda and the like.
    """
    items = list(functions) if isinstance(functions, (list, tuple)) else [functions]
    single = not isinstance(functions, (list, tuple))
    encoded = [
        _encode_function(f, argument if single else f"{argument}[{i}]") for i, f in enumerate(items)
    ]
    if all(isinstance(e, dict) for e in encoded):
        return argument.replace("functions", "function_configs"), encoded[0] if single else encoded
    return argument, encoded[0] if single else encoded


class TinybigFunction(nn.Module):
    """Base of every tinyBIG-face function: ``name``, ``device``, pre/post-processing, configs.

    Subclasses record their constructor arguments automatically (the outermost ``__init__``
    call wins); :meth:`to_config` is built from them. Not meant to be used on its own.

    Args:
        name: the function's name.
        preprocess_functions: a callable, a built-in name (:data:`BUILTIN_NAMES`), a config
            dict, or a list of them, applied in order (:func:`resolve_functions`); likewise
            ``postprocess_functions``, and the config forms ``*_function_configs``.
        device: device string, used for functions built from configs and for buffers.

    Example:
        >>> f = tb.mean_fusion(dims=[2, 2], postprocess_functions="relu")
        >>> isinstance(f, TinybigFunction), f.get_name()
        (True, 'mean_fusion')
        >>> f([torch.tensor([[1.0, -4.0]]), torch.tensor([[3.0, -2.0]])])
        tensor([[2., 0.]])
        >>> tb.from_config(f.to_config()).postprocess_functions
        [Builtin('relu')]
    """

    #: Where :meth:`to_config` says the class lives (``interfuse.tinybig.<name>``).
    config_module: ClassVar[str] = "interfuse.tinybig"
    #: Base-class arguments the class fills itself (not accepted from callers or configs).
    _filled: ClassVar[tuple[str, ...]] = ()

    _config_args: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: TinybigFunction, *args: Any, **kw: Any) -> None:
            if "_config_args" not in self.__dict__:
                kept = _drop_unexpected(type(self), kw)
                error = functools.partial(_argument_error, type(self), signature, args)
                try:
                    bound = signature.bind(self, *args, **kept)
                except TypeError as exc:  # reported with the unknown keywords, if any
                    raise TypeError(error(kw, exc)) from exc
                if error(kept, None) is not None:
                    raise TypeError(error(kw, None))
                if len(kept) < len(kw):  # unknown keywords alone: tinyBIG's **kwargs took them
                    warn(f"{error(kw, None)} (ignored, as tinyBIG did)")
                    kw = kept
                bound.apply_defaults()
                recorded: dict[str, Any] = {}
                for key, value in list(bound.arguments.items())[1:]:
                    p = signature.parameters[key]
                    if p.kind is not p.VAR_POSITIONAL:
                        recorded.update(value if p.kind is p.VAR_KEYWORD else {key: value})
                for param in _accepted_arguments(cast(type, type(self)))[0]:  # a complete config
                    if param.default is not param.empty:
                        recorded.setdefault(param.name, param.default)
                self.__dict__["_config_args"] = {k: _drop_tensors(v) for k, v in recorded.items()}
            init(self, *args, **kw)

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def __init__(
        self,
        name: str = "base_function",
        preprocess_functions: object = None,
        postprocess_functions: object = None,
        preprocess_function_configs: object = None,
        postprocess_function_configs: object = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        self.name = name
        self.device = str(device) if isinstance(device, torch.device) else device
        pre = (preprocess_functions, preprocess_function_configs, self.device)
        self.preprocess_functions = resolve_functions(*pre, argument="preprocess_functions")
        post = (postprocess_functions, postprocess_function_configs, self.device)
        self.postprocess_functions = resolve_functions(*post, argument="postprocess_functions")
        for side in ("preprocess", "postprocess"):  # registered, so .to() and state_dict see them
            modules = [f for f in getattr(self, f"{side}_functions") if isinstance(f, nn.Module)]
            if modules:
                setattr(self, f"{side}_modules", nn.ModuleList(modules))

    def get_name(self) -> str:
        """The function's name."""
        return self.name

    def pre_process(self, x: Tensor, device: str | torch.device = "cpu") -> Tensor:
        """Apply the pre-processing functions to ``x``."""
        return apply_functions(x, self.preprocess_functions, device, self.training)

    def post_process(self, x: Tensor, device: str | torch.device = "cpu") -> Tensor:
        """Apply the post-processing functions to ``x``."""
        return apply_functions(x, self.postprocess_functions, device, self.training)

    def to_config(self) -> dict[str, Any]:
        """``{"function_class": "interfuse.tinybig.<cls>", "function_parameters": {...}}``.

        The parameters are the constructor arguments (tensors as ``None``: they live in the
        ``state_dict``, unless the class writes them, as ``weighted_summation_fusion`` does its
        fixed ``weights``); pre/post functions as names or config dicts. A ``TypeError`` for an
        argument that cannot be serialized (e.g. a lambda).
        """
        args = dict(getattr(self, "_config_args", {}))
        encoded: dict[str, Any] = {}
        for side in ("preprocess", "postprocess"):
            fn_key, cfg_key = f"{side}_functions", f"{side}_function_configs"
            functions, configs = args.get(fn_key), args.get(cfg_key)
            encoded[fn_key] = encoded[cfg_key] = None
            if functions is not None and not (
                isinstance(functions, (list, tuple)) and not functions
            ):
                key, value = encode_functions(functions, fn_key)
                encoded[key] = value
            elif configs is not None:
                encoded[cfg_key] = _json_safe(configs, cfg_key)
        params = {
            k: encoded[k] if k in encoded else self._config_value(k, v) for k, v in args.items()
        }
        if "name" in params:
            params["name"] = self.name  # a variant's default name is its class's
        return {
            "function_class": f"{self.config_module}.{type(self).__name__}",
            "function_parameters": params,
        }

    def _config_value(self, key: str, value: Any) -> Any:
        """Encode one constructor argument for :meth:`to_config` (override for special types)."""
        return _json_safe(value, key)

    def extra_repr(self) -> str:
        empty_ok = ("_functions", "_function_configs")  # [] is as good as None there
        return ", ".join(
            f"{key}={value!r}"
            for key, value in getattr(self, "_config_args", {}).items()
            if value is not None and not (key.endswith(empty_ok) and not value)
        )


@functools.cache
def _accepted_arguments(cls: type) -> tuple[tuple[inspect.Parameter, ...], bool]:
    """The named arguments ``cls()`` accepts, and whether it takes any other keyword (following
    ``**kwargs`` up the MRO through ``interfuse.tinybig``'s classes, which forward them)."""
    named: list[inspect.Parameter] = []
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__ or not issubclass(klass, TinybigFunction):
            continue
        params = list(inspect.signature(klass.__dict__["__init__"]).parameters.values())[1:]
        seen = {p.name for p in named}
        named += [
            p
            for p in params
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in seen
            and (klass is cls or p.name not in getattr(cls, "_filled", ()))
        ]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return tuple(named), False
        if not klass.__module__.startswith("interfuse.tinybig"):
            return tuple(named), True
    return tuple(named), True


def _drop_unexpected(cls: type[TinybigFunction], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` without those ``cls()`` does not take (tinyBIG's ``**kwargs`` swallowed them)."""
    named, takes_any = _accepted_arguments(cast(type, cls))
    # A base argument the class fills itself stays, to fail as a duplicate (as in tinyBIG).
    kept = {p.name for p in named if p.kind is not p.POSITIONAL_ONLY} | set(cls._filled)
    return dict(kwargs) if takes_any else {k: v for k, v in kwargs.items() if k in kept}


def _listed(what: str, names: list[str]) -> str:
    return f"{what}{'s' if len(names) > 1 else ''} {', '.join(map(repr, names))}"


def _argument_error(
    cls: type,
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    bind_error: TypeError | None,
) -> str | None:
    """The message for bad constructor arguments (``None`` if fine): unexpected keywords (with
    the closest accepted name), missing ones, and all it accepts. ``args`` exclude ``self``."""
    named, takes_any = _accepted_arguments(cls)
    keyword_ok = sorted(p.name for p in named if p.kind is not p.POSITIONAL_ONLY)
    own = list(signature.parameters.values())[1:]
    positional = [p.name for p in own if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    given = set(positional[: len(args)]) | set(kwargs)
    unexpected = [] if takes_any else [k for k in kwargs if k not in keyword_ok]
    missing = [p.name for p in named if p.default is p.empty and p.name not in given]
    other = "" if bind_error is None else str(bind_error)
    # too many positional arguments, an argument given twice, ... (the rest is said below)
    known = "missing a required" in other or "unexpected keyword" in other
    problems = [other] if other and (not known or not unexpected + missing) else []
    if unexpected:
        close = {k: difflib.get_close_matches(k, keyword_ok, n=1) for k in unexpected}
        hints = [
            repr(m[0]) if len(close) == 1 else f"{m[0]!r} for {k!r}" for k, m in close.items() if m
        ]
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        problems.append(_listed("unexpected keyword argument", unexpected) + hint)
    if missing:
        problems.append(_listed("missing required argument", missing))
    if not problems:
        return None
    accepted = ", ".join(p.name + (" (required)" if p.default is p.empty else "") for p in named)
    accepted += ", **kwargs" if takes_any else ""
    return f"{cls.__name__}(): {'; '.join(problems)}. {cls.__name__} accepts: {accepted}"


def _drop_tensors(value: Any) -> Any:
    """Tensor arguments are recorded as ``None`` (their values live in the state_dict)."""
    if isinstance(value, Tensor):
        return None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Tensor) for v in value):
        return None
    return value
