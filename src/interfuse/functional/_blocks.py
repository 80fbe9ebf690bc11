"""The machinery every blocked kernel shares: the plan of cache-sized blocks, the per-block
finiteness checks, gradient buffers, one operation type, one autograd Function and one
dispatcher (plain formula, blocked kernel, or reference formula)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from interfuse.functional import _common
from interfuse.functional._common import (
    _acc_dtype,
    _is_exporting,
    _under_transform,
    onnx_exporting,
)

#: Bytes of accumulator per cache block on the CPU (4 MiB: measured best on a 2-core EPYC with
#: 1 MiB L2 per core and a 32 MiB L3; 1-8 MiB are within noise of each other, 256 KiB and less
#: lose to the Python loop, see ``docs/benchmarks.md``).
BLOCK_BYTES = 4 * 1024 * 1024


@dataclass
class _Plan:
    """How to walk ``k`` equally shaped contiguous inputs in cache-sized blocks.

    Every input is viewed flat, or as ``(units, unit)`` rows (``by_row``) when there is a
    per-row mask (``rows``, ``(units, k)``) or per-row weights; ``unit`` is the last dim.
    ``present`` lists the inputs taking part (a ``(k,)`` mask selects them up front).
    """

    k: int
    shape: torch.Size
    dtype: torch.dtype
    acc_t: torch.dtype
    device: torch.device
    present: list[int]
    rows: Tensor | None
    unit: int
    units: int
    per_block: int
    by_row: bool

    def view(self, t: Tensor) -> Tensor:
        # Flat without per-row data; (units, unit) with it, even for width 1, where the
        # (units, k) mask or weight columns must broadcast over (units, 1) rows.
        return t.view(self.units, self.unit) if self.by_row else t.view(-1)

    def blocks(self, per_block: int | None = None) -> Iterator[tuple[int, int]]:
        per = per_block or self.per_block
        for start in range(0, self.units, per):
            yield start, min(start + per, self.units)

    def count(self, per_block: int | None = None) -> int:
        """How many blocks :meth:`blocks` yields."""
        return -(-self.units // (per_block or self.per_block))

    def scratch(self, dtype: torch.dtype, per_block: int | None = None) -> Tensor:
        n = min(per_block or self.per_block, self.units)
        shape = (n, self.unit) if self.by_row else (n,)
        return torch.empty(shape, dtype=dtype, device=self.device)

    def rowf(self, dtype: torch.dtype) -> Tensor:
        """The per-row mask as ``(units, k)`` floats (1 present, 0 absent)."""
        if self.rows is None:  # pragma: no cover - callers check
            raise ValueError("no per-row mask")
        return self.rows.to(dtype)


def _plan(xs: Sequence[Tensor], mask: Tensor | None, by_row: bool = False) -> _Plan | None:
    """A blocked plan for ``xs`` (viewed as rows with ``by_row`` or a per-row mask), or
    ``None`` where the reference formulas must run."""
    if len(xs) == 0 or torch.compiler.is_compiling() or _under_transform(xs):
        return None
    x0 = xs[0]
    if not isinstance(x0, Tensor) or torch.overrides.has_torch_function(tuple(xs)):
        return None
    if x0.ndim == 0 or not x0.is_floating_point() or x0.numel() == 0:
        return None
    if x0.device.type == "meta":  # no values: the finiteness checks cannot run
        return None
    for x in xs:
        if (
            not isinstance(x, Tensor)
            or x.shape != x0.shape
            or x.dtype != x0.dtype
            or x.device != x0.device
            or not x.is_contiguous()
        ):
            return None
    k = len(xs)
    present = list(range(k))
    rows: Tensor | None = None
    if mask is not None:
        if (
            not isinstance(mask, Tensor)
            or mask.dtype != torch.bool
            or mask.ndim == 0
            or mask.shape[-1] != k
            or mask.device != x0.device
            or torch.overrides.has_torch_function((mask,))
        ):
            return None
        if mask.ndim == 1:
            present = [i for i, flag in enumerate(mask.tolist()) if flag]
            if not present:
                return None  # nothing present: leave the degenerate case to the reference
        else:
            lead = x0.shape[:-1]
            try:
                full = mask.expand(*lead, k)
            except RuntimeError:
                return None
            if bool(full.all()):
                mask = None
            else:
                rows = full.reshape(-1, k)
    acc_t = _acc_dtype(x0.dtype)
    itemsize = torch.empty((), dtype=acc_t).element_size()
    block = max(1, BLOCK_BYTES // itemsize) if x0.device.type == "cpu" else x0.numel()
    by_row = by_row or rows is not None
    if not by_row:
        unit, units = 1, x0.numel()
    else:
        unit = x0.shape[-1] if x0.shape[-1] > 0 else 1
        units = x0.numel() // unit
    per_block = max(1, block // unit)
    return _Plan(
        k, x0.shape, x0.dtype, acc_t, x0.device, present, rows, unit, units, per_block, by_row
    )


def _needs_autograd(*tensors: Tensor | None) -> bool:
    if not torch.is_grad_enabled():
        return False
    for t in tensors:  # noqa: SIM110 - a loop, not any(generator): this runs on every call
        if t is not None and t.requires_grad:
            return True
    return False


def _differentiable_grads(
    reference: Callable[..., Tensor], tensors: Sequence[Tensor], needs: Sequence[bool], grad: Tensor
) -> list[Tensor | None]:
    """Gradients of ``reference(*tensors)`` that can be differentiated again (create_graph)."""
    targets = [t for t, n in zip(tensors, needs) if n]
    with torch.enable_grad():
        out = reference(*tensors)
        found = torch.autograd.grad(out, targets, grad, create_graph=True, allow_unused=True)
    it = iter(found)
    return [next(it) if n else None for n in needs]


class _Checks:
    """One check value per block (a sum: finite iff the block is), then one host sync."""

    def __init__(self, plan: _Plan, per_block: int | None = None) -> None:
        self.values = torch.empty(plan.count(per_block), dtype=plan.acc_t, device=plan.device)
        self.n = 0

    def add(self, block: Tensor) -> None:
        torch.sum(block.reshape(-1), 0, dtype=self.values.dtype, out=self.values[self.n])
        self.n += 1

    def failed(self) -> list[int]:
        ok = torch.isfinite(self.values[: self.n]).tolist()
        return [i for i, good in enumerate(ok) if not good]


class _Grad(NamedTuple):
    """What a blocked backward gets besides the plan, the tensors and the op's arguments: the
    forward's output and state, the incoming gradient, and which tensors need a gradient."""

    out: Tensor
    grad: Tensor
    needs: Sequence[bool]
    state: Any


