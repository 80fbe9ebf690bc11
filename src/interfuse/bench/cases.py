"""What ``interfuse bench`` measures: cases, each a set of variants timed against each other.

A case is rebuilt from a JSON-safe spec (so the memory worker, a fresh process, can rebuild
it); its variants share one set of inputs and compute the same values (``tests/bench``
checks it), so no ratio compares different jobs. What each fusion is timed against comes
from its row in :mod:`interfuse.bench.rows`; nothing here dispatches on a fusion's name.

Large sizes (``elementwise``/``masked`` groups, ``k`` inputs of ``rows × width``):

* ``interfuse``: the fusion's :mod:`interfuse.functional` kernel (the modern module where a
  fusion has no kernel of its own).
* ``reference``: one native reduction over the already stacked ``(k, ...)`` tensor.
* ``floor``: the memory-bandwidth floor: ``S.sum(0)`` forward (read ``k`` inputs, write one);
  forward+backward, the least traffic of the row's gradient (:class:`_Floor`).
* ``naive``: the original's algorithm, stack then reduce (masks: ``where`` on the stack).
* ``modern`` / ``tinybig``: the two public faces; ``pyg``: PyTorch Geometric's
  ``MultiAggregation`` combine step where a mode does the same job.
* ``compiled``: the kernel under ``torch.compile(fullgraph=True)`` where the spec asks.

Small sizes (``small`` group, issue 16's grid): the modern module against the plain
``nn.Module`` a user would write (``plain``), the ``interfuse.tinybig`` function
(``tinybig``) against tinyBIG 0.2.1's own (``original``), the module against PyG's combine
step (``pyg``) and the functional kernel (``kernel``). ``ParameterizedInterdependence``
(dense) is the ``interdependence`` row of the same grid.

Matrices (``structured``, ``crossover``) iterate :data:`interfuse.matrices.MATRICES`;
``projection`` is the dense projected concatenation at large sizes.

Forward variants run under ``torch.no_grad()``; forward+backward variants return
``torch.autograd.grad`` of the output with respect to the inputs and parameters, as a layer
inside a network sees it.
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import interfuse.functional as fn
from interfuse.bench import baselines
from interfuse.bench.rows import (
    DENSE_SPEEDUP_TARGETS,
    TINYBIG_PROJECTIONS,
    FusionRow,
    build_matrix,
    fusion_class,
    fusion_rows,
    linear_like,
    matrix_families,
    row,
)

Thunk = Callable[[], object]

#: Targets (ratio of interfuse to the base named, at most this).
ELEMENTWISE_TARGET = 1.3
MASKED_TARGET = 1.5
PROJECTION_TARGET = 1.1
STRUCTURED_SPEEDUP = 5.0
SMALL_PLAIN_TARGET = 1.5
SMALL_TINYBIG_TARGET = 1.0
SMALL_PYG_TARGET = 1.0
#: Issue 16's small-size grid: (k, rows, width, projected width).
SMALL_SIZES = ((3, 32, 64, 32), (4, 256, 256, 256))


@dataclass
class Case:
    """One measurement: a spec, its variants (built lazily) and the targets it checks.

    A target is ``{"variant", "against", "max_ratio", "text"}``: ``time(variant) /
    time(against) ≤ max_ratio``; ``against='bandwidth'`` is the faster of ``floor`` and
    ``reference`` in each round.
    """

    spec: dict[str, Any]
    make: Callable[[], dict[str, Thunk]]
    base: str
    output_bytes: int
    targets: list[dict[str, Any]] = field(default_factory=list)
    #: Variants whose minimum is the "bandwidth reference" (element-wise fusions).
    bandwidth: tuple[str, ...] = ("floor", "reference")

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    def variants(self) -> dict[str, Thunk]:
        """The variants; in the forward phase each runs under ``torch.no_grad()``."""
        made = self.make()
        wanted = self.spec.get("variants")
        if wanted is not None:
            made = {n: f for n, f in made.items() if n in wanted or n == self.base}
        if self.spec.get("phase") != "forward":
            return made
        return {name: _no_grad(f) for name, f in made.items()}

    def variant_names(self) -> list[str]:
        return list(self.variants())


def _no_grad(f: Thunk) -> Thunk:
    def run() -> object:
        with torch.no_grad():
            return f()

    return run


def _dtype(name: str) -> torch.dtype:
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"dtype must be a torch dtype name such as 'float32', got {name!r}")
    return value


def _target(variant: str, against: str, max_ratio: float, text: str) -> dict[str, Any]:
    return {"variant": variant, "against": against, "max_ratio": max_ratio, "text": text}


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


def _trainable(module: nn.Module) -> list[Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


def _detached(w: Any, requires_grad: bool = False) -> Any:
    """A fresh leaf copy of a row's weights: ``None``, a tensor or a tuple of tensors."""
    if w is None:
        return None
    if isinstance(w, tuple):
        return tuple(_detached(t, requires_grad) for t in w)
    return w.detach().clone().requires_grad_(requires_grad)


