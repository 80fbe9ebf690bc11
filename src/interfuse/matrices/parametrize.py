"""Deprecated: :func:`register_structured_weight`; use :func:`interfuse.replace_linear`."""

from __future__ import annotations

import warnings

from torch import Tensor, nn
from torch.nn.utils import parametrize

from interfuse.matrices.base import StructuredMatrix

__all__ = ["register_structured_weight"]


class _Materialized(nn.Module):
    """A parametrization whose value is the structured matrix; the original is ignored."""

    def __init__(self, matrix: StructuredMatrix) -> None:
        super().__init__()
        self.matrix = matrix

    def forward(self, original: Tensor) -> Tensor:
        return self.matrix.materialize()


def register_structured_weight(
    module: nn.Module, matrix: StructuredMatrix, name: str = "weight"
) -> nn.Module:
    """Deprecated: make ``matrix`` the weight of any module, via
    :mod:`torch.nn.utils.parametrize`.

    Use :func:`interfuse.replace_linear` instead: it fits the structure to the trained weight
    (this function discards it), removes the dense weight (parametrize keeps it as an unused
    trainable parameter, so the parameter count goes *up*) and applies the matrix in factored
    form (here ``W`` is rebuilt at every call). Emits a ``DeprecationWarning``; it will be
    removed in a future release.

    ``module.<name>`` reads as ``matrix.materialize()`` and gradients flow to the matrix's
    factors.

    Args:
        module: the module, e.g. an ``nn.Linear``; changed in place.
        matrix: the structured matrix, of the weight's shape ``(out, in)``.
        name: the weight's attribute name.

    Returns:
        ``module``.

    Raises:
        ValueError: the weight's shape is not ``matrix.shape``.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", DeprecationWarning)
        ...     lin = register_structured_weight(nn.Linear(64, 32), LowRankMatrix(64, 32, rank=4))
        >>> lin(torch.randn(2, 64)).shape
        torch.Size([2, 32])
        >>> lin.parametrizations.weight[0].matrix.num_parameters  # 4·(64 + 32)
        384
    """
    warnings.warn(
        "register_structured_weight is deprecated: it discards the trained weight, keeps it as "
        "an unused parameter and rebuilds W at every call; use interfuse.replace_linear(model, "
        "matrix, target=...) to convert trained nn.Linear layers",
        DeprecationWarning,
        stacklevel=2,
    )
    current = getattr(module, name)
    if tuple(current.shape) != tuple(matrix.shape):
        raise ValueError(
            f"{name} of {type(module).__name__} has shape {tuple(current.shape)} but the matrix "
            f"has shape {tuple(matrix.shape)}"
        )
    parametrize.register_parametrization(module, name, _Materialized(matrix), unsafe=True)
    return module
