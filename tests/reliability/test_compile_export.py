"""Every modern module under ``torch.compile(fullgraph=True)`` and ``torch.export``.

``fullgraph=True`` turns any graph break into an error, so a passing test means one graph.
The per-module checks use the ``aot_eager`` backend (Dynamo + AOTAutograd, forward and
backward traced, no code generation) to stay fast on two cores; one test compiles a composite
model with the default inductor backend end to end.

The registry's matrix entries run on so few rows that ``mode='auto'`` takes the materialized
(dense) path; the ``*_factored`` tests force ``mode='factored'`` for every structured matrix
(both Kronecker contraction orders), alone, inside a projected concatenation (list input, per-row
mask) and inside a parameterized interdependence (both axes), so the factored kernels are the
ones traced and exported.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import torch
import torch._dynamo
from torch import nn

import interfuse
from interfuse.matrices import MATRICES, DenseMatrix, StructuredMatrix
from tests.registry import ModuleEntry
from tests.reliability._common import MODERN_ENTRIES, build, sample


def _floats(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj] if obj.is_floating_point() else []
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _floats(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _floats(o)]
    return []


def _forward_backward(module: nn.Module, args: Any, kwargs: Any) -> tuple[torch.Tensor, list]:
    inputs = _floats((args, kwargs))
    for t in inputs:
        t.requires_grad_(True)
    out = module(*args, **kwargs)
    out.square().sum().backward()
    grads = [t.grad for t in inputs] + [p.grad for p in module.parameters()]
    return out.detach(), grads


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> None:
    torch._dynamo.reset()


def _clone(obj: Any) -> Any:
    """Fresh leaf copies of the tensors in ``obj`` (so each run collects its own grads)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    return obj


