"""Contract tests shared by every module of both faces, driven by :mod:`tests.registry`."""

from __future__ import annotations

import copy
import io
import json
import math
from typing import Any

import pytest
import torch
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from interfuse.config import Configurable
from interfuse.functional import _common
from tests.registry import ALL_ENTRIES, ModuleEntry

yaml = pytest.importorskip("yaml")


def _cast(obj: Any, dtype: torch.dtype) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(dtype) if obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cast(o, dtype) for o in obj)
    if isinstance(obj, dict):
        return {k: _cast(v, dtype) for k, v in obj.items()}
    return obj


def _flatten(obj: Any, out: list[torch.Tensor]) -> Any:
    """Replace floating tensors by their index in ``out`` (a template to rebuild args)."""
    if isinstance(obj, torch.Tensor) and obj.is_floating_point():
        out.append(obj)
        return ("__tensor__", len(out) - 1)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_flatten(o, out) for o in obj)
    if isinstance(obj, dict):
        return {k: _flatten(v, out) for k, v in obj.items()}
    return obj


def _rebuild(template: Any, tensors: tuple[torch.Tensor, ...]) -> Any:
    if isinstance(template, tuple) and len(template) == 2 and template[0] == "__tensor__":
        return tensors[template[1]]
    if isinstance(template, (list, tuple)):
        return type(template)(_rebuild(t, tensors) for t in template)
    if isinstance(template, dict):
        return {k: _rebuild(v, tensors) for k, v in template.items()}
    return template


def _run(module: torch.nn.Module, entry: ModuleEntry, dtype: torch.dtype) -> torch.Tensor:
    # Sample in float32 then cast, so every dtype sees the same numbers.
    torch.manual_seed(1234)
    args, kwargs = _cast(entry.sample(torch.float32), dtype)
    return module(*args, **kwargs)


@pytest.fixture(params=ALL_ENTRIES, ids=lambda e: e.id)
def entry(request: pytest.FixtureRequest) -> ModuleEntry:
    return request.param


def test_forward_shape_and_finite(entry: ModuleEntry) -> None:
    out = _run(entry.factory(), entry, torch.float32)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    if entry.out_shape is not None:
        assert tuple(out.shape) == entry.out_shape


def test_gradcheck_float64(entry: ModuleEntry) -> None:
    if not entry.gradcheck:
        pytest.skip("not differentiable in its inputs")
    module = entry.factory().to(torch.float64)
    torch.manual_seed(1234)
    args, kwargs = entry.sample(torch.float64)
    tensors: list[torch.Tensor] = []
    template = _flatten((args, kwargs), tensors)
    params = {k: v.detach() for k, v in module.named_parameters()}
    names = list(params)
    n_in = len(tensors)

    def f(*flat: torch.Tensor) -> torch.Tensor:
        a, kw = _rebuild(template, flat[:n_in])
        p = dict(zip(names, flat[n_in:], strict=True))
        return functional_call(module, p, tuple(a), kw)

    inputs = tuple(t.detach().requires_grad_() for t in (*tensors, *params.values()))
    assert torch.autograd.gradcheck(f, inputs, fast_mode=True, atol=1e-6, rtol=1e-4)


def test_state_dict_round_trip(entry: ModuleEntry) -> None:
    module = entry.factory()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01)
    clone = entry.factory()
    clone.load_state_dict(module.state_dict())
    torch.testing.assert_close(
        _run(clone, entry, torch.float32), _run(module, entry, torch.float32)
    )


def test_torch_save_weights_only(entry: ModuleEntry) -> None:
    module = entry.factory()
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    clone = entry.factory()
    clone.load_state_dict(state)
    assert torch.equal(_run(clone, entry, torch.float32), _run(module, entry, torch.float32))


def test_config_round_trip(entry: ModuleEntry) -> None:
    if entry.roundtrip is None:
        pytest.skip("no config")
    module = entry.factory()
    config = module.to_config()  # type: ignore[operator]
    assert json.loads(json.dumps(config)) == config
    assert yaml.safe_load(yaml.safe_dump(config)) == config
    rebuilt = entry.roundtrip(copy.deepcopy(module))
    assert type(rebuilt) is type(module)
    assert rebuilt.to_config() == config  # type: ignore[operator]
    rebuilt.load_state_dict(module.state_dict())
    torch.testing.assert_close(
        _run(rebuilt, entry, torch.float32), _run(module, entry, torch.float32)
    )


#: Modules whose repr is not (yet) a constructor call, and why.
_REPR_NOT_A_CALL: set[str] = set()


def _constructor_namespace() -> dict[str, Any]:
    import interfuse.fusion
    import interfuse.interdependence
    import interfuse.matrices

    names: dict[str, Any] = {"torch": torch, "inf": math.inf}
    for mod in (interfuse, interfuse.fusion, interfuse.matrices, interfuse.interdependence):
        names.update({n: getattr(mod, n) for n in dir(mod) if not n.startswith("_")})
    return names


def test_repr_reproduces_the_constructor_call(entry: ModuleEntry) -> None:
    """``Name(<extra_repr>)`` evaluated gives a module of the same config (the modern face;
    the tinyBIG face prints tinyBIG's own repr)."""
    module = entry.factory()
    name = type(module).__name__
    assert repr(module).startswith(f"{name}(")
    if not isinstance(module, Configurable) or type(module).__module__.startswith(
        "interfuse.tinybig"
    ):
        return
    if name in _REPR_NOT_A_CALL:
        pytest.xfail(f"{name}'s repr is not a constructor call")
    rebuilt = eval(f"{name}({module.extra_repr()})", _constructor_namespace())
    assert type(rebuilt) is type(module)
    assert rebuilt.to_config() == module.to_config()


def test_dtype_move(entry: ModuleEntry) -> None:
    module = entry.factory().to(torch.float64)
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            assert t.dtype == torch.float64
    out = _run(module, entry, torch.float64)
    assert out.dtype == torch.float64
    ref = _run(module.to(torch.float32), entry, torch.float32)
    torch.testing.assert_close(out.float(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("path", ["plain", "blocked"])
def test_activation_checkpointing_and_inference_mode(
    entry: ModuleEntry, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A training loop's memory savers: recomputing the forward inside the backward
    (``torch.utils.checkpoint``) gives the gradients of the plain step, and
    ``torch.inference_mode`` the same output, on the small-size formulas and on the blocked
    kernels alike."""
    if path == "blocked":
        monkeypatch.setattr(_common, "SMALL_BYTES", 0)
    module = entry.factory().to(torch.float64).eval()  # eval: no dropout draws between runs
    torch.manual_seed(1234)
    args, kwargs = entry.sample(torch.float64)
    tensors: list[torch.Tensor] = []
    template = _flatten((args, kwargs), tensors)

    def f(*flat: torch.Tensor) -> torch.Tensor:
        a, kw = _rebuild(template, flat)
        return module(*a, **kw)

    leaves = [t.detach().requires_grad_(entry.gradcheck) for t in tensors]
    wrt = [*[t for t in leaves if t.requires_grad], *module.parameters()]
    out = f(*leaves)
    if wrt and out.requires_grad:
        want = torch.autograd.grad(out.sum(), wrt, allow_unused=True)
        again = checkpoint(f, *leaves, use_reentrant=False)
        got = torch.autograd.grad(again.sum(), wrt, allow_unused=True)
        for w, g in zip(want, got, strict=True):
            assert (w is None) == (g is None)
            if w is not None and g is not None:
                torch.testing.assert_close(g, w)
    with torch.inference_mode():
        fresh = f(*[t.detach() for t in tensors])
    torch.testing.assert_close(fresh, out.detach())
