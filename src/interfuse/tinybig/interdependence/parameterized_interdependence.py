r"""tinyBIG's ``tinybig.interdependence.parameterized_interdependence``: ``A`` from ``w`` alone.

The layouts of ``w`` and their counts are in :mod:`interfuse.tinybig.fabrication`, with
``(n, D) = (d, d')``, the shape of ``A``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interfuse._validation import check_positive_int
from interfuse.tinybig._structured import HM, LPHM, DualLPHM, Fabricated, LowRank, RandomAdaption
from interfuse.tinybig.errors import ValueAttributeError
from interfuse.tinybig.module.base_interdependence import Device, check_w, interdependence

__all__ = [
    "dual_lphm_parameterized_interdependence",
    "hm_parameterized_interdependence",
    "lowrank_parameterized_interdependence",
    "lphm_parameterized_interdependence",
    "parameterized_interdependence",
    "random_matrix_adaption_parameterized_interdependence",
]


class _PrimesMixin:
    """``b'`` / ``m'`` of the classes that change the mixed axis (parameterized and rpn)."""

    b: int
    m: int
    b_prime: int
    m_prime: int
    _primes: tuple[int | None, int | None]
    is_instance: bool

    def _set_primes(self, b_prime: object, m_prime: object) -> None:
        self._primes = tuple(  # type: ignore[assignment]
            None if v is None else check_positive_int(n, v)
            for n, v in (("b_prime", b_prime), ("m_prime", m_prime))
        )
        self._default_primes()

    def _default_primes(self) -> None:
        b_prime, m_prime = self._primes
        self.b_prime = b_prime if b_prime is not None else self.b
        self.m_prime = m_prime if m_prime is not None else self.m

    def calculate_b_prime(self, b: int | None = None) -> int:
        """``b'`` for the instance type; ``b`` (or ``self.b``) for the attribute type."""
        if self.is_instance:
            return self.b_prime
        return b if b is not None else self.b

    def calculate_m_prime(self, m: int | None = None) -> int:
        """``m'`` for the attribute type; ``m`` (or ``self.m``) for the instance type."""
        if not self.is_instance:
            return self.m_prime
        return m if m is not None else self.m


