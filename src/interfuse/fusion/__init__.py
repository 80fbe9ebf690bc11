r"""Modern fusion modules: combine ``k`` tensors ``(..., n_i)`` into one.

Every class is a :class:`Fusion`: an ``nn.Module`` whose ``forward(xs, mask=None)`` takes the
list of inputs (any number of leading dimensions) and an optional bool mask of present inputs,
``(k,)`` or ``(..., k)``. Means and weighted sums renormalize over the present inputs, sums,
products, extrema, medians and norms skip the absent ones, concatenations zero-fill them.
:meth:`Fusion.out_features` and :attr:`Fusion.num_parameters` answer before any data.

| class | output | width | parameters |
|---|---|---|---|
| :class:`WeightedSumFusion` | ``Σ wᵢ xᵢ`` (``w`` or ``softmax(w)``) | ``n`` | ``k`` (0 if fixed) |
| :class:`SumFusion` | ``Σ xᵢ`` | ``n`` | 0 |
| :class:`MeanFusion` | ``(1/k) Σ xᵢ`` | ``n`` | 0 |
| :class:`ProdFusion` | ``Π xᵢ`` | ``n`` | 0 |
| :class:`MaxFusion` / :class:`MinFusion` | ``max xᵢ`` / ``min xᵢ`` | ``n`` | 0 |
| :class:`MedianFusion` | lower median or mean of the middle two | ``n`` | 0 |
| :class:`NormFusion` | ``(Σ \|xᵢ\|^p)^(1/p)`` | ``n`` | 0 |
| :class:`ConcatFusion` | ``[x₁, …, x_k]`` | ``Σ nᵢ`` | 0 |
| :class:`ProjectedConcatFusion` | ``W [x₁, …, x_k] + b`` | ``n'`` | matrix + ``n'`` |
| :class:`VarFusion` / :class:`StdFusion` | variance / std over the inputs | ``n`` | 0 |
| :class:`LogSumExpFusion` | ``log Σ exp xᵢ`` | ``n`` | 0 |
| :class:`AttentionFusion` | ``Σ αᵢ(x) xᵢ`` or ``Σ αᵢ(x) Pᵢ xᵢ`` | ``n`` or ``n'`` | scorer, Pᵢ |
| :class:`GatedFusion` | ``Σ zᵢ ⊙ tanh(Wᵢ xᵢ)`` | ``n'`` | ``(k+1)n'Σnᵢ + 2kn'`` |

Every fusion also takes its inputs as a mapping ``{name: tensor}`` (``names=[...]`` fixes the
order, else sorted keys), masks by name, and ``input_dropout`` (modality dropout in training).

:func:`resolve_fusion` builds one from a name (``'mean'``, ``'projected_concat'``, ...).
"""

from interfuse.fusion.attention import AttentionFusion
from interfuse.fusion.base import Fusion
from interfuse.fusion.concat import ConcatFusion, ProjectedConcatFusion
from interfuse.fusion.elementwise import (
    MaxFusion,
    MeanFusion,
    MedianFusion,
    MinFusion,
    NormFusion,
    ProdFusion,
    SumFusion,
    WeightedSumFusion,
)
from interfuse.fusion.gated import GatedFusion
from interfuse.fusion.registry import FUSIONS, fusion_class, resolve_fusion
from interfuse.fusion.statistics import LogSumExpFusion, StdFusion, VarFusion

__all__ = [
    "FUSIONS",
    "AttentionFusion",
    "ConcatFusion",
    "Fusion",
    "GatedFusion",
    "LogSumExpFusion",
    "MaxFusion",
    "MeanFusion",
    "MedianFusion",
    "MinFusion",
    "NormFusion",
    "ProdFusion",
    "ProjectedConcatFusion",
    "StdFusion",
    "SumFusion",
    "VarFusion",
    "WeightedSumFusion",
    "fusion_class",
    "resolve_fusion",
]
