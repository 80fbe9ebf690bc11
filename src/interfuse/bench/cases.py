"""What ``interfuse bench`` measures: cases, each a set of variants timed against each other.

A case is rebuilt from a JSON-safe spec (so the memory worker, a fresh process, can rebuild
it). Its variants share one set of inputs:

* ``interfuse``: the kernel of :mod:`interfuse.functional` (element-wise fusions, dense
  projection) or the :mod:`interfuse.matrices` module as users call it (structured matrices).
* ``reference``: one native reduction over an already stacked ``(k, ...)`` tensor
  (``S.sum(0)``, ``S.amax(0)``, ``torch.tensordot(w, S, 1)``, ``vector_norm(S, p, 0)``, ...),
  or ``F.linear`` on an already concatenated input with the dense matrix (the GEMM reference).
* ``floor``: the memory-bandwidth floor of an element-wise fusion: ``S.sum(0)`` forward (read
  ``k`` inputs, write one); forward+backward, ``S.sum(0)`` with autograd for a sum (every
  input gets the same gradient), else :class:`_Floor`, whose backward writes one shared
  gradient (mean), or ``k`` gradients, reading the ``k`` inputs once where the gradient
  depends on them (weighted sum, max, min, prod, norms, median).
* ``naive``: the algorithm of the original, written here: stack, then reduce; concatenate,
  then project; build ``W``, then multiply.
* ``modern`` / ``tinybig``: the two public faces (:mod:`interfuse.fusion`,
  :mod:`interfuse.tinybig`) on the same inputs, when they are importable.
* ``compiled``: the same kernel under ``torch.compile(fullgraph=True)`` (inductor), where
  the spec asks for it (the full run's headline element-wise cases). Compiling hands the
  kernels' plain formulas to inductor, which fuses each fusion into one loop: what a fused
  kernel would reach where eager ATen needs two passes per input. Compiled (and warmed up)
  when the case is built, so compile time is not timed; skipped, with a message, where
  inductor cannot compile (no C++ compiler).
* ``pyg``: PyTorch Geometric's ``MultiAggregation`` combine step, if ``torch_geometric`` is
  installed (the ``bench`` extra has it; the report notes when it was skipped): modes
  ``sum``/``mean``/``max``/``min`` against the element-wise fusions, ``proj`` (concatenate,
  then ``Linear``) against the dense projection.

Forward+backward variants return ``torch.autograd.grad`` of the output (inputs and weights
require grad), as a layer inside a network sees it: no ``.grad`` accumulation copies.
"""

from __future__ import annotations

import importlib
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

import interfuse.functional as fn

Thunk = Callable[[], object]

ELEMENTWISE = (
    "weighted_sum",
    "sum",
    "mean",
    "max",
    "min",
    "prod",
    "l1_norm",
    "l2_norm",
    "median",
)
MASKED = ("weighted_sum", "sum", "mean", "max", "prod", "l2_norm")
MATRICES = ("lowrank", "kronecker", "lowrank_kronecker", "dual_lowrank_kronecker", "random_adapted")
#: Targets of issue 5 (ratio of interfuse to the base named, at most this).
ELEMENTWISE_TARGET = 1.3
MASKED_TARGET = 1.5
PROJECTION_TARGET = 1.1
STRUCTURED_SPEEDUP = 5.0


@dataclass
class Case:
    """One measurement: a spec, its variants (built lazily) and the target it checks."""

    spec: dict[str, Any]
    make: Callable[[], dict[str, Thunk]]
    base: str
    output_bytes: int
    target: dict[str, Any] | None = None
    #: Variants whose minimum is the "bandwidth reference" (element-wise fusions).
    bandwidth: tuple[str, ...] = ("floor", "reference")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    def variants(self) -> dict[str, Thunk]:
        """The variants; in the forward phase each runs under ``torch.no_grad()`` (inference),
        so no variant pays for recording a graph that another does not build."""
        made = self.make()
        if self.spec.get("phase") != "forward":
            return made
        return {name: _no_grad(fn) for name, fn in made.items()}

    def variant_names(self) -> list[str]:
        return list(self.make())


