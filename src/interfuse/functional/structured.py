r"""Structured-matrix products applied in factored form.

Every kernel computes ``y = x @ Wᵀ (+ bias)`` in the :class:`torch.nn.Linear` layout, where
``W`` has shape ``(out_features, in_features)``, **without building W**. ``x`` may be one
tensor of shape ``(..., in_features)`` or a list of tensors whose widths add up to
``in_features`` (a concatenation that is never materialized where the first factor is dense
along the input: dense, low-rank and random-adapted kernels accumulate one GEMM per piece).

| kernel | W | factors |
|---|---|---|
| :func:`dense_linear` | ``W`` | ``weight (out, in)`` |
| :func:`lowrank_linear` | ``L R`` | ``left (out, r)``, ``right (r, in)`` |
| :func:`kron_linear` | ``A ⊗ B`` | ``a (p, q)``, ``b (s, t)``; ``out = ps``, ``in = qt`` |
| :func:`lowrank_kron_linear` | ``A ⊗ (S T)`` | ``a (p, q)``, ``s_left (s, r)``, \
``s_right (r, t)`` |
| :func:`dual_lowrank_kron_linear` | ``(P Q) ⊗ (S T)`` | ``p_left (p, r)``, \
``p_right (r, q)``, ``s_left``, ``s_right`` |
| :func:`random_adapted_linear` | ``diag(λo) Ro diag(λr) Riᵀ diag(λi)`` | ``r_out (out, r)``, \
``r_in (in, r)``, scales |

The ``*_matrix`` functions materialize the same ``W`` (for tests, export and small sizes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from interfuse._validation import autocast_dtype, check_tensor_list
from interfuse.functional._common import _under_transform

__all__ = [
    "Inputs",
    "as_tensor_input",
    "dense_linear",
    "dual_lowrank_kron_linear",
    "dual_lowrank_kron_matrix",
    "kron_linear",
    "kron_matrix",
    "lowrank_kron_linear",
    "lowrank_kron_matrix",
    "lowrank_linear",
    "lowrank_matrix",
    "random_adapted_linear",
    "random_adapted_matrix",
]

Inputs = Tensor | Sequence[Tensor]


def as_tensor_input(x: Inputs) -> Tensor:
    """An input as one tensor: ``x`` itself, or its pieces concatenated along the last dim.

    A one-piece list gives that piece (no copy).

    Args:
        x: a tensor ``(..., n)``, or pieces ``(..., n_i)`` with the same leading dims.

    Returns:
        ``x``, or ``torch.cat(x, -1)``.

    Shape:
        - x: ``(..., n)`` or pieces ``(..., n_i)``.
        - Output: ``(..., n)`` or ``(..., Σ n_i)``.

    Example:
        >>> as_tensor_input([torch.zeros(2, 1), torch.ones(2, 2)])
        tensor([[0., 1., 1.],
                [0., 1., 1.]])
    """
    if isinstance(x, Tensor):
        return x
    return x[0] if len(x) == 1 else torch.cat(list(x), dim=-1)


def _check_linear(
    kernel: str,
    x: Inputs,
    in_features: int,
    out_features: int,
    bias: Tensor | None,
    inner: tuple[tuple[str, int, str, int], ...] = (),
    **factors: Tensor,
) -> None:
    """Check a kernel's arguments, so a bad one fails here, naming it, and not as a shape
    error inside a GEMM: ``factors`` are 2-D tensors, ``inner`` pairs of sizes that must
    agree (``(name_a, size_a, name_b, size_b)``), ``x`` is floating with ``in_features``
    columns in all (or pieces adding up to that), ``bias`` is ``(out_features,)``."""
    for name, f in factors.items():
        if not isinstance(f, Tensor) or f.ndim != 2:
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"{kernel}: {name} must be a 2-D tensor, got {got}")
    for name_a, size_a, name_b, size_b in inner:
        if size_a != size_b:
            raise ValueError(f"{kernel}: {name_a}={size_a} must equal {name_b}={size_b}")
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{kernel}: x must have a floating dtype, got {x.dtype}")
        if x.ndim == 0:
            raise ValueError(f"{kernel}: x must have at least one dimension, got a 0-d tensor")
        width = x.shape[-1]
    else:
        width = sum(t.shape[-1] for t in check_tensor_list("x", x))
    if width != in_features:
        raise ValueError(
            f"{kernel}: x has width {width} but the matrix expects in_features={in_features}"
        )
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (out_features,)):
        got = tuple(bias.shape) if isinstance(bias, Tensor) else type(bias).__name__
        raise ValueError(f"{kernel}: bias must have shape ({out_features},), got {got}")


def _autocasting(device_type: str) -> bool:
    return autocast_dtype(device_type) is not None


def _split_forward(xs: Sequence[Tensor], weight: Tensor) -> Tensor:
    """``cat(xs, -1) @ weight.T`` as one GEMM per piece, accumulated in place (no copy).

    Measured against ``F.linear`` on an already concatenated input (4096 rows, 4096 → 1024):
    1.00-1.02× for pieces of 256-1024 and 1.02× for 32 pieces of 128; concatenating groups
    of narrow pieces first was never faster (docs/benchmarks.md).
    """
    lead = xs[0].shape[:-1]
    total = sum(x.shape[-1] for x in xs)
    if total != weight.shape[1]:
        raise ValueError(
            f"x: the input widths add up to {total} but the matrix expects "
            f"in_features={weight.shape[1]}"
        )
    out: Tensor | None = None
    offset = 0
    rows = math.prod(lead)
    autocast = _autocasting(xs[0].device.type)
    for x in xs:
        width = x.shape[-1]
        x2 = x.reshape(rows, width)  # rows, not -1: a zero-width piece has no elements
        w_piece = weight[:, offset : offset + width].t()
        if out is None:
            out = x2 @ w_piece
        elif autocast:
            # In-place ops are not autocast: out is already in the autocast dtype, x2 is not.
            out = torch.addmm(out, x2, w_piece)
        else:
            # addmm_ overwrites only ``out``, which no backward formula needs: autograd is safe.
            out = out.addmm_(x2, w_piece)
        offset += width
    if out is None:  # pragma: no cover - callers pass at least one piece
        raise ValueError("x must hold at least one tensor")
    return out.reshape(*lead, weight.shape[0])


class _SplitLinearFn(torch.autograd.Function):
    """Split accumulation with a backward that writes each piece's weight gradient straight
    into its column block (autograd's own backward of ``weight[:, a:b]`` zero-fills and adds a
    full ``out × in`` buffer per piece) and computes the input gradients with one GEMM."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, weight: Tensor, *xs: Tensor) -> Tensor:
        ctx.save_for_backward(weight, *xs)
        return _split_forward(xs, weight)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, *xs = ctx.saved_tensors
        needs = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1])
        rows = g2.shape[0]
        widths = [x.shape[-1] for x in xs]
        offsets = [sum(widths[:i]) for i in range(len(xs))]
        gw: Tensor | None = None
        if needs[0]:
            if torch.is_grad_enabled():  # create_graph: plain differentiable ops
                gw = torch.cat([g2.t() @ x.reshape(rows, w) for x, w in zip(xs, widths)], dim=1)
            else:
                gw = torch.empty_like(weight)
                for x, w, a in zip(xs, widths, offsets):
                    torch.mm(g2.t(), x.reshape(rows, w), out=gw[:, a : a + w])
        gx: list[Tensor | None] = [None] * len(xs)
        if any(needs[1:]):
            full = grad @ weight  # (..., in): what the backward of cat + linear computes
            for i, (w, a) in enumerate(zip(widths, offsets)):
                if needs[1 + i]:
                    gx[i] = full[..., a : a + w]
        return (gw, *gx)


