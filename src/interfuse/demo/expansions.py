r"""Data expansions ``κ: R^m → R^D`` for the demo's RPN-style heads.

Each head of an RPN layer widens its input with a fixed (parameter-free) expansion before a
learnable projection brings it to the head's output width. Three small ones are enough to give
the heads different views of the data:

| class | ``κ(x)`` | ``D`` |
|---|---|---|
| :class:`IdentityExpansion` | ``x`` | ``m`` |
| :class:`PolynomialExpansion` | ``[x, x², …, x^d]`` (element-wise powers) | ``d·m`` |
| :class:`FourierExpansion` | ``[cos(x Ω), sin(x Ω)]``, ``Ω ~ N(0, σ²)`` frozen | ``D`` (even) |
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from interfuse._validation import check_positive_int
from interfuse.config import Configurable
from interfuse.demo._registry import demo_only

__all__ = ["EXPANSIONS", "FourierExpansion", "IdentityExpansion", "PolynomialExpansion"]


@demo_only
class IdentityExpansion(Configurable, nn.Module):
    """``κ(x) = x``: the head sees its (interdependence-mixed) input unchanged.

    Args:
        in_features: width ``m`` of the input; the output has the same width.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = self.in_features

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x``."""
        return x

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features}

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}"


@demo_only
class PolynomialExpansion(Configurable, nn.Module):
    """``κ(x) = [x, x², …, x^d]``: element-wise powers up to ``degree``, concatenated.

    Args:
        in_features: width ``m`` of the input.
        degree: highest power ``d``; the output width is ``d·m``.
    """

    def __init__(self, in_features: int, degree: int = 2) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.degree = check_positive_int("degree", degree)
        self.out_features = self.in_features * self.degree

    def forward(self, x: Tensor) -> Tensor:
        """Concatenate the powers ``x¹ … x^d`` along the last dimension."""
        powers = [x]
        for _ in range(1, self.degree):
            powers.append(powers[-1] * x)
        return torch.cat(powers, dim=-1)

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "degree": self.degree}

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, degree={self.degree}"


@demo_only
class FourierExpansion(Configurable, nn.Module):
    """Random Fourier features ``κ(x) = [cos(x Ω), sin(x Ω)]`` with a frozen Gaussian ``Ω``.

    ``Ω ∈ R^{m×D/2}`` has entries drawn from ``N(0, scale²)`` with ``seed`` (on the CPU, so
    every device gets the same numbers) and is kept as a registered buffer: saved in the
    ``state_dict`` and moved by ``.to()``. Inner products of these features approximate a
    Gaussian kernel of bandwidth ``1/scale``.

    Args:
        in_features: width ``m`` of the input.
        out_features: width ``D`` of the output (even).
        scale: standard deviation of the frequencies.
        seed: seed of ``Ω``.
    """

    frequencies: Tensor

    def __init__(
        self, in_features: int, out_features: int = 256, scale: float = 0.15, seed: int = 0
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        if self.out_features % 2:
            raise ValueError(f"out_features must be even (cos and sin halves), got {out_features}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.scale = float(scale)
        self.seed = seed
        gen = torch.Generator().manual_seed(seed)
        omega = torch.randn(self.in_features, self.out_features // 2, generator=gen) * self.scale
        self.register_buffer("frequencies", omega)

    def forward(self, x: Tensor) -> Tensor:
        """``[cos(x Ω), sin(x Ω)]`` along the last dimension."""
        z = x @ self.frequencies.to(x.dtype)
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "scale": self.scale,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"scale={self.scale}, seed={self.seed}"
        )


#: Expansion name → class, in the order the demo's heads use them.
EXPANSIONS: dict[str, type[nn.Module]] = {
    "identity": IdentityExpansion,
    "polynomial": PolynomialExpansion,
    "fourier": FourierExpansion,
}
