r"""Statistics over the inputs, element-wise: variance, standard deviation, log-sum-exp.

Each equals :func:`torch.var`, :func:`torch.std` or :func:`torch.logsumexp` over ``dim=0`` of
the stacked *present* inputs, without stacking them: the kernels of
:mod:`interfuse.functional` accumulate the (shifted) sum and sum of squares, or the running
maximum and sum of exponentials, in one pass over the inputs. :math:`P` is the set of
present inputs and :math:`m = |P|`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

# The kernels without their checks (check_inputs ran the same ones).
from interfuse.functional.statistics import _fused_logsumexp as fused_logsumexp
from interfuse.functional.statistics import _fused_std as fused_std
from interfuse.functional.statistics import _fused_var as fused_var
from interfuse.fusion.base import Inputs, MaskLike
from interfuse.fusion.elementwise import _ParameterFree

__all__ = ["LogSumExpFusion", "StdFusion", "VarFusion"]


def _check_correction(correction: object) -> int:
    if isinstance(correction, bool) or not isinstance(correction, int):
        raise TypeError(f"correction must be a non-negative int, got {correction!r}")
    if correction < 0:
        raise ValueError(f"correction must be a non-negative int, got {correction}")
    return correction


class _Spread(_ParameterFree):
    """Variance-like statistics: a ``correction`` (Bessel's by default), as in torch."""

    def __init__(
        self,
        correction: int = 1,
        *,
        num_inputs: int | None = None,
        names: Sequence[str] | None = None,
        input_dropout: float = 0.0,
    ) -> None:
        super().__init__(num_inputs=num_inputs, names=names, input_dropout=input_dropout)
        self.correction = _check_correction(correction)

    def get_config(self) -> dict[str, Any]:
        return {"correction": self.correction, **super().get_config()}


class VarFusion(_Spread):
    r"""Element-wise variance of the present inputs,
    :math:`y = \frac{1}{m - c} \sum_{i \in P} (x_i - \bar{x})^2` with
    :math:`\bar{x} = \frac{1}{m} \sum_{i \in P} x_i` and ``c = correction``.

    Equals ``torch.var(torch.stack(present), dim=0, correction=c)``, also where
    :math:`m \le c` (``inf`` or ``nan``, as torch gives).

    Args:
        correction: ``c``; 1 (the default) is the unbiased sample variance, 0 the population
            variance.
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0]), torch.tensor([5.0, 3.0])]
        >>> VarFusion()(xs), VarFusion(correction=0)(xs, mask=torch.tensor([True, True, False]))
        (tensor([4., 3.]), tensor([1., 0.]))
    """

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_var(xs, mask, self.correction)


class StdFusion(_Spread):
    r"""Element-wise standard deviation of the present inputs, the square root of
    :class:`VarFusion`'s :math:`\frac{1}{m - c} \sum_{i \in P} (x_i - \bar{x})^2`.

    Equals ``torch.std(torch.stack(present), dim=0, correction=c)``.

    Args:
        correction: ``c``; 1 (the default) divides by ``m - 1``, 0 by ``m``.
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0]), torch.tensor([5.0, 3.0])]
        >>> StdFusion()(xs)
        tensor([2.0000, 1.7321])
    """

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_std(xs, mask, self.correction)


class LogSumExpFusion(_ParameterFree):
    r"""Element-wise log-sum-exp of the present inputs, :math:`y = \log \sum_{i \in P} e^{x_i}`
    (a smooth maximum), computed stably (shifted by the maximum).

    Equals ``torch.logsumexp(torch.stack(present), dim=0)``.

    Args:
        num_inputs: the number of inputs ``k`` to accept; ``None`` accepts any.
        names: the input names, in fusion order (named inputs, see :class:`Fusion`).
        input_dropout: the probability of dropping an input of a row while training (modality
            dropout, see :class:`Fusion`).

    Shape:
        - xs: ``k`` tensors of one shape ``(..., n)``; mask: ``(k,)`` or ``(..., k)`` bool.
        - Output: ``(..., n)``.

    Example:
        >>> xs = [torch.tensor([0.0, 1000.0]), torch.tensor([0.0, 1000.0])]
        >>> LogSumExpFusion()(xs)  # log 2 and 1000 + log 2: no overflow
        tensor([6.9315e-01, 1.0007e+03])
    """

    def forward(self, xs: Inputs, mask: MaskLike | None = None) -> Tensor:
        xs, mask = self.check_inputs(xs, mask)
        return fused_logsumexp(xs, mask)
