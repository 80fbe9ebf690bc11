"""Start from a trained model: replace its ``nn.Linear`` layers by structured matrices."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from interfuse.matrices.base import StructuredMatrix
from interfuse.matrices.registry import matrix_class

__all__ = ["ReplacedLinear", "replace_linear"]


@dataclass(frozen=True)
class ReplacedLinear:
    """What :func:`replace_linear` did to one layer.

    Attributes:
        matrix: the structured matrix now in the layer's place.
        num_parameters: its trainable scalars (bias included).
        dense_parameters: those of the ``nn.Linear`` it replaced.
        relative_error: ``‖W − M‖_F / ‖W‖_F`` of the fit (0 where the structure is exact).
    """

    matrix: StructuredMatrix
    num_parameters: int
    dense_parameters: int
    relative_error: float


def replace_linear(
    model: nn.Module,
    matrix: str | type[StructuredMatrix],
    *,
    target: str | None = None,
    **options: Any,
) -> dict[str, ReplacedLinear]:
    r"""Replace, in place, the ``nn.Linear`` layers of ``model`` by structured matrices fitted
    to their trained weights (:meth:`~interfuse.matrices.StructuredMatrix.from_dense`).

    Each layer ``y = x Wᵀ + b`` becomes the matrix of its family nearest to ``W`` in the
    Frobenius norm, with the bias copied, on the weight's device and dtype and in its training
    mode. Every layer is fitted before any is swapped, so an error leaves ``model`` unchanged.
    No dense weight is left behind: the ``nn.Linear`` is removed from ``model`` (a layer shared
    by several parents is replaced by one shared matrix). Merge back for serving with
    :meth:`~interfuse.matrices.StructuredMatrix.to_linear`.

    Only modules whose type is exactly ``nn.Linear`` are replaced: subclasses (such as the
    ``out_proj`` of ``nn.MultiheadAttention``, whose weight is read directly) are left alone.

    Args:
        model: the model, changed in place; it must not itself be an ``nn.Linear`` (use
            ``from_dense`` for one layer).
        matrix: a family name or alias (``'lowrank'``, ``'kronecker'``, ``'monarch'``, ...)
            or a :class:`~interfuse.matrices.StructuredMatrix` class.
        target: a regular expression the qualified name must match in full (``re.fullmatch``,
            e.g. ``r"encoder\.layers\.\d+\.fc1"``); ``None``: every ``nn.Linear``.
        **options: ``from_dense`` options for every replaced layer (``rank``, ``p``, ``q``,
            ``num_blocks``, ``mode``, ...); a ``rank`` given as a float in ``(0, 1]`` picks each
            layer's rank from its own singular values.

    Returns:
        Qualified name → :class:`ReplacedLinear` (the matrix, its parameter count, the dense
        layer's, and the relative error of the fit), in module order.

    Raises:
        TypeError: ``matrix`` is an instance, or an option the family does not take.
        ValueError: an unknown family, a ``target`` matching no ``nn.Linear`` (the message
            lists them), or options that do not fit a layer (the message names it).

    Example:
        >>> mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
        >>> report = replace_linear(mlp, "lowrank", target="0", rank=8)
        >>> r = report["0"]
        >>> type(mlp[0]).__name__, r.num_parameters, r.dense_parameters
        ('LowRankMatrix', 1088, 4160)
        >>> 0 < r.relative_error < 1
        True
    """
    if isinstance(matrix, StructuredMatrix):
        raise TypeError(
            "matrix must be a family name or a StructuredMatrix class (each layer gets its own "
            f"fitted matrix), got an instance of {type(matrix).__name__}"
        )
    cls = matrix_class(matrix)
    if type(model) is nn.Linear:
        raise ValueError(
            "model is itself an nn.Linear and cannot be replaced in place; use "
            f"{cls.__name__}.from_dense(model.weight, model.bias, ...)"
        )
    if target is not None and not isinstance(target, str):
        raise TypeError(f"target must be a regular expression string or None, got {target!r}")
    pattern = re.compile(target) if target is not None else None
    linears = [
        (name, m) for name, m in model.named_modules(remove_duplicate=False) if type(m) is nn.Linear
    ]
    chosen = [(n, m) for n, m in linears if pattern is None or pattern.fullmatch(n)]
    if not chosen:
        found = [n for n, _ in linears]
        raise ValueError(f"target={target!r} matches no nn.Linear in the model; they are {found}")
    # Fit every layer before swapping any, so that an error leaves the model as it was.
    built: dict[int, StructuredMatrix] = {}
    for name, linear in chosen:
        if id(linear) in built:
            continue
        try:
            new = cls.from_dense(linear.weight, linear.bias, **options)
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"replace_linear: layer {name!r} ({linear.in_features} → "
                f"{linear.out_features}): {err}"
            ) from err
        built[id(linear)] = new.train(linear.training)
    report: dict[str, ReplacedLinear] = {}
    for name, linear in chosen:
        new = built[id(linear)]
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
        report[name] = ReplacedLinear(
            matrix=new,
            num_parameters=new.num_parameters,
            dense_parameters=sum(p.numel() for p in linear.parameters()),
            relative_error=new.relative_error(linear.weight),
        )
    return report
