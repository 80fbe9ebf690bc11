r"""The structured variants shared by the three parameterized families of the tinyBIG face.

A parameterized concatenation fusion (``W`` of shape ``(n, D)``), a parameterized
interdependence (``A`` of shape ``(d, d')``) and a bilinear one (``W`` of shape ``(d, d)``)
each take the same five structures: :class:`LowRank`, :class:`HM`, :class:`LPHM`,
:class:`DualLPHM` and :class:`RandomAdaption`. A variant class is one of these mixins and its
family's plain class (``lowrank_parameterized_interdependence(LowRank,
parameterized_interdependence)``); the mixin takes tinyBIG's leading arguments (``r``, ``p``,
``q``, ``name``) and hands the rest to the family. Layouts and counts are in
:mod:`interfuse.tinybig.fabrication`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from interfuse._validation import check_seed
from interfuse.matrices.random_adapted import SeededFactors, draw_random_factors
from interfuse.tinybig._base import TinybigFunction
from interfuse.tinybig.fabrication import Fabrication, random_factor_buffers

__all__ = ["HM", "LPHM", "DualLPHM", "Fabricated", "LowRank", "RandomAdaption"]


class Fabricated:
    """What the three families share: the fabrication ``_fab`` of their ``_dims()`` matrix
    from ``w``, its checks, and the random-adaption factors ``R_A``, ``R_B`` (buffers)."""

    _fab: Fabrication = Fabrication("reshape")
    parameter_fabrication: Fabrication | None = None
    r: int
    p: int
    q: int
    kronecker: bool = False
    seed: int
    _dims: Callable[[], tuple[int, int | None]]  # each family's matrix shape, and its names
    _dim_names: Callable[[], tuple[str, str]]

    def _fabricate(
        self: Any,
        kind: str,
        r: object = None,
        p: object = None,
        q: object = None,
        kronecker: object = False,
        random_factors: object = None,
        seed: object = 0,
    ) -> None:
        fab = Fabrication(kind, r=r, p=p, q=p if q is None else q, kronecker=kronecker)  # type: ignore[arg-type]
        if r is not None:
            self.r = fab.r
        if p is not None:
            if not isinstance(kronecker, bool):
                raise TypeError(f"kronecker must be a bool, got {kronecker!r}")
            self.p, self.q, self.kronecker = fab.p, fab.q, kronecker
        self._fab = self.parameter_fabrication = fab
        if p is not None:
            self._check_fab_shape()
        if kind == "random_matrix_adaption":
            self.seed, self._seeded = check_seed(seed), random_factors is None
            d, d_prime = self._dims()
            ra, rb = random_factor_buffers(self, d, d_prime, random_factors)
            self.register_buffer("R_A", ra)
            self.register_buffer("R_B", rb)

    def _check_fab_shape(self) -> None:
        d, d_prime = self._dims()
        owner = type(self).__name__
        self._fab.check_shape(d, d_prime or 0, names=self._dim_names(), owner=owner)

    def _random_factors(self: Any) -> tuple[Tensor, Tensor] | None:
        ra, rb = self._buffers.get("R_A"), self._buffers.get("R_B")
        return None if ra is None or rb is None else (ra, rb)

    def _refabricate(self: Any) -> None:
        # after a rebinding: re-check, and redraw random factors whose shape changed
        self._check_fab_shape()
        factors = self._random_factors()
        d, d_prime = self._dims()
        if factors is not None and (factors[0].shape[0], factors[1].shape[0]) != (d, d_prime):
            ra, rb = random_factor_buffers(self, d, d_prime, None)
            if ra is not None and rb is not None:
                self.R_A = ra.to(factors[0].device, factors[0].dtype)
                self.R_B = rb.to(factors[1].device, factors[1].dtype)


class LowRank(Fabricated, TinybigFunction):
    """Low-rank structure ``U V`` (rank ``r``).

    Args:
        r: the rank.
        name: the function's name (default: the class's).
        **kwargs: the arguments of the family's plain class.
    """

    def __init__(self, r: int = 2, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or type(self).__name__, **kwargs)
        self._fabricate("lowrank", r=r)


class HM(Fabricated, TinybigFunction):
    """The "hypercomplex" structure: factors ``a (p, q)`` and ``b (d/p, d'/q)``, combined by
    tinyBIG's reshaped outer product, or by ``a ⊗ b`` with ``kronecker=True``.

    Args:
        p: rows of the first factor; must divide the rows of the matrix.
        q: columns of the first factor (default ``p``); must divide its columns.
        name: the function's name (default: the class's).
        kronecker: use the true Kronecker product.
        **kwargs: the arguments of the family's plain class.
    """

    def __init__(
        self,
        p: int,
        q: int | None = None,
        name: str | None = None,
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name or type(self).__name__, **kwargs)
        self._fabricate("hm", p=p, q=q, kronecker=kronecker)


class LPHM(Fabricated, TinybigFunction):
    """:class:`HM` whose second factor is low-rank, ``b = S T`` (rank ``r``).

    Args:
        r: the rank of ``b``; the other arguments as :class:`HM`.
    """

    _kind = "lphm"

    def __init__(
        self,
        r: int,
        p: int,
        q: int | None = None,
        name: str | None = None,
        *,
        kronecker: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name or type(self).__name__, **kwargs)
        self._fabricate(self._kind, r=r, p=p, q=q, kronecker=kronecker)


class DualLPHM(LPHM):
    """:class:`HM` with both factors low-rank, ``a = P Q`` and ``b = S T`` (rank ``r``);
    arguments as :class:`LPHM`."""

    _kind = "dual_lphm"


class RandomAdaption(SeededFactors, Fabricated, TinybigFunction):
    """Random-matrix adaption ``diag(λ₁) R_A diag(λ₂) R_Bᵀ``: ``λ`` from ``w``, the frozen
    ``R_A``, ``R_B`` registered buffers, given or drawn from ``seed``.

    Args:
        r: the rank of the random factors; ``name`` and ``**kwargs`` as :class:`LowRank`.
        random_factors: ``(R_A, R_B)`` or ``{'A': R_A, 'B': R_B}`` to use (copied; checked by
            :func:`~interfuse.matrices.random_adapted.check_random_factors`); else drawn by
            :func:`~interfuse.matrices.random_adapted.draw_random_factors` from ``seed``.
        seed: seed of the CPU generator that draws them.

    The seed travels in the ``state_dict`` (:class:`~interfuse.matrices.random_adapted.
    SeededFactors`), so a loaded module's config agrees with its factors.
    """

    def _config_value(self, key: str, value: Any) -> Any:
        return self.seed if key == "seed" else super()._config_value(key, value)

    def _seeded_draw(self) -> tuple[Tensor, Tensor] | None:
        d, d_prime = self._dims()
        return None if d_prime is None else draw_random_factors(d, d_prime, self.r, self.seed)

    def __init__(
        self,
        r: int = 2,
        name: str | None = None,
        random_factors: object = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name or type(self).__name__, **kwargs)
        self._fabricate("random_matrix_adaption", r=r, random_factors=random_factors, seed=seed)