def _no_grad(fn: Thunk) -> Thunk:
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


def _dtype(name: str) -> torch.dtype:
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype name such as 'float32', got {name!r}")
    return value


def optional(module: str) -> Any | None:
    """``importlib.import_module(module)``, or ``None`` when it is not importable.

    Deprecation warnings raised while importing (PyG scripts modules with ``torch.jit`` at
    import time) are silenced: they concern the optional package, not the run.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(module)
    except ImportError:
        return None


class _Floor(torch.autograd.Function):
    """The least traffic of a fusion step on stacked inputs. Forward: ``S.sum(0)`` (read k,
    write 1). Backward, by ``mode``: ``'scaled'`` writes one output-sized gradient shared by
    every input (``g/k``, a mean); ``'each'`` writes ``k`` distinct gradients (one broadcast
    multiply: read the output gradient, write k); ``'each_read'`` also reads the ``k`` inputs
    once (one GEMV, which also gives the weights' gradient), as every fusion whose gradient
    depends on the inputs' values must."""

    @staticmethod
    def forward(ctx: Any, S: Tensor, w: Tensor, mode: str) -> Tensor:
        ctx.save_for_backward(S, w)
        ctx.mode = mode
        return S.sum(0)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        S, w = ctx.saved_tensors
        k = S.shape[0]
        if ctx.mode == "scaled":
            return (g / k).expand(k, *g.shape), None, None
        grad_s = w.to(g.dtype).view(k, *([1] * g.ndim)) * g
        grad_w = None
        if ctx.mode == "each_read":
            grad_w = torch.mv(S.reshape(k, -1), g.reshape(-1)).to(w.dtype)
        return grad_s, grad_w, None


def _grad_thunk(forward: Callable[[], Tensor], inputs: list[Tensor], g: Tensor) -> Thunk:
    def run() -> object:
        y = forward()
        return torch.autograd.grad(y, inputs, g, allow_unused=True)

    return run


# ---------------------------------------------------------------------------------------------
# element-wise fusions
# ---------------------------------------------------------------------------------------------
def _reference(name: str, S: Tensor, w: Tensor) -> Tensor:
    """One native reduction over the stacked inputs."""
    if name == "weighted_sum":
        return torch.tensordot(w.to(S.dtype), S, 1)
    if name == "sum":
        return S.sum(0)
    if name == "mean":
        return S.mean(0)
    if name == "max":
        return S.amax(0)
    if name == "min":
        return S.amin(0)
    if name == "prod":
        return S.prod(0)
    if name == "l1_norm":
        return torch.linalg.vector_norm(S, 1, 0)
    if name == "l2_norm":
        return torch.linalg.vector_norm(S, 2, 0)
    if name == "median":
        return S.median(0).values
    raise ValueError(f"unknown element-wise fusion {name!r}")


def _kernel(name: str, xs: list[Tensor], w: Tensor, mask: Tensor | None) -> Tensor:
    if name == "weighted_sum":
        return fn.weighted_sum(xs, w, mask)
    if name in ("l1_norm", "l2_norm"):
        return fn.fused_norm(xs, 1.0 if name == "l1_norm" else 2.0, mask)
    kernel = {
        "sum": fn.fused_sum,
        "mean": fn.fused_mean,
        "max": fn.fused_max,
        "min": fn.fused_min,
        "prod": fn.fused_prod,
        "median": fn.fused_median,
    }[name]
    return kernel(xs, mask)


def _naive(name: str, xs: list[Tensor], w: Tensor, mask: Tensor | None) -> Tensor:
    """The original's algorithm: stack the k inputs, then reduce (masks: where on the stack)."""
    S = torch.stack(xs)
    if mask is None:
        return _reference(name, S, w)
    m = mask.t()[..., None]  # (k, rows, 1)
    if name in ("max",):
        return torch.where(m, S, -math.inf).amax(0)
    if name == "prod":
        return torch.where(m, S, 1).prod(0)
    zeroed = torch.where(m, S, 0)
    if name == "sum":
        return zeroed.sum(0)
    if name == "mean":
        return zeroed.sum(0) / mask.sum(-1, keepdim=True)
    if name == "l2_norm":
        return torch.linalg.vector_norm(zeroed, 2, 0)
    wk = w.to(S.dtype)
    total = torch.tensordot(wk, zeroed, 1)
    return total * (wk.sum() / (mask.to(wk.dtype) @ wk))[:, None]


def _modern(name: str, k: int, w: Tensor, device: torch.device, dtype: torch.dtype) -> Any | None:
    fusion = optional("interfuse.fusion")
    if fusion is None:
        return None
    try:
        if name == "weighted_sum":
            module = fusion.WeightedSumFusion(k, weights=w.tolist(), learnable=True)
        elif name in ("l1_norm", "l2_norm"):
            module = fusion.NormFusion(p=1.0 if name == "l1_norm" else 2.0)
        else:
            cls = {
                "sum": "SumFusion",
                "mean": "MeanFusion",
                "max": "MaxFusion",
                "min": "MinFusion",
                "prod": "ProdFusion",
                "median": "MedianFusion",
            }[name]
            module = getattr(fusion, cls)()
    except (AttributeError, TypeError, ValueError):
        return None
    return module.to(device)


def _tinybig(name: str, k: int, width: int, w: Tensor) -> Callable[..., Tensor] | None:
    tb = optional("interfuse.tinybig")
    if tb is None:
        return None
    dims = [width] * k
    try:
        if name == "weighted_sum":
            f = tb.parameterized_weighted_summation_fusion(dims=dims)
            return lambda xs, wt: f(xs, w=wt)
        cls = {
            "sum": "sum_fusion",
            "mean": "mean_fusion",
            "max": "max_fusion",
            "min": "min_fusion",
            "prod": "prod_fusion",
            "median": "median_fusion",
            "l1_norm": "l1_norm_fusion",
            "l2_norm": "l2_norm_fusion",
        }[name]
        f = getattr(tb, cls)(dims=dims)
    except (AttributeError, TypeError, ValueError):
        return None
    return lambda xs, wt: f(xs)


def _pyg(name: str, k: int) -> Any | None:
    """PyG's MultiAggregation combine step for the modes that do the same job."""
    mode = {"sum": "sum", "mean": "mean", "max": "max", "min": "min"}.get(name)
    aggr = optional("torch_geometric.nn.aggr")
    if mode is None or aggr is None:
        return None
    try:
        return aggr.MultiAggregation(["sum"] * k, mode=mode)
    except (TypeError, ValueError):
        return None


def _pyg_projection(widths: list[int], W: Tensor) -> Any | None:
    """PyG's ``MultiAggregation(mode='proj')`` combine step (concatenate, then a Linear)
    holding ``W``; it takes equally wide inputs only."""
    aggr = optional("torch_geometric.nn.aggr")
    if aggr is None or len(set(widths)) != 1:
        return None
    try:
        module = aggr.MultiAggregation(
            ["sum"] * len(widths),
            mode="proj",
            mode_kwargs={"in_channels": widths[0], "out_channels": W.shape[0], "bias": False},
        )
    except (TypeError, ValueError):
        return None
    module = module.to(W.dtype)
    with torch.no_grad():
        module.lin.weight.copy_(W)
    return module


def _compile_kernel(name: str) -> Callable[..., Tensor]:
    """``_kernel`` for ``name`` under ``torch.compile`` (inductor, whole graph, static shapes).

    Every case compiles the same lambda's code, and Dynamo keeps a bounded number of graphs
    per code object (8), so the previous cases' graphs are dropped first.
    """
    torch.compiler.reset()
    return torch.compile(
        lambda xs, w, mask: _kernel(name, xs, w, mask), fullgraph=True, dynamic=False
    )


def _warmed(name: str, thunk: Thunk) -> Thunk | None:
    """``thunk`` after one call (which compiles it), or ``None``, with a message on stderr,
    where compiling fails."""
    try:
        thunk()
    except Exception as err:  # inductor's failures have no common base class
        print(f"bench: torch.compile of {name} failed, no compiled variant: {err}", file=sys.stderr)
        return None
    return thunk


def elementwise_case(spec: dict[str, Any]) -> Case:
    name, k, rows, width = spec["name"], spec["k"], spec["rows"], spec["width"]
    dtype, phase, masked = _dtype(spec["dtype"]), spec["phase"], spec.get("masked", False)
    if name not in ELEMENTWISE:
        raise ValueError(f"element-wise fusion must be one of {list(ELEMENTWISE)}, got {name!r}")
    out_bytes = rows * width * torch.empty((), dtype=dtype).element_size()
    grad_each = name not in ("sum", "mean") or masked
    target = None
    if name != "median" and spec.get("headline"):
        target = {
            "against": "bandwidth",
            "max_ratio": MASKED_TARGET if masked else ELEMENTWISE_TARGET,
            "text": f"≤ {MASKED_TARGET if masked else ELEMENTWISE_TARGET}× the bandwidth reference",
        }

    def make() -> dict[str, Thunk]:
        gen = torch.Generator().manual_seed(0)
        xs = [torch.randn(rows, width, generator=gen).to(dtype) for _ in range(k)]
        w = torch.softmax(torch.randn(k, generator=gen), 0)
        mask = None
        if masked:
            mask = torch.rand(rows, k, generator=gen) > 0.25
            mask[:, 0] = True
        S = torch.stack(xs)
        v: dict[str, Thunk] = {}
        modern = _modern(name, k, w, xs[0].device, dtype)
        tiny = None if masked else _tinybig(name, k, width, w)
        pyg = None if masked else _pyg(name, k)
        if phase == "forward":
            if spec.get("compiled"):
                c = _compile_kernel(name)
                if _warmed(name, _no_grad(lambda: c(xs, w, mask))) is not None:
                    v["compiled"] = lambda: c(xs, w, mask)
            v["interfuse"] = lambda: _kernel(name, xs, w, mask)
            v["reference"] = lambda: _reference(name, S, w)
            v["floor"] = lambda: S.sum(0)
            v["naive"] = lambda: _naive(name, xs, w, mask)
            if modern is not None:
                v["modern"] = lambda: modern(xs, mask)
            if tiny is not None:
                v["tinybig"] = lambda: tiny(xs, w)
            if pyg is not None:
                v["pyg"] = lambda: pyg.combine(xs)
            return v
        xg = [x.clone().requires_grad_() for x in xs]
        wg = w.clone().requires_grad_()
        Sg = S.clone().requires_grad_()
        g = torch.randn(rows, width, generator=gen).to(dtype)
        uses_w = name == "weighted_sum"
        ins = xg + ([wg] if uses_w else [])
        if spec.get("compiled"):
            cg = _compile_kernel(name)
            warmed = _warmed(name, _grad_thunk(lambda: cg(xg, wg, mask), ins, g))
            if warmed is not None:
                v["compiled"] = warmed
        v["interfuse"] = _grad_thunk(lambda: _kernel(name, xg, wg, mask), ins, g)
        v["reference"] = _grad_thunk(
            lambda: _reference(name, Sg, wg), [Sg] + ([wg] if uses_w else []), g
        )
        if grad_each:
            # The gradient depends on the inputs' values (not for a masked sum or mean).
            mode = "each_read" if grad_each_ref(name) else "each"
            v["floor"] = _grad_thunk(lambda: _Floor.apply(Sg, wg, mode), [Sg, wg], g)
        elif name == "mean":
            v["floor"] = _grad_thunk(lambda: _Floor.apply(Sg, wg, "scaled"), [Sg], g)
        else:
            v["floor"] = _grad_thunk(lambda: Sg.sum(0), [Sg], g)
        v["naive"] = _grad_thunk(lambda: _naive(name, xg, wg, mask), ins, g)
        if modern is not None:
            params = [p for p in modern.parameters() if p.requires_grad]
            v["modern"] = _grad_thunk(lambda: modern(xg, mask), xg + params, g)
        if tiny is not None:
            v["tinybig"] = _grad_thunk(lambda: tiny(xg, wg), ins, g)
        if pyg is not None:
            v["pyg"] = _grad_thunk(lambda: pyg.combine(xg), xg, g)
        return v

    # The matching reduction of a masked sum/mean hands every input the same gradient (an
    # expand, free); the masked fusion cannot, so only the per-input-gradient floor counts.
    bandwidth = ("floor",) if masked and not grad_each_ref(name) and phase != "forward" else None
    return Case(
        spec,
        make,
        base="floor",
        output_bytes=out_bytes,
        target=target,
        bandwidth=bandwidth or ("floor", "reference"),
    )


def grad_each_ref(name: str) -> bool:
    """Whether the stacked reference of ``name`` gives each input its own gradient."""
    return name not in ("sum", "mean")


# ---------------------------------------------------------------------------------------------
# structured matrices
# ---------------------------------------------------------------------------------------------
def _matrix(name: str, D: int, n: int, rank: int, dtype: torch.dtype) -> Any:
    from interfuse import matrices

    cls: Any = matrices.matrix_class(name)
    kwargs: dict[str, Any] = {}
    if name in ("lowrank", "lowrank_kronecker", "dual_lowrank_kronecker", "random_adapted"):
        kwargs["rank"] = rank
    return cls(D, n, dtype=dtype, **kwargs)


def _tinybig_projection(matrix: Any, name: str, D: int, n: int, rank: int) -> Any | None:
    tb = optional("interfuse.tinybig")
    if tb is None:
        return None
    try:
        if name == "dense":
            return tb.parameterized_concatenation_fusion(n=n, dims=[D])
        if name == "lowrank":
            return tb.lowrank_parameterized_concatenation_fusion(r=rank, n=n, dims=[D])
        if name == "random_adapted":
            return tb.random_matrix_adaption_parameterized_concatenation_fusion(
                r=rank, n=n, dims=[D]
            )
        cls = {
            "kronecker": "hm_parameterized_concatenation_fusion",
            "lowrank_kronecker": "lphm_parameterized_concatenation_fusion",
            "dual_lowrank_kronecker": "dual_lphm_parameterized_concatenation_fusion",
        }[name]
        kwargs: dict[str, Any] = {"p": matrix.p, "q": matrix.q, "n": n, "dims": [D]}
        if name != "kronecker":
            kwargs["r"] = rank
        return getattr(tb, cls)(kronecker=True, **kwargs)
    except (AttributeError, TypeError, ValueError, KeyError):
        return None


def structured_case(spec: dict[str, Any]) -> Case:
    name, D, n, batch = spec["name"], spec["in_features"], spec["out_features"], spec["batch"]
    rank, phase, dtype = spec.get("rank", 8), spec["phase"], _dtype(spec.get("dtype", "float32"))
    out_bytes = batch * n * torch.empty((), dtype=dtype).element_size()
    target = (
        None
        if (D, n) != (4096, 1024)
        else {
            "against": "naive",
            "max_ratio": 1 / STRUCTURED_SPEEDUP,
            "text": f"≥ {STRUCTURED_SPEEDUP:g}× faster than build-then-multiply",
        }
    )

    def make() -> dict[str, Thunk]:
        torch.manual_seed(0)
        m = _matrix(name, D, n, rank, dtype)
        x = torch.randn(batch, D, dtype=dtype)
        W = m.materialize().detach().clone()
        tiny = _tinybig_projection(m, name, D, n, rank)
        w_tiny = torch.randn(tiny.calculate_l(), dtype=dtype) * 0.01 if tiny is not None else None
        fusion = optional("interfuse.fusion")
        modern = None
        if fusion is not None:
            try:
                modern = fusion.ProjectedConcatFusion([D], n, matrix=m, bias=False)
            except (AttributeError, TypeError, ValueError):
                modern = None
        v: dict[str, Thunk] = {}
        if phase == "forward":
            v["interfuse"] = lambda: m(x)
            v["naive"] = lambda: F.linear(x, m.materialize())
            v["reference"] = lambda: F.linear(x, W)
            if modern is not None:
                v["modern"] = lambda: modern([x])
            if tiny is not None:
                v["tinybig"] = lambda: tiny([x], w=w_tiny)
            return v
        xg = x.clone().requires_grad_()
        g = torch.randn(batch, n, dtype=dtype)
        params = [p for p in m.parameters() if p.requires_grad]
        Wg = W.clone().requires_grad_()
        v["interfuse"] = _grad_thunk(lambda: m(xg), [xg, *params], g)
        v["naive"] = _grad_thunk(lambda: F.linear(xg, m.materialize()), [xg, *params], g)
        v["reference"] = _grad_thunk(lambda: F.linear(xg, Wg), [xg, Wg], g)
        if modern is not None:
            v["modern"] = _grad_thunk(lambda: modern([xg]), [xg, *params], g)
        if tiny is not None and w_tiny is not None:
            wt = w_tiny.clone().requires_grad_()
            v["tinybig"] = _grad_thunk(lambda: tiny([xg], w=wt), [xg, wt], g)
        return v

    return Case(spec, make, base="interfuse", output_bytes=out_bytes, target=target)


# ---------------------------------------------------------------------------------------------
# dense projected concatenation
# ---------------------------------------------------------------------------------------------
def projection_case(spec: dict[str, Any]) -> Case:
    widths, n, batch, phase = (
        list(spec["widths"]),
        spec["out_features"],
        spec["batch"],
        spec["phase"],
    )
    dtype = _dtype(spec.get("dtype", "float32"))
    D = sum(widths)
    out_bytes = batch * n * torch.empty((), dtype=dtype).element_size()
    target = (
        None
        if (D, n) != (4096, 1024)
        else {
            "against": "reference",
            "max_ratio": PROJECTION_TARGET,
            "text": f"≤ {PROJECTION_TARGET}× F.linear on an already concatenated input",
        }
    )

    def make() -> dict[str, Thunk]:
        gen = torch.Generator().manual_seed(0)
        xs = [torch.randn(batch, w, generator=gen).to(dtype) for w in widths]
        W = (torch.randn(n, D, generator=gen) / math.sqrt(D)).to(dtype)
        xc = torch.cat(xs, -1)
        fusion = optional("interfuse.fusion")
        modern = None
        if fusion is not None:
            try:
                modern = fusion.ProjectedConcatFusion(widths, n, matrix="dense", bias=False)
                modern = modern.to(dtype)
                with torch.no_grad():
                    modern.matrix.weight.copy_(W)
            except (AttributeError, TypeError, ValueError):
                modern = None
        tb = optional("interfuse.tinybig")
        tiny = None
        if tb is not None:
            try:
                tiny = tb.parameterized_concatenation_fusion(n=n, dims=widths)
            except (AttributeError, TypeError, ValueError):
                tiny = None
        pyg = _pyg_projection(widths, W)
        v: dict[str, Thunk] = {}
        if phase == "forward":
            v["interfuse"] = lambda: fn.dense_linear(xs, W)
            v["reference"] = lambda: F.linear(xc, W)
            v["naive"] = lambda: F.linear(torch.cat(xs, -1), W)
            if modern is not None:
                v["modern"] = lambda: modern(xs)
            if tiny is not None:
                flat = W.reshape(-1)
                v["tinybig"] = lambda: tiny(xs, w=flat)
            if pyg is not None:
                v["pyg"] = lambda: pyg.combine(xs)
            return v
        xg = [x.clone().requires_grad_() for x in xs]
        xcg = xc.clone().requires_grad_()
        Wg = W.clone().requires_grad_()
        g = torch.randn(batch, n, generator=gen).to(dtype)
        v["interfuse"] = _grad_thunk(lambda: fn.dense_linear(xg, Wg), [*xg, Wg], g)
        v["reference"] = _grad_thunk(lambda: F.linear(xcg, Wg), [xcg, Wg], g)
        v["naive"] = _grad_thunk(lambda: F.linear(torch.cat(xg, -1), Wg), [*xg, Wg], g)
        if modern is not None:
            params = list(modern.parameters())
            v["modern"] = _grad_thunk(lambda: modern(xg), [*xg, *params], g)
        if tiny is not None:
            flat_g = Wg.detach().reshape(-1).clone().requires_grad_()
            v["tinybig"] = _grad_thunk(lambda: tiny(xg, w=flat_g), [*xg, flat_g], g)
        if pyg is not None:
            pyg_params = list(pyg.parameters())
            v["pyg"] = _grad_thunk(lambda: pyg.combine(xg), [*xg, *pyg_params], g)
        return v

    return Case(spec, make, base="reference", output_bytes=out_bytes, target=target)


# ---------------------------------------------------------------------------------------------
# factored vs materialized crossover
# ---------------------------------------------------------------------------------------------
def crossover_case(spec: dict[str, Any]) -> Case:
    """Factored vs materialized (build ``W`` + one GEMM) at one size and batch."""
    name, D, n, rows, phase = (
        spec["name"],
        spec["in_features"],
        spec["out_features"],
        spec["rows"],
        spec["phase"],
    )
    rank = spec.get("rank", 8)
    out_bytes = rows * n * 4

    def make() -> dict[str, Thunk]:
        torch.manual_seed(0)
        m = _matrix(name, D, n, rank, torch.float32)
        x = torch.randn(rows, D)
        if phase == "forward":

            def factored() -> object:
                with torch.no_grad():
                    return m.forward_factored(x)

            def dense() -> object:
                with torch.no_grad():
                    return F.linear(x, m.materialize())

            return {"factored": factored, "dense": dense}
        xg = x.clone().requires_grad_()
        g = torch.randn(rows, n)
        params = [p for p in m.parameters() if p.requires_grad]
        return {
            "factored": _grad_thunk(lambda: m.forward_factored(xg), [xg, *params], g),
            "dense": _grad_thunk(lambda: F.linear(xg, m.materialize()), [xg, *params], g),
        }

    case = Case(spec, make, base="dense", output_bytes=out_bytes)
    return case


def model_choice(spec: dict[str, Any]) -> bool:
    """What ``mode='auto'`` picks for this crossover spec (True: factored)."""
    m = _matrix(
        spec["name"], spec["in_features"], spec["out_features"], spec.get("rank", 8), torch.float32
    )
    return bool(m.use_factored(spec["rows"]))


BUILDERS: dict[str, Callable[[dict[str, Any]], Case]] = {
    "elementwise": elementwise_case,
    "masked": elementwise_case,
    "structured": structured_case,
    "projection": projection_case,
    "crossover": crossover_case,
}


def build_case(spec: dict[str, Any]) -> Case:
    """The :class:`Case` described by ``spec`` (its ``group`` picks the builder)."""
    try:
        builder = BUILDERS[spec["group"]]
    except KeyError:
        raise ValueError(
            f"case group must be one of {sorted(BUILDERS)}, got {spec.get('group')!r}"
        ) from None
    return builder(spec)


# ---------------------------------------------------------------------------------------------
# the plans
# ---------------------------------------------------------------------------------------------
def _eid(group: str, name: str, k: int, rows: int, width: int, dtype: str, phase: str) -> str:
    return f"{group}/{name}/k{k}/{rows}x{width}/{dtype}/{phase}"


def plan(mode: str) -> list[dict[str, Any]]:
    """The case specs of a run: ``'tiny'`` (tests), ``'quick'`` (< 2 min) or ``'full'``."""
    specs: list[dict[str, Any]] = []
    phases = ("forward", "forward+backward")

    def ew(group: str, name: str, k: int, rows: int, width: int, dtype: str, phase: str) -> None:
        headline = k == 8 and rows == 4096 and width == 1024 and dtype == "float32"
        specs.append(
            {
                "id": _eid(group, name, k, rows, width, dtype, phase),
                "group": group,
                "name": name,
                "k": k,
                "rows": rows,
                "width": width,
                "dtype": dtype,
                "phase": phase,
                "masked": group == "masked",
                "headline": headline,
                "compiled": headline and mode == "full",
            }
        )

    def st(name: str, D: int, n: int, batch: int, phase: str) -> None:
        specs.append(
            {
                "id": f"structured/{name}/{D}to{n}/b{batch}/{phase}",
                "group": "structured",
                "name": name,
                "in_features": D,
                "out_features": n,
                "batch": batch,
                "rank": 8,
                "phase": phase,
            }
        )

    def pj(widths: list[int], n: int, batch: int, phase: str) -> None:
        specs.append(
            {
                "id": f"projection/dense/{len(widths)}x{widths[0]}to{n}/b{batch}/{phase}",
                "group": "projection",
                "name": "dense",
                "widths": widths,
                "out_features": n,
                "batch": batch,
                "phase": phase,
            }
        )

    def cx(name: str, D: int, n: int, rows: int, phase: str) -> None:
        specs.append(
            {
                "id": f"crossover/{name}/{D}to{n}/r{rows}/{phase}",
                "group": "crossover",
                "name": name,
                "in_features": D,
                "out_features": n,
                "rows": rows,
                "rank": 8,
                "phase": phase,
            }
        )

    if mode == "tiny":
        for name in ("weighted_sum", "max"):
            for phase in phases:
                ew("elementwise", name, 3, 64, 32, "float32", phase)
        ew("masked", "sum", 3, 64, 32, "float32", "forward")
        st("lowrank", 64, 32, 16, "forward")
        pj([32, 32], 16, 16, "forward")
        cx("lowrank", 64, 32, 4, "forward")
        return specs
    quick = mode == "quick"
    for phase in phases:
        for name in ELEMENTWISE:
            if quick and name == "median" and phase != "forward":
                continue  # ~1 s per call of its references: full runs only
            ew("elementwise", name, 8, 4096, 1024, "float32", phase)
        for name in MASKED if not quick else ("weighted_sum", "sum", "max"):
            ew("masked", name, 8, 4096, 1024, "float32", phase)
    for name in ELEMENTWISE if not quick else ("weighted_sum", "sum", "max"):
        for phase in phases if not quick else ("forward",):
            ew("elementwise", name, 8, 4096, 1024, "bfloat16", phase)
    for k in (2, 4, 16) if not quick else (2, 16):
        for name in ("weighted_sum", "sum", "max", "l2_norm") if not quick else ("weighted_sum",):
            for phase in phases if not quick else ("forward",):
                ew("elementwise", name, k, 4096, 1024, "float32", phase)
    if not quick:
        for width in (256, 4096):
            for name in ("weighted_sum", "sum", "max"):
                for phase in phases:
                    ew("elementwise", name, 8, 4096, width, "float32", phase)
    batch = 1024 if quick else 4096
    for name in MATRICES:
        for phase in phases:
            st(name, 4096, 1024, batch, phase)
    for widths in ([1024] * 4,) if quick else ([1024] * 4, [512] * 8, [256] * 16):
        for phase in phases:
            pj(widths, 1024, batch, phase)
    sizes = ((256, 128), (1024, 512)) if quick else ((64, 32), (256, 128), (1024, 512))
    rows_list = (1, 16, 256) if quick else (1, 4, 16, 64, 256, 1024)
    for name in ("lowrank", "kronecker", "random_adapted") if quick else MATRICES:
        for D, n in sizes:
            for rows in rows_list:
                cx(name, D, n, rows, "forward")
                if not quick and D == 256:
                    cx(name, D, n, rows, "forward+backward")
    return specs
