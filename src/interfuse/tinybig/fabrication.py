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

The structured classes of the three families take these hyper-parameters first (``r``; ``p``,
``q = p``, ``kronecker``; for the random adaption ``random_factors=(R_A, R_B)`` or a ``seed`` to
draw them), then their family's arguments by keyword.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from interfuse._validation import check_operand, check_positive_int
from interfuse.functional.structured import (
    Inputs,
    _dense_linear,
    as_tensor_input,
    dense_linear,
    dual_lowrank_kron_linear,
    kron_linear,
    kron_matrix,
    lowrank_kron_linear,
    lowrank_linear,
    random_adapted_linear,
    random_adapted_matrix,
)
from interfuse.matrices import matrix_class
from interfuse.matrices.random_adapted import check_random_factors, draw_random_factors
from interfuse.tinybig.errors import (
    ValueAssertionError,
    ValueAttributeError,
    ValueRuntimeError,
)

__all__ = ["KINDS", "MATRICES", "Fabrication", "check_operands", "random_factor_buffers"]

#: Each layout's structured-matrix family (:mod:`interfuse.matrices`), which counts its
#: parameters and checks its shape; only the hm family's reshaped outer product is tinyBIG's own.
MATRICES = {
    "reshape": "dense",
    "lowrank": "lowrank",
    "hm": "kronecker",
    "lphm": "lowrank_kronecker",
    "dual_lphm": "dual_lowrank_kronecker",
    "random_matrix_adaption": "random_adapted",
}
KINDS = tuple(MATRICES)
_KRON_KERNELS: dict[str, Callable[..., Tensor]] = {
    "hm": kron_linear,
    "lphm": lowrank_kron_linear,
    "dual_lphm": dual_lowrank_kron_linear,
}


def check_operands(x: Inputs, ref: Tensor, *, name: str = "x", ref_name: str = "w") -> None:
    """``x`` (a tensor or a list of them) must be floating and pass the core's
    :func:`~interfuse._validation.check_operand` against ``ref``, else a ``ValueRuntimeError``
    (tinyBIG's matmul failed)."""
    # the common case, on every call: one floating dtype, one device
    if (
        isinstance(x, Tensor)
        and x.dtype == ref.dtype
        and ref.is_floating_point()
        and ((x.is_cpu and ref.is_cpu) or x.device == ref.device)
    ):
        return
    for i, t in enumerate([x] if isinstance(x, Tensor) else x):
        label = name if isinstance(x, Tensor) else f"{name}[{i}]"
        try:
            if t.device == ref.device and not t.is_floating_point():
                want = ref.dtype if ref.is_floating_point() else torch.get_default_dtype()
                raise TypeError(
                    f"{label} has dtype {t.dtype}; the product with {ref_name} needs floating "
                    f"inputs (convert with .to({want}))"
                )
            check_operand(label, t, ref, ref_name, holder=ref_name)
        except (ValueError, TypeError) as err:
            raise ValueRuntimeError(str(err)) from None


@functools.lru_cache(maxsize=1024)
def _family_count(fab: Fabrication, n: int, D: int) -> int:
    # cached: it runs on every call (flat), and binding the family's signature costs more than a
    # small product
    return matrix_class(MATRICES[fab.kind]).count_parameters(D, n, **fab._options())


