r"""tinyBIG's ``tinybig.interdependence.parameterized_bilinear_interdependence``: ``A = Xᵀ W X``.

The square ``W`` (side ``d``) is fabricated from ``w`` as in the parameterized family
(``d' = d``); the math and its evaluation order are the kernel both faces use,
:mod:`interfuse.functional.bilinear`.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interfuse.functional.bilinear import (
    bilinear_apply,
    bilinear_costs,
    bilinear_matrix,
    bilinear_matrix_first,
)
from interfuse.tinybig._structured import HM, LPHM, DualLPHM, Fabricated, LowRank, RandomAdaption
from interfuse.tinybig.errors import ValueAssertionError, ValueRuntimeError
from interfuse.tinybig.fabrication import check_operands
from interfuse.tinybig.module.base_interdependence import Device, _got, check_w, interdependence

__all__ = [
    "dual_lphm_parameterized_bilinear_interdependence",
    "hm_parameterized_bilinear_interdependence",
    "lowrank_parameterized_bilinear_interdependence",
    "lphm_parameterized_bilinear_interdependence",
    "parameterized_bilinear_interdependence",
    "random_matrix_adaption_parameterized_bilinear_interdependence",
]


class parameterized_bilinear_interdependence(Fabricated, interdependence):
    r"""Bilinear interdependence: ``A = xᵀ W x`` with a learnable square ``W``.

    .. math::
        \mathbf{A} = \mathbf{X}^\top \mathbf{W} \mathbf{X}, \qquad l = d^2,

    For the **attribute** type ``X ∈ R^{b×m}``, ``W ∈ R^{b×b}`` (``d = b``: the batch must have
    exactly ``b`` rows) and ``A ∈ R^{m×m}``; for the **instance** type (the default, as in
    tinyBIG 0.2.1) the roles swap: ``W ∈ R^{m×m}`` (``d = m``), ``A = X W Xᵀ ∈ R^{b×b}`` for
    any batch size. ``W = reshape(w)`` (row-major); the variants fabricate it like the
    parameterized family (``d' = d``) and apply it factored. ``x`` is pre-processed before use
    and ``A`` post-processed; ``forward`` applies ``A`` without building it when that is
    cheaper.

    Args:
        interdependence_type: as :class:`interdependence`, but the default is ``'instance'``.
        **kwargs: every other argument as :class:`interdependence` (pre-processing applies
            to ``x`` before ``A`` is computed, post-processing to ``A``).

    Shape:
        - ``w``: ``(1, l)`` or ``(l,)``; ``x``: ``(b, m)`` (attribute) or ``(b_any, m)``.
        - output: ``(b_any, m)``; ``calculate_A``: ``(m, m)`` or ``(b_any, b_any)``.

    Example:
        >>> f = lowrank_parameterized_bilinear_interdependence(
        ...     b=2, m=4, r=1, interdependence_type='attribute')
        >>> x = torch.tensor([[2.0, 7, 6, 4], [6, 5, 0, 4]])
        >>> f.calculate_A(x, w=torch.tensor([[1.0, 2, 3, 4]]))[0]
        tensor([420., 574., 252., 392.])
    """

    def __init__(
        self,
        b: int,
        m: int,
        interdependence_type: str = "instance",
        name: str = "parameterized_bilinear_interdependence",
        require_parameters: bool = True,
        require_data: bool = True,
        device: Device = "cpu",
        **kwargs: Any,
    ) -> None:
        flags = (require_data, require_parameters)
        super().__init__(b, m, name, interdependence_type, *flags, device=device, **kwargs)

    def _dims(self) -> tuple[int, int]:
        d = self.m if self.is_instance else self.b
        return d, d

    def _dim_names(self) -> tuple[str, str]:
        side = "m" if self.is_instance else "b"
        return side, side

    def calculate_b_prime(self, b: int | None = None) -> int:
        """``b`` (bilinear interdependences keep the shape)."""
        return b if b is not None else self.b

    def calculate_m_prime(self, m: int | None = None) -> int:
        """``m`` (bilinear interdependences keep the shape)."""
        return m if m is not None else self.m

    def calculate_l(self) -> int:
        """Length of the flat ``w`` for the ``d × d`` matrix ``W``."""
        return self._fab.calculate_l(*self._dims())

    def _check_x_in(self, x: Tensor | None) -> Tensor:
        name = type(self).__name__
        if x is None:
            raise ValueAssertionError(f"{name}: x is required to compute A = xᵀ W x, got x=None")
        if not isinstance(x, Tensor) or x.ndim != 2:
            raise ValueAssertionError(f"{name}: x must be a 2-D tensor, got {_got(x)}")
        d = self._dims()[0]
        if x.size(0) != d:
            if self.is_instance:
                msg = f"x has {x.size(0)} attributes but W is {d}×{d} (m={d})"
            else:
                msg = (
                    f"the batch has {x.size(0)} rows but the attribute type's W is {d}×{d} "
                    f"(b={d}): batches must have exactly b rows"
                )
            raise ValueRuntimeError(f"{name}: {msg}")
        return x

    def _right(self, w: Tensor) -> Any:
        d = self._dims()[0]
        factors = self._random_factors()
        return lambda z: self._fab.apply(z, w, d, d, transpose=True, random_factors=factors)

    def _compute_A(self, x: Tensor | None, w: Tensor | None, device: Device) -> Tensor:
        """``A = xᵀ W x`` for the ``x`` given (``(b, m)``, or ``(m, b)`` for the instance type);
        a ``ValueAssertionError`` for a missing or misshapen ``x`` or ``w``, a
        ``ValueRuntimeError`` for an ``x`` that does not match the side of ``W``."""
        x = self._check_x_in(x)
        w = check_w(w, type(self).__name__, self.calculate_l())
        x = self.pre_process(x, device)
        return self.post_process(bilinear_matrix(x, self._right(w)), device)

    def _rows_times_A(
        self, rows: Tensor, x_in: Tensor | None, w: Tensor | None, device: Device, data: str
    ) -> Tensor:
        if self._cacheable or self._has_postprocess() or rows.is_sparse:
            return super()._rows_times_A(rows, x_in, w, device, data)
        x = self._check_x_in(x_in)
        w = check_w(w, type(self).__name__, self.calculate_l())
        x = self.pre_process(x, device)
        d, k = x.shape
        self._check_rows(rows, k)
        check_operands(rows, x, name=data, ref_name="x")
        # Dense cost for W: the face's fabrications have no flop model of their own.
        first = bilinear_matrix_first(bilinear_costs(1, rows.size(0), d, k, lambda r: r * d * d))
        return bilinear_apply(rows, x, self._right(w), matrix_first=first)

    def _shape_changed(self) -> None:
        self._refabricate()


class lowrank_parameterized_bilinear_interdependence(
    LowRank, parameterized_bilinear_interdependence
):
    r"""Bilinear interdependence with a low-rank ``W = U V``: ``l = 2 r d``.

    Example:
        >>> lowrank_parameterized_bilinear_interdependence(b=2, m=4, r=1).calculate_l()
        8
    """


class hm_parameterized_bilinear_interdependence(HM, parameterized_bilinear_interdependence):
    r"""Bilinear interdependence with an hm-structured ``W``: ``l = pq + d²/(pq)``."""


class lphm_parameterized_bilinear_interdependence(LPHM, parameterized_bilinear_interdependence):
    r"""Bilinear interdependence with an lphm-structured ``W``: ``l = pq + r(d/p + d/q)``."""


class dual_lphm_parameterized_bilinear_interdependence(
    DualLPHM, parameterized_bilinear_interdependence
):
    r"""Bilinear interdependence with a dual-lphm ``W``: ``l = r(p + q + d/p + d/q)``."""


class random_matrix_adaption_parameterized_bilinear_interdependence(
    RandomAdaption, parameterized_bilinear_interdependence
):
    r"""Bilinear interdependence with ``W = diag(λ₁) R_A diag(λ₂) R_Bᵀ`` (frozen ``R_A``,
    ``R_B`` of shape ``(d, r)``): ``l = d + r``.

    Example:
        >>> f = random_matrix_adaption_parameterized_bilinear_interdependence(b=4, m=6, r=2)
        >>> f.calculate_l(), tuple(f.R_B.shape)
        (8, (6, 2))
    """
