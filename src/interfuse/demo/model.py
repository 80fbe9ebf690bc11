r"""The demo's multi-view network and the strategies it compares, built from interfuse modules.

One head per view brings that view, whatever its width ``d_v``, to the common width ``n``;
the fusion under test combines the heads over the views present; a classifier maps the fused
vector to the class logits:

.. math::

    h_v = \operatorname{SiLU}(W_v x_v + b_v), \qquad
    z = \text{fusion}(h_1, \dots, h_k;\ \text{mask}), \qquad
    \text{logits} = C z + c .

``W_v`` is a structured matrix (dense by default). The strategies come from the registries:
every fusion of :data:`~interfuse.fusion.FUSIONS` that combines views (see
:data:`NOT_VIEW_FUSIONS` for those that do not), and a fusion that takes a ``matrix`` once per
entry of :data:`~interfuse.matrices.MATRICES`, so a fusion or matrix family registered later
joins the study with no edit here. Two kinds of baseline run beside them: one view alone, and
plain (early) concatenation of the raw views into a single head.

Every part is a :class:`~interfuse.config.Configurable`, so :func:`model_from_config` rebuilds
a whole network from ``model.to_config()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.functional import silu

from interfuse.config import Configurable, from_config
from interfuse.demo._registry import demo_classes_registered, demo_only
from interfuse.fusion import FUSIONS, Fusion, fusion_class
from interfuse.matrices import MATRICES, StructuredMatrix, resolve_matrix

__all__ = [
    "NOT_VIEW_FUSIONS",
    "MultiViewNet",
    "Strategy",
    "ViewHead",
    "baseline_strategies",
    "build_model",
    "count_trainable",
    "fusion_strategies",
    "make_fusion",
    "model_from_config",
]

#: Registered fusions the demo leaves out, with the reason: statistics of the views (they
#: describe how the views agree, not a way to combine them) rather than fusions.
NOT_VIEW_FUSIONS: dict[str, str] = {
    "median": "a robust statistic of the views (their middle value), not a combination",
    "norm": "the p-norm across views is a magnitude: it discards every sign",
    "var": "the variance across views measures their disagreement, not a combination",
    "std": "the standard deviation across views measures their disagreement",
}


@demo_only
class ViewHead(Configurable, nn.Module):
    """``h = SiLU(W x + b)``: brings one view (or the concatenated views) to the head width.

    Args:
        projection: a structured matrix of shape ``(n, d)``.
    """

    def __init__(self, projection: StructuredMatrix) -> None:
        super().__init__()
        self.projection = projection
        self.bias = nn.Parameter(torch.zeros(projection.out_features))

    @property
    def in_features(self) -> int:
        """Width ``d`` of the view."""
        return self.projection.in_features

    @property
    def out_features(self) -> int:
        """Head width ``n``."""
        return self.projection.out_features

    def forward(self, x: Tensor) -> Tensor:
        """``(b, d) → (b, n)``."""
        return silu(self.projection(x, self.bias))

    def get_config(self) -> dict[str, Any]:
        return {"projection": self.projection}


@demo_only
class MultiViewNet(Configurable, nn.Module):
    """Views → heads → fusion → classifier, or the baselines' shapes of it.

    * late fusion (``early=False``, one head per view): ``C fusion(h_1, …, h_k) + c``;
    * early fusion (``early=True``, one head): ``C h(fusion(x_1, …, x_k)) + c``, the fusion
      applied to the raw views (plain concatenation: absent views zero-filled);
    * one view (``fusion=None``, one head): ``C h(x_view) + c``.

    Every kind takes the list of all views, so that they are used alike.

    Args:
        heads: the :class:`ViewHead` modules.
        fusion: an interfuse fusion, or ``None`` for a single-view model.
        classifier: a structured matrix of shape ``(classes, fused width)``.
        early: fuse the raw views before the (single) head.
        view: the view a single-view model reads (index into the list of views).
    """

    def __init__(
        self,
        heads: Sequence[ViewHead],
        fusion: Fusion | None,
        classifier: StructuredMatrix,
        early: bool = False,
        view: int = 0,
    ) -> None:
        super().__init__()
        heads = list(heads)
        if not heads:
            raise ValueError("heads must hold at least one ViewHead, got an empty list")
        if (fusion is None or early) and len(heads) != 1:
            raise ValueError(
                f"a single-view or early-fusion network has one head, got {len(heads)}"
            )
        self.heads = nn.ModuleList(heads)
        self.fusion = fusion
        self.early = bool(early)
        self.view = view
        if fusion is None or early:
            width = heads[0].out_features
        else:
            width = fusion.out_features([h.out_features for h in heads])
        if classifier.in_features != width:
            raise ValueError(
                f"classifier has in_features={classifier.in_features} but the network gives "
                f"{width} features"
            )
        self.classifier = classifier
        self.classifier_bias = nn.Parameter(torch.zeros(classifier.out_features))

    def forward(self, xs: Sequence[Tensor], mask: Tensor | None = None) -> Tensor:
        """``k`` views ``(b, d_v)`` and an optional ``(b, k)`` bool mask of present views →
        ``(b, classes)`` logits."""
        if self.fusion is None:
            z = self.heads[0](xs[self.view])
        elif self.early:
            z = self.heads[0](self.fusion(list(xs), mask=mask))
        else:
            z = self.fusion([head(x) for head, x in zip(self.heads, xs)], mask=mask)
        return self.classifier(z, self.classifier_bias)

    def get_config(self) -> dict[str, Any]:
        return {
            "heads": list(self.heads),
            "fusion": self.fusion,
            "classifier": self.classifier,
            "early": self.early,
            "view": self.view,
        }


@dataclass(frozen=True)
class Strategy:
    """One way of combining the views.

    ``kind`` is ``'fusion'`` (late fusion of the heads by the registered fusion ``fusion``,
    with ``matrix`` for fusions that take one), ``'view'`` (the single view ``view``) or
    ``'early_concat'`` (the raw views concatenated into one head).
    """

    name: str
    kind: str
    fusion: str | None = None
    matrix: str | None = None
    view: int | None = None

    @property
    def is_fusion(self) -> bool:
        """Whether this is a fusion under test rather than a baseline."""
        return self.kind == "fusion"


def _takes(cls: type, name: str) -> bool:
    return name in inspect.signature(cls).parameters


def fusion_strategies() -> tuple[list[Strategy], dict[str, str]]:
    """The fusions under test, from the registries, and the registered fusions left out (name →
    reason). A fusion that takes a ``matrix`` gives one strategy per registered matrix."""
    chosen: list[Strategy] = []
    skipped: dict[str, str] = {}
    for name, cls in FUSIONS.items():
        if name in NOT_VIEW_FUSIONS:
            skipped[name] = NOT_VIEW_FUSIONS[name]
        elif _takes(cls, "matrix"):
            chosen += [Strategy(f"{name}_{m}", "fusion", name, m) for m in MATRICES]
        else:
            chosen.append(Strategy(name, "fusion", name))
    return chosen, skipped


def baseline_strategies(view_names: Sequence[str]) -> list[Strategy]:
    """One strategy per single view, then plain concatenation of the raw views."""
    views = [Strategy(f"view:{v}", "view", view=i) for i, v in enumerate(view_names)]
    return [*views, Strategy("early_concat", "early_concat", "concat")]


def make_fusion(
    name: str,
    in_dims: Sequence[int],
    width: int,
    *,
    matrix: str | None = None,
    input_dropout: float = 0.0,
) -> Fusion:
    """The registered fusion ``name`` for inputs of widths ``in_dims``.

    The constructor's arguments are filled by name from what the demo knows: the number of
    inputs (``num_inputs``), their widths (``in_dims``, ``dims``), the output width
    (``out_dim``, ``dim``, ``in_features``, ``out_features``: the head width), ``matrix`` and
    ``input_dropout``; the others keep their defaults.

    Raises:
        TypeError: the fusion needs an argument the demo cannot fill, or ``input_dropout`` is
            set and the fusion does not take it.
    """
    cls = fusion_class(name)
    params = inspect.signature(cls).parameters
    pool: dict[str, Any] = {
        "num_inputs": len(in_dims),
        "in_dims": list(in_dims),
        "dims": list(in_dims),
        "out_dim": width,
        "dim": width,
        "in_features": width,
        "out_features": width,
    }
    if matrix is not None:
        pool["matrix"] = matrix
    if input_dropout:
        if "input_dropout" not in params:
            raise TypeError(f"{cls.__name__} does not take input_dropout")
        pool["input_dropout"] = input_dropout
    kwargs = {k: v for k, v in pool.items() if k in params}
    missing = [
        k
        for k, p in params.items()
        if p.default is p.empty
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        and k not in kwargs
    ]
    if missing:
        raise TypeError(f"{cls.__name__} needs {missing}, which the demo cannot choose")
    return cls(**kwargs)


def build_model(
    strategy: Strategy,
    view_dims: Sequence[int],
    num_classes: int,
    *,
    width: int = 64,
    head_matrix: str = "dense",
    input_dropout: float = 0.0,
    seed: int = 0,
) -> MultiViewNet:
    """The :class:`MultiViewNet` of ``strategy`` for views of widths ``view_dims``.

    Args:
        strategy: the fusion under test or a baseline.
        view_dims: width of every view.
        num_classes: number of classes.
        width: head width ``n``.
        head_matrix: matrix name of the heads' projections.
        input_dropout: the fusion's ``input_dropout`` (ignored by single-view models).
        seed: seeds the parameters.
    """
    torch.manual_seed(seed)

    def head(d: int) -> ViewHead:
        return ViewHead(resolve_matrix(head_matrix, d, width))

    fusion: Fusion | None
    if strategy.kind == "view":
        if strategy.view is None:
            raise ValueError(f"strategy {strategy.name!r} names no view")
        heads, fusion = [head(view_dims[strategy.view])], None
    elif strategy.kind == "early_concat":
        heads = [head(sum(view_dims))]
        fusion = make_fusion("concat", view_dims, width, input_dropout=input_dropout)
    elif strategy.kind == "fusion" and strategy.fusion is not None:
        heads = [head(d) for d in view_dims]
        fusion = make_fusion(
            strategy.fusion,
            [width] * len(view_dims),
            width,
            matrix=strategy.matrix,
            input_dropout=input_dropout,
        )
    else:
        raise ValueError(f"unknown strategy kind {strategy.kind!r}")
    early = strategy.kind == "early_concat"
    late = fusion is not None and not early
    fused = fusion.out_features([width] * len(view_dims)) if late and fusion else width
    classifier = resolve_matrix("dense", fused, num_classes)
    return MultiViewNet(heads, fusion, classifier, early=early, view=strategy.view or 0)


def model_from_config(config: dict[str, Any]) -> MultiViewNet:
    """Rebuild a :class:`MultiViewNet` from ``model.to_config()`` with
    :func:`~interfuse.config.from_config` (the demo's classes registered meanwhile)."""
    with demo_classes_registered():
        model = from_config(config)
    if not isinstance(model, MultiViewNet):
        raise TypeError(f"config describes a {type(model).__name__}, not a MultiViewNet")
    return model


def count_trainable(module: nn.Module | None) -> int:
    """Trainable scalars of ``module`` (frozen buffers excluded; 0 for ``None``)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
