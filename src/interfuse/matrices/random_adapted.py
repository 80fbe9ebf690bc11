"""Random-matrix adaption: frozen random factors, trainable diagonal scalings (VeRA-style)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from interfuse._validation import check_positive_int, check_seed
from interfuse.functional.structured import Inputs, random_adapted_linear, random_adapted_matrix
from interfuse.matrices.base import StructuredMatrix

__all__ = [
    "RandomAdaptedMatrix",
    "SeededFactors",
    "check_random_factors",
    "draw_random_factors",
    "fit_random_adapted_scales",
]


def fit_random_adapted_scales(
    weight: Tensor, r_out: Tensor, r_in: Tensor, max_steps: int = 300, tol: float = 1e-12
) -> tuple[Tensor, Tensor]:
    r"""Least-squares scales ``λ_out``, ``λ_r`` of ``W ≈ diag(λ_out) R_out diag(λ_r) R_inᵀ``.

    Alternating least squares: for fixed ``λ_out`` the best ``λ_r`` solves the ``r × r``
    normal equations ``(DᵀD ∘ R_inᵀR_in) λ_r = diag(Dᵀ W R_in)`` with ``D = diag(λ_out) R_out``;
    for fixed ``λ_r`` each ``λ_out,i = ⟨W_i, C_i⟩ / ‖C_i‖²`` with ``C = R_out diag(λ_r) R_inᵀ``.
    The error never rises. The problem is not convex, so two starts run and the better one is
    kept: ``λ_out = 1``, and the rank-one fit ``λ_out λ_rᵀ ≈ Z ⊘ R_out`` of the unconstrained
    least-squares ``Z = W R_in (R_inᵀ R_in)⁻¹`` (exact when ``W`` has this form). Each stops when
    a step improves the squared error by less than ``tol·‖W‖²`` or after ``max_steps``.

    Args:
        weight: ``W``, ``(out, in)``.
        r_out: ``R_out``, ``(out, r)``.
        r_in: ``R_in``, ``(in, r)``.
        max_steps: the most alternations per start.
        tol: the smallest relative improvement worth another step.

    Returns:
        ``λ_out`` ``(out,)`` and ``λ_r`` ``(r,)``.

    Example:
        >>> f64 = {"dtype": torch.float64}
        >>> r_out, r_in = torch.randn(5, 2, **f64), torch.randn(4, 2, **f64)
        >>> lam = torch.tensor([1.0, -2.0], **f64), torch.rand(5, **f64)
        >>> w = random_adapted_matrix(r_out, r_in, *lam)  # exactly of this form
        >>> lam_out, lam_r = fit_random_adapted_scales(w, r_out, r_in)
        >>> torch.allclose(random_adapted_matrix(r_out, r_in, lam_r, lam_out), w)
        True
    """
    z = torch.linalg.lstsq(r_in, weight.T).solution.T  # (out, r)
    ratio = torch.where(r_out.abs() > 1e-6, z / r_out, 0)
    u, sv, _ = torch.linalg.svd(ratio, full_matrices=False)
    starts = [torch.ones_like(weight[:, 0]), u[:, 0] * sv[0]]
    fits = [_alternate(weight, r_out, r_in, s, max_steps, tol) for s in starts]
    best = min(fits, key=lambda fit: fit[2])
    return best[0], best[1]


def _alternate(
    weight: Tensor, r_out: Tensor, r_in: Tensor, scale_out: Tensor, max_steps: int, tol: float
) -> tuple[Tensor, Tensor, float]:
    total = max(float(weight.square().sum()), 1e-300)
    gram_in = r_in.T @ r_in
    w_r_in = weight @ r_in  # (out, r), reused by every λ_r step
    previous, error = math.inf, math.inf
    scale_rank = torch.zeros_like(r_out[0])
    for _ in range(max_steps):
        d = r_out * scale_out[:, None]
        rhs = (d * w_r_in).sum(0)
        scale_rank = torch.linalg.lstsq((d.T @ d) * gram_in, rhs[:, None]).solution[:, 0]
        c = (r_out * scale_rank) @ r_in.T
        norms = c.square().sum(1)
        inner = (weight * c).sum(1)
        safe = torch.where(norms > 0, norms, 1)
        scale_out = torch.where(norms > 0, inner / safe, 0)
        error = total - float((inner.square() / safe).sum())
        if previous - error <= tol * total:
            break
        previous = error
    return scale_out, scale_rank, error


def draw_random_factors(rows_a: int, rows_b: int, rank: int, seed: int) -> tuple[Tensor, Tensor]:
    """The frozen factors ``(R_A, R_B)`` of shapes ``(rows_a, rank)`` and ``(rows_b, rank)``,
    drawn from ``N(0, 1)`` in that order by a CPU generator seeded with ``seed`` (so every
    device gets the same numbers), in the default dtype.

    Example:
        >>> a, b = draw_random_factors(3, 2, rank=1, seed=0)
        >>> tuple(a.shape), tuple(b.shape)
        ((3, 1), (2, 1))
    """
    gen = torch.Generator(device="cpu").manual_seed(check_seed(seed))
    return torch.randn(rows_a, rank, generator=gen), torch.randn(rows_b, rank, generator=gen)


def check_random_factors(
    given: object, rows_a: int, rows_b: int | None, rank: int, *, name: str = "random_factors"
) -> tuple[Tensor, Tensor]:
    """Given factors ``(R_A, R_B)`` checked: a pair or ``{'A': R_A, 'B': R_B}`` of tensors or
    array-likes, of shapes ``(rows_a, rank)`` and ``(rows_b, rank)`` (``rows_b=None``: any
    number of rows), finite. Returns detached copies (the caller moves them to its
    parameters' device and dtype).

    Raises:
        TypeError: not such a pair, or something that is not array-like.
        ValueError: other mapping keys, other shapes, or non-finite values.
    """
    if isinstance(given, Mapping):
        if set(given) != {"A", "B"}:
            raise ValueError(f"{name} must have the keys 'A' and 'B', got {sorted(given)}")
        pair = [given["A"], given["B"]]
    elif isinstance(given, (tuple, list)) and len(given) == 2:
        pair = list(given)
    else:
        raise TypeError(
            f"{name} must be a pair (R_A, R_B) or {{'A': R_A, 'B': R_B}}, got "
            f"{type(given).__name__}"
        )
    try:
        ra, rb = (torch.as_tensor(f) for f in pair)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must hold tensors or array-likes: {error}") from None
    if (
        tuple(ra.shape) != (rows_a, rank)
        or rb.ndim != 2
        or rb.shape[1] != rank
        or (rows_b is not None and rb.shape[0] != rows_b)
    ):
        want_b = "rows" if rows_b is None else str(rows_b)
        raise ValueError(
            f"{name} must have shapes ({rows_a}, {rank}) and ({want_b}, {rank}), got "
            f"{tuple(ra.shape)} and {tuple(rb.shape)}"
        )
    for label, f in (("R_A", ra), ("R_B", rb)):
        if f.is_complex() or f.dtype == torch.bool or not bool(torch.isfinite(f).all()):
            raise ValueError(f"{name}: {label} must hold finite real numbers, got {f}")
    return ra.detach().clone(), rb.detach().clone()


class SeededFactors(nn.Module):
    """Frozen random factors that remember where they came from, for both faces.

    The seed (and whether the factors were drawn from it or given) travels in the
    ``state_dict`` as the module's extra state, so after loading factors drawn with another
    seed the module's config and ``reset_parameters`` agree with them. A ``state_dict`` without
    that entry (saved before it existed) still loads: factors that differ from this seed's draw
    are then kept as given ones. Non-finite factors fail the load.
    """

    #: The buffer names of ``(R_A, R_B)``.
    factor_names: ClassVar[tuple[str, str]] = ("R_A", "R_B")
    seed: int
    _seeded: bool

    def _seeded_draw(self) -> tuple[Tensor, Tensor] | None:
        """The factors ``seed`` draws for this module's shapes (``None`` if unknown)."""
        raise NotImplementedError  # pragma: no cover - every user overrides it

    def get_extra_state(self) -> Tensor:
        # A tensor, so that code treating every state_dict value as one keeps working; the
        # seed is stored modulo 2**64 as an int64 (the generator draws the same numbers).
        seed = self.seed - 2**64 if self.seed >= 2**63 else self.seed
        return torch.tensor([seed, int(self._seeded)], dtype=torch.int64)

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, Tensor) or state.shape != (2,) or state.is_floating_point():
            raise ValueError(
                f"{type(self).__name__}: the extra state must be the int64 tensor "
                f"[seed, seeded], got {state!r}"
            )
        self.seed, self._seeded = check_seed(int(state[0])), bool(state[1])

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        factors = [state_dict.get(prefix + name) for name in self.factor_names]
        for name, t in zip(self.factor_names, factors):
            if isinstance(t, Tensor) and not bool(torch.isfinite(t).all()):
                error_msgs.append(f"{prefix}{name}: the random factors must be finite")
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        key = prefix + "_extra_state"
        if key in state_dict:
            return
        if key in missing_keys:  # saved before the seed was: judge the factors themselves
            missing_keys.remove(key)
        drawn = self._seeded_draw()
        loaded = [t for t in factors if isinstance(t, Tensor)]
        if drawn is not None and len(loaded) == 2:
            self._seeded = all(
                t.shape == d.shape and torch.equal(t.detach().cpu().to(d.dtype), d)
                for t, d in zip(loaded, drawn)
            )


