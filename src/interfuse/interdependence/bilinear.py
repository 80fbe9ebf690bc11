r"""Bilinear (data-dependent) interdependence: ``A = Xᵀ W X`` with a structured ``W``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interfuse._validation import check_positive_int, resolve_choice
from interfuse.interdependence.base import _MatrixOwner, identity_options
from interfuse.matrices import StructuredMatrix, matrix_class

__all__ = ["BilinearInterdependence"]

_ORDERS = ("auto", "matrix_first", "data_first")


class BilinearInterdependence(_MatrixOwner):
    r"""Interdependence computed from the data: ``A = Xᵀ W X`` with a learnable square ``W``.

    .. math::
        \text{attribute:}\; A = X^\top W X \in R^{m \times m},\; Y = D A \qquad
        \text{instance:}\; A = X W X^\top \in R^{b \times b},\; Y = A^\top D

    per batch element, where ``X`` is the input ``(b, m)`` and ``D`` the data ``A`` is applied
    to (``X`` itself unless ``forward(x, data)`` says otherwise, e.g. an expansion ``κ(X)`` as
    in an RPN head). ``W`` is ``dim × dim``: ``dim = b`` for the attribute axis (so every input
    must have exactly ``dim`` rows), ``dim = m`` for the instance axis (any number of rows,
    attention-like). ``W`` may have any structure of :mod:`interfuse.matrices`; it is the
    transpose of the structured matrix (``z @ W = matrix(z)``) and is only ever applied to
    thin operands in factored form.

    **Evaluation order.** ``forward`` evaluates the chain ``D Xᵀ W X`` (attribute) or
    ``X Wᵀ Xᵀ D`` (instance) either *matrix first* (build ``A`` per batch element, then one
    batched product) or *data first* (contract ``D`` with ``X`` first, never forming ``A``):

    | axis | matrix first | data first |
    |---|---|---|
    | attribute | ``A = (Xᵀ W) X``, then ``D A`` | ``((D Xᵀ) W) X`` |
    | instance | ``A = (X W) Xᵀ``, then ``Aᵀ D`` | ``X (Wᵀ (Xᵀ D))`` |

    ``order='auto'`` picks the one with fewer multiply-adds for the actual sizes (counting
    ``W``'s factored cost): with ``D = X``, building the ``m × m`` (``b × b``) matrix wins when
    ``m < b`` (``b < m``), and the data-first order never allocates it otherwise.

    Parameters (``d = dim``; tinyBIG's bilinear ``calculate_l`` with the true Kronecker
    product): dense ``d²``, lowrank ``2rd``, kronecker ``pq + d²/(pq)``, lowrank_kronecker
    ``pq + r(d/p + d/q)``, dual_lowrank_kronecker ``r(p + q + d/p + d/q)``, random_adapted
    ``d + r``.

    Args:
        dim: side of ``W``: the number of instances ``b`` (attribute axis) or of features
            ``m`` (instance axis).
        matrix: a name of :data:`interfuse.matrices.MATRICES` (or an alias), a
            :class:`~interfuse.matrices.StructuredMatrix` class, or a ``dim × dim`` instance.
        axis: ``'attribute'`` (``A`` is ``m × m``, ``Y = D A``) or ``'instance'`` (``A`` is
            ``b × b``, ``Y = Aᵀ D``).
        init: ``'default'`` (the matrix's own initialization) or ``'identity'`` (``W = I``,
            ``A`` the Gram matrix ``XᵀX`` or ``XXᵀ``).
        order: ``'auto'``, ``'matrix_first'`` or ``'data_first'`` (see above; the result is the
            same up to rounding).
        matrix_options: constructor options of the matrix (``rank``, ``p``, ``q``, ...).
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - x: ``(..., b, m)`` with ``b = dim`` (attribute axis) or ``m = dim`` (instance axis).
        - data: ``(..., n, m)`` (attribute axis) or ``(..., b, k)`` (instance axis), leading
          dimensions broadcastable with those of ``x``; defaults to ``x``.
        - Output: the shape of ``data`` (leading dimensions broadcast).

    Example:
        >>> attn = BilinearInterdependence(16, axis="instance", matrix="lowrank",
        ...                                matrix_options={"rank": 4})
        >>> attn.num_parameters  # 2·r·d
        128
        >>> x = torch.randn(2, 100, 16)  # 100 instances: the 100×100 A is never built
        >>> attn(x).shape
        torch.Size([2, 100, 16])
        >>> attn.interdependence_matrix(x).shape
        torch.Size([2, 100, 100])
    """

    data_dependent = True

    def __init__(
        self,
        dim: int,
        matrix: str | StructuredMatrix | type[StructuredMatrix] = "dense",
        axis: str = "attribute",
        init: str = "default",
        order: str = "auto",
        matrix_options: dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(axis, init)
        self.dim = check_positive_int("dim", dim)
        self.order = resolve_choice("order", order, _ORDERS)
        self.matrix = self._build_matrix(matrix, dim, dim, matrix_options, device, dtype)
        self._init_matrix(self.matrix, fresh=True)

    @classmethod
    def count_parameters(
        cls,
        dim: int,
        matrix: str | type[StructuredMatrix] = "dense",
        matrix_options: dict[str, Any] | None = None,
        init: str = "default",
    ) -> int:
        """Trainable scalars of a module built with these arguments (no instance needed).

        Example:
            >>> BilinearInterdependence.count_parameters(32, "lowrank", {"rank": 2})
            128
        """
        options = identity_options(matrix, dim, dim, matrix_options, init)
        return matrix_class(matrix).count_parameters(dim, dim, **options)

    def reset_parameters(self) -> None:
        """Re-initialize ``W`` as ``init`` says (``W = I`` for ``'identity'``)."""
        self._init_matrix(self.matrix, fresh=False)

    @property
    def W(self) -> Tensor:
        """The materialized ``W`` of shape ``(dim, dim)`` (``z @ W == matrix(z)``)."""
        return self.matrix.materialize().transpose(-2, -1)

    # -- A and its application ----------------------------------------------------------------
    def _check_x(self, x: object) -> Tensor:
        if x is None:
            raise TypeError(
                "x is required: BilinearInterdependence computes A = XᵀWX from the data"
            )
        x = self._check_tensor("x", x)
        self._check_like_module("x", x)
        if self.axis == "attribute":
            self._check_size("x", x.shape[-2], self.dim, "dim", features=False)
        else:
            self._check_size("x", x.shape[-1], self.dim, "dim", features=True)
        return x

    def interdependence_matrix(self, x: Tensor | None = None) -> Tensor:
        """``A = XᵀWX`` (attribute axis, ``(..., m, m)``) or ``XWXᵀ`` (instance, ``(..., b, b)``).

        Args:
            x: the input ``(..., b, m)``; required, since ``A`` depends on it.
        """
        x = self._check_x(x)
        if self.axis == "attribute":
            return self._apply_columns(x).transpose(-2, -1) @ x  # (Xᵀ W) X, with Xᵀ W = (Wᵀ X)ᵀ
        return self.matrix(x) @ x.transpose(-2, -1)  # (X W) Xᵀ

    def _costs(self, x_shape: Sequence[int], data_shape: Sequence[int]) -> tuple[int, int, int]:
        """Multiply-adds of (building ``A``, applying it, the data-first chain)."""
        *lead_x, b, m = x_shape
        *lead_d, rows, cols = data_shape
        batch = math.prod(torch.broadcast_shapes(torch.Size(lead_x), torch.Size(lead_d)))
        if self.axis == "attribute":  # D (n×m), W side b: A = (Xᵀ W) X is m×m
            build = self._apply_cost(batch * m) + batch * m * b * m
            return (
                build,
                batch * rows * m * m,
                batch * 2 * rows * m * b + self._apply_cost(batch * rows),
            )
        # D (b×k), W side m: A = (X W) Xᵀ is b×b
        build = self._apply_cost(batch * b) + batch * b * m * b
        return (
            build,
            batch * b * b * cols,
            batch * 2 * m * b * cols + self._apply_cost(batch * cols),
        )

    def matrix_first(self, x_shape: Sequence[int], data_shape: Sequence[int]) -> bool:
        """Whether ``forward`` builds ``A`` for inputs of these shapes (see the class doc)."""
        if self.order != "auto":
            return self.order == "matrix_first"
        build, apply, chain = self._costs(x_shape, data_shape)
        return build + apply <= chain

    def matrix_flops(self, x_shape: Sequence[int]) -> int:
        """Multiply-adds of :meth:`interdependence_matrix` for ``x`` of shape ``x_shape``."""
        return self._costs(x_shape, x_shape)[0]

    def forward_flops(self, x_shape: Sequence[int], data_shape: Sequence[int] | None = None) -> int:
        """Multiply-adds of ``forward`` in the order it picks for these shapes."""
        data_shape = x_shape if data_shape is None else data_shape
        build, apply, chain = self._costs(x_shape, data_shape)
        return build + apply if self.matrix_first(x_shape, data_shape) else chain

    def forward(self, x: Tensor, data: Tensor | None = None) -> Tensor:
        """``data @ A`` (attribute axis) or ``Aᵀ @ data`` (instance axis), ``A`` from ``x``.

        Args:
            x: the input ``(..., b, m)`` ``A`` is computed from.
            data: what ``A`` is applied to; defaults to ``x``.
        """
        x = self._check_x(x)
        d = x if data is None else self._check_data(x, data)
        if self.matrix_first(x.shape, d.shape):
            return self.apply_matrix(self.interdependence_matrix(x), d)
        if self.axis == "attribute":
            return self.matrix(d @ x.transpose(-2, -1)) @ x  # ((D Xᵀ) W) X
        return x @ self._apply_columns(x.transpose(-2, -1) @ d)  # X (Wᵀ (Xᵀ D))

    def out_features(self, in_features: int) -> int:
        """Width of the output's last dimension: unchanged (``A`` is square)."""
        in_features = check_positive_int("in_features", in_features)
        if self.axis == "instance":
            self._check_size("x", in_features, self.dim, "dim", features=True)
        return in_features

    def output_shape(self, input_shape: Sequence[int], *, name: str = "input_shape") -> torch.Size:
        """Shape of ``forward(x)`` for ``x`` of shape ``input_shape`` (the same shape).

        Example:
            >>> BilinearInterdependence(3).output_shape((2, 3, 7))
            torch.Size([2, 3, 7])
        """
        *lead, b, m = self._check_shape(input_shape)
        if self.axis == "attribute":
            self._check_size(name, b, self.dim, "dim", features=False)
        else:
            self._check_size(name, m, self.dim, "dim", features=True)
        return torch.Size((*lead, b, m))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, {self._matrix_repr(self.matrix)}, axis={self.axis!r}, "
            f"init={self.init!r}, order={self.order!r}"
        )

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; the matrix is stored as its own nested config."""
        return {
            "dim": self.dim,
            "matrix": self.matrix,
            "axis": self.axis,
            "init": self.init,
            "order": self.order,
        }
