"""Training and evaluation for ``interfuse demo``: one model per run, the epoch kept chosen on
the validation rows, accuracies with all views and with views missing."""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import cross_entropy

from interfuse.demo.data import MultiViewData
from interfuse.demo.model import MultiViewNet, Strategy

__all__ = ["RunOutcome", "Settings", "accuracy", "missing_view_masks", "train_run"]


#: Worker processes by default: the cores, at most two (each trains one strategy at a time).
DEFAULT_JOBS = max(1, min(2, os.cpu_count() or 1))


@dataclass
class Settings:
    """The study's settings (``--quick`` lowers ``epochs``, ``width`` and ``seeds``)."""

    epochs: int = 20
    width: int = 64
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    seeds: int = 3
    head_matrix: str = "dense"
    input_dropout: float = 0.5
    missing: float = 0.5
    threads: int = 1
    jobs: int = DEFAULT_JOBS

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return dict(self.__dict__)


@dataclass
class RunOutcome:
    """One trained model's accuracies (``None`` where a single-view model cannot answer)."""

    val: float
    test: float
    val_missing: float | None
    test_missing: float | None
    seconds: float
    epoch: int
    model: MultiViewNet = field(repr=False)


def missing_view_masks(rows: int, views: int, p_missing: float, seed: int) -> Tensor:
    """A ``(rows, views)`` bool mask of present views: each view absent with probability
    ``p_missing``, independently per row, and never all of a row's (such a row keeps one view
    drawn uniformly)."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(rows, views, generator=gen) >= p_missing
    keep = torch.randint(views, (rows,), generator=gen)
    empty = ~mask.any(1)
    mask[empty, keep[empty]] = True
    return mask


@torch.no_grad()
def accuracy(
    model: MultiViewNet, xs: list[Tensor], labels: Tensor, mask: Tensor | None = None
) -> float:
    """Accuracy of ``model`` on views ``xs``; with a mask, absent views are zero-filled (the
    training mean: the views are standardized) and the mask goes to the fusion."""
    model.eval()
    if mask is not None:
        xs = [x * mask[:, v : v + 1] for v, x in enumerate(xs)]
    pred = model(xs, mask=mask).argmax(-1)
    return float((pred == labels).float().mean())


def train_run(
    model: MultiViewNet,
    data: MultiViewData,
    strategy: Strategy,
    settings: Settings,
    *,
    seed: int,
    masks: dict[str, Tensor],
    select_on_missing: bool = False,
) -> RunOutcome:
    """Train ``model`` with Adam on minibatches shuffled by ``seed``, keep the epoch with the best
    validation accuracy (all views present, or with ``select_on_missing`` the views of
    ``masks['val']``: the situation a model trained with input dropout is made for), and
    evaluate it with all views and with ``masks`` (``'val'``, ``'test'``)."""
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(seed)
    xs, y = data.views["train"], data.labels["train"]
    val_xs, val_y = data.views["val"], data.labels["val"]
    n = y.shape[0]
    best, best_state, best_epoch = -math.inf, copy.deepcopy(model.state_dict()), 0
    start = time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, settings.batch_size):
            idx = order[i : i + settings.batch_size]
            loss = cross_entropy(model([x[idx] for x in xs]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        score = accuracy(model, val_xs, val_y, masks["val"] if select_on_missing else None)
        if score > best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(model.state_dict())
    seconds = time.perf_counter() - start
    model.load_state_dict(best_state)
    model.eval()
    test = accuracy(model, data.views["test"], data.labels["test"])
    missing: dict[str, float | None] = {"val": None, "test": None}
    if strategy.kind != "view":
        for split in missing:
            missing[split] = accuracy(model, data.views[split], data.labels[split], masks[split])
    val = accuracy(model, val_xs, val_y)
    return RunOutcome(val, test, missing["val"], missing["test"], seconds, best_epoch, model)
