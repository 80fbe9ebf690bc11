r"""Bilinear (data-dependent) interdependence: ``A = Xᵀ W X`` with a structured ``W``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interfuse._validation import check_positive_int, resolve_choice
from interfuse.functional.bilinear import (
    bilinear_apply,
    bilinear_costs,
    bilinear_matrix,
    bilinear_matrix_first,
)
from interfuse.interdependence.base import _MatrixOwner, identity_options
from interfuse.matrices import StructuredMatrix, matrix_class

__all__ = ["BilinearInterdependence"]

_ORDERS = ("auto", "matrix_first", "data_first")
_SCALES = ("none", "inverse_sqrt")


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
    ``m < b`` (``b < m``), and the data-first order never allocates it otherwise. Both faces
    run this math in one kernel, :mod:`interfuse.functional.bilinear`.

    **Scale.** ``A`` sums ``b·m`` products, so for unit inputs and the default initialization
    the output's standard deviation grows like ``√(b·m)`` (measured: 18 at ``(b, m) =
    (10, 32)``, 125–180 at ``(256, 128)``), while a parameterized interdependence keeps it near
    1. ``scale='inverse_sqrt'`` multiplies ``A`` by ``1/√(b·m)`` (``b, m`` of the ``x`` given),
    which keeps it near 1 at every size, like the ``1/√d`` of attention; use it when ``A`` is
    mixed with others (a :class:`HybridInterdependence`). The default ``None`` is the plain
    ``XᵀWX`` of tinyBIG (whose face keeps it), so existing numbers and checkpoints hold.

    Parameters: those of the ``dim × dim`` matrix (tinyBIG's bilinear ``calculate_l`` with
    the true Kronecker product), as the family table of the structured-matrices page gives them
    for every entry of :data:`interfuse.matrices.MATRICES`.

    Args:
        dim: side of ``W``: the number of instances ``b`` on the attribute axis (every ``x``
            then has exactly ``dim`` rows), the number of attributes ``m`` on the instance
            axis (any number of rows).
        matrix: a name of :data:`interfuse.matrices.MATRICES` (or an alias), a
            :class:`~interfuse.matrices.StructuredMatrix` class, or a ``dim × dim`` instance.
        axis: ``'attribute'`` (``A`` is ``m × m``, ``Y = D A``) or ``'instance'`` (``A`` is
            ``b × b``, ``Y = Aᵀ D``).
        init: ``'default'`` (the matrix's own initialization) or ``'identity'`` (``W = I``,
            ``A`` the Gram matrix ``XᵀX`` or ``XXᵀ``).
        order: ``'auto'``, ``'matrix_first'`` or ``'data_first'`` (see above; the result is the
            same up to rounding).
        scale: ``None`` (``A = XᵀWX``) or ``'inverse_sqrt'`` (``A = XᵀWX / √(b·m)``).
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
        scale: str | None = None,
    ) -> None:
        super().__init__(axis, init)
        self.dim = check_positive_int("dim", dim)
        self.order = resolve_choice("order", order, _ORDERS)
        self.scale = None if scale is None else resolve_choice("scale", scale, _SCALES)
        if self.scale == "none":
            self.scale = None
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
        # W sits between the rows (attribute axis) or the columns (instance axis) of x
        side, other = (-2, "instance") if self.axis == "attribute" else (-1, "attribute")
        if x.shape[side] != self.dim and x.shape[-1 - (side + 2)] == self.dim:
            counted = "instances b" if side == -2 else "attributes m"
            raise ValueError(
                f"x has shape {tuple(x.shape)} but dim={self.dim} counts its {counted} on the "
                f"{self.axis!r} axis; use axis={other!r} for W to mix the other side"
            )
        self._check_size("x", x.shape[side], self.dim, "dim", features=side == -1)
        return x

    def interdependence_matrix(self, x: Tensor | None = None) -> Tensor:
        """``A = XᵀWX`` (attribute axis, ``(..., m, m)``) or ``XWXᵀ`` (instance, ``(..., b, b)``).

        Args:
            x: the input ``(..., b, m)``; required, since ``A`` depends on it.
        """
        x = self._check_x(x)
        return bilinear_matrix(self._operand(x), self._right, self._factor(x))

    def _right(self, z: Tensor) -> Tensor:
        """``z @ W`` (``W`` the transpose of the matrix's Linear layout, see the class doc)."""
        return self._apply_columns(z.transpose(-2, -1)).transpose(-2, -1)

    def _operand(self, x: Tensor) -> Tensor:
        """The kernel's ``X`` (``d × k``, ``d = dim``): ``x`` or, on the instance axis, ``xᵀ``."""
        return x if self.axis == "attribute" else x.transpose(-2, -1)

    def _factor(self, x: Tensor) -> float | None:
        return None if self.scale is None else 1.0 / math.sqrt(x.shape[-2] * x.shape[-1])

    def _costs(self, x_shape: Sequence[int], data_shape: Sequence[int]) -> tuple[int, int, int]:
        """Multiply-adds of (building ``A``, applying it, the data-first chain)."""
        *lead_x, b, m = x_shape
        *lead_d, rows, cols = data_shape
        batch = math.prod(torch.broadcast_shapes(torch.Size(lead_x), torch.Size(lead_d)))
        if self.axis == "attribute":
            return bilinear_costs(batch, rows, b, m, self._apply_cost)
        return bilinear_costs(batch, cols, m, b, self._apply_cost)

    def matrix_first(self, x_shape: Sequence[int], data_shape: Sequence[int]) -> bool:
        """Whether ``forward`` builds ``A`` for inputs of these shapes (see the class doc)."""
        if self.order != "auto":
            return self.order == "matrix_first"
        return bilinear_matrix_first(self._costs(x_shape, data_shape))

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
        first = self.matrix_first(x.shape, d.shape)
        if self.axis == "attribute":  # D A
            return bilinear_apply(d, x, self._right, matrix_first=first, scale=self._factor(x))
        # Aᵀ D = (Dᵀ A)ᵀ, A symmetric in form: Xᵀ → the kernel's X
        out = bilinear_apply(
            d.transpose(-2, -1),
            x.transpose(-2, -1),
            self._right,
            matrix_first=first,
            scale=self._factor(x),
        )
        return out.transpose(-2, -1)

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
            + ("" if self.scale is None else f", scale={self.scale!r}")
        )

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; the matrix is stored as its own nested config."""
        return {
            "dim": self.dim,
            "matrix": self.matrix,
            "axis": self.axis,
            "init": self.init,
            "order": self.order,
            "scale": self.scale,
        }
