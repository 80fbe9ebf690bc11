"""Random-matrix adaption: frozen random factors, trainable diagonal scalings (VeRA-style)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_positive_int
from interfuse.functional.structured import Inputs, random_adapted_linear, random_adapted_matrix
from interfuse.matrices.base import StructuredMatrix

__all__ = ["RandomAdaptedMatrix", "fit_random_adapted_scales"]


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


class RandomAdaptedMatrix(StructuredMatrix):
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
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
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

    def _draw(self, given: tuple[Tensor, Tensor] | None) -> tuple[Tensor, Tensor]:
        if given is None:
            # On the CPU whatever the default device, so every device gets the same numbers.
            gen = torch.Generator(device="cpu").manual_seed(self.seed)
            r_out = torch.randn(self.out_features, self.rank, generator=gen, device="cpu")
            r_in = torch.randn(self.in_features, self.rank, generator=gen, device="cpu")
            return r_out, r_in
        if not isinstance(given, (tuple, list)) or len(given) != 2:
            raise TypeError(f"random_factors must be a pair (R_out, R_in), got {given!r}")
        r_out, r_in = (torch.as_tensor(f) for f in given)
        want = ((self.out_features, self.rank), (self.in_features, self.rank))
        if tuple(r_out.shape) != want[0] or tuple(r_in.shape) != want[1]:
            raise ValueError(
                f"random_factors must have shapes {want[0]} and {want[1]}, got "
                f"{tuple(r_out.shape)} and {tuple(r_in.shape)}"
            )
        return r_out.detach().clone(), r_in.detach().clone()

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
