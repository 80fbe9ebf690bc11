"""The bench as a table: one row per fusion, one options entry per matrix family.

A :class:`FusionRow` says, for one fusion, everything the bench times it against: the modern
module (built from the class registered in :data:`interfuse.fusion.FUSIONS`), its
:mod:`interfuse.functional` kernel, the reduction over already stacked inputs, the naive
stack-then-reduce version (masked too), the plain ``nn.Module`` a user would write instead,
the tinyBIG function of the same name in both faces (``interfuse.tinybig`` and tinyBIG 0.2.1
itself), and PyTorch Geometric's ``MultiAggregation`` mode doing the same job. The case
builders in :mod:`interfuse.bench.cases` read rows; they dispatch on nothing else.

Rows are matched to the fusion registry by class name: a row whose class is not registered
(yet) is left out, and a registered element-wise fusion without a row makes
:func:`fusion_rows` raise, so a new fusion needs one row here and cannot silently escape the
bench. Matrix families come from :data:`interfuse.matrices.MATRICES` directly;
:data:`MATRIX_OPTIONS` holds constructor options for the families that need some.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

import interfuse.functional as fn

Reduce = Callable[[Tensor, Any], Tensor]
MaskedReduce = Callable[[Tensor, Tensor, Any], Tensor]
Kernel = Callable[[list[Tensor], Tensor | None, Tensor | None], Tensor]


class PlainStacked(nn.Module):
    """What a user writes instead of a fusion: stack the inputs, then one torch reduction
    (with its own copy of the fusion's weights, if any)."""

    def __init__(self, reduce: Reduce, weight: Tensor | None = None) -> None:
        super().__init__()
        self.reduce = reduce
        self.weight = None if weight is None else nn.Parameter(weight.detach().clone())

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.reduce(torch.stack(xs), self.weight)


class PlainCat(nn.Module):
    """``torch.cat(xs, -1)``, optionally followed by an ``nn.Linear``."""

    def __init__(self, linear: nn.Linear | None = None) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, xs: list[Tensor]) -> Tensor:
        x = torch.cat(xs, -1)
        return x if self.linear is None else self.linear(x)


def linear_like(module: Any) -> nn.Linear:
    """An ``nn.Linear`` holding a copy of a projection's weight and bias."""
    W = module.matrix.materialize().detach()
    bias = getattr(module, "bias", None)
    if bias is None:
        bias = getattr(module.matrix, "bias", None)
    linear = nn.Linear(W.shape[1], W.shape[0], bias=bias is not None, dtype=W.dtype)
    with torch.no_grad():
        linear.weight.copy_(W)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


class PlainAttention(nn.Module):
    """Attention a user writes: stack, score each input, softmax over the inputs, weighted sum
    (with copies of an :class:`AttentionFusion`'s scorer and biases)."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.scorer = copy.deepcopy(module.scorer)
        self.bias = nn.Parameter(module.bias.detach().clone())

    def forward(self, xs: list[Tensor]) -> Tensor:
        S = torch.stack(xs, -2)  # (..., k, n)
        alpha = (self.scorer(S).squeeze(-1) + self.bias).softmax(-1)
        return (alpha.unsqueeze(-1) * S).sum(-2)


class PlainGMU(nn.Module):
    """The gated multimodal unit as a user writes it (with copies of a :class:`GatedFusion`'s
    layers): ``z = softmax_k(gate([x₁, …, x_k]))``, ``Σ zᵢ ⊙ tanh(Wᵢ xᵢ)``."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.hidden = copy.deepcopy(module.hidden)
        self.gate = copy.deepcopy(module.gate)
        self.k, self.out = len(module.hidden), module.out_dim

    def forward(self, xs: list[Tensor]) -> Tensor:
        z = self.gate(torch.cat(xs, -1)).unflatten(-1, (self.k, self.out)).softmax(-2)
        h = torch.stack([torch.tanh(layer(x)) for layer, x in zip(self.hidden, xs)], -2)
        return (z * h).sum(-2)


def _functional(name: str) -> Callable[..., Tensor]:
    """``interfuse.functional.<name>``, looked up when called: the kernels of issue 12's
    statistics arrive with the fusions that use them (their rows appear with the classes)."""
    kernel: Callable[..., Tensor] = getattr(fn, name)
    return kernel


def _no_weights(module: Any) -> Tensor | None:
    return None


