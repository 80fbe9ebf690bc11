"""Stand-ins for tinyBIG's expansion and reconciliation classes in the rpn-interdependence tests.

``parameterized_rpn_interdependence`` takes any data transformation (``calculate_D(m)`` and
``__call__(x, device)``) and parameter fabrication (``calculate_l(n, D)`` and
``__call__(w, n, D, device)``); these are the smallest ones, as importable ``nn.Module``
classes so that their configs round-trip.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class IdentityExpansion(nn.Module):
    """κ(x) = x, ``D = m``."""

    def calculate_D(self, m: int) -> int:
        return m

    def forward(self, x: Tensor, device: str = "cpu") -> Tensor:
        return x


class TaylorExpansion(nn.Module):
    """κ(x) = [x, x ⊗ x] (degree 2 without the constant): ``D = m + m²``."""

    def __init__(self, d: int = 2) -> None:
        super().__init__()
        if d != 2:
            raise ValueError("only d=2 is implemented by this test double")
        self.d = d

    def calculate_D(self, m: int) -> int:
        return m + m * m

    def forward(self, x: Tensor, device: str = "cpu") -> Tensor:
        outer = (x.unsqueeze(-1) * x.unsqueeze(-2)).flatten(-2)
        return torch.cat([x, outer], dim=-1)


class IdentityReconciliation(nn.Module):
    """ψ(w) = w.view(n, D), ``l = nD``."""

    def calculate_l(self, n: int, D: int) -> int:
        return n * D

    def forward(self, w: Tensor, n: int, D: int, device: str = "cpu") -> Tensor:
        return w.view(n, D)


class LowRankReconciliation(nn.Module):
    """ψ(w) = w[:rn].view(n, r) @ w[rn:].view(r, D), ``l = r(n + D)``."""

    def __init__(self, r: int = 1) -> None:
        super().__init__()
        self.r = r

    def calculate_l(self, n: int, D: int) -> int:
        return self.r * (n + D)

    def forward(self, w: Tensor, n: int, D: int, device: str = "cpu") -> Tensor:
        f = w.reshape(-1)
        r = self.r
        return f[: r * n].view(n, r) @ f[r * n :].view(r, D)