def _split_linear(xs: Sequence[Tensor], weight: Tensor) -> Tensor:
    """``cat(xs, -1) @ weight.T`` without concatenating ``xs``."""
    needs_grad = torch.is_grad_enabled() and (
        weight.requires_grad or any(x.requires_grad for x in xs)
    )
    if (
        not needs_grad
        or torch.compiler.is_compiling()
        or torch.jit.is_tracing()  # the tracer cannot record this Function (ONNX export)
        or _under_transform((weight, *xs))
        or _autocasting(xs[0].device.type)
        or torch.overrides.has_torch_function((weight, *xs))
    ):
        return _split_forward(xs, weight)
    out: Tensor = _SplitLinearFn.apply(weight, *xs)
    return out


def _first_stage(x: Inputs, weight: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return F.linear(x, weight)
    if len(x) == 1:
        return F.linear(x[0], weight)
    return _split_linear(x, weight)


def dense_linear(x: Inputs, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Dense product :math:`y = x W^\top + b`.

    A list ``x`` is never concatenated: each piece is multiplied by its column block of ``W``
    and the GEMMs accumulate into the output.

    Args:
        x: ``(..., in)``, or pieces ``(..., n_i)`` whose widths add up to ``in``.
        weight: ``W``, ``(out, in)``.
        bias: ``(out,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the widths of a list ``x`` do not add up to ``in``.

    Shape:
        - x: ``(..., in)`` or pieces ``(..., n_i)``; weight: ``(out, in)``.
        - Output: ``(..., out)``.

    Example:
        >>> x, w = torch.randn(5, 6), torch.randn(4, 6)
        >>> y = dense_linear([x[:, :2], x[:, 2:]], w)
        >>> y.shape, torch.allclose(y, x @ w.T, atol=1e-5)
        (torch.Size([5, 4]), True)
    """
    _check_linear("dense_linear", x, weight.shape[-1], weight.shape[0], bias, weight=weight)
    return _dense_linear(x, weight, bias)


def _dense_linear(
    x: Inputs, weight: Tensor, bias: Tensor | None = None, *, in_out: bool = False
) -> Tensor:
    """:func:`dense_linear` for arguments its caller has checked. ``in_out``: ``weight`` is
    ``Wᵀ``, ``(in, out)`` (an interdependence's ``A``), multiplied as ``x @ Wᵀ``: one GEMM
    without the transposed view ``F.linear`` would need (~1 µs under autograd at (32, 64))."""
    if in_out:
        if isinstance(x, Tensor) and bias is None:
            return torch.matmul(x, weight)
        weight = weight.t()
    if isinstance(x, Tensor) or len(x) == 1:  # one fused GEMM + bias, autocast's own dtype
        return F.linear(x if isinstance(x, Tensor) else x[0], weight, bias)
    return _add_bias(_split_linear(x, weight), bias)


def lowrank_linear(x: Inputs, left: Tensor, right: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Low-rank product :math:`y = x (L R)^\top + b`, evaluated as :math:`(x R^\top) L^\top`.

    ``L R`` is never built: ``r·(in + out)`` multiply-adds per row instead of ``in·out``. A
    list ``x`` goes through ``R`` piece by piece, never concatenated.

    Args:
        x: ``(..., in)``, or pieces ``(..., n_i)`` whose widths add up to ``in``.
        left: ``L``, ``(out, r)``.
        right: ``R``, ``(r, in)``.
        bias: ``(out,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the widths of a list ``x`` do not add up to ``in``.

    Shape:
        - x: ``(..., in)`` or pieces ``(..., n_i)``; left: ``(out, r)``; right: ``(r, in)``.
        - Output: ``(..., out)``.

    Example:
        >>> x, left, right = torch.randn(5, 6), torch.randn(4, 2), torch.randn(2, 6)
        >>> y = lowrank_linear(x, left, right)
        >>> y.shape, torch.allclose(y, x @ lowrank_matrix(left, right).T, atol=1e-5)
        (torch.Size([5, 4]), True)
    """
    _check_linear(
        "lowrank_linear",
        x,
        right.shape[-1],
        left.shape[0],
        bias,
        (("left.shape[1]", left.shape[-1], "right.shape[0]", right.shape[0]),),
        left=left,
        right=right,
    )
    return F.linear(_first_stage(x, right), left, bias)


def lowrank_matrix(left: Tensor, right: Tensor) -> Tensor:
    """Materialize the low-rank matrix :math:`W = L R`.

    Args:
        left: ``L``, ``(out, r)``.
        right: ``R``, ``(r, in)``.

    Returns:
        ``W``.

    Shape:
        - left: ``(out, r)``; right: ``(r, in)``.
        - Output: ``(out, in)``.

    Example:
        >>> lowrank_matrix(torch.ones(3, 1), torch.tensor([[1.0, 2.0]]))
        tensor([[1., 2.],
                [1., 2.],
                [1., 2.]])
    """
    return left @ right


def _kron_core(x: Tensor, a: Tensor, b_apply: _BApply, s: int, t: int) -> Tensor:
    p, q = a.shape
    lead = x.shape[:-1]
    if x.shape[-1] != q * t:
        raise ValueError(
            f"x has width {x.shape[-1]} but the Kronecker matrix expects in_features={q * t}"
        )
    # y = a X bᵀ with X = x viewed as (q, t). Two contraction orders; the cheaper one runs:
    # B first (one large GEMM over t, then a mixes the q blocks: q·cost(B) + p·q·s per row) or
    # A first (a mixes the q blocks of t, then one GEMM over t: p·q·t + p·cost(B) per row).
    # With p = 1, q = 2048, s = 1024, t = 2, B first would build an (N, 2048, 1024) tensor.
    # The mixing by a is one batched GEMM over a stride-0 expand of a (no copy). torch.matmul
    # would pick between that and folding into one GEMM by a.requires_grad, and its fold
    # (two transposing copies) is 2.5× slower forward and 1.4× in training here; einsum and
    # explicit permutes were slower still (docs/benchmarks.md).
    blocks = x.reshape(-1, q, t)
    a_batched = a.expand(blocks.shape[0], p, q)
    b_cost = b_apply.cost(s, t)
    if q * b_cost + p * q * s <= p * q * t + p * b_cost:
        z = b_apply(blocks.reshape(-1, t)).reshape(-1, q, s)  # (N, q, s)
        y = torch.bmm(a_batched, z)  # (N, p, s)
    else:
        v = torch.bmm(a_batched, blocks)  # (N, p, t)
        y = b_apply(v.reshape(-1, t)).reshape(-1, p, s)
    return y.reshape(*lead, p * s)


class _BApply:
    """Applies the right Kronecker factor ``B`` (s, t) to rows: ``rows @ Bᵀ``."""

    def __init__(
        self, b: Tensor | None = None, left: Tensor | None = None, right: Tensor | None = None
    ) -> None:
        self.b, self.left, self.right = b, left, right

    def cost(self, s: int, t: int) -> int:
        """Multiply-adds per row of length ``t``."""
        if self.b is not None or self.right is None:
            return s * t
        return self.right.shape[0] * (s + t)

    def __call__(self, rows: Tensor) -> Tensor:
        if self.b is not None:
            return F.linear(rows, self.b)
        if self.left is None or self.right is None:  # pragma: no cover - constructed internally
            raise ValueError("B needs either b or (left, right)")
        return F.linear(F.linear(rows, self.right), self.left)


def _add_bias(y: Tensor, bias: Tensor | None) -> Tensor:
    # In y's dtype: under autocast y is the low-precision result and the bias the parameter's
    # float32, which a plain add would promote (nn.Linear returns the autocast dtype).
    return y if bias is None else y + bias.to(y.dtype)


def kron_linear(x: Inputs, a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Kronecker product :math:`y = x (A \otimes B)^\top + b`, without building ``A ⊗ B``.

    Each row of ``x`` is viewed as a ``(q, t)`` matrix :math:`X` and mapped to
    :math:`A X B^\top` (``(p, s)``, flattened), in whichever of the two contraction orders
    costs fewer multiply-adds.

    Args:
        x: ``(..., q·t)``, or pieces whose widths add up to it (concatenated first).
        a: ``A``, ``(p, q)``.
        b: ``B``, ``(s, t)``.
        bias: ``(p·s,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the width of ``x`` is not ``q·t``.

    Shape:
        - x: ``(..., q·t)``; a: ``(p, q)``; b: ``(s, t)``.
        - Output: ``(..., p·s)``.

    Example:
        >>> x, a, b = torch.randn(5, 6), torch.randn(2, 3), torch.randn(4, 2)
        >>> y = kron_linear(x, a, b)
        >>> y.shape, torch.allclose(y, x @ kron_matrix(a, b).T, atol=1e-5)
        (torch.Size([5, 8]), True)
    """
    _check_linear(
        "kron_linear", x, a.shape[-1] * b.shape[-1], a.shape[0] * b.shape[0], bias, a=a, b=b
    )
    s, t = b.shape
    return _add_bias(_kron_core(as_tensor_input(x), a, _BApply(b=b), s, t), bias)


def _kron(a: Tensor, b: Tensor) -> Tensor:
    if not torch.jit.is_tracing():
        return torch.kron(a, b)
    # The TorchScript tracer (torch.onnx.export(dynamo=False)) has no ONNX op for aten::kron:
    # the same values as one broadcast product and a reshape (10× slower than torch.kron on
    # small factors in eager, so only here).
    (p, q), (s, t) = a.shape, b.shape
    return (a.reshape(p, 1, q, 1) * b.reshape(s, 1, t)).reshape(p * s, q * t)


def kron_matrix(a: Tensor, b: Tensor) -> Tensor:
    r"""Materialize the Kronecker product :math:`W = A \otimes B` (as :func:`torch.kron`).

    Args:
        a: ``A``, ``(p, q)``.
        b: ``B``, ``(s, t)``.

    Returns:
        ``W``.

    Shape:
        - a: ``(p, q)``; b: ``(s, t)``.
        - Output: ``(p·s, q·t)``.

    Example:
        >>> kron_matrix(torch.eye(2), torch.tensor([[1.0, 2.0]]))
        tensor([[1., 2., 0., 0.],
                [0., 0., 1., 2.]])
    """
    return _kron(a, b)


def lowrank_kron_linear(
    x: Inputs, a: Tensor, s_left: Tensor, s_right: Tensor, bias: Tensor | None = None
) -> Tensor:
    r"""Low-rank Kronecker product :math:`y = x (A \otimes S_L S_R)^\top + b`.

    As :func:`kron_linear` with :math:`B = S_L S_R` applied as two thin GEMMs: neither
    :math:`B` nor :math:`A \otimes B` is built.

    Args:
        x: ``(..., q·t)``, or pieces whose widths add up to it (concatenated first).
        a: ``A``, ``(p, q)``.
        s_left: ``S_L``, ``(s, r)``.
        s_right: ``S_R``, ``(r, t)``.
        bias: ``(p·s,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the width of ``x`` is not ``q·t``.

    Shape:
        - x: ``(..., q·t)``; a: ``(p, q)``; s_left: ``(s, r)``; s_right: ``(r, t)``.
        - Output: ``(..., p·s)``.

    Example:
        >>> x, a = torch.randn(5, 6), torch.randn(2, 3)
        >>> s_left, s_right = torch.randn(4, 1), torch.randn(1, 2)
        >>> y = lowrank_kron_linear(x, a, s_left, s_right)
        >>> w = lowrank_kron_matrix(a, s_left, s_right)
        >>> y.shape, torch.allclose(y, x @ w.T, atol=1e-5)
        (torch.Size([5, 8]), True)
    """
    _check_linear(
        "lowrank_kron_linear",
        x,
        a.shape[-1] * s_right.shape[-1],
        a.shape[0] * s_left.shape[0],
        bias,
        (("s_left.shape[1]", s_left.shape[-1], "s_right.shape[0]", s_right.shape[0]),),
        a=a,
        s_left=s_left,
        s_right=s_right,
    )
    s, t = s_left.shape[0], s_right.shape[1]
    b_apply = _BApply(left=s_left, right=s_right)
    return _add_bias(_kron_core(as_tensor_input(x), a, b_apply, s, t), bias)


def lowrank_kron_matrix(a: Tensor, s_left: Tensor, s_right: Tensor) -> Tensor:
    r"""Materialize :math:`W = A \otimes (S_L S_R)`.

    Args:
        a: ``A``, ``(p, q)``.
        s_left: ``S_L``, ``(s, r)``.
        s_right: ``S_R``, ``(r, t)``.

    Returns:
        ``W``.

    Shape:
        - a: ``(p, q)``; s_left: ``(s, r)``; s_right: ``(r, t)``.
        - Output: ``(p·s, q·t)``.

    Example:
        >>> lowrank_kron_matrix(torch.eye(2), torch.ones(1, 1), torch.tensor([[1.0, 2.0]]))
        tensor([[1., 2., 0., 0.],
                [0., 0., 1., 2.]])
    """
    return _kron(a, s_left @ s_right)


def dual_lowrank_kron_linear(
    x: Inputs,
    p_left: Tensor,
    p_right: Tensor,
    s_left: Tensor,
    s_right: Tensor,
    bias: Tensor | None = None,
) -> Tensor:
    r"""Dual low-rank Kronecker product :math:`y = x (P_L P_R \otimes S_L S_R)^\top + b`.

    Only the small ``(p, q)`` factor :math:`P_L P_R` is built; the rest runs as
    :func:`lowrank_kron_linear`.

    Args:
        x: ``(..., q·t)``, or pieces whose widths add up to it (concatenated first).
        p_left: ``P_L``, ``(p, r)``.
        p_right: ``P_R``, ``(r, q)``.
        s_left: ``S_L``, ``(s, r')``.
        s_right: ``S_R``, ``(r', t)``.
        bias: ``(p·s,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the width of ``x`` is not ``q·t``.

    Shape:
        - x: ``(..., q·t)``; p_left: ``(p, r)``; p_right: ``(r, q)``; s_left: ``(s, r')``;
          s_right: ``(r', t)``.
        - Output: ``(..., p·s)``.

    Example:
        >>> x = torch.randn(5, 6)
        >>> factors = torch.randn(2, 1), torch.randn(1, 3), torch.randn(4, 1), torch.randn(1, 2)
        >>> y = dual_lowrank_kron_linear(x, *factors)
        >>> y.shape, torch.allclose(y, x @ dual_lowrank_kron_matrix(*factors).T, atol=1e-5)
        (torch.Size([5, 8]), True)
    """
    _check_linear(
        "dual_lowrank_kron_linear",
        x,
        p_right.shape[-1] * s_right.shape[-1],
        p_left.shape[0] * s_left.shape[0],
        bias,
        (("p_left.shape[1]", p_left.shape[-1], "p_right.shape[0]", p_right.shape[0]),),
        p_left=p_left,
        p_right=p_right,
    )
    return lowrank_kron_linear(x, p_left @ p_right, s_left, s_right, bias)


def dual_lowrank_kron_matrix(
    p_left: Tensor, p_right: Tensor, s_left: Tensor, s_right: Tensor
) -> Tensor:
    r"""Materialize :math:`W = (P_L P_R) \otimes (S_L S_R)`.

    Args:
        p_left: ``P_L``, ``(p, r)``.
        p_right: ``P_R``, ``(r, q)``.
        s_left: ``S_L``, ``(s, r')``.
        s_right: ``S_R``, ``(r', t)``.

    Returns:
        ``W``.

    Shape:
        - p_left: ``(p, r)``; p_right: ``(r, q)``; s_left: ``(s, r')``; s_right: ``(r', t)``.
        - Output: ``(p·s, q·t)``.

    Example:
        >>> dual_lowrank_kron_matrix(*(torch.ones(2, 1), torch.ones(1, 2)) * 2)
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 1., 1.]])
    """
    return _kron(p_left @ p_right, s_left @ s_right)


def random_adapted_linear(
    x: Inputs,
    r_out: Tensor,
    r_in: Tensor,
    scale_rank: Tensor,
    scale_out: Tensor | None = None,
    scale_in: Tensor | None = None,
    bias: Tensor | None = None,
) -> Tensor:
    r"""Random-adapted product :math:`y = x W^\top + b`, without building ``W``.

    .. math::
        W = \operatorname{diag}(\lambda_o)\, R_o \operatorname{diag}(\lambda_r)\, R_i^\top
        \operatorname{diag}(\lambda_i)

    Evaluated as :math:`((x \odot \lambda_i) R_i \odot \lambda_r) R_o^\top \odot \lambda_o`:
    neither ``W`` nor a ``diag`` matrix is built (the scalings are broadcasts). ``R_o`` and
    ``R_i`` are usually frozen random buffers, the scales trainable. A list ``x``
    goes through ``R_i`` piece by piece unless ``scale_in`` is given (then it is concatenated
    once, to be scaled).

    Args:
        x: ``(..., in)``, or pieces ``(..., n_i)`` whose widths add up to ``in``.
        r_out: ``R_o``, ``(out, r)``.
        r_in: ``R_i``, ``(in, r)``.
        scale_rank: :math:`\lambda_r`, ``(r,)``.
        scale_out: :math:`\lambda_o`, ``(out,)``; ``None``: ones.
        scale_in: :math:`\lambda_i`, ``(in,)``; ``None``: ones.
        bias: ``(out,)``, added to the result; ``None``: no bias.

    Returns:
        ``y``.

    Raises:
        ValueError: the widths of a list ``x`` do not add up to ``in`` (without ``scale_in``).

    Shape:
        - x: ``(..., in)`` or pieces ``(..., n_i)``; r_out: ``(out, r)``; r_in: ``(in, r)``.
        - Output: ``(..., out)``.

    Example:
        >>> x, r_out, r_in = torch.randn(5, 6), torch.randn(4, 2), torch.randn(6, 2)
        >>> scales = torch.rand(2), torch.rand(4), torch.rand(6)
        >>> y = random_adapted_linear(x, r_out, r_in, *scales)
        >>> w = random_adapted_matrix(r_out, r_in, *scales)
        >>> y.shape, torch.allclose(y, x @ w.T, atol=1e-5)
        (torch.Size([5, 4]), True)
    """
    if scale_in is not None:
        x = x * scale_in if isinstance(x, Tensor) else as_tensor_input(x) * scale_in
    _check_linear(
        "random_adapted_linear",
        x,
        r_in.shape[0],
        r_out.shape[0],
        bias,
        (("r_out.shape[1]", r_out.shape[-1], "r_in.shape[1]", r_in.shape[-1]),),
        r_out=r_out,
        r_in=r_in,
    )
    h = _first_stage(x, r_in.t()) * scale_rank
    y = F.linear(h, r_out)
    if scale_out is not None:
        y = y * scale_out
    return _add_bias(y, bias)


def random_adapted_matrix(
    r_out: Tensor,
    r_in: Tensor,
    scale_rank: Tensor,
    scale_out: Tensor | None = None,
    scale_in: Tensor | None = None,
) -> Tensor:
    r"""Materialize the random-adapted matrix ``W`` (see :func:`random_adapted_linear`).

    .. math::
        W = \operatorname{diag}(\lambda_o)\, R_o \operatorname{diag}(\lambda_r)\, R_i^\top
        \operatorname{diag}(\lambda_i)

    Args:
        r_out: ``R_o``, ``(out, r)``.
        r_in: ``R_i``, ``(in, r)``.
        scale_rank: :math:`\lambda_r`, ``(r,)``.
        scale_out: :math:`\lambda_o`, ``(out,)``; ``None``: ones.
        scale_in: :math:`\lambda_i`, ``(in,)``; ``None``: ones.

    Returns:
        ``W``.

    Shape:
        - r_out: ``(out, r)``; r_in: ``(in, r)``; scales: ``(r,)``, ``(out,)``, ``(in,)``.
        - Output: ``(out, in)``.

    Example:
        >>> random_adapted_matrix(torch.eye(2), torch.eye(2), torch.tensor([2.0, 3.0]))
        tensor([[2., 0.],
                [0., 3.]])
    """
    w = (r_out * scale_rank) @ r_in.t()
    if scale_out is not None:
        w = w * scale_out[:, None]
    if scale_in is not None:
        w = w * scale_in
    return w
