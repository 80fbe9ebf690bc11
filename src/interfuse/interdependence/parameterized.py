r"""Parameterized (data-free) interdependence: a learnable structured matrix ``A``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interfuse._validation import check_positive_int
from interfuse.functional.structured import _dense_linear
from interfuse.interdependence.base import _MatrixOwner, identity_options
from interfuse.matrices import DenseMatrix, StructuredMatrix, matrix_class

__all__ = ["ParameterizedInterdependence"]


class ParameterizedInterdependence(_MatrixOwner):
    r"""A learnable interdependence matrix ``A`` with any structure of :mod:`interfuse.matrices`.

    .. math::
        \text{attribute:}\; Y = X A,\; A \in R^{m \times m'} \qquad
        \text{instance:}\; Y = A^\top X,\; A \in R^{b \times b'}

    with ``(m, m')`` (attribute axis) or ``(b, b')`` (instance axis) equal to
    ``(in_dim, out_dim)``. ``A`` is the transpose of the structured matrix ``W``
    (:class:`torch.nn.Linear` layout, ``out_dim × in_dim``), so ``X A = matrix(X)`` and
    ``Aᵀ X = W X``: both are applied **in factored form** where that is cheaper (the matrix
    chooses by flop count; a dense ``W`` multiplies from the left in one batched GEMM), so
    ``forward`` builds ``A`` only when the matrix itself would.

    Parameters: those of the matrix, ``W`` of shape ``(d', d) = (out_dim, in_dim)``
    (tinyBIG's ``calculate_l``, with the true Kronecker product for the Kronecker family): the
    family table of the structured-matrices page lists every entry of
    :data:`interfuse.matrices.MATRICES` with its formula, and ``count_parameters`` gives the
    number before anything is built.

    Args:
        in_dim: the mixed dimension of the input: ``m`` (attribute axis) or ``b`` (instance
            axis).
        out_dim: the mixed dimension of the output (``m'`` or ``b'``); defaults to ``in_dim``.
        matrix: a name of :data:`interfuse.matrices.MATRICES` (or an alias such as ``'hm'``),
            a :class:`~interfuse.matrices.StructuredMatrix` class, or an instance of shape
            ``(out_dim, in_dim)``.
        axis: ``'attribute'`` (``X A``) or ``'instance'`` (``Aᵀ X``).
        init: ``'default'`` (the matrix's own initialization) or ``'identity'`` (``A = I``, so
            a fresh square module is a no-op; rectangular: keeps the first ``min(d, d')``
            entries). ``ValueError`` if the structure cannot represent the identity.
        matrix_options: constructor options of the matrix (``rank``, ``p``, ``q``, ``seed``,
            ``mode``, ...) when ``matrix`` is a name or a class.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(..., b, m)``, any number of leading batch dimensions.
        - Output: ``(..., b, out_dim)`` (attribute axis) or ``(..., out_dim, m)`` (instance).

    Example:
        >>> mix = ParameterizedInterdependence(64, matrix="lowrank", matrix_options={"rank": 2})
        >>> mix.num_parameters  # r·(d + d')
        256
        >>> mix(torch.randn(8, 10, 64)).shape
        torch.Size([8, 10, 64])
        >>> rows = ParameterizedInterdependence(10, 5, axis="instance")
        >>> rows(torch.randn(8, 10, 64)).shape
        torch.Size([8, 5, 64])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int | None = None,
        matrix: str | StructuredMatrix | type[StructuredMatrix] = "dense",
        axis: str = "attribute",
        init: str = "default",
        matrix_options: dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(axis, init)
        self.in_dim = check_positive_int("in_dim", in_dim)
        self.out_dim = in_dim if out_dim is None else check_positive_int("out_dim", out_dim)
        self.matrix = self._build_matrix(
            matrix, in_dim, self.out_dim, matrix_options, device, dtype
        )
        self._init_matrix(self.matrix, fresh=True)

    @classmethod
    def count_parameters(
        cls,
        in_dim: int,
        out_dim: int | None = None,
        matrix: str | type[StructuredMatrix] = "dense",
        matrix_options: dict[str, Any] | None = None,
        init: str = "default",
    ) -> int:
        """Trainable scalars of a module built with these arguments (no instance needed).

        Example:
            >>> ParameterizedInterdependence.count_parameters(
            ...     64, matrix="hm", matrix_options={"p": 8, "q": 8})
            128
        """
        out = in_dim if out_dim is None else out_dim
        options = identity_options(matrix, in_dim, out, matrix_options, init)
        return matrix_class(matrix).count_parameters(in_dim, out, **options)

    def reset_parameters(self) -> None:
        """Re-initialize the matrix as ``init`` says (``A = I`` for ``'identity'``)."""
        self._init_matrix(self.matrix, fresh=False)

    @property
    def A(self) -> Tensor:
        """The materialized ``A`` of shape ``(in_dim, out_dim)`` (for inspection)."""
        return self.matrix.materialize().transpose(-2, -1)

    def interdependence_matrix(self, x: Tensor | None = None) -> Tensor:
        """``A`` of shape ``(in_dim, out_dim)``; ``x`` is ignored (``A`` is data-free)."""
        return self.A

    def forward(self, x: Tensor) -> Tensor:
        """Apply ``A``: ``x @ A`` (attribute axis) or ``Aᵀ @ x`` (instance axis), factored."""
        x = self._check_tensor("x", x)
        matrix = self._check_like_module("x", x)
        if self.axis == "attribute":
            self._check_size("x", x.shape[-1], self.in_dim, "in_dim")
            if type(matrix) is DenseMatrix:  # the matrix's kernel, without its call and checks
                return _dense_linear(x, matrix._parameters["weight"])  # type: ignore[arg-type]
            return matrix(x)
        self._check_size("x", x.shape[-2], self.in_dim, "in_dim")
        return self._apply_columns(x)

    def matrix_flops(self, x_shape: Sequence[int] | None = None) -> int:
        """Multiply-adds of building ``A`` (zero for a dense matrix)."""
        return self.matrix.build_flops()

    def forward_flops(self, x_shape: Sequence[int], data_shape: Sequence[int] | None = None) -> int:
        """Multiply-adds of ``forward`` on ``x`` of shape ``x_shape`` (or on ``data_shape``)."""
        shape = tuple(x_shape if data_shape is None else data_shape)
        mixed = shape[-1] if self.axis == "attribute" else shape[-2]
        return self._apply_cost(math.prod(shape) // max(mixed, 1))

    def out_features(self, in_features: int) -> int:
        """Width of the output's last dimension: ``out_dim`` (attribute axis, after checking
        ``in_features == in_dim``) or ``in_features`` (instance axis)."""
        in_features = check_positive_int("in_features", in_features)
        if self.axis == "instance":
            return in_features
        self._check_size("x", in_features, self.in_dim, "in_dim")
        return self.out_dim

    def output_shape(self, input_shape: Sequence[int], *, name: str = "input_shape") -> torch.Size:
        """Shape of ``forward(x)`` for ``x`` of shape ``input_shape``.

        Example:
            >>> ParameterizedInterdependence(4, 6).output_shape((2, 3, 4))
            torch.Size([2, 3, 6])
        """
        *lead, b, m = self._check_shape(input_shape)
        if self.axis == "attribute":
            self._check_size(name, m, self.in_dim, "in_dim")
            return torch.Size((*lead, b, self.out_dim))
        self._check_size(name, b, self.in_dim, "in_dim")
        return torch.Size((*lead, self.out_dim, m))

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, out_dim={self.out_dim}, {self._matrix_repr(self.matrix)}, "
            f"axis={self.axis!r}, init={self.init!r}"
        )

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; the matrix is stored as its own nested config."""
        return {
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "matrix": self.matrix,
            "axis": self.axis,
            "init": self.init,
        }
