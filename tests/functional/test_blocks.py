"""The block drivers every blocked kernel runs on: blocks cover every unit once, low-precision
results accumulate in float32 scratch, failed blocks (and only they) are redone with their own
mask, and the backward driver writes one gradient per visited input that needs one."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from interfuse import functional as fn
from interfuse.functional import _blocks
from interfuse.functional._blocks import _Block, _blocked_backward, _blocked_forward, _plan


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 64)  # 16 float32 units per block


def test_forward_visits_every_unit_once_and_accumulates_low_precision_in_float32() -> None:
    xs = [torch.arange(50, dtype=torch.float16).view(5, 10) for _ in range(3)]
    plan = _plan(xs, None)
    assert plan is not None
    seen: list[tuple[int, int]] = []

    def step(block: _Block, acc: Tensor) -> None:
        assert acc.dtype == torch.float32 and acc.shape == block.out.shape
        seen.append((block.a, block.b))
        torch.add(block.xs[0], block.xs[2], out=acc)

    out, redone = _blocked_forward(plan, xs, step)
    assert seen == [(0, 16), (16, 32), (32, 48), (48, 50)] and redone == []
    assert out.dtype == torch.float16
    torch.testing.assert_close(out, xs[0] + xs[2])


def test_forward_redoes_only_failed_blocks_with_their_rows_of_the_mask() -> None:
    xs = [torch.ones(8, 4), torch.full((8, 4), 2.0)]
    xs[1][5, 0] = math.nan  # rows 4-7 form the second block (16 units of width 4)
    mask = torch.ones(8, 2, dtype=torch.bool)
    mask[5, 1] = False
    plan = _plan(xs, mask)
    assert plan is not None and plan.by_row
    masks: list[Tensor | None] = []

    def step(block: _Block, acc: Tensor) -> Tensor:
        return torch.add(block.xs[0], block.xs[1], out=acc)

    def redo(block: _Block, mask: Tensor | None) -> Tensor:
        masks.append(mask)
        return torch.full_like(block.out, -1.0)

    out, redone = _blocked_forward(plan, xs, step, redo)
    assert redone == [(4, 8)]
    assert len(masks) == 1 and masks[0] is not None and torch.equal(masks[0], mask[4:8])
    assert (out[:4] == 3).all() and (out[4:] == -1).all()


def test_backward_writes_a_gradient_for_each_present_input_that_needs_one() -> None:
    xs = [torch.full((3, 7), float(i)) for i in range(4)]
    plan = _plan(xs, torch.tensor([True, False, True, True]))
    assert plan is not None
    out, grad = torch.zeros(3, 7), torch.ones(3, 7)

    def step(block: _Block, gb: Tensor, dst: dict[int, Tensor]) -> None:
        assert sorted(dst) == [0, 2]  # present and needing a gradient
        for i, d in dst.items():
            torch.mul(gb, block.xs[i], out=d)

    grads = _blocked_backward(plan, xs, out, grad, [True, True, True, False], step)
    assert grads[1] is None and grads[3] is None
    assert grads[0] is not None and (grads[0] == 0).all()
    assert grads[2] is not None and (grads[2] == 2).all()


_COMPILED_KERNELS = {
    "sum": lambda xs, m: fn.fused_sum(xs, m),
    "mean": lambda xs, m: fn.fused_mean(xs, m),
    "weighted_sum": lambda xs, m: fn.weighted_sum(xs, torch.tensor([0.5, 1.0, 2.0]), m),
    "max": lambda xs, m: fn.fused_max(xs, m),
    "min": lambda xs, m: fn.fused_min(xs, m),
    "prod": lambda xs, m: fn.fused_prod(xs, m),
    "l1": lambda xs, m: fn.fused_norm(xs, 1, m),
    "l2": lambda xs, m: fn.fused_norm(xs, 2, m),
    "var": lambda xs, m: fn.fused_var(xs, m),
    "std": lambda xs, m: fn.fused_std(xs, m),
    "logsumexp": lambda xs, m: fn.fused_logsumexp(xs, m),
}


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("name", list(_COMPILED_KERNELS))
def test_torch_compile_traces_the_stack_free_formulas(name: str, masked: bool) -> None:
    """Under torch.compile every kernel hands dynamo the stack-free reference formula, which
    inductor fuses into one loop; a stacked formula makes inductor materialize the (k, ...)
    copy (12x the bandwidth at k = 8, 4096x1024 before this was fixed). Exports keep the plain
    formulas. The values equal eager's."""
    graphs: list[torch.fx.GraphModule] = []

    def capture(gm: torch.fx.GraphModule, example_inputs: list[Tensor]) -> object:
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    xs = [torch.randn(64, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    mask = torch.tensor([[True, False, True]] * 32 + [[False, True, True]] * 32) if masked else None
    kernel = _COMPILED_KERNELS[name]
    compiled = torch.compile(kernel, backend=capture, fullgraph=True)
    torch.testing.assert_close(compiled(xs, mask), kernel(xs, mask))
    targets = {str(node.target) for gm in graphs for node in gm.graph.nodes}
    assert not any("stack" in t or "cat" in t for t in targets), sorted(targets)


@pytest.mark.parametrize("pick_max", [True, False])
def test_compiled_extrema_equal_eager_values_nan_included(pick_max: bool) -> None:
    """Under torch.compile max/min are torch.maximum/minimum chains: the same values (nan
    propagates, absent inputs skipped); a gradient at an exact tie is split, as torch does."""
    kernel = fn.fused_max if pick_max else fn.fused_min
    xs = [torch.tensor([[1.0, math.nan, 2.0]]), torch.tensor([[3.0, 0.0, -math.inf]])]
    mask = torch.tensor([[True, False]])
    compiled = torch.compile(kernel, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(xs), kernel(xs), equal_nan=True)
    torch.testing.assert_close(compiled(xs, mask), kernel(xs, mask), equal_nan=True)
    a = torch.tensor([2.0], requires_grad=True)
    b = torch.tensor([2.0], requires_grad=True)
    compiled([a, b]).backward()
    assert a.grad is not None and b.grad is not None
    torch.testing.assert_close(a.grad + b.grad, torch.tensor([1.0]))
