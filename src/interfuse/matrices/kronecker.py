r"""Kronecker-structured matrices ("hypercomplex multiplication" in the RPN 2 paper).

``W = A ⊗ B`` with ``A ∈ R^{p×q}`` and ``B ∈ R^{s×t}``, ``out = p·s``, ``in = q·t``. This is the
true Kronecker product (``torch.kron``), whose rank is ``rank(A)·rank(B)``; tinyBIG 0.2.1 ships
a reshaped outer product instead (see ``interfuse.tinybig``). The product is applied as
``A X Bᵀ`` on the input viewed as ``(q, t)`` blocks, never forming ``W``.

| class | A | B | parameters |
|---|---|---|---|
| :class:`KroneckerMatrix` | dense ``p×q`` | dense ``s×t`` | ``pq + st`` |
| :class:`LowRankKroneckerMatrix` | dense ``p×q`` | ``S T``, rank ``r`` | ``pq + r(s + t)`` |
| :class:`DualLowRankKroneckerMatrix` | ``P Q``, rank ``r`` | ``S T``, rank ``r`` | \
``r(p + q + s + t)`` |

Leaving ``p`` and ``q`` as ``None`` picks the divisors of ``out`` and ``in`` that minimize the
parameter count (``pq ≈ √(in·out)`` for the plain Kronecker matrix). On sizes without divisors
near their square root (a prime such as 1021) that choice makes one factor a vector and caps
the rank: a :class:`~interfuse.matrices.StructureWarning` names the split.

``from_dense`` takes the nearest Kronecker product (Van Loan–Pitsianis): with ``R(W)`` the
``(pq, st)`` rearrangement whose row ``i·q + j`` is the block ``W_ij`` flattened,
``‖W − A ⊗ B‖_F = ‖R(W) − vec(A) vec(B)ᵀ‖_F``, minimized by the leading singular pair of
``R(W)``; the low-rank forms then truncate the SVD of ``B`` (and ``A``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from interfuse._validation import check_divides, check_positive_int
from interfuse.functional.structured import (
    Inputs,
    dual_lowrank_kron_linear,
    dual_lowrank_kron_matrix,
    kron_linear,
    kron_matrix,
    lowrank_kron_linear,
    lowrank_kron_matrix,
)
from interfuse.matrices.base import StructuredMatrix, warn_structure
from interfuse.matrices.lowrank import energy_rank, svd_factors

__all__ = [
    "DualLowRankKroneckerMatrix",
    "KroneckerMatrix",
    "LowRankKroneckerMatrix",
    "choose_kronecker_factors",
    "nearest_kronecker",
]


_Cost = Callable[[int, int, int, int], int]


def nearest_kronecker(weight: Tensor, p: int, q: int) -> tuple[Tensor, Tensor]:
    r"""The Kronecker product ``A ⊗ B`` nearest to ``weight`` in the Frobenius norm.

    Van Loan–Pitsianis: ``‖W − A ⊗ B‖_F = ‖R(W) − vec(A) vec(B)ᵀ‖_F`` where ``R(W)`` is the
    ``(pq, st)`` matrix whose row ``i·q + j`` is the block ``W[i·s:(i+1)·s, j·t:(j+1)·t]``
    flattened; the leading singular pair ``σ u vᵀ`` of ``R(W)`` gives ``A = √σ u`` and
    ``B = √σ v`` (equal norms). Exact when ``W`` is a Kronecker product.

    Args:
        weight: ``W``, ``(p·s, q·t)``.
        p: rows of ``A`` (divides ``W``'s rows).
        q: columns of ``A`` (divides ``W``'s columns).

    Returns:
        ``A`` ``(p, q)`` and ``B`` ``(s, t)``.

    Example:
        >>> a, b = torch.randn(2, 3), torch.randn(4, 2)
        >>> a2, b2 = nearest_kronecker(torch.kron(a, b), 2, 3)
        >>> torch.allclose(torch.kron(a2, b2), torch.kron(a, b), atol=1e-5)
        True
    """
    out_features, in_features = weight.shape
    s = check_divides("p", p, "out_features", out_features)
    t = check_divides("q", q, "in_features", in_features)
    rearranged = weight.reshape(p, s, q, t).permute(0, 2, 1, 3).reshape(p * q, s * t)
    u, sv, vh = torch.linalg.svd(rearranged, full_matrices=False)
    root = sv[0].sqrt()
    return (u[:, 0] * root).reshape(p, q), (vh[0] * root).reshape(s, t)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def choose_kronecker_factors(
    in_features: int, out_features: int, cost: Callable[[int, int, int, int], int] | None = None
) -> tuple[int, int]:
    """Kronecker factor sizes ``(p, q)`` for an ``out_features × in_features`` matrix.

    Returns the ``(p, q)`` with ``p | out_features`` and ``q | in_features`` minimizing
    ``cost(p, q, s, t)``, where ``s = out_features / p`` and ``t = in_features / q`` (``A`` is
    ``(p, q)``, ``B`` is ``(s, t)``). Ties go to the most balanced split (``pq`` closest to
    ``st``), then to the largest attainable rank ``min(p, q)·min(s, t)``: for ``4096 → 1024``,
    ``p = 32, q = 64`` (rank up to 1024) rather than ``p = 1, q = 2048``, which has as few
    parameters but rank at most 2.

    Args:
        in_features: width of the input.
        out_features: width of the output.
        cost: ``cost(p, q, s, t)`` to minimize; ``None``: the parameter count ``pq + st`` of
            :class:`KroneckerMatrix`.

    Returns:
        ``(p, q)``.

    Example:
        >>> choose_kronecker_factors(4096, 1024)
        (32, 64)
        >>> rank_2_lphm = lambda p, q, s, t: p * q + 2 * (s + t)  # A ⊗ (S_L S_R), rank 2
        >>> choose_kronecker_factors(4096, 1024, cost=rank_2_lphm)
        (8, 32)
    """
    cost = cost or (lambda p, q, s, t: p * q + s * t)
    best: tuple[int, float, int, int, int] | None = None
    for p in _divisors(out_features):
        for q in _divisors(in_features):
            s, t = out_features // p, in_features // q
            balance = abs(math.log(max(p * q, 1) / max(s * t, 1)))
            key = (cost(p, q, s, t), balance, -min(p, q) * min(s, t), p, q)
            if best is None or key < best:
                best = key
    if best is None:  # pragma: no cover - 1 always divides
        raise ValueError("no Kronecker factors found")
    return best[3], best[4]


class _KroneckerBase(StructuredMatrix):
    """Shared shape bookkeeping: ``p | out``, ``q | in``, ``s = out/p``, ``t = in/q``."""

    config_keys: ClassVar[tuple[str, ...]] = ("p", "q")

    def __init__(
        self, in_features: int, out_features: int, p: int, q: int, mode: str, bias: bool
    ) -> None:
        super().__init__(in_features, out_features, mode, bias)
        self.p = check_positive_int("p", p)
        self.q = check_positive_int("q", q)
        self.s = check_divides("p", p, "out_features", out_features)
        self.t = check_divides("q", q, "in_features", in_features)

    def _kron_flops(self, rows: int, b_cost: int) -> int:
        # B first: rows·q blocks through B, then A mixes q blocks into p for each of s columns;
        # A first: A mixes q blocks of t into p, then rows·p blocks through B. The kernel
        # (:func:`~interfuse.functional.structured.kron_linear`) takes the cheaper order.
        b_first = self.q * b_cost + self.p * self.q * self.s
        a_first = self.p * self.q * self.t + self.p * b_cost
        return rows * min(b_first, a_first)

    @classmethod
    def _identity_rank(cls, p: int, s: int) -> int:
        """The rank option needed to represent ``I = I_p ⊗ I_s`` (0: no rank option)."""
        return 0

    @classmethod
    def identity_factors(cls, dim: int, **options: Any) -> tuple[int, int]:
        """Square factors ``(p, p)`` with which a ``dim × dim`` matrix of this class can start
        as the identity (``I_dim = I_p ⊗ I_{dim/p}``), with the fewest parameters.

        The automatic choice (``p = q = None``) minimizes parameters and is rarely square, so
        ``init='identity'`` of the interdependence modules asks here instead. Where the rank
        given (or the default) is too small for every ``p``, the cheapest ``p`` is returned and
        :meth:`reset_to_identity` says which rank is needed.

        Example:
            >>> KroneckerMatrix.identity_factors(128)
            (8, 8)
            >>> LowRankKroneckerMatrix.identity_factors(64, rank=4)
            (16, 16)
        """
        check_positive_int("dim", dim)
        rank = options.get("rank", inspect.signature(cls.__init__).parameters.get("rank"))
        if isinstance(rank, inspect.Parameter):
            rank = rank.default
        best: tuple[bool, int, float, int] | None = None
        for p in _divisors(dim):
            s = dim // p
            fits = cls._identity_rank(p, s) <= (rank or 0)
            count = cls.count_parameters(dim, dim, **{**options, "p": p, "q": p})
            key = (not fits, count, abs(math.log(p / s)), p)
            if best is None or key < best:
                best = key
        if best is None:  # pragma: no cover - 1 always divides
            raise ValueError("no Kronecker factors found")
        return best[3], best[3]

    @classmethod
    def identity_options(cls, dim: int, **options: Any) -> dict[str, Any]:
        chosen = dict(options)
        if "p" not in chosen and "q" not in chosen:
            chosen["p"], chosen["q"] = cls.identity_factors(dim, **chosen)
        return chosen

    @classmethod
    def _fit_kronecker(
        cls, weight: Tensor, options: dict[str, Any], cost: _Cost | None
    ) -> tuple[dict[str, Any], Tensor, Tensor]:
        out_features, in_features = weight.shape
        p, q = _resolve_pq(in_features, out_features, options.get("p"), options.get("q"), cost)
        a, b = nearest_kronecker(weight, p, q)
        return {**options, "p": p, "q": q}, a, b

    def _square_identity_check(self, rank: int | None = None) -> None:
        if self.in_features != self.out_features or self.p != self.q:
            raise ValueError(
                f"{type(self).__name__} can start as the identity only when square with p == q; "
                f"got in_features={self.in_features}, out_features={self.out_features}, "
                f"p={self.p}, q={self.q}"
            )
        needed = self._identity_rank(self.p, self.s)
        if rank is not None and rank < needed:
            raise ValueError(
                f"{type(self).__name__} with rank={rank} cannot represent the identity "
                f"(needs rank >= {needed} with p={self.p})"
            )


class KroneckerMatrix(_KroneckerBase):
    r"""``W = A ⊗ B``, ``A ∈ R^{p×q}``, ``B ∈ R^{(out/p)×(in/q)}``: ``l = pq + (out/p)(in/q)``.

    Args:
        in_features: width of the input (``q`` must divide it).
        out_features: width of the output (``p`` must divide it).
        p: rows of ``A``; ``None`` (with ``q=None``) picks the parameter-minimizing factors.
        q: columns of ``A``; defaults to ``p`` when only ``p`` is given.
        mode: ``'auto'``, ``'factored'`` or ``'dense'``.
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(..., in_features)`` (a list of pieces is concatenated first).
        - Output: ``(..., out_features)``.

    Example:
        >>> m = KroneckerMatrix(4096, 1024, p=32, q=64)
        >>> m.num_parameters  # 32·64 + 32·64
        4096
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: int | None = None,
        q: int | None = None,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        p, q = _resolve_pq(in_features, out_features, p, q, None)
        super().__init__(in_features, out_features, p, q, mode, bias)
        kw = self._factory(device, dtype)
        self.a = nn.Parameter(torch.empty(self.p, self.q, **kw))
        self.b = nn.Parameter(torch.empty(self.s, self.t, **kw))
        self._init_bias(**kw)
        self.reset_parameters()
        self._warn_if_larger_than_dense()

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        p, q = _resolve_pq(in_features, out_features, kwargs.get("p"), kwargs.get("q"), None)
        return p * q + (out_features // p) * (in_features // q)

    def reset_parameters(self) -> None:
        # Var(W) = Var(A)·Var(B) = (1/q)·(1/(3t)) = 1/(3·in), as for nn.Linear.
        bound_a = math.sqrt(3 / self.q)
        nn.init.uniform_(self.a, -bound_a, bound_a)
        nn.init.uniform_(self.b, -1 / math.sqrt(self.t), 1 / math.sqrt(self.t))
        self._reset_bias()

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        chosen, a, b = cls._fit_kronecker(weight, options, None)
        return chosen, {"a": a, "b": b}

    def reset_to_identity(self) -> None:
        self._square_identity_check()
        with torch.no_grad():
            self.a.copy_(torch.eye(self.p))
            self.b.copy_(torch.eye(self.s))

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return kron_linear(x, self.a, self.b, bias)

    def materialize(self) -> Tensor:
        return kron_matrix(self.a, self.b)

    def factored_flops(self, rows: int) -> int:
        return self._kron_flops(rows, self.t * self.s)


class LowRankKroneckerMatrix(_KroneckerBase):
    r"""``W = A ⊗ (S T)``, ``A ∈ R^{p×q}``, ``S ∈ R^{s×r}``, ``T ∈ R^{r×t}`` (LPHM).

    Parameters: ``l = pq + r·(out/p + in/q)``.

    Args:
        in_features: width of the input (``q`` must divide it).
        out_features: width of the output (``p`` must divide it).
        rank: rank ``r`` of the second factor.
        p: rows of ``A``; ``None`` picks the parameter-minimizing factors.
        q: columns of ``A``; defaults to ``p`` when only ``p`` is given.
        mode: ``'auto'``, ``'factored'`` or ``'dense'``.
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(..., in_features)``.
        - Output: ``(..., out_features)``.

    Example:
        >>> LowRankKroneckerMatrix(8, 4, rank=1, p=2, q=2).num_parameters  # 4 + 1·(2 + 4)
        10
    """

    config_keys = ("rank", "p", "q")

    @classmethod
    def _identity_rank(cls, p: int, s: int) -> int:
        return s  # B = S_L S_R must be I_s

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int = 2,
        p: int | None = None,
        q: int | None = None,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self_rank = check_positive_int("rank", rank)
        p, q = _resolve_pq(in_features, out_features, p, q, _lowrank_kron_cost(self_rank))
        super().__init__(in_features, out_features, p, q, mode, bias)
        self.rank = self_rank
        kw = self._factory(device, dtype)
        self.a = nn.Parameter(torch.empty(self.p, self.q, **kw))
        self.b_left = nn.Parameter(torch.empty(self.s, rank, **kw))
        self.b_right = nn.Parameter(torch.empty(rank, self.t, **kw))
        self._init_bias(**kw)
        self.reset_parameters()
        self._warn_if_larger_than_dense()

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        rank = check_positive_int("rank", kwargs.get("rank", 2))
        p, q = _resolve_pq(
            in_features,
            out_features,
            kwargs.get("p"),
            kwargs.get("q"),
            _lowrank_kron_cost(rank),
        )
        return p * q + rank * (out_features // p + in_features // q)

    def reset_parameters(self) -> None:
        bound_a = math.sqrt(3 / self.q)
        nn.init.uniform_(self.a, -bound_a, bound_a)
        nn.init.uniform_(self.b_left, -1 / math.sqrt(self.rank), 1 / math.sqrt(self.rank))
        bound_t = math.sqrt(3 / self.t)
        nn.init.uniform_(self.b_right, -bound_t, bound_t)
        self._reset_bias()

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        rank = options.get("rank", 2)
        cost = None if isinstance(rank, float) else _lowrank_kron_cost(rank)
        chosen, a, b = cls._fit_kronecker(weight, options, cost)
        b_left, b_right = svd_factors(b, rank)
        chosen["rank"] = b_left.shape[1]
        return chosen, {"a": a, "b_left": b_left, "b_right": b_right}

    def reset_to_identity(self) -> None:
        self._square_identity_check(self.rank)
        with torch.no_grad():
            self.a.copy_(torch.eye(self.p))
            self.b_left.copy_(torch.eye(self.s, self.rank))
            self.b_right.copy_(torch.eye(self.rank, self.t))

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return lowrank_kron_linear(x, self.a, self.b_left, self.b_right, bias)

    def materialize(self) -> Tensor:
        return lowrank_kron_matrix(self.a, self.b_left, self.b_right)

    def factored_flops(self, rows: int) -> int:
        return self._kron_flops(rows, self.rank * (self.s + self.t))


class DualLowRankKroneckerMatrix(_KroneckerBase):
    r"""``W = (P Q) ⊗ (S T)``, both Kronecker factors of rank ``r`` (dual LPHM).

    Parameters: ``l = r·(p + q + out/p + in/q)``.

    Args:
        in_features: width of the input (``q`` must divide it).
        out_features: width of the output (``p`` must divide it).
        rank: rank ``r`` of both factors.
        p: rows of the first factor; ``None`` picks the parameter-minimizing factors.
        q: columns of the first factor; defaults to ``p`` when only ``p`` is given.
        mode: ``'auto'``, ``'factored'`` or ``'dense'``.
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(..., in_features)``.
        - Output: ``(..., out_features)``.

    Example:
        >>> DualLowRankKroneckerMatrix(8, 4, rank=1, p=2, q=2).num_parameters  # 1·(2+2+2+4)
        10
    """

    config_keys = ("rank", "p", "q")

    @classmethod
    def _identity_rank(cls, p: int, s: int) -> int:
        return max(p, s)  # both A = P Q and B = S T must be identities

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int = 2,
        p: int | None = None,
        q: int | None = None,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        r = check_positive_int("rank", rank)
        p, q = _resolve_pq(in_features, out_features, p, q, _dual_cost(r))
        super().__init__(in_features, out_features, p, q, mode, bias)
        self.rank = r
        kw = self._factory(device, dtype)
        self.a_left = nn.Parameter(torch.empty(self.p, r, **kw))
        self.a_right = nn.Parameter(torch.empty(r, self.q, **kw))
        self.b_left = nn.Parameter(torch.empty(self.s, r, **kw))
        self.b_right = nn.Parameter(torch.empty(r, self.t, **kw))
        self._init_bias(**kw)
        self.reset_parameters()
        self._warn_if_larger_than_dense()

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        r = check_positive_int("rank", kwargs.get("rank", 2))
        p, q = _resolve_pq(
            in_features,
            out_features,
            kwargs.get("p"),
            kwargs.get("q"),
            _dual_cost(r),
        )
        return r * (p + q + out_features // p + in_features // q)

    def reset_parameters(self) -> None:
        # Var(PQ) = 1/q and Var(ST) = 1/(3t), so Var(W) = 1/(3·in).
        inv_r = 1 / math.sqrt(self.rank)
        nn.init.uniform_(self.a_left, -math.sqrt(3) * inv_r, math.sqrt(3) * inv_r)
        bound_q = math.sqrt(3 / self.q)
        nn.init.uniform_(self.a_right, -bound_q, bound_q)
        nn.init.uniform_(self.b_left, -inv_r, inv_r)
        bound_t = math.sqrt(3 / self.t)
        nn.init.uniform_(self.b_right, -bound_t, bound_t)
        self._reset_bias()

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        rank = options.get("rank", 2)
        cost = None if isinstance(rank, float) else _dual_cost(rank)
        chosen, a, b = cls._fit_kronecker(weight, options, cost)
        if isinstance(rank, float):  # the larger of the two ranks the fraction asks for
            sv_a = torch.linalg.svdvals(a)
            sv_b = torch.linalg.svdvals(b)
            rank = max(energy_rank(sv_a, rank), energy_rank(sv_b, rank))
        a_left, a_right = svd_factors(a, rank)
        b_left, b_right = svd_factors(b, rank)
        chosen["rank"] = rank
        return chosen, {"a_left": a_left, "a_right": a_right, "b_left": b_left, "b_right": b_right}

    def reset_to_identity(self) -> None:
        self._square_identity_check(self.rank)
        with torch.no_grad():
            self.a_left.copy_(torch.eye(self.p, self.rank))
            self.a_right.copy_(torch.eye(self.rank, self.q))
            self.b_left.copy_(torch.eye(self.s, self.rank))
            self.b_right.copy_(torch.eye(self.rank, self.t))

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return dual_lowrank_kron_linear(
            x, self.a_left, self.a_right, self.b_left, self.b_right, bias
        )

    def materialize(self) -> Tensor:
        return dual_lowrank_kron_matrix(self.a_left, self.a_right, self.b_left, self.b_right)

    def factored_flops(self, rows: int) -> int:
        return self._kron_flops(rows, self.rank * (self.s + self.t)) + self.p * self.q * self.rank


def _lowrank_kron_cost(rank: int) -> _Cost:
    return lambda p, q, s, t: p * q + rank * (s + t)


def _dual_cost(rank: int) -> _Cost:
    return lambda p, q, s, t: rank * (p + q + s + t)


def _resolve_pq(
    in_features: int,
    out_features: int,
    p: int | None,
    q: int | None,
    cost: Callable[[int, int, int, int], int] | None,
) -> tuple[int, int]:
    check_positive_int("in_features", in_features)
    check_positive_int("out_features", out_features)
    if p is None and q is None:
        p, q = choose_kronecker_factors(in_features, out_features, cost)
        s, t = out_features // p, in_features // q
        if min(p, q, s, t) == 1 and min(in_features, out_features) >= 16:
            warn_structure(
                f"the automatic Kronecker factors of a {out_features} × {in_features} matrix "
                f"are A {p} × {q} and B {s} × {t}: the sizes have no divisors near their square "
                f"roots, so one factor is a vector and the rank is at most "
                f"{min(p, q) * min(s, t)}; pass p and q, or use sizes with more divisors"
            )
        return p, q
    if p is None:
        raise ValueError(f"p must be given when q is given (q={q}); pass both or neither")
    p, q = check_positive_int("p", p), check_positive_int("q", p if q is None else q)
    check_divides("p", p, "out_features", out_features)
    check_divides("q", q, "in_features", in_features)
    return p, q
