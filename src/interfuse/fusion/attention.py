r"""Attention over the inputs: data-dependent weights, a softmax over the present inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import torch
from torch import Tensor, nn

from interfuse._validation import check_dims, check_factory_dtype, check_operand, check_positive_int
from interfuse.functional._common import compiling_to_run, plain_size

# The kernels without their checks (check_inputs ran the same ones).
from interfuse.functional.concat import _zero_absent as masked_inputs
from interfuse.functional.elementwise import _weighted_sum as weighted_sum
from interfuse.fusion.base import Inputs, MaskLike, _FixedWidths

__all__ = ["AttentionFusion"]


class AttentionFusion(_FixedWidths):
    r"""Attention fusion: each row's inputs weighted by a softmax of learned scores of them.

    .. math::
        z_i = x_i \;\text{or}\; P_i x_i + c_i, \qquad
        s_i = \operatorname{score}(z_i) + b_i, \qquad
        \alpha = \operatorname{softmax}_{i \in P}(s), \qquad
        y = \sum_{i \in P} \alpha_i z_i

    Without ``out_dim`` the inputs (all of one width ``n``) are fused as they are; with
    ``out_dim`` each input is first projected to that width by its own :math:`P_i`, so the
    inputs may have different widths. The scorer is shared by the inputs:
    :math:`\operatorname{score}(z) = v^\top z` (``hidden_dim=None``) or
    :math:`v^\top \tanh(W z + c)` (additive attention, ``hidden_dim`` rows in ``W``); the
    per-input bias :math:`b_i` lets it prefer an input whatever its content. The weights
    :math:`\alpha \in (..., k)` are one per input and row; absent inputs get weight exactly 0
    and are zero-filled before scoring, so a ``nan`` placeholder never leaks. On large inputs
    the sum runs on :func:`interfuse.functional.weighted_sum` with per-row weights, which
    never stacks the inputs; small ones (up to ``SMALL_BYTES`` of
    :mod:`interfuse.functional.elementwise` in all) take the stacked formula, cheaper there.

    Parameters: ``d·h + h + h + k`` with ``h = hidden_dim`` (``d + k`` without it), where
    ``d`` is the fused width, plus ``Σ n_i·d + k·d`` for the projections.

    Args:
        in_dims: the widths ``n_i`` of the ``k`` inputs (all equal without ``out_dim``).
        out_dim: project every input to this width first; ``None``: no projection.
        hidden_dim: the scorer's hidden width ``h``; ``None``: a linear scorer.
        device: device of the parameters.
        dtype: dtype of the parameters.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors ``(..., n_i)`` with the same leading dimensions.
        - mask: ``(k,)`` or ``(..., k)``, bool.
        - Output: ``(..., d)``, ``d = out_dim`` or ``n``; with ``return_weights=True`` also
          the weights ``(..., k)``.

    Example:
        >>> f = AttentionFusion([16, 16, 16], hidden_dim=8)
        >>> xs = [torch.randn(4, 16) for _ in range(3)]
        >>> y, alpha = f(xs, mask=torch.tensor([True, False, True]), return_weights=True)
        >>> y.shape, alpha.shape, alpha[:, 1].tolist()
        (torch.Size([4, 16]), torch.Size([4, 3]), [0.0, 0.0, 0.0, 0.0])
        >>> AttentionFusion([64, 32], out_dim=16).num_parameters  # 96·16 + 2·16 + 16 + 2
        1586
    """

    same_shape = False
    in_dims: tuple[int, ...]
    bias: Tensor

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dim: int | None = None,
        hidden_dim: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        dims = check_dims("in_dims", in_dims)
        super().__init__(len(dims), names=names, input_dropout=input_dropout)
        self.in_dims = dims
        factory = {"device": device, "dtype": check_factory_dtype(dtype)}
        if out_dim is None:
            if len(set(dims)) > 1:
                raise ValueError(
                    f"in_dims={list(dims)} differ: AttentionFusion without out_dim fuses inputs "
                    "of one width; give out_dim to project each input to it"
                )
            self.out_dim: int | None = None
            self.projections: nn.ModuleList | None = None
            width = dims[0]
        else:
            self.out_dim = check_positive_int("out_dim", out_dim)
            self.projections = nn.ModuleList(nn.Linear(n, self.out_dim, **factory) for n in dims)
            width = self.out_dim
        if hidden_dim is None:
            self.hidden_dim: int | None = None
            self.scorer: nn.Module = nn.Linear(width, 1, bias=False, **factory)
        else:
            self.hidden_dim = check_positive_int("hidden_dim", hidden_dim)
            self.scorer = nn.Sequential(
                nn.Linear(width, self.hidden_dim, **factory),
                nn.Tanh(),
                nn.Linear(self.hidden_dim, 1, bias=False, **factory),
            )
        self.bias = nn.Parameter(torch.empty(len(dims), **factory))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialize the projections and the scorer (as :class:`torch.nn.Linear`) and the
        per-input biases (zeros: no input preferred at the start)."""
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        with torch.no_grad():
            self.bias.zero_()

    @overload
    def forward(
        self, xs: Inputs, mask: MaskLike | None = None, return_weights: Literal[False] = False
    ) -> Tensor: ...

    @overload
    def forward(
        self, xs: Inputs, mask: MaskLike | None, return_weights: Literal[True]
    ) -> tuple[Tensor, Tensor]: ...

    @overload
    def forward(
        self, xs: Inputs, mask: MaskLike | None = None, *, return_weights: Literal[True]
    ) -> tuple[Tensor, Tensor]: ...

    def forward(
        self, xs: Inputs, mask: MaskLike | None = None, return_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Fuse ``xs``; with ``return_weights=True`` return ``(output, weights)``, the weights
        ``(..., k)`` the inputs got (0 for the absent ones)."""
        xs, mask = self.check_inputs(xs, mask)
        check_operand("xs", xs[0], self.bias, "AttentionFusion")
        # Absent inputs are zero-filled before any product: the scorer and the projections
        # must not see their placeholders (a nan would reach the parameters' gradients).
        filled = xs if mask is None else masked_inputs(xs, mask)
        if self.projections is None:
            zs = xs
        else:
            zs = filled = [p(x) for p, x in zip(self.projections, filled, strict=True)]
        z0 = zs[0]
        if not compiling_to_run() and plain_size(z0.numel() * z0.element_size() * len(zs)):
            # Small inputs: one stacked copy costs less than k scorer calls and the kernel's
            # per-input passes (as the element-wise kernels' plain path). Inductor would
            # materialize the stack (16x the bandwidth at k = 8, 4096x1024): compiled code
            # takes the per-input path, whose weighted sum it fuses.
            stacked = torch.stack(filled, dim=-2)  # (..., k, d)
            alpha = self._weights(self.scorer(stacked).squeeze(-1), mask, z0.dtype)
            out = (alpha.unsqueeze(-1) * stacked).sum(-2)
        else:
            scores = torch.cat([self.scorer(z) for z in filled], dim=-1)
            alpha = self._weights(scores, mask, z0.dtype)
            out = weighted_sum(zs, alpha, mask, False)
        return (out, alpha) if return_weights else out

    def _weights(self, scores: Tensor, mask: Tensor | None, dtype: torch.dtype) -> Tensor:
        """The softmax over the present inputs of ``scores + b``, ``(..., k)``."""
        scores = scores + self.bias
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(-1).to(dtype)

    def out_features(self, in_dims: Sequence[int]) -> int:
        self._check_built_dims(in_dims)
        return self.in_dims[0] if self.out_dim is None else self.out_dim

    def get_config(self) -> dict[str, Any]:
        return {
            "in_dims": list(self.in_dims),
            "out_dim": self.out_dim,
            "hidden_dim": self.hidden_dim,
        }
