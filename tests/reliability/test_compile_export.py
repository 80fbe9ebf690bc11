"""Every modern module under ``torch.compile(fullgraph=True)`` and ``torch.export``.

``fullgraph=True`` turns any graph break into an error, so a passing test means one graph.
The per-module checks use the ``aot_eager`` backend (Dynamo + AOTAutograd, forward and
backward traced, no code generation) to stay fast on two cores; one test compiles a composite
model with the default inductor backend end to end.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch._dynamo
from torch import nn

import interfuse
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


@pytest.mark.parametrize("entry", MODERN_ENTRIES, ids=lambda e: e.id)
def test_compile_fullgraph_same_result(entry: ModuleEntry) -> None:
    eager = build(entry)
    compiled_module = copy.deepcopy(eager)
    ref, ref_grads = _forward_backward(eager, *sample(entry))
    compiled = torch.compile(compiled_module, fullgraph=True, backend="aot_eager")
    out, grads = _forward_backward(compiled, *sample(entry))
    torch.testing.assert_close(out, ref)
    for g, r in zip(grads, ref_grads, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            torch.testing.assert_close(g, r)


@pytest.mark.parametrize("entry", MODERN_ENTRIES, ids=lambda e: e.id)
def test_export(entry: ModuleEntry) -> None:
    module = build(entry)
    args, kwargs = sample(entry)
    ref = module(*args, **kwargs)
    program = torch.export.export(module, tuple(args), kwargs)
    torch.testing.assert_close(program.module()(*args, **kwargs), ref)


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