@dataclass(frozen=True)
class FusionRow:
    """Everything the bench times one fusion against (see the module docstring).

    ``build(cls, k, width, out, gen)`` makes the modern module; ``weights(module)`` the
    tensor the stacked/kernel formulas take (``None`` for parameter-free fusions);
    ``stacked(S, w)`` reduces the stacked ``(k, ..., n)`` inputs; ``masked(S, m, w)`` does so
    with ``m`` the ``(k, rows, 1)`` mask of present inputs; ``kernel(xs, w, mask)`` calls
    :mod:`interfuse.functional`; ``plain(module)`` is the user's own module.
    """

    name: str
    cls: str
    build: Callable[[type, int, int, int, torch.Generator], nn.Module]
    stacked: Reduce | None = None
    masked: MaskedReduce | None = None
    kernel: Kernel | None = None
    weights: Callable[[Any], Any] = _no_weights
    plain: Callable[[nn.Module], nn.Module] | None = None
    #: tinyBIG's function name (the same in ``interfuse.tinybig`` and in tinyBIG itself).
    tinybig: str | None = None
    #: ``(k, width, out, module) → (constructor kwargs, w or None)`` of the tinyBIG call.
    tinybig_args: Callable[[int, int, int, nn.Module], tuple[dict[str, Any], Tensor | None]] = (
        lambda k, width, out, module: ({"dims": [width] * k}, None)
    )
    #: PyTorch Geometric ``MultiAggregation`` combine mode doing the same job.
    pyg: str | None = None
    #: Least traffic of forward+backward on stacked inputs (see ``cases._Floor``):
    #: 'sum' (every input gets the output gradient), 'scaled' (g/k), 'each' (k gradients),
    #: 'each_read' (k gradients that read the inputs).
    grad: str = "each_read"
    #: In the large-size tables (element-wise fusions with a bandwidth floor).
    large: bool = True
    #: Arithmetic per element (exp, log, square roots, a scorer) bounds the op, not reading the
    #: inputs: its large-size target is the native reduction on the stacked inputs (the
    #: issue's "stacked reduction"), not the one-add-per-element floor.
    compute_bound: bool = False
    #: ``False``: written for a class another branch adds; the lead enables it after merging.
    enabled: bool = True

    def plain_module(self, module: nn.Module) -> nn.Module:
        if self.plain is not None:
            return self.plain(module)
        if self.stacked is None:
            raise ValueError(f"bench row {self.name!r} has neither `plain` nor `stacked`")
        return PlainStacked(self.stacked, self.weights(module))


def _parameter_free(**options: Any) -> Callable[[type, int, int, int, torch.Generator], nn.Module]:
    return lambda cls, k, width, out, gen: cls(**options)


def _weighted(cls: type, k: int, width: int, out: int, gen: torch.Generator) -> nn.Module:
    w = torch.softmax(torch.randn(k, generator=gen), 0)
    return cls(k, weights=w.tolist(), learnable=True)


def _projected(cls: type, k: int, width: int, out: int, gen: torch.Generator) -> nn.Module:
    module = cls([width] * k, out, matrix="dense")
    # A zero bias: tinyBIG's projection has none, so every variant computes the same values
    # while the modern module and the plain nn.Linear still pay for adding one.
    for name, p in module.named_parameters():
        if name.endswith("bias"):
            with torch.no_grad():
                p.zero_()
    return module


def _weighted_masked(S: Tensor, m: Tensor, w: Tensor | None) -> Tensor:
    assert w is not None
    wk = w.to(S.dtype)
    total = torch.tensordot(wk, torch.where(m, S, 0), 1)
    present = (m[..., 0].t().to(wk.dtype) @ wk)[:, None]
    return total * (wk.sum() / present)


def _vector_norm(p: float) -> Reduce:
    return lambda S, w: torch.linalg.vector_norm(S, p, 0)


def _masked_norm(p: float) -> MaskedReduce:
    return lambda S, m, w: torch.linalg.vector_norm(torch.where(m, S, 0), p, 0)


def _tinybig_weighted(
    k: int, width: int, out: int, module: Any
) -> tuple[dict[str, Any], Tensor | None]:
    return {"dims": [width] * k}, module.fusion_weights().detach()


def _tinybig_projection(
    k: int, width: int, out: int, module: Any
) -> tuple[dict[str, Any], Tensor | None]:
    return {"n": out, "dims": [width] * k}, module.matrix.materialize().detach().reshape(-1)


def _std(correction: int = 1) -> Callable[[Tensor, Tensor | None], Tensor]:
    return lambda S, w: torch.std(S, 0, correction=correction)