class parameterized_interdependence(Fabricated, _PrimesMixin, interdependence):
    r"""Data-free interdependence: ``A`` is ``w`` reshaped (or fabricated) to ``(d, d')``.

    .. math::
        \xi(\mathbf{w}) = \text{reshape}(\mathbf{w}) = \mathbf{A} \in R^{d \times d'},
        \qquad l = d \cdot d',

    with ``(d, d') = (m, m')`` (attribute type) or ``(b, b')`` (instance type; batches of exactly
    ``b`` rows) and ``A[i, j] = w[i·d' + j]``. ``forward`` applies ``w`` without building ``A``
    where the structure allows; ``calculate_A`` returns the matrix.

    Args:
        b_prime: output instances ``b'`` of the instance type (default ``b``).
        m_prime: output attributes ``m'`` of the attribute type (default ``m``).
        **kwargs: every other argument as :class:`interdependence` (``A`` ignores ``x``;
            post-processing applies to ``A``).

    Shape:
        - ``w``: ``(1, l)`` or ``(l,)``.
        - ``x``: ``(b_any, m)`` (attribute) or ``(b, m)`` (instance); ``kappa_x`` likewise with
          any width for the instance type.
        - output: ``(b_any, m')`` or ``(b', m)``; ``calculate_A``: ``(m, m')`` or ``(b, b')``.

    Example:
        >>> f = parameterized_interdependence(b=5, m=3, m_prime=4)
        >>> f.calculate_l()
        12
        >>> x = torch.arange(15.0).view(5, 3)
        >>> f(x=x, w=torch.arange(12.0).view(1, 12))[0]
        tensor([20., 23., 26., 29.])
    """

    _A_uses_data = False

    def __init__(
        self,
        b: int,
        m: int,
        b_prime: int | None = None,
        m_prime: int | None = None,
        interdependence_type: str = "attribute",
        name: str = "parameterized_interdependence",
        require_parameters: bool = True,
        require_data: bool = False,
        device: Device = "cpu",
        **kwargs: Any,
    ) -> None:
        flags = (require_data, require_parameters)
        super().__init__(b, m, name, interdependence_type, *flags, device=device, **kwargs)
        self._set_primes(b_prime, m_prime)

    def _dims(self) -> tuple[int, int]:
        if self.is_instance:
            return self.b, self.calculate_b_prime()
        return self.m, self.calculate_m_prime()

    def _dim_names(self) -> tuple[str, str]:
        return ("b", "b_prime") if self.is_instance else ("m", "m_prime")

    def calculate_l(self) -> int:
        """Length of the flat ``w`` (the fabrication table)."""
        return self._fab.calculate_l(*self._dims())

    def _require_w(self, w: Tensor | None) -> Tensor:
        name = type(self).__name__
        n_w = self.calculate_l()
        if w is None:
            raise ValueAttributeError(
                f"{name}: w is required to compute A: pass l={n_w} parameters as shape "
                f"(1, {n_w}) or ({n_w},), got w=None"
            )
        return check_w(w, name, n_w)

    def _compute_A(self, x: Tensor | None, w: Tensor | None, device: Device) -> Tensor:
        """``A`` of shape ``(d, d')`` from ``w`` (``x`` is ignored); a ``ValueAttributeError``
        if ``w`` is ``None``, a ``ValueAssertionError`` if it does not hold ``l`` parameters."""
        A = self._fab.matrix(self._require_w(w), *self._dims(), self._random_factors())
        return self._check_A(self.post_process(A, device))

    def _rows_times_A(
        self, rows: Tensor, x_in: Tensor | None, w: Tensor | None, device: Device, data: str
    ) -> Tensor:
        # Attributes read directly (not through _cacheable, _has_postprocess): on every call.
        cacheable = not self.require_data and not self.require_parameters
        if cacheable or self.postprocess_functions or rows.is_sparse:
            return super()._rows_times_A(rows, x_in, w, device, data)
        d, d_prime = self._dims()
        if w is None or not self.require_parameters:  # else forward checked w already
            w = self._require_w(w)
        if rows.size(-1) != d:
            self._check_rows(rows, d)
        return self._fab.apply(
            rows,
            w,
            d,
            d_prime,
            transpose=True,
            random_factors=self._random_factors(),
            name=data,
            widths_checked=True,
        )

    def _shape_changed(self) -> None:
        self._default_primes()
        self._refabricate()


class lowrank_parameterized_interdependence(LowRank, parameterized_interdependence):
    r"""Low-rank ``A = U V``, ``U = w[:r·d].view(d, r)``, ``V = w[r·d:].view(r, d')``, applied
    factored: ``(X U) V``.

    Example:
        >>> f = lowrank_parameterized_interdependence(b=5, m=3, m_prime=4, r=2)
        >>> f.calculate_l()
        14
        >>> f.calculate_A(w=torch.arange(14.0).view(1, 14))[0]
        tensor([10., 11., 12., 13.])
    """


class hm_parameterized_interdependence(HM, parameterized_interdependence):
    r"""Hypercomplex-multiplication ``A`` from two small factors (fabrication table)."""


class lphm_parameterized_interdependence(LPHM, parameterized_interdependence):
    r"""Low-rank hm: the second factor is ``b = S T`` (fabrication table)."""


class dual_lphm_parameterized_interdependence(DualLPHM, parameterized_interdependence):
    r"""Dual low-rank hm: ``a = P Q`` and ``b = S T`` (fabrication table)."""


class random_matrix_adaption_parameterized_interdependence(
    RandomAdaption, parameterized_interdependence
):
    r"""Random-matrix adaption: ``A = diag(λ₁) R_A diag(λ₂) R_Bᵀ`` with ``λ₁ = w[:d]``,
    ``λ₂ = w[d:d+r]`` and the frozen ``R_A (d, r)``, ``R_B (d', r)``, applied factored.

    Example:
        >>> f = random_matrix_adaption_parameterized_interdependence(b=3, m=4, m_prime=5, r=2)
        >>> f.calculate_l(), tuple(f.R_A.shape), tuple(f.R_B.shape)
        (6, (4, 2), (5, 2))
    """