def _leaves(w: Any) -> list[Tensor]:
    if w is None:
        return []
    return list(w) if isinstance(w, tuple) else [w]


# ---------------------------------------------------------------------------------------------
# the tinyBIG faces
# ---------------------------------------------------------------------------------------------
def tinybig_face(name: str) -> Any:
    """``interfuse.tinybig.<name>`` (an error if the face lost it: never skipped)."""
    import interfuse.tinybig as tb

    return getattr(tb, name)


def tinybig_original(name: str) -> Any | None:
    """tinyBIG 0.2.1's own class ``name``, or ``None`` when tinyBIG cannot be loaded."""
    original = baselines.tinybig_original()
    if original is None:
        return None
    for module in (original.fusion, original.metric, original.interdependence):
        found = getattr(module, name, None)
        if found is not None:
            return found
    raise LookupError(f"tinyBIG 0.2.1 has no {name}")


def _pyg_combine(mode: str, k: int, module: nn.Module | None, width: int) -> Any | None:
    """PyG's ``MultiAggregation(mode=...)`` (holding the projection's weights for 'proj')."""
    aggr = baselines.pyg_aggr()
    if aggr is None:
        return None
    with warnings.catch_warnings():
        # PyG's aggregations script methods with torch.jit: its deprecation, not the run's
        warnings.simplefilter("ignore", DeprecationWarning)
        if mode != "proj":
            return aggr.MultiAggregation(["sum"] * k, mode=mode)
        assert module is not None
        linear = linear_like(module)
        combine = aggr.MultiAggregation(
            ["sum"] * k,
            mode="proj",
            mode_kwargs={
                "in_channels": width,
                "out_channels": linear.out_features,
                "bias": linear.bias is not None,
            },
        ).to(linear.weight.dtype)
    with torch.no_grad():
        combine.lin.weight.copy_(linear.weight)
        if linear.bias is not None:
            combine.lin.bias.copy_(linear.bias)
    return combine


# ---------------------------------------------------------------------------------------------
# element-wise fusions at large sizes
# ---------------------------------------------------------------------------------------------
def _modern(r: FusionRow, k: int, width: int, dtype: torch.dtype) -> nn.Module:
    gen = torch.Generator().manual_seed(1)
    return r.build(fusion_class(r), k, width, width, gen).to(dtype)