#: One row per fusion (class names of :data:`interfuse.fusion.FUSIONS`).
FUSION_ROWS: tuple[FusionRow, ...] = (
    FusionRow(
        "weighted_sum",
        "WeightedSumFusion",
        _weighted,
        stacked=lambda S, w: torch.tensordot(w.to(S.dtype), S, 1),
        masked=_weighted_masked,
        kernel=lambda xs, w, mask: fn.weighted_sum(xs, w, mask),  # type: ignore[arg-type]
        weights=lambda module: module.fusion_weights(),
        tinybig="parameterized_weighted_summation_fusion",
        tinybig_args=_tinybig_weighted,
        grad="each_read",
    ),
    FusionRow(
        "sum",
        "SumFusion",
        _parameter_free(),
        stacked=lambda S, w: S.sum(0),
        masked=lambda S, m, w: torch.where(m, S, 0).sum(0),
        kernel=lambda xs, w, mask: fn.fused_sum(xs, mask),
        tinybig="sum_fusion",
        pyg="sum",
        grad="sum",
    ),
    FusionRow(
        "mean",
        "MeanFusion",
        _parameter_free(),
        stacked=lambda S, w: S.mean(0),
        masked=lambda S, m, w: torch.where(m, S, 0).sum(0) / m.sum(0),
        kernel=lambda xs, w, mask: fn.fused_mean(xs, mask),
        tinybig="mean_fusion",
        pyg="mean",
        grad="scaled",
    ),
    FusionRow(
        "max",
        "MaxFusion",
        _parameter_free(),
        stacked=lambda S, w: S.amax(0),
        masked=lambda S, m, w: torch.where(m, S, -math.inf).amax(0),
        kernel=lambda xs, w, mask: fn.fused_max(xs, mask),
        tinybig="max_fusion",
        pyg="max",
    ),
    FusionRow(
        "min",
        "MinFusion",
        _parameter_free(),
        stacked=lambda S, w: S.amin(0),
        masked=lambda S, m, w: torch.where(m, S, math.inf).amin(0),
        kernel=lambda xs, w, mask: fn.fused_min(xs, mask),
        tinybig="min_fusion",
        pyg="min",
    ),
    FusionRow(
        "prod",
        "ProdFusion",
        _parameter_free(),
        stacked=lambda S, w: S.prod(0),
        masked=lambda S, m, w: torch.where(m, S, 1).prod(0),
        kernel=lambda xs, w, mask: fn.fused_prod(xs, mask),
        tinybig="prod_fusion",
    ),
    FusionRow(
        "l1_norm",
        "NormFusion",
        _parameter_free(p=1.0),
        stacked=_vector_norm(1.0),
        masked=_masked_norm(1.0),
        kernel=lambda xs, w, mask: fn.fused_norm(xs, 1.0, mask),
        tinybig="l1_norm_fusion",
    ),
    FusionRow(
        "l2_norm",
        "NormFusion",
        _parameter_free(p=2.0),
        stacked=_vector_norm(2.0),
        masked=_masked_norm(2.0),
        kernel=lambda xs, w, mask: fn.fused_norm(xs, 2.0, mask),
        tinybig="l2_norm_fusion",
    ),
    FusionRow(
        "median",
        "MedianFusion",
        _parameter_free(),
        stacked=lambda S, w: S.median(0).values,
        kernel=lambda xs, w, mask: fn.fused_median(xs, mask),
        tinybig="median_fusion",
    ),
    # Issue 12's statistics (branch fusion12, kernels from core16): they appear once their
    # classes are registered.
    FusionRow(
        "var",
        "VarFusion",
        _parameter_free(),
        stacked=lambda S, w: torch.var(S, 0),
        masked=lambda S, m, w: _masked_var(S, m),
        kernel=lambda xs, w, mask: _functional("fused_var")(xs, mask),
        pyg="var",
        compute_bound=True,
    ),
    FusionRow(
        "std",
        "StdFusion",
        _parameter_free(),
        stacked=_std(),
        masked=lambda S, m, w: _masked_var(S, m).sqrt(),
        kernel=lambda xs, w, mask: _functional("fused_std")(xs, mask),
        pyg="std",
        compute_bound=True,
    ),
    FusionRow(
        "logsumexp",
        "LogSumExpFusion",
        _parameter_free(),
        stacked=lambda S, w: torch.logsumexp(S, 0),
        masked=lambda S, m, w: torch.logsumexp(torch.where(m, S, -math.inf), 0),
        kernel=lambda xs, w, mask: _functional("fused_logsumexp")(xs, mask),
        pyg="logsumexp",
        compute_bound=True,
    ),
    # Issue 12's data-dependent fusions (branch fusion12): the modern module is the
    # `interfuse` variant (no functional kernel of their own); small sizes and, for attention,
    # the large sizes against a stacked softmax-weighted sum.
    FusionRow(
        "attention",
        "AttentionFusion",
        lambda cls, k, width, out, gen: cls([width] * k),
        stacked=lambda S, w: _stacked_attention(S, w),
        weights=lambda module: (module.scorer.weight, module.bias),
        plain=lambda module: PlainAttention(module),
        grad="each",
        compute_bound=True,
    ),
    FusionRow(
        "gated",
        "GatedFusion",
        lambda cls, k, width, out, gen: cls([width] * k, out),
        plain=lambda module: PlainGMU(module),
        large=False,
    ),
    FusionRow(
        "concat",
        "ConcatFusion",
        _parameter_free(),
        kernel=lambda xs, w, mask: fn.concat(xs, mask),
        plain=lambda module: PlainCat(),
        tinybig="concatenation_fusion",
        pyg="cat",
        large=False,
    ),
    FusionRow(
        "projected_concat",
        "ProjectedConcatFusion",
        _projected,
        plain=lambda module: PlainCat(linear_like(module)),
        tinybig="parameterized_concatenation_fusion",
        tinybig_args=_tinybig_projection,
        pyg="proj",
        large=False,  # the large sizes: the `projection` group (GEMM reference)
    ),
)


