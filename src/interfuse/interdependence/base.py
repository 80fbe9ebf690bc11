r"""The :class:`Interdependence` contract shared by the modern interdependence modules.

An interdependence mixes either the **attributes** (features, the last dimension) or the
**instances** (rows, dimension ``-2``) of a batch :math:`X \in R^{b \times m}` through a matrix
:math:`A`:

* ``axis='attribute'``: :math:`A \in R^{m \times m'}`, output :math:`X A` of shape ``(b, m')``;
* ``axis='instance'``: :math:`A \in R^{b \times b'}`, output :math:`A^\top X` of shape
  ``(b', m)``.

Inputs may carry any number of leading batch dimensions, ``(..., b, m)``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_operand, resolve_choice
from interfuse.config import Configurable
from interfuse.matrices import MATRICES, StructuredMatrix, matrix_class
from interfuse.matrices.registry import build_owned_matrix

__all__ = ["AXES", "INITS", "Interdependence"]

#: The two axes an interdependence can mix.
AXES: tuple[str, ...] = ("attribute", "instance")
#: Initializations of an owned structured matrix.
INITS: tuple[str, ...] = ("default", "identity")


def identity_options(
    matrix: str | StructuredMatrix | type[StructuredMatrix],
    in_features: int,
    out_features: int,
    options: dict[str, Any] | None,
    init: str,
) -> dict[str, Any]:
    """The matrix's constructor options; with ``init='identity'``, square Kronecker factors.

    The Kronecker family's automatic factors minimize parameters and are rarely square
    (``p ≠ q``), and only square factors can hold the identity, so a square Kronecker-family
    matrix that is to start as the identity and was given neither ``p`` nor ``q`` gets
    ``identity_factors`` instead (each class's ``identity_options``; Monarch picks
    ``num_blocks = √dim``). Constructor and ``count_parameters`` both ask here.
    """
    chosen = dict(options or {})
    if (
        init != "identity"
        or in_features != out_features
        or isinstance(matrix, StructuredMatrix)
        or "p" in chosen
        or "q" in chosen
    ):
        return chosen
    return matrix_class(matrix).identity_options(in_features, **chosen)


class Interdependence(Configurable, nn.Module, abc.ABC):
    """Base of the modern interdependence modules: validates inputs and applies ``A``.

    Subclasses are final. They implement :meth:`interdependence_matrix` (``A`` itself, for
    inspection and for :class:`~interfuse.HybridInterdependence`), :meth:`output_shape` and
    ``forward``, which applies ``A`` without building it where that is cheaper.

    Args:
        axis: ``'attribute'`` (``X A``, mixes features) or ``'instance'`` (``Aᵀ X``, mixes rows).

    Shape:
        - x: ``(..., b, m)``.
        - Output: ``(..., b, m')`` (attribute axis) or ``(..., b', m)`` (instance axis), as
          :meth:`output_shape` gives.

    Example:
        >>> mix = ParameterizedInterdependence(16, 4)
        >>> isinstance(mix, Interdependence), mix.interdependence_matrix().shape
        (True, torch.Size([16, 4]))
        >>> mix(torch.randn(2, 8, 16)).shape, mix.output_shape((2, 8, 16))
        (torch.Size([2, 8, 4]), torch.Size([2, 8, 4]))
        >>> ParameterizedInterdependence(8, 3, axis="instance").output_shape((2, 8, 16))
        torch.Size([2, 3, 16])
    """

    #: Whether ``A`` depends on the data (bilinear) or only on the parameters.
    data_dependent: bool = False

    def __init__(self, axis: str = "attribute") -> None:
        super().__init__()
        self.axis = resolve_choice("axis", axis, AXES)

    # -- the contract -------------------------------------------------------------------------
    @abc.abstractmethod
    def interdependence_matrix(self, x: Tensor | None = None) -> Tensor:
        """The matrix ``A`` (``(m, m')`` or ``(b, b')``; with batch dimensions when it depends
        on ``x``)."""

    @abc.abstractmethod
    def output_shape(self, input_shape: Sequence[int], *, name: str = "input_shape") -> torch.Size:
        """Shape of ``forward(x)`` for ``x`` of shape ``input_shape``; raises if the parts of
        this module do not accept it (``name`` names the input in the message)."""

    @abc.abstractmethod
    def matrix_flops(self, x_shape: Sequence[int]) -> int:
        """Multiply-adds of :meth:`interdependence_matrix` for ``x`` of shape ``x_shape``."""

    @abc.abstractmethod
    def forward_flops(self, x_shape: Sequence[int], data_shape: Sequence[int] | None = None) -> int:
        """Multiply-adds of ``forward`` (``A`` applied to data of ``data_shape``, default
        ``x_shape``) in the evaluation order it picks."""

    @abc.abstractmethod
    def reset_parameters(self) -> None:
        """Re-initialize the trainable parameters."""

    # -- shared behaviour ---------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Scalars in the parameters, as ``count_parameters`` predicts (the frozen random
        buffers excluded; a parameter frozen with ``requires_grad_(False)`` still counts)."""
        return sum(p.numel() for p in self.parameters())

    @abc.abstractmethod
    def out_features(self, in_features: int) -> int:
        """Width of the output's last dimension for inputs of width ``in_features``."""

    def apply_matrix(self, a: Tensor, data: Tensor) -> Tensor:
        """``data @ A`` (attribute axis) or ``Aᵀ @ data`` (instance axis), batched."""
        return data @ a if self.axis == "attribute" else a.transpose(-2, -1) @ data

    # -- validation helpers -------------------------------------------------------------------
    @staticmethod
    def _check_tensor(name: str, x: object) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (..., b, m), got {x!r}")
        if not x.is_floating_point():
            raise TypeError(
                f"{name} must have a floating dtype, got {x.dtype}; convert with .float()"
            )
        if x.ndim < 2:
            raise ValueError(
                f"{name} must have shape (..., b, m) with at least 2 dimensions, got shape "
                f"{tuple(x.shape)}; add a batch dimension with {name}.unsqueeze(0)"
            )
        return x

    def _check_data(self, x: Tensor, data: object) -> Tensor:
        """``data`` must be a tensor like ``x`` that ``A`` (computed from ``x``) applies to:
        ``(..., n, m)`` for the attribute axis, ``(..., b, k)`` for the instance axis, with
        leading dimensions that broadcast with those of ``x``."""
        data = self._check_tensor("data", data)
        if data.dtype != x.dtype:
            raise TypeError(f"data has dtype {data.dtype} but x has {x.dtype}; use one dtype")
        if data.device != x.device:
            raise ValueError(f"data is on {data.device} but x is on {x.device}; use one device")
        if self.axis == "attribute" and data.shape[-1] != x.shape[-1]:
            raise ValueError(
                f"data has {data.shape[-1]} features but x has {x.shape[-1]}: with "
                "axis='attribute', A has one row per feature of x, so data must have shape "
                "(..., n, m)"
            )
        if self.axis == "instance" and data.shape[-2] != x.shape[-2]:
            raise ValueError(
                f"data has {data.shape[-2]} instances but x has {x.shape[-2]}: with "
                "axis='instance', A has one row per instance of x, so data must have shape "
                "(..., b, k)"
            )
        try:
            torch.broadcast_shapes(x.shape[:-2], data.shape[:-2])
        except RuntimeError as err:
            raise ValueError(
                f"data has leading dimensions {tuple(data.shape[:-2])} that do not broadcast "
                f"with those of x, {tuple(x.shape[:-2])}"
            ) from err
        return data

    @staticmethod
    def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
        if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence):
            raise TypeError(f"input_shape must be a sequence of ints, got {shape!r}")
        dims = tuple(shape)
        if isinstance(shape, torch.Size) and len(dims) >= 2:
            # A tensor's shape: under torch.export its entries may be SymInts, under the
            # TorchScript tracer (torch.onnx.export(dynamo=False)) traced sizes.
            return dims
        if len(dims) < 2 or any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
            raise ValueError(
                f"input_shape must be (..., b, m) with at least 2 int entries, got {shape!r}"
            )
        return dims

    def _check_size(
        self, name: str, size: int, expected: int, arg: str, *, features: bool | None = None
    ) -> None:
        """Raise unless ``size`` equals ``expected``; ``features`` says whether ``size`` is the
        last dimension (default: the dimension this ``axis`` mixes)."""
        if size == expected:
            return
        if features is None:
            features = self.axis == "attribute"
        what, where = ("features", "-1") if features else ("instances", "-2")
        raise ValueError(
            f"{name} has {size} {what} but {arg}={expected} (dimension {where} of shape "
            f"(..., b, m), axis={self.axis!r})"
        )