@dataclass(frozen=True)
class Fabrication:
    """A tinyBIG flat-``w`` layout (see the module table) bound to its hyper-parameters."""

    kind: str = "reshape"
    r: int | None = None
    p: int | None = None
    q: int | None = None
    kronecker: bool = False

    #: ``calculate_l``'s answers by ``(n, D)``: it runs on every call, and hashing the
    #: dataclass for a shared cache costs more than the product it would save.
    _counts: dict[tuple[int, int], int] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        needs_r = self.kind in ("lowrank", "lphm", "dual_lphm", "random_matrix_adaption")
        for name in (("r",) if needs_r else ()) + (("p", "q") if self._hm else ()):
            object.__setattr__(self, name, check_positive_int(name, getattr(self, name)))

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.r is not None and self.kind != "reshape" and self.kind != "hm":
            options["rank"] = self.r
        if self._hm:
            options.update(p=self.p, q=self.q)
        return options

    @property
    def _hm(self) -> bool:
        return self.kind in ("hm", "lphm", "dual_lphm")

    @property
    def _pq(self) -> tuple[int, int]:
        return self.p or 0, self.q or 0

    def check_shape(
        self, n: int, D: int, *, names: tuple[str, str] = ("n", "D"), owner: str | None = None
    ) -> None:
        """The matrix family's shape checks on ``W (n, D)`` (hm: ``p | n``, ``q | D``), raised as
        a ``ValueAssertionError`` starting with ``owner`` and calling ``n``, ``D`` ``names``."""
        self.calculate_l(n, D, names=names, owner=owner)

    def calculate_l(
        self, n: int, D: int, *, names: tuple[str, str] = ("n", "D"), owner: str | None = None
    ) -> int:
        """Length of the flat ``w`` for an ``n × D`` matrix: the family's parameter count."""
        l = self._counts.get((n, D))
        if l is not None:
            return l
        try:
            l = self._counts[(n, D)] = _family_count(self, n, D)
            return l
        except ValueError as err:
            rows, cols = names
            prefix = f"{owner}: " if owner else ""
            message = str(err).replace("out_features", rows).replace("in_features", cols)
            raise ValueAssertionError(f"{prefix}{message}") from None

    def flat(self, w: Tensor | None, n: int, D: int) -> Tensor:
        """``w`` as a 1-D view of length ``l``."""
        return self.check_w(w, n, D).reshape(-1)

    def check_w(self, w: Tensor | None, n: int, D: int) -> Tensor:
        """``w``, if it holds the ``l`` floating parameters of an ``n × D`` matrix."""
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
        return w

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
            return kron_matrix(a, b)  # torch.kron's values; ONNX-exportable (no aten::kron)
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
        widths_checked: bool = False,
    ) -> Tensor:
        """``x @ Wᵀ`` (fusion) or, with ``transpose=True``, ``x @ W`` (interdependence), factored
        except for the compat hm family's reshaped outer product (no cheaper exact form).
        ``widths_checked``: the caller has checked that ``x``'s widths add up to the matrix's."""
        w = self.check_w(w, n, D)
        check_operands(x, w, name=name)
        if self.kind == "reshape":  # one view op less than through flat: each costs ~0.5 µs
            W = w.reshape(n, D)
            if widths_checked:
                return _dense_linear(x, W, in_out=transpose)  # transposed: tinyBIG's x @ A
            return dense_linear(x, W.t() if transpose else W)
        f = w.reshape(-1)
        r = self.r or 0
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

    def _hm_factors(self, f: Tensor, n: int, D: int) -> tuple[Tensor, Tensor]:
        """The two Kronecker factors ``a (p, q)`` and ``b (s, t)`` (low-rank ones multiplied)."""
        first, second = self._factors(f, n, D)
        return functools.reduce(torch.matmul, first), functools.reduce(torch.matmul, second)

    def _factors(self, f: Tensor, n: int, D: int) -> tuple[list[Tensor], list[Tensor]]:
        """Views of ``f``: ``[a], [b]`` (hm), ``[a], [S, T]`` (lphm), ``[P, Q], [S, T]`` (dual)."""
        p, q = self._pq
        s, t, r = n // p, D // q, self.r or 0
        if self.kind == "hm":
            return [f[: p * q].view(p, q)], [f[p * q :].view(s, t)]
        if self.kind == "lphm":
            o = p * q + s * r
            return [f[: p * q].view(p, q)], [f[p * q : o].view(s, r), f[o:].view(r, t)]
        o1, o2, o3 = p * r, p * r + r * q, p * r + r * q + s * r
        return [f[:o1].view(p, r), f[o1:o2].view(r, q)], [f[o2:o3].view(s, r), f[o3:].view(r, t)]

    def _kron_apply(self, x: Inputs, f: Tensor, n: int, D: int, transpose: bool) -> Tensor:
        first, second = self._factors(f, n, D)
        if transpose:  # (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ and (P Q)ᵀ = Qᵀ Pᵀ
            first, second = [m.t() for m in first[::-1]], [m.t() for m in second[::-1]]
        return _KRON_KERNELS[self.kind](x, *first, *second)

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


def random_factor_buffers(
    owner: Any, d: int, d_prime: int | None, given: object
) -> tuple[Tensor | None, Tensor | None]:
    """The face's random factors ``(R_A (d, r), R_B (d', r))`` for ``owner`` (its ``r``,
    ``seed`` and ``device``): ``given`` checked, else drawn (``None`` while ``d'`` is unknown),
    by the functions the modern :class:`~interfuse.matrices.RandomAdaptedMatrix` uses; shape
    errors in tinyBIG's type."""
    try:
        if given is not None:
            ra, rb = check_random_factors(given, d, d_prime, owner.r)
        elif d_prime is None:
            return None, None
        else:
            ra, rb = draw_random_factors(d, d_prime, owner.r, owner.seed)
    except ValueError as err:
        raise ValueAssertionError(str(err)) from None
    dtype = torch.get_default_dtype()  # as drawn factors have; module.double() moves them
    return ra.to(owner.device, dtype), rb.to(owner.device, dtype)