def _stacked_attention(S: Tensor, w: Any) -> Tensor:
    """``Σ softmax_k(v·xᵢ + bᵢ) xᵢ`` on the stacked ``(k, ..., n)`` inputs."""
    v, bias = w
    scores = (S @ v.t()).squeeze(-1) + bias.view(-1, *([1] * (S.ndim - 2)))
    return (scores.softmax(0).unsqueeze(-1) * S).sum(0)


def _masked_var(S: Tensor, m: Tensor) -> Tensor:
    count = m.sum(0)
    mean = torch.where(m, S, 0).sum(0) / count
    return torch.where(m, (S - mean) ** 2, 0).sum(0) / (count - 1)


#: Fusions the rows do not cover on purpose (none today).
UNBENCHED: frozenset[str] = frozenset()


def fusion_rows(registry: dict[str, type] | None = None) -> list[FusionRow]:
    """The rows whose class is registered, in table order.

    Raises:
        LookupError: a registered fusion has no row (add one to :data:`FUSION_ROWS`).
    """
    if registry is None:
        from interfuse.fusion import FUSIONS

        registry = dict(FUSIONS)
    names = {cls.__name__ for cls in registry.values()}
    covered = {row.cls for row in FUSION_ROWS}
    missing = sorted(names - covered - UNBENCHED)
    if missing:
        raise LookupError(
            f"fusions {missing} are registered but have no bench row: add a FusionRow to "
            "interfuse.bench.rows.FUSION_ROWS (or list them in UNBENCHED, saying why)"
        )
    return [row for row in FUSION_ROWS if row.cls in names and row.enabled]


def fusion_class(row: FusionRow) -> type:
    """The registered class of ``row``."""
    from interfuse.fusion import FUSIONS

    for cls in FUSIONS.values():
        if cls.__name__ == row.cls:
            return cls
    raise LookupError(f"bench row {row.name!r}: no fusion class {row.cls} is registered")


def row(name: str) -> FusionRow:
    """The row named ``name`` (registered or not)."""
    for r in FUSION_ROWS:
        if r.name == name:
            return r
    raise ValueError(f"bench row must be one of {[r.name for r in FUSION_ROWS]}, got {name!r}")


#: Constructor options per matrix family (families not listed take their defaults).
MATRIX_OPTIONS: dict[str, dict[str, Any]] = {
    "lowrank": {"rank": 8},
    "lowrank_kronecker": {"rank": 8},
    "dual_lowrank_kronecker": {"rank": 8},
    "random_adapted": {"rank": 8},
}
#: Speed-up targets over ``F.linear`` with the dense weight (issue 13's Monarch targets):
#: family → (in, out, batch, {phase: minimum speed-up}).
DENSE_SPEEDUP_TARGETS: dict[str, tuple[int, int, int, dict[str, float]]] = {
    "monarch": (4096, 4096, 4096, {"forward": 4.0, "forward+backward": 3.0}),
}
#: tinyBIG's projection function per family (the families it has).
TINYBIG_PROJECTIONS: dict[str, str] = {
    "dense": "parameterized_concatenation_fusion",
    "lowrank": "lowrank_parameterized_concatenation_fusion",
    "kronecker": "hm_parameterized_concatenation_fusion",
    "lowrank_kronecker": "lphm_parameterized_concatenation_fusion",
    "dual_lowrank_kronecker": "dual_lphm_parameterized_concatenation_fusion",
    "random_adapted": "random_matrix_adaption_parameterized_concatenation_fusion",
}


def matrix_families() -> list[str]:
    """Every family of :data:`interfuse.matrices.MATRICES`, in registry order."""
    from interfuse.matrices import MATRICES

    return list(MATRICES)


def build_matrix(name: str, D: int, n: int, dtype: torch.dtype = torch.float32) -> Any:
    """The registered matrix ``name`` of shape ``(n, D)`` with the bench's options."""
    from interfuse.matrices import MATRICES

    cls: Any = MATRICES[name]
    return cls(D, n, dtype=dtype, **MATRIX_OPTIONS.get(name, {}))