class _Block(NamedTuple):
    """Units ``a:b`` of every input (``xs``, absent ones too), of the output and of the per-row
    mask; ``j`` is the block's index."""

    j: int
    a: int
    b: int
    xs: list[Tensor]
    out: Tensor
    rows: Tensor | None

    @property
    def n(self) -> int:
        return self.b - self.a


def _walk(plan: _Plan, xv: Sequence[Tensor], ov: Tensor, per_block: int | None) -> Iterator[_Block]:
    rows = plan.rows
    for j, (a, b) in enumerate(plan.blocks(per_block)):
        yield _Block(j, a, b, [x[a:b] for x in xv], ov[a:b], None if rows is None else rows[a:b])


def _blocked_forward(
    plan: _Plan,
    xs: Sequence[Tensor],
    step: Callable[[_Block, Tensor], Tensor | None],
    redo: Callable[[_Block, Tensor | None], Tensor] | None = None,
    *,
    per_block: int | None = None,
    acc_dtype: torch.dtype | None = None,
) -> tuple[Tensor, list[tuple[int, int]]]:
    """The one forward driver: ``step(block, acc)`` computes a block's result into ``acc`` (the
    output block itself, or float32 scratch for low-precision inputs, copied out after) and
    returns what to check for finiteness (or ``None``). With ``redo``, every block whose check
    failed is recomputed as ``redo(block, its mask)`` (the exact reference formula). Returns the
    output and the unit ranges recomputed."""
    out = torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
    ov, xv = plan.view(out), [plan.view(x) for x in xs]
    acc_t = acc_dtype or plan.acc_t
    scratch = None if acc_t == plan.dtype else plan.scratch(acc_t, per_block)
    flags = _Checks(plan, per_block) if redo is not None else None
    blocks = []
    for block in _walk(plan, xv, ov, per_block):
        acc = block.out if scratch is None else scratch[: block.n]
        checked = step(block, acc)
        if flags is not None and checked is not None:
            flags.add(checked)
            blocks.append(block)
        if scratch is not None:
            block.out.copy_(acc)
    if flags is None or redo is None:
        return out, []
    failed = [blocks[j] for j in flags.failed()]
    mask = _mask_of(plan)
    with torch.no_grad():
        for block in failed:
            block.out.copy_(redo(block, mask if block.rows is None else block.rows))
    return out, [(block.a, block.b) for block in failed]


