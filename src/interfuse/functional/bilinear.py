r"""The bilinear interdependence matrix ``A = Xᵀ W X`` and its evaluation order, for both faces.

For ``X`` of shape ``(..., d, k)`` and a square ``W`` (``d × d``) given as the map
``right(z) = z @ W`` (a structured matrix applied in factored form), ``A = Xᵀ W X`` is
``(..., k, k)``. Applied to data rows ``D`` (``(..., n, k)``), ``D A`` can be evaluated

| order | chain | multiply-adds (``c(r)``: ``right`` on ``r`` rows) |
|---|---|---|
| matrix first | ``A = (Xᵀ W) X``, then ``D A`` | ``c(k) + k²d`` to build, ``n k²`` to apply |
| data first | ``((D Xᵀ) W) X`` | ``2 n k d + c(n)`` |

and :func:`bilinear_costs` gives the three counts, :func:`bilinear_matrix_first` the choice.
The attribute axis of the modern face is ``X = x`` (``d = b``); its instance axis and the
tinyBIG face's instance type use ``X = xᵀ`` and transpose the data.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

__all__ = ["bilinear_apply", "bilinear_costs", "bilinear_matrix", "bilinear_matrix_first"]

RightMap = Callable[[Tensor], Tensor]


def bilinear_matrix(x: Tensor, right: RightMap, scale: float | None = None) -> Tensor:
    """``A = Xᵀ W X`` (times ``scale`` if given) for ``X`` ``(..., d, k)``.

    Example:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> bilinear_matrix(x, lambda z: z @ torch.eye(2))  # XᵀX
        tensor([[10., 14.],
                [14., 20.]])
    """
    a = right(x.transpose(-2, -1)) @ x
    return a if scale is None else a * scale


def bilinear_apply(
    data: Tensor, x: Tensor, right: RightMap, *, matrix_first: bool, scale: float | None = None
) -> Tensor:
    """``D (Xᵀ W X)`` (times ``scale``) for data ``D`` ``(..., n, k)``, in the order given.

    Example:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> eye = lambda z: z @ torch.eye(2)
        >>> bilinear_apply(x, x, eye, matrix_first=False).equal(x @ bilinear_matrix(x, eye))
        True
    """
    if matrix_first:
        return data @ bilinear_matrix(x, right, scale)
    out = right(data @ x.transpose(-2, -1)) @ x
    return out if scale is None else out * scale


def bilinear_costs(
    batch: int, rows: int, d: int, k: int, right_cost: Callable[[int], int]
) -> tuple[int, int, int]:
    """Multiply-adds of (building ``A``, applying it, the data-first chain) for ``batch``
    products of data ``(rows, k)`` with ``A = Xᵀ W X``, ``X`` ``(d, k)``; ``right_cost(r)`` is
    the cost of ``right`` on ``r`` rows."""
    build = right_cost(batch * k) + batch * k * d * k
    return build, batch * rows * k * k, batch * 2 * rows * k * d + right_cost(batch * rows)


def bilinear_matrix_first(costs: tuple[int, int, int]) -> bool:
    """Whether building ``A`` costs no more than the data-first chain."""
    build, apply, chain = costs
    return build + apply <= chain
