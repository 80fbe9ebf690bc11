"""The :class:`StructuredMatrix` contract shared by every parameter-efficient matrix."""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interfuse._validation import (
    autocast_dtype,
    check_factory_dtype,
    check_operand,
    check_positive_int,
    check_tensor_list,
    resolve_choice,
)
from interfuse.config import Configurable
from interfuse.functional.structured import Inputs, as_tensor_input

__all__ = ["StructuredMatrix"]

_MODES = ("auto", "factored", "dense")


class StructuredMatrix(Configurable, nn.Module, abc.ABC):
    """A learnable ``out_features × in_features`` matrix ``W`` stored in factored form.

    Applied as ``x @ Wᵀ`` (the :class:`torch.nn.Linear` layout), in factored form unless the
    dense product is cheaper. ``mode='auto'`` compares the flops of the factored kernel, each
    counted :attr:`factored_cost` times, plus a fixed launch cost (:attr:`launch_flops`), with
    building ``W`` and one GEMM; at large sizes the factored path always wins (for
    ``4096 → 1024`` at every batch size), so ``W`` is never allocated in training.

    Subclasses are final: they own their factors, initialize them in :meth:`reset_parameters`
    and implement :meth:`forward_factored`, :meth:`materialize`, ``_count`` (the formula behind
    :meth:`count_parameters`) and
    :meth:`factored_flops`.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        mode: ``'auto'`` (the cheaper product), ``'factored'`` or ``'dense'`` (build ``W``).

    Shape:
        - Input: ``(..., in_features)`` or a list of pieces whose widths add up to it.
        - Output: ``(..., out_features)``.

    Example:
        >>> m = LowRankMatrix(64, 32, rank=4)
        >>> isinstance(m, StructuredMatrix), m.shape, m.num_parameters
        (True, torch.Size([32, 64]), 384)
        >>> x = torch.randn(8, 64)
        >>> torch.allclose(m(x), x @ m.materialize().T, atol=1e-5)
        True
        >>> m.use_factored(rows=8), LowRankMatrix(4096, 1024, rank=8).use_factored(rows=1)
        (False, True)
    """

    #: Flops charged per extra GEMM launch when choosing between factored and dense products.
    launch_flops: ClassVar[int] = 100_000
    #: How many flops of one large GEMM a flop of the factored kernels costs: their GEMMs are
    #: thin (rank r) or batched and small (Kronecker blocks), far below a large GEMM's rate.
    #: With ``launch_flops`` it was fitted on two sweeps of sizes 64→32 … 1024→512 and
    #: 1 … 1024 rows, forward and training (``interfuse bench``, 2-core EPYC): the choices that
    #: match the faster path went from 83 and 88 of 120 (plain flop counts, 200 000 launch
    #: flops) to 93 and 98, and the worst choice from 6× to 1.8× slower (docs/benchmarks.md).
    factored_cost: ClassVar[float] = 6.0
    #: Constructor arguments (beyond in/out features) shown by ``extra_repr`` and configs.
    config_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, in_features: int, out_features: int, mode: str = "auto") -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.mode = resolve_choice("mode", mode, _MODES)

    # -- the contract -----------------------------------------------------------------------
    @abc.abstractmethod
    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        """``x @ Wᵀ (+ bias)`` without building ``W``."""

    @abc.abstractmethod
    def materialize(self) -> Tensor:
        """Build ``W`` of shape ``(out_features, in_features)``."""

    @classmethod
    def count_parameters(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        """Trainable scalars of a matrix built with these arguments (no instance needed).

        The arguments are checked as the constructor checks them (unknown options raise
        ``TypeError``, Kronecker factors that do not divide raise ``ValueError``), so a count
        is only given for a matrix that can be built.
        """
        try:
            inspect.signature(cls.__init__).bind(None, in_features, out_features, **kwargs)
        except TypeError as err:
            accepted = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self",)]
            raise TypeError(
                f"{cls.__name__}.count_parameters got {sorted(kwargs)}: {err}; the constructor "
                f"accepts {accepted}"
            ) from None
        return cls._count(in_features, out_features, **kwargs)

    @classmethod
    @abc.abstractmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        """The parameter count's formula (arguments already bound to the constructor)."""

    @abc.abstractmethod
    def factored_flops(self, rows: int) -> int:
        """Multiply-adds of :meth:`forward_factored` on ``rows`` input rows."""

    @abc.abstractmethod
    def reset_parameters(self) -> None:
        """Re-initialize the trainable factors."""

    def reset_to_identity(self) -> None:
        """Set ``W`` to the (rectangular) identity, if this structure can represent it."""
        raise ValueError(
            f"{type(self).__name__} cannot represent the identity matrix; use DenseMatrix or "
            "a square structure with enough rank"
        )

    # -- shared behaviour ---------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters, as ``count_parameters`` predicts (the frozen random
        buffers excluded; a parameter frozen with ``requires_grad_(False)`` still counts)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def shape(self) -> torch.Size:
        """``(out_features, in_features)``."""
        return torch.Size((self.out_features, self.in_features))

    def dense_flops(self, rows: int) -> int:
        """Multiply-adds to build ``W`` and apply it with one GEMM."""
        return self.build_flops() + rows * self.in_features * self.out_features

    def build_flops(self) -> int:
        """Multiply-adds of :meth:`materialize` (default: one per entry of ``W``)."""
        return self.in_features * self.out_features

    def use_factored(self, rows: int) -> bool:
        """Whether :meth:`forward` takes the factored path for ``rows`` input rows."""
        if self.mode != "auto":
            return self.mode == "factored"
        factored = self.factored_flops(rows) * self.factored_cost + self.launch_flops
        return factored <= self.dense_flops(rows)

    def forward(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        """Apply ``W`` to ``x`` (a tensor ``(..., in_features)`` or a list of pieces).

        Shape:
            - x: ``(..., in_features)``, or pieces ``(..., n_i)`` with ``Σ n_i = in_features``
            - output: ``(..., out_features)``
        """
        x = self._check_input(x)
        first = x if isinstance(x, Tensor) else x[0]
        if bias is not None:
            self._check_bias(bias, first)
        width = x.shape[-1] if isinstance(x, Tensor) else sum(t.shape[-1] for t in x)
        if width != self.in_features:
            raise ValueError(
                f"x has width {width} but {type(self).__name__} expects in_features="
                f"{self.in_features} (input shape {tuple(first.shape)})"
            )
        rows = first.numel() // max(first.shape[-1], 1)
        if self.use_factored(rows):
            return self.forward_factored(x, bias)
        return F.linear(as_tensor_input(x), self.materialize(), bias)

    def _check_input(self, x: Inputs) -> Inputs:
        """Validate ``x`` (type, floating dtype, leading shapes, dtype and device of the
        factors) so a bad input fails here with a clear message, not inside a GEMM; returns
        ``x``, pieces of different dtypes promoted to one (as ``torch.cat`` would)."""
        if isinstance(x, Tensor):
            if not x.is_floating_point():
                raise TypeError(
                    f"x must have a floating dtype, got {x.dtype}; convert with .float()"
                )
            if x.ndim == 0:
                raise ValueError("x must have at least one dimension, got a 0-d tensor")
            first = x
        else:
            x = check_tensor_list("x", x)
            first = x[0]
        ref = next(self.parameters(), None)
        if ref is not None:  # every structured matrix owns a parameter
            check_operand("x", first, ref, type(self).__name__)
        return x

    def _check_bias(self, bias: object, first: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(bias, Tensor):
            raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
        if tuple(bias.shape) != (self.out_features,):
            raise ValueError(
                f"bias must have shape ({self.out_features},) (out_features of {name}), got "
                f"{tuple(bias.shape)}"
            )
        if not bias.is_floating_point():
            raise TypeError(f"bias must have a floating dtype, got {bias.dtype}")
        if bias.device != first.device:
            raise ValueError(f"bias is on {bias.device} but x is on {first.device}")
        if bias.dtype != first.dtype and autocast_dtype(first.device.type) is None:
            raise TypeError(f"bias has dtype {bias.dtype} but x has dtype {first.dtype}")

    def extra_repr(self) -> str:
        parts = [f"in_features={self.in_features}", f"out_features={self.out_features}"]
        parts += [f"{k}={getattr(self, k)!r}" for k in self.config_keys]
        if self.mode != "auto":
            parts.append(f"mode={self.mode!r}")
        return ", ".join(parts)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe (``device``/``dtype`` excluded)."""
        cfg: dict[str, Any] = {"in_features": self.in_features, "out_features": self.out_features}
        cfg.update({k: getattr(self, k) for k in self.config_keys})
        cfg["mode"] = self.mode
        return cfg

    @staticmethod
    def _factory(device: torch.device | str | None, dtype: torch.dtype | None) -> dict[str, Any]:
        return {"device": device, "dtype": check_factory_dtype(dtype)}
