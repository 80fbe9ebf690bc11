r"""The gated multimodal unit: each input squashed to one width, mixed by learned gates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from interfuse import functional as fn
from interfuse._validation import (
    check_dims,
    check_factory_dtype,
    check_operand,
    check_positive_int,
    resolve_choice,
)
from interfuse.functional._common import plain_size

# The kernels without their checks (check_inputs ran the same ones).
from interfuse.functional.concat import _zero_absent as masked_inputs
from interfuse.fusion.base import Inputs, MaskLike, _FixedWidths

__all__ = ["GatedFusion"]

_GATES = ("softmax", "sigmoid")


class GatedFusion(_FixedWidths):
    r"""Gated multimodal unit (GMU, Arevalo et al. 2017): inputs of any widths, gated per
    feature by the concatenation of all of them.

    .. math::
        h_i = \tanh(W_i x_i + b_i), \qquad
        z = g\big(W_z [x_1, \dots, x_k] + b_z\big) \in R^{k \times n'}, \qquad
        y = \sum_{i \in P} z_i \odot h_i

    With ``gate='softmax'`` (the default) :math:`g` is a softmax over the present inputs, per
    feature, so the gates of a row sum to one (for ``k = 2`` this is the paper's bimodal unit,
    :math:`z` and :math:`1 - z`); with ``gate='sigmoid'`` every :math:`z_i` is an independent
    sigmoid (the paper's unit for more inputs). Absent inputs are zero-filled before both
    products (a ``nan`` placeholder never leaks) and get gate exactly 0.

    Parameters: :math:`\sum_i n_i n' + k n'` for the :math:`W_i, b_i` and
    :math:`k n' (\sum_i n_i + 1)` for the gate (without biases: no :math:`b_i, b_z`).

    Args:
        in_dims: the widths ``n_i`` of the ``k`` inputs.
        out_dim: the output width ``n'``.
        gate: ``'softmax'`` or ``'sigmoid'``.
        bias: whether the input and gate projections have biases.
        device: device of the parameters.
        dtype: dtype of the parameters.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors ``(..., n_i)`` with the same leading dimensions.
        - mask: ``(k,)`` or ``(..., k)``, bool.
        - Output: ``(..., out_dim)``.

    Example:
        >>> f = GatedFusion([64, 32], 16)
        >>> f.num_parameters  # 96·16 + 2·16 for the W_i, b_i; 32·97 for the gate
        4672
        >>> f([torch.randn(8, 64), torch.randn(8, 32)]).shape
        torch.Size([8, 16])
    """

    same_shape = False
    in_dims: tuple[int, ...]

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dim: int,
        gate: str = "softmax",
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        dims = check_dims("in_dims", in_dims)
        super().__init__(len(dims), names=names, input_dropout=input_dropout)
        self.in_dims = dims
        self.out_dim = check_positive_int("out_dim", out_dim)
        self.gate_kind = resolve_choice("gate", gate, _GATES)
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        factory = {"device": device, "dtype": check_factory_dtype(dtype)}
        self.hidden = nn.ModuleList(nn.Linear(n, self.out_dim, bias, **factory) for n in dims)
        self.gate = nn.Linear(sum(dims), len(dims) * self.out_dim, bias, **factory)

    def reset_parameters(self) -> None:
        """Re-initialize every projection (as :class:`torch.nn.Linear`)."""
        for layer in (*self.hidden, self.gate):
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        check_operand("xs", xs[0], self.gate.weight, "GatedFusion")
        if mask is not None:
            xs = masked_inputs(xs, mask)
        k = len(xs)
        if plain_size(sum(x.numel() for x in xs) * xs[0].element_size()):
            logits = self.gate(torch.cat(xs, dim=-1))  # small: one GEMM beats k
        else:  # large: one GEMM per input, accumulated, never concatenating
            logits = fn.dense_linear(xs, self.gate.weight, self.gate.bias)
        logits = logits.unflatten(-1, (k, self.out_dim))
        present = None if mask is None else mask[..., None]
        if self.gate_kind == "softmax":
            if present is not None:
                logits = logits.masked_fill(~present, float("-inf"))
            z = logits.softmax(-2)
        else:
            z = logits.sigmoid()
            if present is not None:
                z = torch.where(present, z, 0)
        layers = list(self.hidden)
        out = z[..., 0, :] * torch.tanh(layers[0](xs[0]))
        for i in range(1, k):
            out = torch.addcmul(out, z[..., i, :], torch.tanh(layers[i](xs[i])))
        return out

    def out_features(self, in_dims: Sequence[int]) -> int:
        self._check_built_dims(in_dims)
        return self.out_dim

    def get_config(self) -> dict[str, Any]:
        return {
            "in_dims": list(self.in_dims),
            "out_dim": self.out_dim,
            "gate": self.gate_kind,
            "bias": self.gate.bias is not None,
        }