class _MatrixOwner(Interdependence):
    """Shared handling of an owned :class:`~interfuse.matrices.StructuredMatrix` and ``init``."""

    matrix: StructuredMatrix

    def __init__(self, axis: str, init: str) -> None:
        super().__init__(axis)
        self.init = resolve_choice("init", init, INITS)

    def _build_matrix(
        self,
        matrix: str | StructuredMatrix | type[StructuredMatrix],
        in_features: int,
        out_features: int,
        options: dict[str, Any] | None,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> StructuredMatrix:
        if isinstance(options, dict) or options is None:
            options = identity_options(matrix, in_features, out_features, options, self.init)
        return build_owned_matrix(
            type(self).__name__, matrix, in_features, out_features, options, device, dtype
        )

    def _init_matrix(self, matrix: StructuredMatrix, *, fresh: bool) -> None:
        """Apply ``init`` (``fresh``: the matrix was just built, ``'default'`` is a no-op)."""
        if self.init == "identity":
            try:
                matrix.reset_to_identity()
            except ValueError as err:
                raise ValueError(
                    f"init='identity' is not possible with {type(matrix).__name__}"
                    f"({matrix.extra_repr()}): {err}"
                ) from err
        elif not fresh:
            matrix.reset_parameters()

    @staticmethod
    def _matrix_repr(matrix: StructuredMatrix) -> str:
        """``matrix='name', matrix_options={...}`` as a constructor call would spell them."""
        name = next((k for k, v in MATRICES.items() if v is type(matrix)), type(matrix).__name__)
        cfg = matrix.get_config()
        options = {
            k: v
            for k, v in cfg.items()
            if k not in ("in_features", "out_features") and not (k == "mode" and v == "auto")
        }
        text = f"matrix={name!r}"
        return text + (f", matrix_options={options!r}" if options else "")

    def _check_like_module(self, name: str, x: Tensor) -> StructuredMatrix:
        """``x`` must share the device and (outside autocast) the dtype of the matrix.

        Returns the matrix. Small inputs pay for every lookup: ``self.matrix`` goes through
        ``nn.Module.__getattr__`` (about half a microsecond) and walking ``.parameters()``
        costs more than the GEMM, so the own parameters are read first (a parametrized matrix
        keeps its weight in a submodule)."""
        matrix: StructuredMatrix = self._modules["matrix"]  # type: ignore[assignment]
        ref = next((p for p in matrix._parameters.values() if p is not None), None)
        if ref is None:
            ref = next(matrix.parameters(), None)
        if ref is not None:  # every structured matrix owns a parameter
            check_operand(name, x, ref, type(self).__name__)
        return matrix

    def _apply_columns(self, z: Tensor) -> Tensor:
        """``W z`` over the last two dimensions, ``W`` the matrix in its Linear layout.

        A matrix that is free to build (dense) or that would build itself anyway multiplies
        from the left in one batched GEMM; otherwise the factored kernel runs on ``zᵀ``.
        """
        rows = z.numel() // max(z.shape[-2], 1)
        if self.matrix.build_flops() == 0 or not self.matrix.use_factored(rows):
            return torch.matmul(self.matrix.materialize(), z)
        return self.matrix(z.transpose(-2, -1)).transpose(-2, -1)

    def _apply_cost(self, rows: int) -> int:
        """Multiply-adds of applying the matrix to ``rows`` vectors (as it would choose)."""
        if self.matrix.use_factored(rows):
            return self.matrix.factored_flops(rows)
        return self.matrix.dense_flops(rows)
