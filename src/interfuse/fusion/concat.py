r"""Concatenation fusions: inputs of different widths ``(..., n_i)`` side by side.

Absent inputs (``mask``) are zero-filled, so the output keeps its width and every input its
slot. :class:`ProjectedConcatFusion` follows the concatenation with a learnable structured
matrix; a dense, low-rank or random-adapted matrix projects the inputs piece by piece and
accumulates, so the concatenation is never built.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_dims, check_operand, check_positive_int
from interfuse.functional._common import plain_size

# The kernels without their checks (check_inputs ran the same ones).
from interfuse.functional.concat import _concat as concat
from interfuse.functional.concat import _zero_absent as masked_inputs
from interfuse.functional.structured import _dense_linear
from interfuse.fusion.base import Fusion, Inputs, MaskLike
from interfuse.matrices import MATRICES, DenseMatrix, StructuredMatrix
from interfuse.matrices.registry import build_owned_matrix

__all__ = ["ConcatFusion", "ProjectedConcatFusion"]


class _Concatenation(Fusion):
    """Inputs share their leading dimensions only; ``in_dims`` (optional here) fixes widths."""

    same_shape = False

    def __init__(
        self,
        in_dims: Sequence[int] | None,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        dims = None if in_dims is None else check_dims("in_dims", in_dims)
        super().__init__(
            None if dims is None else len(dims), names=names, input_dropout=input_dropout
        )
        self.in_dims = dims

    def expected_width(self, i: int) -> int | None:
        return None if self.in_dims is None else self.in_dims[i]

    def check_in_dims(self, in_dims: Sequence[int]) -> tuple[int, ...]:
        dims = super().check_in_dims(in_dims)
        if self.in_dims is not None and dims != self.in_dims:
            raise ValueError(
                f"in_dims={list(dims)} differ from the in_dims={list(self.in_dims)} "
                f"{type(self).__name__} was built for"
            )
        return dims


class ConcatFusion(_Concatenation):
    r"""Concatenation along the last dimension, :math:`y = [x_1, \dots, x_k]`, with absent
    inputs replaced by zeros of their width: :math:`y = [m_1 x_1, \dots, m_k x_k]`.

    Args:
        in_dims: the widths ``n_i`` to accept (this also fixes ``k``); ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors ``(..., n_i)`` with the same leading dimensions.
        - mask: ``(k,)`` or ``(..., k)``, bool.
        - Output: ``(..., Σ n_i)``.

    Example:
        >>> f = ConcatFusion()
        >>> f([torch.ones(2, 3), torch.zeros(2, 1)]).shape, f.out_features([3, 1])
        (torch.Size([2, 4]), 4)
        >>> f([torch.ones(1, 2), torch.ones(1, 1)], mask=torch.tensor([False, True]))
        tensor([[0., 0., 1.]])
    """

    linear = True

    def __init__(
        self,
        in_dims: Sequence[int] | None = None,
        *,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dims, names, input_dropout)

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return concat(xs, mask)

    def out_features(self, in_dims: Sequence[int]) -> int:
        return sum(self.check_in_dims(in_dims))

    def get_config(self) -> dict[str, Any]:
        return {"in_dims": None if self.in_dims is None else list(self.in_dims)}


class ProjectedConcatFusion(_Concatenation):
    r"""Concatenation followed by a learnable projection, :math:`y = W [x_1, \dots, x_k] + b`,
    absent inputs counting as zeros.

    :math:`W \in R^{n' \times \sum n_i}` is any structured matrix of :mod:`interfuse.matrices`
    (the :class:`torch.nn.Linear` layout), so the parameters are those of the matrix (the
    family table of the structured-matrices page, one row per entry of
    :data:`interfuse.matrices.MATRICES`) plus ``n'`` for the bias. Dense, low-rank and
    random-adapted matrices compute
    :math:`\sum_i W_i x_i` (one GEMM per input, accumulated in place): the concatenation is
    never built. The Kronecker family needs the concatenated row and builds it.

    Args:
        in_dims: the widths ``n_i`` of the ``k`` inputs.
        out_dim: the output width ``n'``.
        matrix: a name of :data:`interfuse.matrices.MATRICES` (or an alias such as ``'hm'``,
            ``'lphm'``, ``'rma'``), a :class:`~interfuse.matrices.StructuredMatrix` class, or
            an instance of shape ``(out_dim, Σ in_dims)``, which this module then owns (kept
            as initialized; moved in place when ``device``/``dtype`` are given).
        bias: whether to add a learnable bias ``b ∈ R^{n'}``.
        matrix_options: constructor options of the matrix (``rank``, ``p``, ``q``, ``seed``,
            ``mode``, ...) when ``matrix`` is a name or a class.
        device: device of the parameters.
        dtype: dtype of the parameters.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors ``(..., n_i)`` with the same leading dimensions.
        - mask: ``(k,)`` or ``(..., k)``, bool.
        - Output: ``(..., out_dim)``.

    Example:
        >>> f = ProjectedConcatFusion([64, 32], 16, matrix="lowrank", matrix_options={"rank": 4})
        >>> f.num_parameters  # 4·(96 + 16) + 16
        464
        >>> f([torch.randn(8, 64), torch.randn(8, 32)]).shape
        torch.Size([8, 16])
    """

    linear = True

    bias: Tensor | None
    in_dims: tuple[int, ...]

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dim: int,
        matrix: str | StructuredMatrix | type[StructuredMatrix] = "dense",
        bias: bool = True,
        matrix_options: dict[str, Any] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(check_dims("in_dims", in_dims), names, input_dropout)
        self._total_width = sum(self.in_dims)
        self.out_dim = check_positive_int("out_dim", out_dim)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.matrix = build_owned_matrix(
            "ProjectedConcatFusion",
            matrix,
            self._total_width,
            self.out_dim,
            matrix_options,
            device,
            dtype,
        )
        ref = next(self.matrix.parameters())
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_dim, device=ref.device, dtype=ref.dtype))
        else:
            self.register_parameter("bias", None)
        self._reset_bias()  # the matrix initialized itself (or came initialized)

    def reset_parameters(self) -> None:
        """Re-initialize the matrix (its own scheme) and the bias (as :class:`nn.Linear`)."""
        self.matrix.reset_parameters()
        self._reset_bias()

    def _reset_bias(self) -> None:
        if self.bias is not None:
            bound = 1 / math.sqrt(self._total_width)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        pieces = xs if mask is None else masked_inputs(xs, mask)
        # Read from the dicts: nn.Module.__getattr__ costs about half a microsecond a name.
        matrix: StructuredMatrix = self._modules["matrix"]  # type: ignore[assignment]
        bias = self._parameters.get("bias")
        if type(matrix) is DenseMatrix and self._small(pieces[0]):
            weight: Tensor = matrix._parameters["weight"]  # type: ignore[assignment]
            # Widths (in_dims), device (the module's) and the bias are checked: only a dtype
            # can differ, which the product refuses; the matrix's own message then says why.
            try:
                return _dense_linear(torch.cat(pieces, -1), weight, bias)
            except RuntimeError:
                check_operand("x", pieces[0], weight, "DenseMatrix")
                raise
        return matrix(pieces, bias=bias)

    def _small(self, first: Tensor) -> bool:
        """Whether a plain dense matrix (not parametrized) multiplies the concatenation: it
        holds at most ``SMALL_BYTES``, or code is being traced or exported. Otherwise the
        matrix projects piece by piece, never concatenating. (``first`` has the checked
        width ``in_dims[0]``.)"""
        rows = first.numel() // self.in_dims[0]
        return plain_size(rows * self._total_width * first.element_size())

    def out_features(self, in_dims: Sequence[int]) -> int:
        self.check_in_dims(in_dims)
        return self.out_dim

    def get_config(self) -> dict[str, Any]:
        return {
            "in_dims": list(self.in_dims),
            "out_dim": self.out_dim,
            "matrix": self.matrix,
            "bias": self.bias is not None,
            "matrix_options": None,
        }

    @property
    def is_linear(self) -> bool:
        r"""Linear without bias only: a bias ``b`` turns :math:`X (A + \mathbf{1} b^\top)` into
        :math:`XA + (X\mathbf{1}) b^\top`."""
        return super().is_linear and self.bias is None

    def extra_repr(self) -> str:
        name = next((k for k, c in MATRICES.items() if type(self.matrix) is c), None)
        options = {
            k: v
            for k, v in self.matrix.get_config().items()
            if k not in ("in_features", "out_features") and not (k == "mode" and v == "auto")
        }
        text = (
            f"in_dims={list(self.in_dims)}, out_dim={self.out_dim}, "
            f"matrix={name or type(self.matrix).__name__!r}, bias={self.bias is not None}"
        )
        text += f", matrix_options={options!r}" if options else ""
        return text + "".join(f", {k}={v!r}" for k, v in self.input_options().items())