def elementwise_case(spec: dict[str, Any]) -> Case:
    r = row(spec["name"])
    k, rows, width = spec["k"], spec["rows"], spec["width"]
    dtype, phase, masked = _dtype(spec["dtype"]), spec["phase"], spec.get("masked", False)
    if r.stacked is None or (masked and r.masked is None):
        raise ValueError(f"bench row {r.name!r} has no stacked {'masked ' if masked else ''}form")
    out_bytes = rows * width * torch.empty((), dtype=dtype).element_size()
    targets = []
    if r.name != "median" and spec.get("headline"):
        limit = MASKED_TARGET if masked else ELEMENTWISE_TARGET
        if r.compute_bound:
            text = f"≤ {limit}× the stacked reduction (compute-bound)"
            targets.append(_target("interfuse", "reference", limit, text))
        else:
            targets.append(_target("interfuse", "bandwidth", limit, f"≤ {limit}× the bandwidth"))
    stacked, masked_form, kernel = r.stacked, r.masked, r.kernel

    def make() -> dict[str, Thunk]:
        gen = torch.Generator().manual_seed(0)
        xs = [torch.randn(rows, width, generator=gen).to(dtype) for _ in range(k)]
        mask = None
        if masked:
            mask = torch.rand(rows, k, generator=gen) > 0.25
            mask[:, 0] = True
        m3 = None if mask is None else mask.t()[..., None]
        modern = _modern(r, k, width, dtype)
        w = _detached(r.weights(modern))
        wants = spec.get("variants")
        face = pyg = None
        if not masked and r.tinybig and (wants is None or "tinybig" in wants):
            kwargs, _ = r.tinybig_args(k, width, width, modern)
            face = tinybig_face(r.tinybig)(**kwargs)
        if not masked and r.pyg and (wants is None or "pyg" in wants):
            pyg = _pyg_combine(r.pyg, k, modern, width)

        def naive(xs_: list[Tensor], w_: Any) -> Tensor:
            S_ = torch.stack(xs_)
            if m3 is None:
                return stacked(S_, w_)
            assert masked_form is not None
            return masked_form(S_, m3, w_)

        def interfuse(xs_: list[Tensor], w_: Any) -> Tensor:
            if kernel is None:
                return modern(xs_, mask)
            return kernel(xs_, w_, mask)

        S = torch.stack(xs)
        v: dict[str, Thunk] = {}
        if phase == "forward":
            if spec.get("compiled") and kernel is not None:
                c = _compile(kernel)
                if _warmed(r.name, _no_grad(lambda: c(xs, w, mask))) is not None:
                    v["compiled"] = lambda: c(xs, w, mask)
            v["interfuse"] = lambda: interfuse(xs, w)
            v["reference"] = lambda: stacked(S, w)
            v["floor"] = lambda: S.sum(0)
            v["naive"] = lambda: naive(xs, w)
            v["modern"] = lambda: modern(xs, mask)
            if face is not None:
                v["tinybig"] = (lambda: face(xs, w=w)) if w is not None else lambda: face(xs)
            if pyg is not None:
                v["pyg"] = lambda: pyg.combine(xs)
            return v
        xg = [x.clone().requires_grad_() for x in xs]
        wg = _detached(w, requires_grad=True)
        Sg = S.clone().requires_grad_()
        g = torch.randn(rows, width, generator=gen).to(dtype)
        ins = xg + _leaves(wg)
        if spec.get("compiled") and kernel is not None:
            cg = _compile(kernel)
            warmed = _warmed(r.name, _grad_thunk(lambda: cg(xg, wg, mask), ins, g))
            if warmed is not None:
                v["compiled"] = warmed
        v["interfuse"] = _grad_thunk(
            lambda: interfuse(xg, wg), ins if kernel is not None else xg + _trainable(modern), g
        )
        v["reference"] = _grad_thunk(lambda: stacked(Sg, wg), [Sg, *_leaves(wg)], g)
        one_w = isinstance(wg, Tensor)
        w_floor = wg if one_w else torch.ones(k, dtype=dtype)
        grad = r.grad if not masked or r.grad not in ("sum", "scaled") else "each"
        if grad == "sum":
            v["floor"] = _grad_thunk(lambda: Sg.sum(0), [Sg], g)
        else:
            floor_ins = [Sg] + ([w_floor] if grad == "each_read" and one_w else [])
            v["floor"] = _grad_thunk(lambda: _Floor.apply(Sg, w_floor, grad), floor_ins, g)
        v["naive"] = _grad_thunk(lambda: naive(xg, wg), ins, g)
        v["modern"] = _grad_thunk(lambda: modern(xg, mask), xg + _trainable(modern), g)
        if face is not None:
            if wg is not None:
                v["tinybig"] = _grad_thunk(lambda: face(xg, w=wg), ins, g)
            else:
                v["tinybig"] = _grad_thunk(lambda: face(xg), xg, g)
        if pyg is not None:
            v["pyg"] = _grad_thunk(lambda: pyg.combine(xg), xg, g)
        return v

    # The reduction of a masked sum/mean hands every input the same gradient (an expand,
    # free); the masked fusion cannot, so only the per-input-gradient floor counts there.
    shared = r.grad in ("sum", "scaled")
    bandwidth = ("floor",) if masked and shared and phase != "forward" else ("floor", "reference")
    return Case(
        spec, make, base="floor", output_bytes=out_bytes, targets=targets, bandwidth=bandwidth
    )


