r"""tinyBIG's parameter fabrication: how a flat ``w`` becomes a matrix ``W ∈ R^{n×D}``.

One :class:`Fabrication` serves the parameterized-concatenation fusions (``y = x Wᵀ``, with
``n`` the output and ``D = Σ dims`` the concatenated width) and the parameterized
interdependences (``A = W`` with ``(n, D) = (d, d')``, applied as ``x A``). The flat layouts
are tinyBIG 0.2.1's (spec §4), so its checkpoints give the same numbers; every product runs
on the factored kernels of :mod:`interfuse.functional`, on views of ``w`` (no copies).

| kind | l | W |
|---|---|---|
| ``reshape`` | ``nD`` | ``w.view(n, D)`` |
| ``lowrank`` | ``r(n + D)`` | ``w[:rn].view(n, r) @ w[rn:].view(r, D)`` |
| ``hm`` | ``pq + st`` | compat: ``outer(a, b).view(n, D)``; ``kronecker=True``: ``a.view(p, q) ⊗ b.view(s, t)`` |
| ``lphm`` | ``pq + r(s + t)`` | as hm with ``b = S T``, ``S (s, r)``, ``T (r, t)`` |
| ``dual_lphm`` | ``r(p + q + s + t)`` | as hm with ``a = P Q`` and ``b = S T`` |
| ``random_matrix_adaption`` | ``n + r`` | ``diag(w[:n]) R_A diag(w[n:]) R_Bᵀ``, ``R_A (n, r)``, ``R_B (D, r)`` |

with ``s = n/p`` and ``t = D/q``. tinyBIG's hm family computes a reshaped outer product, not
the Kronecker product its docs describe: the two agree only when ``q = 1`` or ``p = n``, and the
outer product can have rank 1 where ``A ⊗ B`` has full rank. ``kronecker=True`` gives the
documented ``A ⊗ B`` on the same flat layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from interfuse._validation import autocast_dtype
from interfuse.functional.structured import (
    Inputs,
    as_tensor_input,
    dense_linear,
    dual_lowrank_kron_linear,
    kron_linear,
    lowrank_kron_linear,
    lowrank_linear,
    random_adapted_linear,
    random_adapted_matrix,
)
from interfuse.tinybig.errors import (
    ValueAssertionError,
    ValueAttributeError,
    ValueRuntimeError,
)

__all__ = ["KINDS", "Fabrication"]

KINDS = ("reshape", "lowrank", "hm", "lphm", "dual_lphm", "random_matrix_adaption")


def check_operands(x: Inputs, ref: Tensor, *, name: str = "x", ref_name: str = "w") -> None:
    """``x`` (a tensor or a list of them) must match ``ref`` in device and, outside autocast,
    dtype, and be floating: tinyBIG failed on a mismatch inside the matrix product with a bare
    ``RuntimeError``.

    Raises:
        ValueRuntimeError: naming the operand, its device or dtype and ``ref``'s.
    """
    pieces = [x] if isinstance(x, Tensor) else list(x)
    for i, t in enumerate(pieces):
        label = name if isinstance(x, Tensor) else f"{name}[{i}]"
        if t.device != ref.device:
            raise ValueRuntimeError(
                f"{label} is on {t.device} but {ref_name} is on {ref.device}; move them to one "
                "device"
            )
        if not t.is_floating_point():
            raise ValueRuntimeError(
                f"{label} has dtype {t.dtype}; the product with {ref_name} needs floating "
                f"inputs (convert with .to({ref.dtype}))"
            )
        if t.dtype != ref.dtype and autocast_dtype(t.device.type) is None:
            raise ValueRuntimeError(
                f"{label} has dtype {t.dtype} but {ref_name} has dtype {ref.dtype}; convert "
                f"one of them (e.g. {label}.to({ref.dtype}))"
            )


def given_random_factors(
    given: object, n: int, D: int | None, r: int, device: torch.device | str
) -> tuple[Tensor, Tensor]:
    """User-given random-adaption factors ``(R_A, R_B)``, checked and copied for a buffer.

    ``given`` is a pair or ``{'A': R_A, 'B': R_B}`` of tensors or array-likes of shapes
    ``(n, r)`` and ``(D, r)`` (``D=None``: any number of rows). The copies take the default
    dtype, as drawn factors have: float64 factors with float32 data would fail in the first
    product, and ``module.double()`` moves them with everything else.

    Raises:
        TypeError: ``given`` is not such a pair or holds something that is not array-like.
        ValueError: a mapping with other keys than ``'A'`` and ``'B'``.
        ValueAssertionError: the shapes do not fit.
    """
    if isinstance(given, Mapping):
        if set(given) != {"A", "B"}:
            raise ValueError(f"random_factors must have the keys 'A' and 'B', got {sorted(given)}")
        pair = [given["A"], given["B"]]
    elif isinstance(given, (tuple, list)) and len(given) == 2:
        pair = list(given)
    else:
        raise TypeError(
            "random_factors must be a pair (R_A, R_B) or {'A': R_A, 'B': R_B}, got "
            f"{type(given).__name__}"
        )
    try:
        ra, rb = (torch.as_tensor(f) for f in pair)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"random_factors must hold tensors or array-likes: {error}") from None
    if (
        ra.shape != (n, r)
        or rb.ndim != 2
        or rb.shape[1] != r
        or (D is not None and rb.shape[0] != D)
    ):
        want_d = "D" if D is None else str(D)
        raise ValueAssertionError(
            f"random_factors must have shapes ({n}, {r}) and ({want_d}, {r}), got "
            f"{tuple(ra.shape)} and {tuple(rb.shape)}"
        )
    dtype = torch.get_default_dtype()
    return (
        ra.detach().to(device=device, dtype=dtype, copy=True),
        rb.detach().to(device=device, dtype=dtype, copy=True),
    )


@dataclass(frozen=True)
class Fabrication:
    """A tinyBIG flat-``w`` layout (see the module table) bound to its hyper-parameters."""

    kind: str = "reshape"
    r: int | None = None
    p: int | None = None
    q: int | None = None
    kronecker: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        needs_r = self.kind in ("lowrank", "lphm", "dual_lphm", "random_matrix_adaption")
        for name in (("r",) if needs_r else ()) + (("p", "q") if self._hm else ()):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f"{name} must be a positive int for kind={self.kind!r}, got {value!r}"
                )

    @property
    def _hm(self) -> bool:
        return self.kind in ("hm", "lphm", "dual_lphm")

    # -- sizes --------------------------------------------------------------------------------
    def check_shape(
        self, n: int, D: int, *, names: tuple[str, str] = ("n", "D"), owner: str | None = None
    ) -> None:
        """tinyBIG's constructor asserts: ``p`` divides ``n`` and ``q`` divides ``D``.

        Args:
            n: rows of ``W``.
            D: columns of ``W``.
            names: what the caller calls ``n`` and ``D`` in the message (an interdependence
                passes its own arguments, e.g. ``("m", "m_prime")``).
            owner: the class name the message starts with, if any.

        Raises:
            ValueAssertionError: ``p`` does not divide ``n`` or ``q`` does not divide ``D``.
        """
        if self._hm:
            p, q = self._pq
            if n % p != 0 or D % q != 0:
                rows, cols = names
                prefix = f"{owner}: " if owner else ""
                raise ValueAssertionError(
                    f"{prefix}p={p} must divide {rows}={n} and q={q} must divide {cols}={D} "
                    f"(got {rows} % p = {n % p}, {cols} % q = {D % q})"
                )

    @property
    def _pq(self) -> tuple[int, int]:
        if self.p is None or self.q is None:  # pragma: no cover - checked in __post_init__
            raise ValueError("p and q are required")
        return self.p, self.q

    def calculate_l(self, n: int, D: int) -> int:
        """Length of the flat ``w`` for an ``n × D`` matrix."""
        r = self.r or 0
        if self.kind == "reshape":
            return n * D
        if self.kind == "lowrank":
            return r * (n + D)
        if self.kind == "random_matrix_adaption":
            return n + r
        p, q = self._pq
        s, t = n // p, D // q
        if self.kind == "hm":
            return p * q + s * t
        if self.kind == "lphm":
            return p * q + r * (s + t)
        return r * (p + q + s + t)

    def flat(self, w: Tensor | None, n: int, D: int) -> Tensor:
        """``w`` as a 1-D view of length ``l``; accepts ``(l,)``, ``(1, l)`` or any ``(·, ·)`` of
        numel ``l`` (tinyBIG's reshape variants did too)."""
        if w is None:
            raise ValueAttributeError(
                f"w is required: this {self.kind!r} fabrication needs l={self.calculate_l(n, D)} "
                "parameters, got w=None"
            )
        if not isinstance(w, Tensor):
            raise TypeError(f"w must be a torch.Tensor, got {type(w).__name__}")
        l = self.calculate_l(n, D)
        # tinyBIG's plain reshape took any shape of l elements; its fabrications, 1 or 2 dims.
        if w.numel() != l or (self.kind != "reshape" and w.ndim not in (1, 2)):
            raise ValueAssertionError(
                f"w must hold l={l} parameters as shape ({l},) or (1, {l}), got shape {tuple(w.shape)}"
            )
        if not w.is_floating_point():
            raise ValueRuntimeError(
                f"w has dtype {w.dtype}; the {self.kind!r} fabrication needs floating parameters "
                "(convert with .float())"
            )
        return w.reshape(-1)

    # -- the matrix and its product -------------------------------------------------------------
    def __call__(
        self,
        w: Tensor | None,
        n: int,
        D: int,
        device: str | torch.device = "cpu",
        random_factors: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """``W`` of shape ``(n, D)``, called as tinyBIG called its fabrications.

        ``device`` is accepted for tinyBIG's signature; ``W`` stays where ``w`` is. The
        random-matrix adaption needs the module's factors: ``random_factors=(f.R_A, f.R_B)``.

        Example:
            >>> Fabrication("lowrank", r=1)(torch.ones(5), n=2, D=3)
            tensor([[1., 1., 1.],
                    [1., 1., 1.]])
        """
        return self.matrix(w, n, D, random_factors)

    def matrix(
        self, w: Tensor | None, n: int, D: int, random_factors: tuple[Tensor, Tensor] | None = None
    ) -> Tensor:
        """Materialize ``W`` of shape ``(n, D)``."""
        f = self.flat(w, n, D)
        r = self.r or 0
        if self.kind == "reshape":
            return f.view(n, D)
        if self.kind == "lowrank":
            return f[: r * n].view(n, r) @ f[r * n :].view(r, D)
        if self.kind == "random_matrix_adaption":
            ra, rb = self._random(random_factors, n, D)
            return random_adapted_matrix(ra, rb, f[n : n + r], scale_out=f[:n])
        a, b = self._hm_factors(f, n, D)
        if self.kronecker:
            return torch.kron(a, b)
        return torch.outer(a.reshape(-1), b.reshape(-1)).reshape(n, D)

    def apply(
        self,
        x: Inputs,
        w: Tensor | None,
        n: int,
        D: int,
        *,
        transpose: bool = False,
        random_factors: tuple[Tensor, Tensor] | None = None,
        name: str = "x",
    ) -> Tensor:
        """``x @ Wᵀ`` (fusion) or, with ``transpose=True``, ``x @ W`` (interdependence).

        Factored wherever the structure allows; tinyBIG's compat hm family builds its reshaped
        outer product (it has no cheaper exact form), as the original does. ``name`` is what
        error messages call ``x``.
        """
        f = self.flat(w, n, D)
        check_operands(x, f, name=name)
        r = self.r or 0
        if self.kind == "reshape":
            W = f.view(n, D)
            return dense_linear(x, W.t() if transpose else W)
        if self.kind == "lowrank":
            U, V = f[: r * n].view(n, r), f[r * n :].view(r, D)
            return lowrank_linear(x, V.t(), U.t()) if transpose else lowrank_linear(x, U, V)
        if self.kind == "random_matrix_adaption":
            ra, rb = self._random(random_factors, n, D)
            lam_out, lam_r = f[:n], f[n : n + r]
            if transpose:
                return random_adapted_linear(x, rb, ra, lam_r, scale_in=lam_out)
            return random_adapted_linear(x, ra, rb, lam_r, scale_out=lam_out)
        if not self.kronecker:
            W = self.matrix(w, n, D)
            return F.linear(as_tensor_input(x), W.t() if transpose else W)
        return self._kron_apply(x, f, n, D, transpose)

    # -- internals --------------------------------------------------------------------------------
    def _hm_factors(self, f: Tensor, n: int, D: int) -> tuple[Tensor, Tensor]:
        """The two Kronecker factors ``a (p, q)`` and ``b (s, t)`` (low-rank ones multiplied)."""
        p, q = self._pq
        s, t = n // p, D // q
        r = self.r or 0
        if self.kind == "hm":
            return f[: p * q].view(p, q), f[p * q :].view(s, t)
        if self.kind == "lphm":
            S = f[p * q : p * q + s * r].view(s, r)
            T = f[p * q + s * r :].view(r, t)
            return f[: p * q].view(p, q), S @ T
        P, Q, S, T = self._dual_factors(f, n, D)
        return P @ Q, S @ T

    def _dual_factors(self, f: Tensor, n: int, D: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        p, q = self._pq
        s, t = n // p, D // q
        r = self.r or 0
        o1, o2, o3 = p * r, p * r + r * q, p * r + r * q + s * r
        return f[:o1].view(p, r), f[o1:o2].view(r, q), f[o2:o3].view(s, r), f[o3:].view(r, t)

    def _kron_apply(self, x: Inputs, f: Tensor, n: int, D: int, transpose: bool) -> Tensor:
        p, q = self._pq
        s, t = n // p, D // q
        r = self.r or 0
        if self.kind == "hm":
            a, b = f[: p * q].view(p, q), f[p * q :].view(s, t)
            return kron_linear(x, a.t(), b.t()) if transpose else kron_linear(x, a, b)
        if self.kind == "lphm":
            a = f[: p * q].view(p, q)
            S = f[p * q : p * q + s * r].view(s, r)
            T = f[p * q + s * r :].view(r, t)
            if transpose:
                return lowrank_kron_linear(x, a.t(), T.t(), S.t())
            return lowrank_kron_linear(x, a, S, T)
        P, Q, S, T = self._dual_factors(f, n, D)
        if transpose:
            return dual_lowrank_kron_linear(x, Q.t(), P.t(), T.t(), S.t())
        return dual_lowrank_kron_linear(x, P, Q, S, T)

    def _random(
        self, factors: tuple[Tensor, Tensor] | None, n: int, D: int
    ) -> tuple[Tensor, Tensor]:
        if factors is None:
            raise ValueError(
                "random_matrix_adaption needs its random factors: pass "
                "random_factors=(module.R_A, module.R_B)"
            )
        ra, rb = factors
        r = self.r or 0
        if tuple(ra.shape) != (n, r) or tuple(rb.shape) != (D, r):
            raise ValueAssertionError(
                f"random factors must have shapes ({n}, {r}) and ({D}, {r}), got "
                f"{tuple(ra.shape)} and {tuple(rb.shape)}"
            )
        return ra, rb