def _check_compile(eager: nn.Module, args: Any, kwargs: Any) -> None:
    """``torch.compile(fullgraph=True, backend='aot_eager')``: same output and gradients."""
    compiled_module = copy.deepcopy(eager)
    ref, ref_grads = _forward_backward(eager, _clone(args), _clone(kwargs))
    compiled = torch.compile(compiled_module, fullgraph=True, backend="aot_eager")
    out, grads = _forward_backward(compiled, _clone(args), _clone(kwargs))
    torch.testing.assert_close(out, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            torch.testing.assert_close(g, r)


def _check_export(module: nn.Module, args: Any, kwargs: Any) -> None:
    ref = module(*args, **kwargs)
    program = torch.export.export(module, tuple(args), kwargs)
    torch.testing.assert_close(program.module()(*args, **kwargs), ref)


@pytest.mark.parametrize("entry", MODERN_ENTRIES, ids=lambda e: e.id)
def test_compile_fullgraph_same_result(entry: ModuleEntry) -> None:
    _check_compile(build(entry), *sample(entry))


@pytest.mark.parametrize("entry", MODERN_ENTRIES, ids=lambda e: e.id)
def test_export(entry: ModuleEntry) -> None:
    _check_export(build(entry), *sample(entry))


# ---------------------------------------------------------------------------------------------
# The factored paths: mode='factored' for every structured matrix
# ---------------------------------------------------------------------------------------------
def _factored_options(name: str, n_in: int, n_out: int) -> dict[str, Any]:
    """``mode='factored'`` and small options of matrix ``name`` for an ``n_out × n_in`` shape.

    With ``(n_in, n_out) = (12, 6)`` (``p=2, q=3``) the Kronecker kernel mixes by ``A`` first,
    with ``(6, 12)`` (``p=3, q=2``) it applies ``B`` first: both contraction orders are traced.
    """
    params = inspect.signature(MATRICES[name]).parameters
    options: dict[str, Any] = {"mode": "factored"}
    if "rank" in params:
        options["rank"] = 2
    if "p" in params:
        options.update(p=2, q=3) if n_in > n_out else options.update(p=3, q=2)
    if "seed" in params:
        options["seed"] = 7
    return options


def _kronecker(name: str) -> bool:
    return "p" in inspect.signature(MATRICES[name]).parameters


#: ``(kind, matrix name, n_in, n_out)``: every matrix alone, the Kronecker family in both
#: contraction orders; every matrix inside a projected concatenation and inside a
#: parameterized interdependence of either axis.
FACTORED_CASES = [
    pytest.param(kind, name, n_in, n_out, id=f"{kind}-{name}-{n_in}to{n_out}")
    for name in sorted(MATRICES)
    for kind, n_in, n_out in [
        ("matrix", 12, 6),
        *([("matrix", 6, 12)] if _kronecker(name) else []),
        ("projected_concat", 12, 6),
        ("interdependence-attribute", 12, 6),
        ("interdependence-instance", 6, 12),
    ]
]


@contextlib.contextmanager
def _materialize_forbidden(module: nn.Module) -> Iterator[None]:
    """Fail if a (non-dense) structured matrix of ``module`` builds ``W`` in the block."""
    classes = {
        type(m)
        for m in module.modules()
        if isinstance(m, StructuredMatrix) and not isinstance(m, DenseMatrix)
    }
    with contextlib.ExitStack() as stack:
        for cls in classes:
            error = AssertionError(f"{cls.__name__}.materialize called on the factored path")
            stack.enter_context(mock.patch.object(cls, "materialize", side_effect=error))
        yield


def _factored_matrix(name: str, n_in: int, n_out: int) -> tuple[nn.Module, Any, Any]:
    torch.manual_seed(0)
    m = MATRICES[name](n_in, n_out, **_factored_options(name, n_in, n_out)).eval()
    return m, (torch.randn(3, n_in),), {}


def _factored_projection(name: str, n_in: int, n_out: int) -> tuple[nn.Module, Any, Any]:
    """A projected concatenation of two inputs (list input) under a per-row mask."""
    torch.manual_seed(0)
    widths = [n_in // 2 - 1, n_in - n_in // 2 + 1]
    f = interfuse.ProjectedConcatFusion(
        widths, n_out, matrix=name, matrix_options=_factored_options(name, n_in, n_out)
    ).eval()
    xs = [torch.randn(2, 3, n) for n in widths]
    mask = torch.tensor([[True, True], [True, False], [False, True]])  # (rows, k), per row
    return f, (xs,), {"mask": mask}


def _factored_interdependence(
    name: str, n_in: int, n_out: int, axis: str
) -> tuple[nn.Module, Any, Any]:
    torch.manual_seed(0)
    f = interfuse.ParameterizedInterdependence(
        n_in, n_out, matrix=name, axis=axis, matrix_options=_factored_options(name, n_in, n_out)
    ).eval()
    shape = (2, 3, n_in) if axis == "attribute" else (2, n_in, 3)
    return f, (torch.randn(shape),), {}


FACTORED_BUILDERS = {
    "matrix": _factored_matrix,
    "projected_concat": _factored_projection,
    "interdependence-attribute": lambda *a: _factored_interdependence(*a, axis="attribute"),
    "interdependence-instance": lambda *a: _factored_interdependence(*a, axis="instance"),
}


@pytest.mark.parametrize(("kind", "name", "n_in", "n_out"), FACTORED_CASES)
def test_compile_and_export_factored(kind: str, name: str, n_in: int, n_out: int) -> None:
    """The factored kernels compile to one graph (same output and gradients as eager) and
    export (same output)."""
    module, args, kwargs = FACTORED_BUILDERS[kind](name, n_in, n_out)
    rows = 3 * (2 if kind != "matrix" else 1)
    for m in module.modules():
        if isinstance(m, StructuredMatrix):
            assert m.mode == "factored" and m.use_factored(rows)
    with _materialize_forbidden(module):  # eager: W is never built
        module(*_clone(args), **_clone(kwargs))
    _check_compile(module, args, kwargs)
    _check_export(module, args, kwargs)


def test_export_dynamic_batch() -> None:
    """A structured matrix exported with a symbolic batch size runs on other batch sizes."""
    m = interfuse.LowRankKroneckerMatrix(12, 6, rank=2, p=3, q=2, mode="factored").eval()
    batch = torch.export.Dim("batch", min=2, max=1024)
    program = torch.export.export(m, (torch.randn(4, 12),), dynamic_shapes=({0: batch},))
    for n in (2, 7, 33):
        x = torch.randn(n, 12)
        torch.testing.assert_close(program.module()(x), m(x))


class _Composite(nn.Module):
    """Projection of two inputs, an interdependence and a learnable weighted sum."""

    def __init__(self) -> None:
        super().__init__()
        self.project = interfuse.ProjectedConcatFusion(
            [5, 3], 6, matrix="lowrank_kronecker", matrix_options={"rank": 2, "p": 2, "q": 2}
        )
        self.mix = interfuse.ParameterizedInterdependence(
            6, matrix="rma", matrix_options={"rank": 3, "seed": 1}
        )
        self.fuse = interfuse.WeightedSumFusion(3, normalize="softmax")
        self.prod = interfuse.ProdFusion()

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        h = self.project([x1, x2])
        g = torch.tanh(self.mix(h))
        return self.fuse([h, g, self.prod([h, g])])


def test_inductor_composite() -> None:
    """The default backend (inductor, C++ code generation) end to end on a composite model.

    Inference only, to keep the compile to one graph on two cores; every module's backward is
    traced by the ``aot_eager`` test above."""
    torch.manual_seed(0)
    model = _Composite().eval()
    args = (torch.randn(2, 4, 5), torch.randn(2, 4, 3))
    compiled = torch.compile(copy.deepcopy(model), fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(*args), model(*args), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, float("inf")])
def test_norm_compiles_fullgraph_with_dynamic_shapes(p: float) -> None:
    torch._dynamo.reset()
    f = interfuse.NormFusion(p=p)
    compiled = torch.compile(f, fullgraph=True, dynamic=True, backend="aot_eager")
    for rows in (4, 6):
        xs = [torch.randn(rows, 7) for _ in range(3)]
        torch.testing.assert_close(compiled(xs), f(xs))


@pytest.mark.parametrize("per_row", [False, True])
def test_masked_fusion_compiles_one_graph_for_every_batch_size(per_row: bool) -> None:
    torch._dynamo.reset()
    graphs = 0

    def backend(gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        nonlocal graphs
        graphs += 1
        return gm

    f = interfuse.MeanFusion()
    compiled = torch.compile(f, fullgraph=True, dynamic=True, backend=backend)
    for rows in (4, 6, 8, 10):
        xs = [torch.randn(rows, 7) for _ in range(3)]
        mask = torch.rand(rows, 3) < 0.6 if per_row else torch.tensor([True, False, True])
        mask[..., 0] = True
        torch.testing.assert_close(compiled(xs, mask), f(xs, mask))
    assert graphs == 1


@pytest.mark.parametrize("cls", [interfuse.SumFusion, interfuse.MeanFusion, interfuse.MaxFusion])
def test_traced_fusion_is_not_a_constant_graph(cls: type) -> None:
    """Tracing (what the ONNX exporter with dynamo=False does) records the plain formulas at
    every size, not the blocked kernels' Python loop frozen around the example's values."""
    f = cls()
    big = [torch.randn(512, 1024) for _ in range(3)]  # above SMALL_BYTES
    traced = torch.jit.trace(lambda *xs: f(list(xs)), tuple(big))
    other = [torch.randn(512, 1024) for _ in range(3)]
    torch.testing.assert_close(traced(*other), f(other))