def _blocked_backward(
    plan: _Plan,
    xs: Sequence[Tensor],
    out: Tensor,
    grad: Tensor,
    needs: Sequence[bool],
    step: Callable[[_Block, Tensor, dict[int, Tensor]], None],
    *,
    per_block: int | None = None,
) -> list[Tensor | None]:
    """The one backward driver: ``step(block, g, dst)`` writes the block's gradients into
    ``dst[i]`` for every input ``i`` that the op visits (:func:`_order`) and that needs one
    (:func:`_grad_buffers`); ``g`` is the incoming gradient's block."""
    g = _grad_contiguous(grad, plan)
    bufs = _grad_buffers(plan, needs)
    views = {i: plan.view(t) for i, t in bufs.items()}
    for block in _walk(plan, [plan.view(x) for x in xs], plan.view(out), per_block):
        a, b = block.a, block.b
        step(block, g[a:b], {i: v[a:b] for i, v in views.items()})
    return [bufs.get(i) for i in range(plan.k)]


def _order(plan: _Plan) -> list[int]:
    """The inputs a blocked loop visits: the present ones, or all with a per-row mask."""
    return plan.present if plan.rows is None else list(range(plan.k))


def _grad_buffers(plan: _Plan, needs: Sequence[bool]) -> dict[int, Tensor]:
    """The one gradient-buffer helper: an uninitialized gradient per visited input that needs
    one (the blocked backward writes every entry of it)."""
    return {
        i: torch.empty(plan.shape, dtype=plan.dtype, device=plan.device)
        for i in _order(plan)
        if needs[i]
    }


def _grad_contiguous(grad: Tensor, plan: _Plan) -> Tensor:
    g = grad if grad.is_contiguous() else grad.contiguous()
    return plan.view(g)


# --- linear family: sum, mean, weighted sum -------------------------------------------------
def _fill_absent(
    grads: Sequence[Tensor | None], plan: _Plan, needs: Sequence[bool]
) -> list[Tensor | None]:
    """Zeros, not ``None``, for the inputs a ``(k,)`` mask left out and that need a gradient.

    The blocked kernels never touch absent inputs, but the reference formulas (under
    ``torch.compile``, for instance) give them zeros, as ``torch.stack`` code does; optimizers
    treat the two differently (``None``: no step; zeros: momentum and weight decay still act),
    so eager and compiled training would part ways.
    """
    return [
        torch.zeros(plan.shape, dtype=plan.dtype, device=plan.device) if g is None and n else g
        for g, n in zip(grads, needs, strict=True)
    ]


def _mask_of(plan: _Plan) -> Tensor | None:
    if plan.rows is not None:
        return plan.rows.view(*plan.shape[:-1], plan.k)
    if len(plan.present) < plan.k:
        mask = torch.zeros(plan.k, dtype=torch.bool, device=plan.device)
        mask[plan.present] = True
        return mask
    return None