def _compile(kernel: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """``kernel`` under ``torch.compile`` (inductor, whole graph, static shapes).

    Dynamo keeps a bounded number of graphs per code object, so earlier cases' graphs are
    dropped first.
    """
    torch.compiler.reset()
    return torch.compile(lambda xs, w, mask: kernel(xs, w, mask), fullgraph=True, dynamic=False)


def _warmed(name: str, thunk: Thunk) -> Thunk | None:
    """``thunk`` after one call (which compiles it), or ``None``, with a message on stderr,
    where compiling fails (no C++ compiler: inductor's failures share no base class)."""
    try:
        thunk()
    except Exception as err:
        print(f"bench: torch.compile of {name} failed, no compiled variant: {err}", file=sys.stderr)
        return None
    return thunk


# ---------------------------------------------------------------------------------------------
# the small-size grid
# ---------------------------------------------------------------------------------------------
#: A variant of the small grid: the call on the inputs, and the parameters it trains.
Variant = tuple[Callable[[list[Tensor]], Tensor], list[Tensor]]


def _small_fusion(
    r: FusionRow, k: int, rows: int, width: int, out: int, gen: torch.Generator, wants: Any
) -> tuple[list[Tensor], dict[str, Variant]]:
    xs = [torch.randn(rows, width, generator=gen) for _ in range(k)]
    modern = r.build(fusion_class(r), k, width, out, gen)
    plain = r.plain_module(modern)
    v: dict[str, Variant] = {
        "modern": (lambda xs_: modern(xs_), _trainable(modern)),
        "plain": (lambda xs_: plain(xs_), _trainable(plain)),
    }
    if r.kernel is not None and (wants is None or "kernel" in wants):
        kernel = r.kernel
        kw = _detached(r.weights(modern), requires_grad=True)
        v["kernel"] = (lambda xs_: kernel(xs_, kw, None), _leaves(kw))
    if r.tinybig and (wants is None or {"tinybig", "original"} & set(wants)):
        kwargs, w_flat = r.tinybig_args(k, width, out, modern)
        v.update(_tinybig_pair(r.tinybig, kwargs, w_flat, lambda f, xs_, w_: f(xs_, w=w_)))
    if r.pyg and (wants is None or "pyg" in wants):
        combine = _pyg_combine(r.pyg, k, modern, width)
        if combine is not None:
            v["pyg"] = (lambda xs_: combine.combine(xs_), _trainable(combine))
    return xs, v


def _tinybig_pair(
    name: str,
    kwargs: dict[str, Any],
    w_flat: Tensor | None,
    call: Callable[[Any, Any, Tensor | None], Tensor],
) -> dict[str, Variant]:
    """The ``interfuse.tinybig`` function and tinyBIG's own, built alike, called alike."""
    out: dict[str, Variant] = {}
    makers = {"tinybig": tinybig_face(name), "original": tinybig_original(name)}
    for variant, cls in makers.items():
        if cls is None:
            continue
        f = cls(**kwargs)
        w = None if w_flat is None else w_flat.clone().requires_grad_()
        out[variant] = (_bind(call, f, w), [] if w is None else [w])
    return out


def _bind(
    call: Callable[[Any, Any, Tensor | None], Tensor], f: Any, w: Tensor | None
) -> Callable[[list[Tensor]], Tensor]:
    return lambda xs: call(f, xs, w)


def _small_interdependence(
    k: int, rows: int, width: int, out: int, gen: torch.Generator, wants: Any
) -> tuple[list[Tensor], dict[str, Variant]]:
    from interfuse.interdependence import ParameterizedInterdependence

    x = torch.randn(rows, width, generator=gen)
    modern = ParameterizedInterdependence(width, matrix="dense")
    A = modern.matrix.materialize().detach().t().contiguous()  # X A = matrix(X)
    plain = _PlainMatmul(A)
    v: dict[str, Variant] = {
        "modern": (lambda xs_: modern(xs_[0]), _trainable(modern)),
        "plain": (lambda xs_: plain(xs_[0]), _trainable(plain)),
    }
    if wants is None or {"tinybig", "original"} & set(wants):
        v.update(
            _tinybig_pair(
                "parameterized_interdependence",
                {"b": rows, "m": width},
                A.reshape(1, -1),  # tinyBIG's interdependences take w as (1, l)
                lambda f, xs_, w_: f(x=xs_[0], w=w_),
            )
        )
    return [x], v


class _PlainMatmul(nn.Module):
    """``x @ A`` with a learnable ``A``: what a user writes for a data-free interdependence."""

    def __init__(self, A: Tensor) -> None:
        super().__init__()
        self.A = nn.Parameter(A.clone())

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.A


#: The small grid's subjects beyond the fusion rows.
INTERDEPENDENCE = "parameterized_interdependence"


def small_case(spec: dict[str, Any]) -> Case:
    name, k, rows, width, out = (
        spec["name"],
        spec["k"],
        spec["rows"],
        spec["width"],
        spec["out"],
    )
    phase = spec["phase"]
    out_bytes = rows * (width if name != "projected_concat" else out) * 4
    subject = None if name == INTERDEPENDENCE else row(name)
    judged = (k, rows, width, out) in SMALL_SIZES
    targets = []
    if judged:
        text = f"≤ {SMALL_PLAIN_TARGET}× the plain module"
        targets.append(_target("modern", "plain", SMALL_PLAIN_TARGET, text))
    if judged and (subject is None or subject.tinybig):
        text = f"≤ {SMALL_TINYBIG_TARGET}× tinyBIG 0.2.1's own call"
        targets.append(_target("tinybig", "original", SMALL_TINYBIG_TARGET, text))
    if judged and subject is not None and subject.pyg:
        text = f"≤ {SMALL_PYG_TARGET}× PyG's combine"
        targets.append(_target("modern", "pyg", SMALL_PYG_TARGET, text))

    def make() -> dict[str, Thunk]:
        gen = torch.Generator().manual_seed(0)
        wants = spec.get("variants")
        if name == INTERDEPENDENCE:
            xs, variants = _small_interdependence(k, rows, width, out, gen, wants)
        else:
            assert subject is not None
            xs, variants = _small_fusion(subject, k, rows, width, out, gen, wants)
        if phase == "forward":
            return {n: functools.partial(f, xs) for n, (f, _) in variants.items()}
        xg = [x.clone().requires_grad_() for x in xs]
        probe = variants["modern"][0](xg)
        g = torch.randn(probe.shape, generator=gen)
        return {
            n: _grad_thunk(functools.partial(f, xg), xg + params, g)
            for n, (f, params) in variants.items()
        }

    return Case(spec, make, base="plain", output_bytes=out_bytes, targets=targets)


# ---------------------------------------------------------------------------------------------
# structured matrices
# ---------------------------------------------------------------------------------------------
def _tinybig_projection(matrix: Any, name: str, D: int, n: int) -> Any | None:
    """The ``interfuse.tinybig`` projection of family ``name`` holding the same structure."""
    fname = TINYBIG_PROJECTIONS.get(name)
    if fname is None:
        return None
    kwargs: dict[str, Any] = {"n": n, "dims": [D]}
    rank = getattr(matrix, "rank", None)
    if name in ("lowrank", "random_adapted", "lowrank_kronecker", "dual_lowrank_kronecker"):
        kwargs["r"] = rank
    if name in ("kronecker", "lowrank_kronecker", "dual_lowrank_kronecker"):
        kwargs.update(p=matrix.p, q=matrix.q, kronecker=True)
    return tinybig_face(fname)(**kwargs)


def structured_case(spec: dict[str, Any]) -> Case:
    name, D, n, batch = spec["name"], spec["in_features"], spec["out_features"], spec["batch"]
    phase, dtype = spec["phase"], _dtype(spec.get("dtype", "float32"))
    out_bytes = batch * n * torch.empty((), dtype=dtype).element_size()
    targets = []
    if (D, n) == (4096, 1024):
        targets.append(
            _target(
                "interfuse",
                "naive",
                1 / STRUCTURED_SPEEDUP,
                f"≥ {STRUCTURED_SPEEDUP:g}× faster than build-then-multiply",
            )
        )
    goal = DENSE_SPEEDUP_TARGETS.get(name)
    if goal is not None and (D, n, batch) == goal[:3]:
        x = goal[3][phase]
        targets.append(_target("interfuse", "reference", 1 / x, f"≥ {x:g}× faster than F.linear"))
    wants = spec.get("variants")

    def make() -> dict[str, Thunk]:
        torch.manual_seed(0)
        m = build_matrix(name, D, n, dtype)
        x = torch.randn(batch, D, dtype=dtype)
        W = m.materialize().detach().clone()
        tiny = None
        if wants is None or "tinybig" in wants:
            tiny = _tinybig_projection(m, name, D, n)
        w_tiny = None if tiny is None else torch.randn(tiny.calculate_l(), dtype=dtype) * 0.01
        from interfuse.fusion import ProjectedConcatFusion

        modern = ProjectedConcatFusion([D], n, matrix=m, bias=False)
        v: dict[str, Thunk] = {}
        if phase == "forward":
            v["interfuse"] = lambda: m(x)
            v["naive"] = lambda: F.linear(x, m.materialize())
            v["reference"] = lambda: F.linear(x, W)
            v["modern"] = lambda: modern([x])
            if tiny is not None:
                v["tinybig"] = lambda: tiny([x], w=w_tiny)
            return v
        xg = x.clone().requires_grad_()
        g = torch.randn(batch, n, dtype=dtype)
        params = _trainable(m)
        Wg = W.clone().requires_grad_()
        v["interfuse"] = _grad_thunk(lambda: m(xg), [xg, *params], g)
        v["naive"] = _grad_thunk(lambda: F.linear(xg, m.materialize()), [xg, *params], g)
        v["reference"] = _grad_thunk(lambda: F.linear(xg, Wg), [xg, Wg], g)
        v["modern"] = _grad_thunk(lambda: modern([xg]), [xg, *params], g)
        if tiny is not None and w_tiny is not None:
            wt = w_tiny.clone().requires_grad_()
            v["tinybig"] = _grad_thunk(lambda: tiny([xg], w=wt), [xg, wt], g)
        return v

    return Case(spec, make, base="interfuse", output_bytes=out_bytes, targets=targets)


# ---------------------------------------------------------------------------------------------
# dense projected concatenation at large sizes
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
    targets = []
    if (D, n) == (4096, 1024):
        targets.append(
            _target(
                "interfuse",
                "reference",
                PROJECTION_TARGET,
                f"≤ {PROJECTION_TARGET}× F.linear on an already concatenated input",
            )
        )
    wants = spec.get("variants")

    def make() -> dict[str, Thunk]:
        from interfuse.fusion import ProjectedConcatFusion

        gen = torch.Generator().manual_seed(0)
        xs = [torch.randn(batch, w, generator=gen).to(dtype) for w in widths]
        W = (torch.randn(n, D, generator=gen) / math.sqrt(D)).to(dtype)
        xc = torch.cat(xs, -1)
        modern: Any = ProjectedConcatFusion(widths, n, matrix="dense", bias=False).to(dtype)
        with torch.no_grad():
            modern.matrix.weight.copy_(W)
        tiny = tinybig_face("parameterized_concatenation_fusion")(n=n, dims=widths)
        pyg = None
        if len(set(widths)) == 1 and (wants is None or "pyg" in wants):
            pyg = _pyg_combine("proj", len(widths), modern, widths[0])
        v: dict[str, Thunk] = {}
        if phase == "forward":
            flat = W.reshape(-1)
            v["interfuse"] = lambda: fn.dense_linear(xs, W)
            v["reference"] = lambda: F.linear(xc, W)
            v["naive"] = lambda: F.linear(torch.cat(xs, -1), W)
            v["modern"] = lambda: modern(xs)
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
        v["modern"] = _grad_thunk(lambda: modern(xg), [*xg, *_trainable(modern)], g)
        flat_g = Wg.detach().reshape(-1).clone().requires_grad_()
        v["tinybig"] = _grad_thunk(lambda: tiny(xg, w=flat_g), [*xg, flat_g], g)
        if pyg is not None:
            v["pyg"] = _grad_thunk(lambda: pyg.combine(xg), [*xg, *_trainable(pyg)], g)
        return v

    return Case(spec, make, base="reference", output_bytes=out_bytes, targets=targets)


# ---------------------------------------------------------------------------------------------
# structured vs dense, over sizes (crossover)
# ---------------------------------------------------------------------------------------------
def crossover_case(spec: dict[str, Any]) -> Case:
    """At one size and batch: the factored product, build ``W`` then one GEMM
    (``materialized``), and a dense layer of the same shape (``dense``: ``F.linear`` with a
    prebuilt ``W``, what the structure replaces)."""
    name, D, n, rows, phase = (
        spec["name"],
        spec["in_features"],
        spec["out_features"],
        spec["rows"],
        spec["phase"],
    )
    out_bytes = rows * n * 4

    def make() -> dict[str, Thunk]:
        torch.manual_seed(0)
        m = build_matrix(name, D, n)
        x = torch.randn(rows, D)
        W = m.materialize().detach().clone()
        if phase == "forward":
            return {
                "factored": lambda: m.forward_factored(x),
                "materialized": lambda: F.linear(x, m.materialize()),
                "dense": lambda: F.linear(x, W),
            }
        xg = x.clone().requires_grad_()
        g = torch.randn(rows, n)
        params = _trainable(m)
        Wg = W.clone().requires_grad_()
        return {
            "factored": _grad_thunk(lambda: m.forward_factored(xg), [xg, *params], g),
            "materialized": _grad_thunk(lambda: F.linear(xg, m.materialize()), [xg, *params], g),
            "dense": _grad_thunk(lambda: F.linear(xg, Wg), [xg, Wg], g),
        }

    return Case(spec, make, base="dense", output_bytes=out_bytes)


def model_choice(spec: dict[str, Any]) -> bool:
    """What ``mode='auto'`` picks for this crossover spec (True: factored)."""
    m = build_matrix(spec["name"], spec["in_features"], spec["out_features"])
    return bool(m.use_factored(spec["rows"]))


BUILDERS: dict[str, Callable[[dict[str, Any]], Case]] = {
    "elementwise": elementwise_case,
    "masked": elementwise_case,
    "small": small_case,
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


#: Variants the quick run times at large sizes (the targets' bases and the module).
QUICK_LARGE = ("interfuse", "floor", "reference")


def plan(mode: str) -> list[dict[str, Any]]:
    """The case specs of a run: ``'tiny'`` (tests), ``'quick'`` (< 2 min) or ``'full'``."""
    specs: list[dict[str, Any]] = []
    phases = ("forward", "forward+backward")
    quick, tiny = mode == "quick", mode == "tiny"
    rows_all = fusion_rows()
    large_rows = [r for r in rows_all if r.large]

    def ew(group: str, name: str, k: int, rows: int, width: int, dtype: str, phase: str) -> None:
        headline = k == 8 and rows == 4096 and width == 1024 and dtype == "float32"
        spec: dict[str, Any] = {
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
        if quick:
            spec["variants"] = list(QUICK_LARGE)
        specs.append(spec)

    def sm(name: str, k: int, rows: int, width: int, out: int, phase: str, threads: int) -> None:
        specs.append(
            {
                "id": f"small/{name}/k{k}/{rows}x{width}/{phase}/t{threads}",
                "group": "small",
                "name": name,
                "k": k,
                "rows": rows,
                "width": width,
                "out": out,
                "phase": phase,
                "threads": threads,
            }
        )

    def st(name: str, D: int, n: int, batch: int, phase: str) -> None:
        spec: dict[str, Any] = {
            "id": f"structured/{name}/{D}to{n}/b{batch}/{phase}",
            "group": "structured",
            "name": name,
            "in_features": D,
            "out_features": n,
            "batch": batch,
            "phase": phase,
        }
        if quick:
            spec["variants"] = ["interfuse", "naive"]
        specs.append(spec)

    def pj(widths: list[int], n: int, batch: int, phase: str) -> None:
        spec: dict[str, Any] = {
            "id": f"projection/dense/{len(widths)}x{widths[0]}to{n}/b{batch}/{phase}",
            "group": "projection",
            "name": "dense",
            "widths": widths,
            "out_features": n,
            "batch": batch,
            "phase": phase,
        }
        if quick:
            spec["variants"] = ["interfuse", "reference", "naive"]
        specs.append(spec)

    def cx(name: str, D: int, n: int, rows: int, phase: str) -> None:
        specs.append(
            {
                "id": f"crossover/{name}/{D}to{n}/r{rows}/{phase}",
                "group": "crossover",
                "name": name,
                "in_features": D,
                "out_features": n,
                "rows": rows,
                "phase": phase,
            }
        )

    small_names = [r.name for r in rows_all] + [INTERDEPENDENCE]
    if tiny:
        for name in ("weighted_sum", "max"):
            for phase in phases:
                ew("elementwise", name, 3, 64, 32, "float32", phase)
        ew("masked", "sum", 3, 64, 32, "float32", "forward")
        for name in ("sum", "projected_concat", INTERDEPENDENCE):
            sm(name, 3, 8, 16, 8, "forward", 1)
        sm("weighted_sum", 3, 8, 16, 8, "forward+backward", 1)
        st("lowrank", 64, 32, 16, "forward")
        pj([32, 32], 16, 16, "forward")
        cx("lowrank", 64, 32, 4, "forward")
        return specs
    # the small-size grid (issue 16): 1 thread; the full run also 2 threads
    for threads in (1,) if quick else (1, 2):
        for k, rows, width, out in SMALL_SIZES:
            for phase in phases:
                for name in small_names:
                    sm(name, k, rows, width, out, phase, threads)
    # the large sizes: every row with a stacked form, k = 8 inputs of 4096×1024
    for phase in phases:
        for r in large_rows:
            if quick and r.name == "median":
                continue  # no target, ~1 s per call of its references: full runs only
            ew("elementwise", r.name, 8, 4096, 1024, "float32", phase)
        for r in large_rows:
            if r.masked is None or (quick and r.name not in ("weighted_sum", "max")):
                continue
            ew("masked", r.name, 8, 4096, 1024, "float32", phase)
    if not quick:
        for r in large_rows:
            for phase in phases:
                ew("elementwise", r.name, 8, 4096, 1024, "bfloat16", phase)
        for k in (2, 4, 16):
            for name in ("weighted_sum", "sum", "max", "l2_norm"):
                for phase in phases:
                    ew("elementwise", name, k, 4096, 1024, "float32", phase)
        for width in (256, 4096):
            for name in ("weighted_sum", "sum", "max"):
                for phase in phases:
                    ew("elementwise", name, 8, 4096, width, "float32", phase)
    families = [f for f in matrix_families() if f != "dense"]
    batch = 1024 if quick else 4096
    for name in families:
        for phase in phases:
            st(name, 4096, 1024, batch, phase)
    if not quick:
        for name, (D, n, b, _) in DENSE_SPEEDUP_TARGETS.items():
            if name in families:
                for phase in phases:
                    st(name, D, n, b, phase)
    for widths in ([1024] * 4,) if quick else ([1024] * 4, [512] * 8, [256] * 16):
        for phase in ("forward",) if quick else phases:
            pj(widths, 1024, batch, phase)
    sizes = [(256, 256), (1024, 1024)] if quick else [(64, 64), (256, 256), (1024, 1024)]
    if not quick:
        sizes.append((4096, 4096))
    rows_list = (16, 1024) if quick else (1, 16, 256, 1024, 4096)
    for name in families:
        for D, n in sizes:
            for rows in rows_list:
                if D * n * rows > 2**34:
                    continue  # 4096² × 4096: the Monarch table's size
                cx(name, D, n, rows, "forward")
                if not quick and D == 1024:
                    cx(name, D, n, rows, "forward+backward")
    return specs
