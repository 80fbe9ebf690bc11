r"""The demo's RPN-style wide network, built from interfuse modules only.

One layer of ``H`` heads followed by a classifier. Head ``h`` computes

.. math::

    o_h = \kappa_h(x A_h)\, W_h^\top + b_h,

with ``A_h`` an attribute :class:`~interfuse.interdependence.ParameterizedInterdependence`
(a structured ``m × m`` matrix that starts as the identity), ``κ_h`` a data expansion (identity,
polynomial or Fourier features, see :mod:`interfuse.demo.expansions`) and ``W_h`` a structured
projection to the head width ``n``. The fusion under test combines the heads,
``z = fusion([o_1, …, o_H])``, and the classifier maps ``SiLU(z)`` to the class logits.

Every part is a :class:`~interfuse.config.Configurable`, so :func:`model_from_config`
(:func:`~interfuse.config.from_config` with the demo's classes registered) rebuilds the whole
network from ``model.to_config()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.functional import relu, silu

from interfuse.config import Configurable, from_config
from interfuse.demo._registry import demo_classes_registered, demo_only
from interfuse.demo.expansions import FourierExpansion, IdentityExpansion, PolynomialExpansion
from interfuse.fusion import Fusion, resolve_fusion
from interfuse.interdependence import ParameterizedInterdependence
from interfuse.matrices import (
    DenseMatrix,
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    StructuredMatrix,
    matrix_class,
    resolve_matrix,
)

__all__ = [
    "STRATEGIES",
    "RPNHead",
    "Strategy",
    "WideRPN",
    "build_model",
    "count_trainable",
    "interdependence_options",
    "kronecker_square_factor",
    "make_fusion",
    "model_from_config",
]

_ACTIVATIONS = ("silu", "relu", "tanh", "identity")


@demo_only
class RPNHead(Configurable, nn.Module):
    r"""One head: ``o = κ(x A) Wᵀ + b`` (interdependence, expansion, projection).

    Args:
        interdependence: an attribute interdependence ``x ↦ x A`` (``m → m'``).
        expansion: a data expansion ``κ: R^{m'} → R^D`` with an ``out_features`` attribute.
        projection: a structured matrix of shape ``(n, D)``.
        bias: whether to add a learnable bias ``b ∈ R^n``.
    """

    def __init__(
        self,
        interdependence: nn.Module,
        expansion: nn.Module,
        projection: StructuredMatrix,
        bias: bool = True,
    ) -> None:
        super().__init__()
        width = getattr(expansion, "out_features", None)
        if width != projection.in_features:
            raise ValueError(
                f"projection has in_features={projection.in_features} but the expansion "
                f"produces {width} features"
            )
        self.interdependence = interdependence
        self.expansion = expansion
        self.projection = projection
        self.bias = nn.Parameter(torch.zeros(projection.out_features)) if bias else None

    @property
    def out_features(self) -> int:
        """Head width ``n``."""
        return self.projection.out_features

    def forward(self, x: Tensor) -> Tensor:
        """``(b, m) → (b, n)``."""
        return self.projection(self.expansion(self.interdependence(x)), self.bias)

    def get_config(self) -> dict[str, Any]:
        return {
            "interdependence": self.interdependence,
            "expansion": self.expansion,
            "projection": self.projection,
            "bias": self.bias is not None,
        }


@demo_only
class WideRPN(Configurable, nn.Module):
    r"""Heads in parallel, fused, then a classifier: ``logits = φ(fusion([o_h])) Cᵀ + c``.

    Args:
        heads: the :class:`RPNHead` modules (all take the same input).
        fusion: an interfuse fusion module; ``fusion.out_features(head widths)`` gives the
            fused width.
        classifier: a structured matrix of shape ``(classes, fused width)``.
        activation: ``φ``, one of ``'silu'``, ``'relu'``, ``'tanh'``, ``'identity'``.
    """

    def __init__(
        self,
        heads: list[RPNHead],
        fusion: Fusion,
        classifier: StructuredMatrix,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        if not heads:
            raise ValueError("heads must hold at least one RPNHead, got an empty list")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(_ACTIVATIONS)}, got {activation!r}")
        self.heads = nn.ModuleList(heads)
        self.fusion = fusion
        dims = [h.out_features for h in heads]
        fused = fusion.out_features(dims)
        if classifier.in_features != fused:
            raise ValueError(
                f"classifier has in_features={classifier.in_features} but the fusion of head "
                f"widths {dims} gives {fused}"
            )
        self.classifier = classifier
        self.classifier_bias = nn.Parameter(torch.zeros(classifier.out_features))
        self.activation = activation

    def fused(self, x: Tensor) -> Tensor:
        """The fused head outputs ``fusion([o_1, …, o_H])`` before the activation."""
        return self.fusion([head(x) for head in self.heads])

    def forward(self, x: Tensor) -> Tensor:
        """``(b, m) → (b, classes)`` logits."""
        z = self.fused(x)
        if self.activation == "silu":
            z = silu(z)
        elif self.activation == "relu":
            z = relu(z)
        elif self.activation == "tanh":
            z = torch.tanh(z)
        return self.classifier(z, self.classifier_bias)

    def get_config(self) -> dict[str, Any]:
        return {
            "heads": list(self.heads),
            "fusion": self.fusion,
            "classifier": self.classifier,
            "activation": self.activation,
        }


@dataclass(frozen=True)
class Strategy:
    """One fusion strategy the demo compares.

    ``fusion`` is ``'sum'``, ``'mean'``, ``'weighted_sum'``, ``'max'``, ``'concat'`` or
    ``'projected'``; ``matrix`` (with ``options``) is the projection of ``'projected'``.
    """

    name: str
    fusion: str
    matrix: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """``'element-wise'``, ``'concatenation'`` or ``'projected concatenation'``."""
        if self.fusion == "concat":
            return "concatenation"
        if self.fusion == "projected":
            return "projected concatenation"
        return "element-wise"


#: The strategies ``interfuse demo`` trains, in table order.
STRATEGIES: tuple[Strategy, ...] = (
    Strategy("sum", "sum"),
    Strategy("mean", "mean"),
    Strategy("weighted_sum", "weighted_sum"),
    Strategy("max", "max"),
    Strategy("concat", "concat"),
    Strategy("proj_dense", "projected", "dense"),
    Strategy("proj_lowrank", "projected", "lowrank", {"rank": 8}),
    Strategy("proj_kronecker", "projected", "kronecker"),
    Strategy("proj_lphm", "projected", "lowrank_kronecker", {"rank": 4}),
    Strategy("proj_dual_lphm", "projected", "dual_lowrank_kronecker", {"rank": 4}),
    Strategy("proj_random_adapted", "projected", "random_adapted", {"rank": 64, "seed": 0}),
)


def make_fusion(strategy: Strategy, dims: list[int], width: int) -> Fusion:
    """The fusion module of ``strategy`` for heads of widths ``dims`` (projection to ``width``),
    built by :func:`~interfuse.fusion.resolve_fusion`."""
    if strategy.fusion == "projected":
        return resolve_fusion(
            "projected_concat",
            in_dims=dims,
            out_dim=width,
            matrix=strategy.matrix or "dense",
            matrix_options=dict(strategy.options),
        )
    if strategy.fusion == "weighted_sum":
        return resolve_fusion("weighted_sum", num_inputs=len(dims))
    return resolve_fusion(strategy.fusion)


def kronecker_square_factor(m: int) -> int:
    """The largest divisor of ``m`` not above ``√m``: a square Kronecker split ``p = q``."""
    best = 1
    d = 1
    while d * d <= m:
        if m % d == 0:
            best = d
        d += 1
    return best


def interdependence_options(matrix: str, m: int) -> tuple[dict[str, Any], str]:
    """Options and ``init`` of an ``m × m`` attribute interdependence built on ``matrix``.

    Structures that can represent the identity start as the identity (so a fresh head sees
    its input unmixed): dense, and the Kronecker family on a square split ``p = q`` with just
    enough rank. Low-rank and random-adapted matrices keep their default initialization.
    """
    cls = matrix_class(matrix)
    if cls is DenseMatrix:
        return {}, "identity"
    if cls in (KroneckerMatrix, LowRankKroneckerMatrix, DualLowRankKroneckerMatrix):
        p = kronecker_square_factor(m)
        options: dict[str, Any] = {"p": p, "q": p}
        if cls is LowRankKroneckerMatrix:
            options["rank"] = m // p
        elif cls is DualLowRankKroneckerMatrix:
            options["rank"] = max(p, m // p)
        return options, "identity"
    return {}, "default"


def build_model(
    strategy: Strategy,
    in_features: int,
    num_classes: int,
    *,
    width: int = 64,
    interdependence: str = "kronecker",
    projection: str = "lowrank",
    degree: int = 2,
    fourier_features: int = 256,
    fourier_scale: float | None = None,
    seed: int = 0,
) -> WideRPN:
    """A :class:`WideRPN` with three heads (identity, polynomial, Fourier) for ``strategy``.

    Args:
        strategy: the fusion under test.
        in_features: width ``m`` of a data row.
        num_classes: number of classes.
        width: head width ``n`` (also the projected-concatenation output).
        interdependence: matrix name of the attribute interdependences (started as the
            identity; Kronecker-family matrices use a square split ``p = q``).
        projection: matrix name of the heads' projections.
        degree: highest power of the polynomial expansion.
        fourier_features: width of the Fourier expansion.
        fourier_scale: frequency scale (default ``1/√m``).
        seed: seeds the parameters and the Fourier frequencies.
    """
    torch.manual_seed(seed)
    m = in_features
    inter_kw, inter_init = interdependence_options(interdependence, m)
    scale = fourier_scale if fourier_scale is not None else 1.0 / m**0.5
    expansions: list[IdentityExpansion | PolynomialExpansion | FourierExpansion] = [
        IdentityExpansion(m),
        PolynomialExpansion(m, degree=degree),
        FourierExpansion(m, fourier_features, scale=scale, seed=seed),
    ]
    heads = []
    for expansion in expansions:
        inter = ParameterizedInterdependence(
            m, m, matrix=interdependence, axis="attribute", init=inter_init, matrix_options=inter_kw
        )
        proj = resolve_matrix(projection, expansion.out_features, width)
        heads.append(RPNHead(inter, expansion, proj))
    dims = [h.out_features for h in heads]
    fusion = make_fusion(strategy, dims, width)
    fused = fusion.out_features(dims)
    classifier = resolve_matrix("dense", fused, num_classes)
    return WideRPN(heads, fusion, classifier)


def model_from_config(config: dict[str, Any]) -> WideRPN:
    """Rebuild a :class:`WideRPN` from ``model.to_config()`` with
    :func:`~interfuse.config.from_config` (the demo's classes registered meanwhile)."""
    with demo_classes_registered():
        model = from_config(config)
    if not isinstance(model, WideRPN):
        raise TypeError(f"config describes a {type(model).__name__}, not a WideRPN")
    return model


def count_trainable(module: nn.Module) -> int:
    """Trainable scalars of ``module`` (frozen buffers excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
