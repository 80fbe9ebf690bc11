"""The :class:`StructuredMatrix` contract shared by every parameter-efficient matrix."""

from __future__ import annotations

import abc
import inspect
import math
import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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
from interfuse.functional._common import _is_exporting
from interfuse.functional.structured import Inputs, as_tensor_input

__all__ = ["StructureWarning", "StructuredMatrix"]

_MODES = ("auto", "factored", "dense")
_M = TypeVar("_M", bound="StructuredMatrix")
_PACKAGE = str(Path(__file__).resolve().parents[1])


class StructureWarning(UserWarning):
    """A structured matrix was asked for something it can build but that defeats its purpose:
    more parameters than the dense layer, or automatic factors that degenerate on the sizes.

    Filter it as any warning, e.g. ``warnings.simplefilter("ignore", StructureWarning)``.
    """


def warn_structure(message: str) -> None:
    """Emit a :class:`StructureWarning` pointing at the first caller outside interfuse."""
    frame, level = sys._getframe(1), 2  # level 2: warn_structure's caller
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    warnings.warn(message, StructureWarning, stacklevel=level)


class StructuredMatrix(Configurable, nn.Module, abc.ABC):
    """A learnable ``out_features × in_features`` matrix ``W`` stored in factored form.

    Applied as ``x @ Wᵀ`` (the :class:`torch.nn.Linear` layout), in factored form unless the
    dense product is cheaper. ``mode='auto'`` compares the flops of the factored kernel, each
    counted :attr:`factored_cost` times, plus a fixed launch cost (:attr:`launch_flops`), with
    building ``W`` and one GEMM; at large sizes the factored path always wins (for
    ``4096 → 1024`` at every batch size), so ``W`` is never allocated in training.

    Every matrix can carry a bias (``bias=True``, the ``nn.Linear`` layout ``(out,)``), be
    fitted to a trained dense weight (:meth:`from_dense`, with :meth:`relative_error` saying how
    good the fit is) and merge back into an ``nn.Linear`` (:meth:`to_linear`).

    Subclasses are final: they own their factors, initialize them in :meth:`reset_parameters`
    (ending with ``_reset_bias()``) and implement :meth:`forward_factored`, :meth:`materialize`,
    ``_count`` (the formula behind :meth:`count_parameters`), ``_fit`` (the projection behind
    :meth:`from_dense`) and :meth:`factored_flops`.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        mode: ``'auto'`` (the cheaper product), ``'factored'`` or ``'dense'`` (build ``W``).
        bias: whether to add a learnable bias ``b ∈ R^{out}``.

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

    bias: Tensor | None

    def __init__(
        self, in_features: int, out_features: int, mode: str = "auto", bias: bool = False
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.mode = resolve_choice("mode", mode, _MODES)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self._wants_bias = bias

    def _init_bias(self, **factory: Any) -> None:
        """Create the bias (or its ``None`` slot) after the factors, so it is listed last."""
        if self._wants_bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)

    def _warn_if_larger_than_dense(self) -> None:
        """Warn when the factors hold more numbers than ``W`` itself (beyond tiny sizes, where
        it is common and harmless)."""
        dense = self.in_features * self.out_features
        count = self.num_parameters - (0 if self.bias is None else self.out_features)
        if count > dense and dense >= 256:
            warn_structure(
                f"{type(self).__name__}({self.extra_repr()}) has {count} parameters, more than "
                f"the dense matrix's {dense}; use DenseMatrix or options with fewer parameters"
            )

    def _reset_bias(self) -> None:
        # The nn.Linear initialization: U(-1/√in, 1/√in).
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

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
        bias = kwargs.get("bias", False)
        return cls._count(in_features, out_features, **kwargs) + (out_features if bias else 0)

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

    @classmethod
    def identity_options(cls, dim: int, **options: Any) -> dict[str, Any]:
        """Options with which a ``dim × dim`` matrix of this class can start as the identity
        (``init='identity'`` of the interdependence modules asks here); by default ``options``
        unchanged."""
        return dict(options)

    # -- from and to dense ----------------------------------------------------------------------
    @classmethod
    def from_dense(cls: type[_M], weight: Tensor, bias: Tensor | None = None, **options: Any) -> _M:
        """The matrix of this class nearest to ``weight`` in the Frobenius norm.

        Each family projects ``weight`` on its structure: dense copies it, low-rank truncates
        its SVD (Eckart–Young), Kronecker takes the leading singular pair of the rearranged
        matrix (Van Loan–Pitsianis), the low-rank Kronecker forms then truncate the SVD of the
        factors, Monarch fits each of its rank-one blocks, random-adapted fits its scales by
        least squares. Structured weights are recovered exactly. How good the fit is:
        :meth:`relative_error`.

        Args:
            weight: ``W``, ``(out_features, in_features)`` (the ``nn.Linear`` layout).
            bias: ``(out_features,)``, copied into the matrix's own bias; ``None``: no bias.
            **options: constructor options of the class (``rank``, ``p``, ``q``, ``mode``,
                ``device``, ``dtype``, ...); device and dtype default to the weight's.

        Returns:
            The matrix, its parameters detached from ``weight``.

        Raises:
            TypeError: ``weight`` or ``bias`` is not a floating tensor, or an option the class
                does not take.
            ValueError: ``weight`` is not 2-D, ``bias`` is not ``(out_features,)``, or the
                options do not fit the shape.

        Example:
            >>> w = torch.randn(6, 1) @ torch.randn(1, 8)  # rank 1
            >>> m = LowRankMatrix.from_dense(w, rank=1)
            >>> m.relative_error(w) < 1e-6, m.num_parameters
            (True, 14)
        """
        w = _check_dense("weight", weight, 2)
        out_features, in_features = w.shape
        if bias is not None:
            b = _check_dense("bias", bias, 1)
            if tuple(b.shape) != (out_features,):
                raise ValueError(
                    f"bias must have shape ({out_features},) (the weight's rows), got "
                    f"{tuple(b.shape)}"
                )
        taken = sorted(k for k in ("in_features", "out_features", "bias") if k in options)
        if taken:
            raise TypeError(f"from_dense sets {taken} from weight and bias; do not pass them")
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise TypeError(
                f"{cls.__name__}.from_dense does not take the options {unknown}; it takes "
                f"{sorted(accepted - {'in_features', 'out_features', 'bias'})}"
            )
        options.setdefault("device", w.device)
        options.setdefault("dtype", w.dtype)
        with torch.no_grad():
            # Low precisions are fitted in float32 (SVD needs it); float64 stays float64.
            work = w.detach().to(torch.promote_types(w.dtype, torch.float32))
            chosen, factors = cls._fit(work, {k: v for k, v in options.items()})
            module = cls(in_features, out_features, bias=bias is not None, **chosen)
            params = dict(module.named_parameters())
            buffers = dict(module.named_buffers())
            for name, value in factors.items():
                target = params[name] if name in params else buffers[name]
                target.copy_(value)
            if bias is not None and module.bias is not None:
                module.bias.copy_(bias.detach())
        return module

    @classmethod
    @abc.abstractmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The projection behind :meth:`from_dense`: the constructor options (completed, e.g.
        the automatic factor sizes) and the values of the factors by parameter name."""

    def relative_error(self, weight: Tensor) -> float:
        """``‖W − M‖_F / ‖W‖_F`` with ``M`` this matrix (0 for a zero ``W`` matched exactly).

        Args:
            weight: ``W``, ``(out_features, in_features)``.

        Returns:
            The relative Frobenius error, a float.

        Example:
            >>> w = torch.randn(4, 6)
            >>> DenseMatrix.from_dense(w).relative_error(w)
            0.0
        """
        w = _check_dense("weight", weight, 2)
        if tuple(w.shape) != tuple(self.shape):
            raise ValueError(
                f"weight must have shape {tuple(self.shape)} (this matrix's), got {tuple(w.shape)}"
            )
        with torch.no_grad():
            work = torch.promote_types(w.dtype, torch.float32)
            m = self.materialize().to(device=w.device, dtype=work)
            w = w.to(work)
            norm = float(torch.linalg.matrix_norm(w))
            diff = float(torch.linalg.matrix_norm(w - m))
        if norm == 0.0:
            return 0.0 if diff == 0.0 else math.inf
        return diff / norm

    def to_linear(self) -> nn.Linear:
        """An ``nn.Linear`` with the same outputs: ``W`` built once, the bias copied.

        The deployment path: train structured, merge once, serve at GEMM speed.

        Returns:
            A new ``nn.Linear`` on this matrix's device and dtype.

        Example:
            >>> m = LowRankMatrix(8, 4, rank=2, bias=True)
            >>> lin, x = m.to_linear(), torch.randn(3, 8)
            >>> torch.allclose(lin(x), m(x), atol=1e-6)
            True
        """
        ref = next(self.parameters())
        linear = nn.Linear(
            self.in_features,
            self.out_features,
            bias=self.bias is not None,
            device=ref.device,
            dtype=ref.dtype,
        )
        with torch.no_grad():
            linear.weight.copy_(self.materialize())
            if self.bias is not None and linear.bias is not None:
                linear.bias.copy_(self.bias)
        return linear

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
        if isinstance(rows, torch.SymInt) and _is_exporting():
            # A dynamic batch in torch.export (and the dynamo ONNX exporter): comparing at it
            # would constrain the batch to one side of the crossover. Decide for large batches.
            per_row = self.factored_flops(2) - self.factored_flops(1)
            return per_row * self.factored_cost <= self.in_features * self.out_features
        factored = self.factored_flops(rows) * self.factored_cost + self.launch_flops
        return factored <= self.dense_flops(rows)

    def forward(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        """Apply ``W`` to ``x`` (a tensor ``(..., in_features)`` or a list of pieces); a
        ``bias`` given here is added to the matrix's own (if it has one).

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
        if self.bias is not None:
            bias = self.bias if bias is None else self.bias + bias
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
        if self.bias is not None:
            parts.append("bias=True")
        return ", ".join(parts)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-safe (``device``/``dtype`` excluded)."""
        cfg: dict[str, Any] = {"in_features": self.in_features, "out_features": self.out_features}
        cfg.update({k: getattr(self, k) for k in self.config_keys})
        cfg["mode"] = self.mode
        if self.bias is not None:  # absent when False, so configs without bias stay as they were
            cfg["bias"] = True
        return cfg

    @staticmethod
    def _factory(device: torch.device | str | None, dtype: torch.dtype | None) -> dict[str, Any]:
        return {"device": device, "dtype": check_factory_dtype(dtype)}


def _check_dense(name: str, value: object, ndim: int) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
    if value.ndim != ndim:
        layout = "(out_features, in_features)" if ndim == 2 else "(out_features,)"
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(value.shape)}")
    return value
