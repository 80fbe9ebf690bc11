"""What every element-wise kernel shares: its checks, dtype rules, mask layouts and the choice
between the plain formulas (small inputs, tracing, export) and the blocked kernels."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from interfuse._validation import promote_floating

#: Inputs of at most this many bytes in all (the ``k`` inputs together) take the plain
#: formulas: ``torch.stack`` and one reduction, which autograd, ``torch.compile`` and the
#: exporters handle natively and which cost a few microseconds; the blocked copy-free kernels
#: pay ~20-60 µs of Python planning per call and win only once the ``(k, ...)`` copy costs
#: more than that. Measured on the 2-core CPU of docs/benchmarks.md (k = 3-8, float32,
#: forward and forward+backward, see docs/elementwise.md): the two paths cross between 0.5 and
#: 2 MiB; 1 MiB keeps the copy within L2-L3 and the plain path under the blocked one on
#: every fusion measured. A copy of at most this size is the only extra memory it costs.
SMALL_BYTES = 1 << 20


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_xs(
    kernel: str, xs: Sequence[Tensor], mask: object = None, *, same_width: bool = True
) -> tuple[list[Tensor], Tensor | None]:
    """The public kernels' checks, the same as the modules': a non-empty list of tensors of one
    shape (one leading shape with ``same_width=False``) on one device, and a well-formed
    ``mask`` (:func:`check_mask`). Returns the inputs, promoted to one dtype by torch's rules
    as ``torch.stack`` would, and the mask. Floating dtypes are the modules' demand, not the
    kernels' (the tinyBIG face keeps tinyBIG's integer behaviour)."""
    if isinstance(xs, Tensor) or not isinstance(xs, (list, tuple)):
        raise TypeError(f"{kernel}: xs must be a list or tuple of tensors, got {type(xs).__name__}")
    if not xs:
        raise ValueError(f"{kernel}: xs must hold at least one tensor, got an empty sequence")
    first = xs[0]
    mixed = False
    for i, x in enumerate(xs):
        if not isinstance(x, Tensor):
            raise TypeError(f"{kernel}: xs[{i}] must be a torch.Tensor, got {type(x).__name__}")
        if same_width and x.shape != first.shape:
            raise ValueError(
                f"{kernel}: xs[{i}] has shape {tuple(x.shape)} but xs[0] has "
                f"{tuple(first.shape)}; element-wise fusions need identical shapes"
            )
        if not same_width and (x.ndim == 0 or x.shape[:-1] != first.shape[:-1]):
            raise ValueError(
                f"{kernel}: xs[{i}] has shape {tuple(x.shape)} but xs[0] has "
                f"{tuple(first.shape)}; all but the last dimension must agree"
            )
        if x.device != first.device:
            raise ValueError(f"{kernel}: xs[{i}] is on {x.device} but xs[0] is on {first.device}")
        mixed = mixed or x.dtype != first.dtype
    tensors = promote_floating(xs) if mixed else list(xs)
    return tensors, check_mask(mask, tensors)  # type: ignore[arg-type]


def _check_mask_layout(mask: object, xs: Sequence[Tensor]) -> Tensor:
    """Type, dtype, shape and device of a presence mask (what needs no synchronization)."""
    k = len(xs)
    if not isinstance(mask, Tensor):
        raise TypeError(
            f"mask must be a bool torch.Tensor of shape (k,) or (..., k), got {type(mask).__name__}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must have dtype torch.bool, got {mask.dtype}")
    if mask.ndim == 0 or mask.shape[-1] != k:
        raise ValueError(
            f"mask must have shape (k,) or (..., k) with k={k} inputs, got {tuple(mask.shape)}"
        )
    if mask.ndim > 1:
        lead = xs[0].shape[:-1]
        try:
            full = torch.broadcast_shapes(mask.shape[:-1], lead)
        except RuntimeError:
            raise ValueError(
                f"mask has leading shape {tuple(mask.shape[:-1])}, which does not broadcast "
                f"against the inputs' leading shape {tuple(lead)}"
            ) from None
        if full != lead:
            raise ValueError(
                f"mask has leading shape {tuple(mask.shape[:-1])}, which would enlarge the "
                f"inputs' leading shape {tuple(lead)}; a per-row mask must broadcast to the "
                "inputs' leading shape"
            )
    if mask.device != xs[0].device:
        raise ValueError(f"mask is on {mask.device} but the inputs are on {xs[0].device}")
    return mask


def check_mask(mask: Tensor | None, xs: Sequence[Tensor]) -> Tensor | None:
    """Validate a presence ``mask`` against the ``k = len(xs)`` inputs.

    Every public kernel and fusion module runs this check. That a row keeps some input
    present is a data-dependent check (one device synchronization); it is skipped where there
    are no values to read: meta tensors, :func:`torch.compile`, tracing, and
    :mod:`torch.func` transforms (``vmap`` over masks).

    Args:
        mask: ``None``, or a bool tensor ``(k,)`` (one flag per input) or ``(..., k)`` (one
            per row; its leading dims must broadcast to the inputs' leading dims).
        xs: the ``k`` inputs, ``(..., n_i)`` each.

    Returns:
        ``mask`` itself, or ``None``.

    Raises:
        TypeError: ``mask`` is not a bool tensor.
        ValueError: its last dim is not ``k``, its leading dims do not broadcast to the
            inputs' (or would enlarge them), it is on another device than ``xs[0]``, or some
            row has no input present.

    Example:
        >>> xs = [torch.zeros(2, 3), torch.ones(2, 3)]
        >>> check_mask(torch.tensor([[True, False], [True, True]]), xs)
        tensor([[ True, False],
                [ True,  True]])
        >>> check_mask(torch.tensor([False, False]), xs)
        Traceback (most recent call last):
        ValueError: mask leaves no input present for some rows; at least one must be True
    """
    if mask is None:
        return None
    mask = _check_mask_layout(mask, xs)
    if _has_values(mask) and not bool(mask.any(-1).all()):
        raise ValueError("mask leaves no input present for some rows; at least one must be True")
    return mask


def _has_values(t: Tensor) -> bool:
    """Whether ``t``'s values can be read on the host here (not meta, compiled, traced or
    inside a :mod:`torch.func` transform)."""
    return not (
        t.device.type == "meta"
        or torch.compiler.is_compiling()
        or torch.jit.is_tracing()
        or _under_transform((t,))
    )


def plain_size(nbytes: int) -> bool:
    """Whether the plain formulas run for ``nbytes`` of input: small inputs
    (:data:`SMALL_BYTES`), or code being traced or exported, where the blocked kernels' Python
    loop would be frozen into a constant graph. The compiler flags are read first: under
    ``torch.compile``/``torch.export`` ``nbytes`` may be symbolic, and comparing it would put a
    guard on the batch size (``torch.export`` with a dynamic batch then fails); the
    TorchScript tracer and the ONNX exporters see plain ints, so the size goes before them."""
    return (
        torch.compiler.is_compiling()
        or nbytes <= SMALL_BYTES
        or torch.jit.is_tracing()
        or onnx_exporting()
    )


def compiling_to_run() -> bool:
    """Whether ``torch.compile`` (not ``torch.export``) is tracing: inductor then fuses the
    stack-free formulas into one loop, while a stacked copy would be materialized."""
    return torch.compiler.is_compiling() and not _is_exporting()


#: ``torch.compiler.is_exporting`` (torch >= 2.5); older versions treat exports as compiling.
_is_exporting: Callable[[], bool] = getattr(torch.compiler, "is_exporting", lambda: False)


def onnx_exporting() -> bool:
    """``torch.onnx.is_in_onnx_export()``, without the two imports it runs on every call
    (~0.9 µs; the flags it reads are looked up once)."""
    global _onnx_flags
    if _onnx_flags is None:
        try:
            from torch.onnx._internal.exporter import _flags
            from torch.onnx._internal.torchscript_exporter._globals import GLOBALS

            _onnx_flags = lambda: GLOBALS.in_onnx_export or _flags._is_onnx_exporting  # noqa: E731
        except ImportError:  # pragma: no cover - another torch layout: the public, slower call
            _onnx_flags = torch.onnx.is_in_onnx_export
    return bool(_onnx_flags())


_onnx_flags: Callable[[], bool] | None = None


def _column(mask: Tensor, i: int) -> Tensor:
    """The presence flag of input ``i``, shaped to broadcast against ``(..., n)``."""
    return mask[..., i] if mask.ndim == 1 else mask[..., i, None]


def _along_stack(t: Tensor, ndim: int) -> Tensor:
    """A mask or weights ``(k,)``/``(..., k)`` laid out against the stack ``(k, ..., n)`` of
    inputs with ``ndim`` dims: ``(k, 1, ..., 1)`` or ``(k, 1.., ..., 1)``."""
    if t.ndim == 1:
        return t.view(-1, *([1] * (ndim - 1)))
    moved = t.movedim(t.ndim - 1, 0)  # a non-negative dim: ONNX Transpose refuses -1
    pad = ndim - 1 - t.ndim
    return moved.view(moved.shape[0], *([1] * pad), *moved.shape[1:], 1)


def _count(mask: Tensor, dtype: torch.dtype) -> Tensor:
    c = mask.to(dtype).sum(-1)
    return c if mask.ndim == 1 else c[..., None]


def _finish(acc: Tensor, dtype: torch.dtype) -> Tensor:
    return acc if acc.dtype == dtype else acc.to(dtype)


def _wide_dtype(acc_t: torch.dtype, device: torch.device) -> torch.dtype | None:
    """float64, where a float32 accumulator that overflowed can be recomputed (not on MPS)."""
    return torch.float64 if acc_t == torch.float32 and device.type != "mps" else None


def _under_transform(tensors: Sequence[Tensor]) -> bool:
    """Whether a :mod:`torch.func` transform (``vmap``, ``grad``, ``jacrev``, ...: the tensors are
    wrapped) or forward-mode AD is active. The blocked kernels (``out=`` ops, autograd Functions
    without forward-mode or batching rules) and data-dependent checks cannot run there; the
    reference formulas, made of plain differentiable ops, can."""
    if torch.compiler.is_compiling():  # dynamo handles transforms itself (and cannot trace this)
        return False
    if getattr(fwAD, "_current_level", -1) >= 0:
        return True
    if _is_wrapped is None:  # pragma: no cover - torch without functorch
        return False
    for t in tensors:  # noqa: SIM110 - a loop, not any(generator): this runs on every call
        if isinstance(t, Tensor) and _is_wrapped(t):
            return True
    return False


# Looked up once: this check runs on every call of every small fusion.
_is_wrapped: Callable[[Tensor], bool] | None = getattr(
    torch._C._functorch, "is_functorch_wrapped_tensor", None
)


def reads_cheaply(t: Tensor) -> bool:
    """Whether a value of ``t`` can be read on the host without stalling anything: on the CPU
    a read costs about a microsecond; on an accelerator it waits for every queued kernel (a
    synchronization per call in a training step). The small-size overflow checks run only
    where this holds and take float64 from the start elsewhere."""
    return t.is_cpu


def _overflow_safe(
    compute: Callable[[torch.dtype], Tensor], acc_t: torch.dtype, like: Tensor
) -> Tensor:
    """``compute(acc_t)``, recomputed in float64 if a float32 accumulator overflowed.

    The check is one cheap reduction (a finite sum proves every entry finite), read on the
    host: on the CPU only (:func:`reads_cheaply`). Under :func:`torch.compile` (it would be a
    data-dependent branch) and on accelerators (it would synchronize the stream on every call)
    there is no check: float64 is used throughout, with the same results.
    """
    wide = _wide_dtype(acc_t, like.device)
    if wide is None:
        return compute(acc_t)
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or not reads_cheaply(like):
        return compute(wide)
    acc = compute(acc_t)
    if acc.device.type == "meta" or _under_transform((acc,)):  # no values to branch on
        return acc
    return compute(wide) if not bool(torch.isfinite(acc.detach().sum())) else acc