@dataclass(frozen=True, eq=False)
class _Op:
    """An element-wise operation on its three paths. Every callable takes the op's tensors
    (``weights`` first, when ``weighted``, then the ``k`` inputs) and its extra ``args``.

    * ``plain(tensors, mask, *args)``: the stacked formula (small inputs, tracing, export);
    * ``reference(tensors, mask, *args)``: stack-free differentiable formula (compile,
      transforms, odd inputs, recomputed blocks, double backward);
    * ``forward(plan, tensors, *args) -> (out, state)``: the blocked kernel;
    * ``backward(plan, tensors, g: _Grad, *args)``: its blocked gradients, one per tensor
      (``None`` where not needed).
    """

    name: str
    plain: Callable[..., Tensor]
    reference: Callable[..., Tensor]
    forward: Callable[..., tuple[Tensor, Any]]
    backward: Callable[..., list[Tensor | None]]
    weighted: bool = False
    #: Where the plain formula's backward is slow (max/min: ``max(dim)``'s index scatter), the
    #: plain path under autograd only up to this many bytes of input.
    plain_grad_bytes: int | None = None
    #: ``compiled(tensors, mask, *args)``: what ``torch.compile`` traces, where inductor does
    #: better with another stack-free formula than ``reference`` (``None``: the reference).
    compiled: Callable[..., Tensor] | None = None


class _Blocked(torch.autograd.Function):
    """Any blocked kernel under autograd: the forward keeps only the inputs and the output (no
    intermediate accumulators); the backward is the op's blocked one, or, when the gradient
    must itself be differentiable (``create_graph``), autograd through the reference formula."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        op: _Op,
        plan: _Plan,
        args: tuple[Any, ...],
        *tensors: Tensor,
    ) -> Tensor:
        out, state = op.forward(plan, tensors, *args)
        ctx.op, ctx.plan, ctx.args, ctx.state = op, plan, args, state  # type: ignore[attr-defined]
        ctx.save_for_backward(out, *tensors)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        op: _Op = ctx.op
        plan: _Plan = ctx.plan
        out, *tensors = ctx.saved_tensors
        needs = ctx.needs_input_grad[3:]
        if torch.is_grad_enabled():
            mask = _mask_of(plan)
            found = _differentiable_grads(
                lambda *ts: op.reference(ts, mask, *ctx.args), tensors, needs, grad
            )
            return (None, None, None, *found)
        grads = op.backward(plan, tensors, _Grad(out, grad, needs, ctx.state), *ctx.args)
        w = int(op.weighted)
        return (None, None, None, *grads[:w], *_fill_absent(grads[w:], plan, needs[w:]))


def _run(op: _Op, tensors: Sequence[Tensor], mask: Tensor | None, *args: Any) -> Tensor:
    """The one dispatcher: plain formula, blocked kernel (with or without autograd), or
    reference formula, for checked inputs."""
    xs = tensors[1:] if op.weighted else tensors
    if torch.compiler.is_compiling():
        if _is_exporting():  # torch.export: one native reduction each, as in ONNX
            return op.plain(tensors, mask, *args)
        # Inductor fuses the stack-free reference formulas into one loop per fusion; the
        # plain ones would materialize the (k, ...) stack (and ran 12x the bandwidth at
        # k = 8, 4096x1024).
        return (op.compiled or op.reference)(tensors, mask, *args)
    # The common case first (a small input: a few microseconds in all, so every flag read
    # counts); tracers and exporters take the plain formulas at any size.
    x0 = xs[0]
    nbytes = x0.numel() * x0.element_size() * len(xs)
    if nbytes <= _common.SMALL_BYTES and (
        op.plain_grad_bytes is None or nbytes <= op.plain_grad_bytes or not _needs_autograd(*xs)
    ):
        return op.plain(tensors, mask, *args)
    if torch.jit.is_tracing() or onnx_exporting():
        return op.plain(tensors, mask, *args)
    weights = tensors[0] if op.weighted else None
    plan = _plan(xs, mask, by_row=weights is not None and weights.ndim > 1)
    if plan is None or (
        weights is not None
        and (
            weights.device != plan.device
            or torch.overrides.has_torch_function((weights,))
            or _under_transform((weights,))
        )
    ):
        return op.reference(tensors, mask, *args)
    if weights is not None:
        tensors = (weights.to(plan.acc_t), *xs)
    if _needs_autograd(*tensors):
        out: Tensor = _Blocked.apply(op, plan, args, *tensors)
        return out
    return op.forward(plan, tensors, *args)[0]
