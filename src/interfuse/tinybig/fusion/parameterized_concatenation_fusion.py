r"""tinyBIG's ``tinybig.fusion.parameterized_concatenation_fusion``: concatenation and a
learned projection ``(A₁ ⊔ … ⊔ A_k) Wᵀ``, ``W ∈ R^{n×D}`` (``D = Σ nᵢ``) read from ``w``.

The layouts of ``w`` and their counts ``l`` are in :mod:`interfuse.tinybig.fabrication` (with
``(n, D)`` as here); each input meets its own column block of ``W`` (no concatenation is built
where the product allows it).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interfuse._validation import check_positive_int
from interfuse.tinybig._structured import HM, LPHM, DualLPHM, Fabricated, LowRank, RandomAdaption
from interfuse.tinybig.errors import (
    ValueAssertionError,
    ValueAttributeError,
    ValueRuntimeError,
)
from interfuse.tinybig.module.base_fusion import Dims, fusion

__all__ = [
    "dual_lphm_parameterized_concatenation_fusion",
    "hm_parameterized_concatenation_fusion",
    "lowrank_parameterized_concatenation_fusion",
    "lphm_parameterized_concatenation_fusion",
    "parameterized_concatenation_fusion",
    "random_matrix_adaption_parameterized_concatenation_fusion",
]


class parameterized_concatenation_fusion(Fabricated, fusion):
    r"""Concatenation followed by a learned projection to ``n`` outputs, ``W`` read from ``w``.

    .. math:: \text{fusion}(A_1, …, A_k) = (A_1 \sqcup \cdots \sqcup A_k)\, W^\top,
              \qquad W = \text{reshape}(w) \in R^{n \times D},\; l = nD

    ``W`` has the :class:`torch.nn.Linear` layout: ``w`` is ``W`` row-major. ``n`` defaults to
    ``dims[0]`` when all widths are equal. Inputs whose widths differ from ``dims`` but add up
    to ``D`` are projected as tinyBIG did, with a :class:`TinybigWarning`.

    Args:
        n: the output width, or ``None`` for ``dims[0]``.
        dims: widths ``n_i`` of the inputs (needed for ``calculate_l`` and ``forward``).
        require_parameters: ignored, as in tinyBIG.
        **kwargs: every other argument as :class:`fusion`.

    Shape:
        - Input: ``k`` tensors ``(*, n_i)`` with equal leading dimensions; ``w``: ``(1, l)``,
          ``(l,)`` or any shape of ``l`` elements (the structured variants: 1 or 2 dims).
        - Output: ``(*, n)``.

    Example:
        >>> f = parameterized_concatenation_fusion(n=1, dims=[1, 1])
        >>> f.calculate_l()
        2
        >>> f([torch.ones(1, 1), torch.ones(1, 1)], w=torch.tensor([[2.0, 3.0]]))
        tensor([[5.]])
    """

    def __init__(
        self,
        n: int | None = None,
        dims: Dims | None = None,
        name: str = "parameterized_concatenation_fusion",
        require_parameters: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(dims=dims, name=name, require_parameters=True, **kwargs)
        if n is not None:
            self.n = check_positive_int("n", n)
        else:
            if self.dims is None or any(d != self.dims[0] for d in self.dims):
                raise ValueAssertionError(
                    "n is required unless dims are all equal (then n = dims[0]); got n=None and "
                    f"dims={None if self.dims is None else list(self.dims)}"
                )
            self.n = int(self.dims[0])
        self.parameter_fabrication = self._fab

    @property
    def D(self) -> int | None:
        """The concatenated width ``Σ dims`` (``None`` without ``dims``)."""
        return None if self.dims is None else int(sum(self.dims))

    def _dims(self) -> tuple[int, int | None]:
        return self.n, self.D

    def _dim_names(self) -> tuple[str, str]:
        return "n", "D"

    def _check_fab_shape(self) -> None:
        D = self._require_D("__init__")
        self._fab.check_shape(self.n, D, owner=type(self).__name__)

    def _require_D(self, what: str) -> int:
        D = self.D
        if D is None:
            raise ValueAssertionError(
                f"{type(self).__name__}.{what} needs dims to know the concatenated width "
                f"D = sum(dims); got dims=None (n={self.n})"
            )
        return D

    def calculate_n(self, dims: Dims | None = None, *args: Any, **kwargs: Any) -> int:
        """The output width ``n`` (``dims`` is ignored, as in tinyBIG)."""
        return self.n

    def calculate_l(self, *args: Any, **kwargs: Any) -> int:
        """The length of ``w`` (``n·D`` here; smaller for the structured variants)."""
        return self._fab.calculate_l(self.n, self._require_D("calculate_l"))

    _same_shape = False

    def _check_widths(self, xs: list[Tensor]) -> None:
        D = self._require_D("forward")
        width = sum(t.shape[-1] for t in xs)
        if width != D:  # tinyBIG's matmul failed here
            raise ValueRuntimeError(
                f"the inputs have widths {[t.shape[-1] for t in xs]} (concatenated: {width}) but "
                f"W is {self.n}×{D} for dims={list(self.dims or [])}"
            )

    def _fuse(self, xs: list[Tensor], w: Tensor | None) -> Tensor:
        """``cat(x) @ Wᵀ`` with ``W`` fabricated from ``w``."""
        D = self._require_D("forward")
        if w is None:
            raise ValueAttributeError(
                f"w is required: {type(self).__name__} needs l={self.calculate_l()} parameters "
                "(shape (1, l)), got w=None"
            )
        if self._fab.kind == "reshape" and isinstance(w, Tensor) and w.numel() != self.n * D:
            raise ValueRuntimeError(  # tinyBIG's reshape failed here
                f"w must hold l=n*D={self.n}*{D}={self.n * D} parameters "
                f"(shape (1, {self.n * D})), got shape {tuple(w.shape)}"
            )
        return self._fab.apply(
            xs,
            w,
            self.n,
            D,
            random_factors=self._random_factors(),
            # forward checked the widths; pre-processing may have changed them since
            widths_checked=not self.preprocess_functions,
        )

    def matrix(self, w: Tensor) -> Tensor:
        """Materialize ``W`` of shape ``(n, D)`` from ``w`` (for inspection and tests)."""
        return self._fab.matrix(
            w, self.n, self._require_D("matrix"), random_factors=self._random_factors()
        )


class lowrank_parameterized_concatenation_fusion(LowRank, parameterized_concatenation_fusion):
    r"""Parameterized concatenation with a rank-``r`` matrix ``W = U V`` (fabrication table).

    ``U = w[:rn].view(n, r)``, ``V = w[rn:].view(r, D)``, applied as ``(x Vᵀ) Uᵀ``. Arguments
    after ``name`` are keyword-only, as ``n`` and ``dims`` were in tinyBIG.

    Example:
        >>> lowrank_parameterized_concatenation_fusion(r=1, n=2, dims=[2, 2]).calculate_l()
        6
    """


class hm_parameterized_concatenation_fusion(HM, parameterized_concatenation_fusion):
    r"""Parameterized concatenation with a "hypercomplex" (HM) matrix from two small factors.

    With ``s = n/p`` and ``t = D/q``, ``a = w[:pq]`` and ``b = w[pq:]`` (``l = pq + st``):
    by default ``W = reshape(outer(a, b), (n, D))``, the reshaped outer product tinyBIG 0.2.1
    computes (rank 1 in general); with ``kronecker=True``, ``W = a.view(p, q) ⊗ b.view(s, t)``,
    the Kronecker product its docs describe, applied without building ``W``.

    Example:
        >>> x = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]
        >>> w = torch.arange(1.0, 9.0).view(1, 8)
        >>> hm_parameterized_concatenation_fusion(p=2, n=4, dims=[2, 2])(x, w)
        tensor([[ 70., 140., 210., 280.]])
        >>> hm_parameterized_concatenation_fusion(p=2, n=4, dims=[2, 2], kronecker=True)(x, w)
        tensor([[ 95., 129., 207., 281.]])
    """


class lphm_parameterized_concatenation_fusion(LPHM, parameterized_concatenation_fusion):
    r"""HM fusion whose second factor is low-rank: ``B = S T`` (LPHM).

    ``a = w[:pq]``, ``S = w[pq:pq+sr].view(s, r)``, ``T = w[pq+sr:].view(r, t)``; ``W`` as in
    :class:`hm_parameterized_concatenation_fusion`.
    """


class dual_lphm_parameterized_concatenation_fusion(DualLPHM, parameterized_concatenation_fusion):
    r"""HM fusion with both factors low-rank: ``A = P Q``, ``B = S T`` (dual LPHM).

    ``P (p, r)``, ``Q (r, q)``, ``S (s, r)``, ``T (r, t)`` read consecutively from ``w``; ``W``
    as in :class:`hm_parameterized_concatenation_fusion`.
    """


class random_matrix_adaption_parameterized_concatenation_fusion(
    RandomAdaption, parameterized_concatenation_fusion
):
    r"""Parameterized concatenation with a random-matrix-adapted ``W`` (frozen random factors).

    .. math:: W = \Lambda_1 R_A \Lambda_2 R_B^\top,\quad \Lambda_1 = \text{diag}(w_{:n}),\;
              \Lambda_2 = \text{diag}(w_{n:n+r}),\qquad l = n + r

    ``R_A ∈ R^{n×r}``, ``R_B ∈ R^{D×r}``: registered buffers, saved in the ``state_dict``,
    moved by ``.to()``, never redrawn (tinyBIG drew them unseeded on the first call and did not
    save them). ``l = n + r`` follows tinyBIG's code (its docstring said ``D + r``).

    Example:
        >>> f = random_matrix_adaption_parameterized_concatenation_fusion(r=2, n=3, dims=[2, 2, 2])
        >>> f.calculate_l(), tuple(f.R_B.shape)
        (5, (6, 2))
    """