class RandomAdaptedMatrix(SeededFactors, StructuredMatrix):
    r"""``W = diag(λ_out) R_out diag(λ_r) R_inᵀ`` with frozen Gaussian ``R_out ∈ R^{out×r}``,
    ``R_in ∈ R^{in×r}`` and trainable ``λ_out ∈ R^{out}``, ``λ_r ∈ R^r``: ``l = out + r``.

    The random factors are drawn once from ``seed`` (on the CPU, so every device gets the same
    numbers) or taken from ``random_factors``, and kept as registered buffers: saved in the
    ``state_dict`` and moved by ``.to()``; :meth:`reset_parameters` draws seeded factors again
    (the same numbers, which is what initializing a module built on the meta device needs).

    :meth:`from_dense` keeps the factors (seeded or given) and fits the scales by least
    squares, alternating between ``λ_r`` (a ``r × r`` linear system) and ``λ_out`` (one ratio
    per row), each step lowering ``‖W − W(λ)‖_F``; with ``out + r`` numbers it can only
    approximate a general ``W`` (``relative_error`` says how well).

    Args:
        in_features: width of the input.
        out_features: width of the output.
        rank: the shared rank ``r``.
        seed: seed of the random factors.
        random_factors: ``(R_out, R_in)`` of shapes ``(out, r)`` and ``(in, r)`` to use instead.
        mode: ``'auto'``, ``'factored'`` or ``'dense'``.
        bias: whether to add a learnable bias ``b ∈ R^{out}``.
        device: device of the parameters and buffers.
        dtype: dtype of the parameters and buffers.

    Shape:
        - Input: ``(..., in_features)`` or a list of pieces whose widths add up to it.
        - Output: ``(..., out_features)``.

    Example:
        >>> m = RandomAdaptedMatrix(4096, 1024, rank=8, seed=0)
        >>> m.num_parameters  # 1024 + 8
        1032
    """

    config_keys = ("rank", "seed")
    factor_names = ("random_out", "random_in")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int = 8,
        seed: int = 0,
        random_factors: tuple[Tensor, Tensor] | None = None,
        mode: str = "auto",
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(in_features, out_features, mode, bias)
        self.rank = check_positive_int("rank", rank)
        self.seed = check_seed(seed)
        kw = self._factory(device, dtype)
        # Given factors take the parameters' dtype (float64 factors with float32 scalings
        # would fail in the first matmul).
        kw["dtype"] = kw["dtype"] or torch.get_default_dtype()
        self._seeded = random_factors is None
        r_out, r_in = self._draw(random_factors)
        self.register_buffer("random_out", r_out.to(**kw))
        self.register_buffer("random_in", r_in.to(**kw))
        self.scale_out = nn.Parameter(torch.empty(out_features, **kw))
        self.scale_rank = nn.Parameter(torch.empty(rank, **kw))
        self._init_bias(**kw)
        self.reset_parameters()
        self._warn_if_larger_than_dense()

    def _draw(self, given: object) -> tuple[Tensor, Tensor]:
        if given is None:
            return draw_random_factors(self.out_features, self.in_features, self.rank, self.seed)
        return check_random_factors(given, self.out_features, self.in_features, self.rank)

    def _seeded_draw(self) -> tuple[Tensor, Tensor]:
        return self._draw(None)

    random_out: Tensor
    random_in: Tensor

    @classmethod
    def _count(cls, in_features: int, out_features: int, **kwargs: Any) -> int:
        return out_features + check_positive_int("rank", kwargs.get("rank", 8))

    def reset_parameters(self) -> None:
        # Seeded factors are drawn again (the same numbers), so that meta-device construction,
        # to_empty() and reset_parameters() give the module a constructor would; given factors
        # cannot be restored and are kept as they are.
        if self._seeded and self.random_out.device.type != "meta":
            r_out, r_in = self._draw(None)
            with torch.no_grad():
                self.random_out.copy_(r_out)
                self.random_in.copy_(r_in)
        # With unit Gaussian factors Var(W) = r·λ_r², matched to nn.Linear's 1/(3·in).
        nn.init.ones_(self.scale_out)
        nn.init.constant_(self.scale_rank, 1 / math.sqrt(3 * self.in_features * self.rank))
        self._reset_bias()

    @classmethod
    def _fit(
        cls, weight: Tensor, options: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Tensor]]:
        out_features, in_features = weight.shape
        factors = cls(in_features, out_features, **{**options, "mode": "auto"})
        r_out = factors.random_out.to(weight.dtype)
        r_in = factors.random_in.to(weight.dtype)
        scale_out, scale_rank = fit_random_adapted_scales(weight, r_out, r_in)
        return options, {"scale_out": scale_out, "scale_rank": scale_rank}

    def forward_factored(self, x: Inputs, bias: Tensor | None = None) -> Tensor:
        return random_adapted_linear(
            x, self.random_out, self.random_in, self.scale_rank, self.scale_out, bias=bias
        )

    def materialize(self) -> Tensor:
        return random_adapted_matrix(
            self.random_out, self.random_in, self.scale_rank, self.scale_out
        )

    def factored_flops(self, rows: int) -> int:
        return rows * self.rank * (self.in_features + self.out_features)

    def build_flops(self) -> int:
        return self.rank * self.in_features * self.out_features
