"""VarFusion / StdFusion / LogSumExpFusion against torch's reductions of the stacked present
inputs, with and without masks, nan in absent inputs, gradients, compile."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from interfuse.config import from_config
from interfuse.fusion import Fusion, LogSumExpFusion, StdFusion, VarFusion, fusion_class

K = 4


def _reduce(name: str, correction: int) -> Callable[[Tensor], Tensor]:
    return {
        "var": lambda s: torch.var(s, dim=0, correction=correction),
        "std": lambda s: torch.std(s, dim=0, correction=correction),
        "logsumexp": lambda s: torch.logsumexp(s, dim=0),
    }[name]


def _make(name: str, correction: int) -> Fusion:
    if name == "var":
        return VarFusion(correction=correction)
    if name == "std":
        return StdFusion(correction)
    return LogSumExpFusion()


CASES = [("var", 1), ("var", 0), ("var", 2), ("std", 1), ("std", 0), ("logsumexp", 1)]
IDS = [f"{n}-c{c}" for n, c in CASES]


def _xs(offset: float = 0.0) -> list[Tensor]:
    torch.manual_seed(0)
    return [torch.randn(3, 5, 6, dtype=torch.float64) + offset for _ in range(K)]


@pytest.mark.parametrize(("name", "correction"), CASES, ids=IDS)
def test_unmasked_equals_the_stacked_reduction(name: str, correction: int) -> None:
    xs = _xs()
    torch.testing.assert_close(
        _make(name, correction)(xs), _reduce(name, correction)(torch.stack(xs))
    )


@pytest.mark.parametrize(("name", "correction"), CASES, ids=IDS)
def test_k_mask_equals_the_reduction_over_present_inputs_with_nan_absent(
    name: str, correction: int
) -> None:
    xs = _xs()
    mask = torch.tensor([True, False, True, True])
    xs[1] = torch.full_like(xs[1], float("nan"))
    expected = _reduce(name, correction)(torch.stack([xs[0], xs[2], xs[3]]))
    torch.testing.assert_close(_make(name, correction)(xs, mask), expected)


@pytest.mark.parametrize(("name", "correction"), CASES, ids=IDS)
def test_per_row_mask_equals_the_reduction_row_by_row(name: str, correction: int) -> None:
    xs = _xs()
    gen = torch.Generator().manual_seed(1)
    mask = torch.rand(3, 5, K, generator=gen) < 0.7
    mask[..., :3] = True  # three present in every row, so every correction gives finite values
    xs = [torch.where(mask[..., i, None], x, float("nan")) for i, x in enumerate(xs)]
    out = _make(name, correction)(xs, mask)
    reduce = _reduce(name, correction)
    for a in range(3):
        for b in range(5):
            present = [x[a, b] for i, x in enumerate(xs) if mask[a, b, i]]
            torch.testing.assert_close(out[a, b], reduce(torch.stack(present)))


def test_large_common_offset_stays_accurate() -> None:
    xs = _xs(offset=1e6)
    ref = torch.stack(xs).var(0)
    torch.testing.assert_close(VarFusion()(xs), ref, rtol=1e-6, atol=1e-6)
    xs32 = [x.float() for x in xs]  # the float32 values themselves, in float64
    ref32 = torch.stack(xs32).double().var(0)
    torch.testing.assert_close(VarFusion()(xs32).double(), ref32, rtol=1e-4, atol=1e-4)


def test_few_present_inputs_give_what_torch_gives() -> None:
    xs = _xs()
    mask = torch.tensor([False, True, False, False])
    out = VarFusion()(xs, mask)  # one value, correction 1: torch gives nan
    with warnings.catch_warnings():  # torch warns of the zero degrees of freedom
        warnings.simplefilter("ignore", UserWarning)
        expected = torch.var(xs[1][None], dim=0, correction=1)
    torch.testing.assert_close(out, expected, equal_nan=True)
    torch.testing.assert_close(
        VarFusion(correction=0)(xs, mask), torch.zeros_like(xs[1]), equal_nan=True
    )


@pytest.mark.parametrize(("name", "correction"), [("var", 1), ("std", 0), ("logsumexp", 1)])
def test_gradcheck_masked(name: str, correction: int) -> None:
    torch.manual_seed(2)
    xs = [torch.randn(2, 3, dtype=torch.float64, requires_grad=True) for _ in range(K)]
    mask = torch.tensor([[True, True, False, True], [False, True, True, True]])
    f = _make(name, correction)
    assert torch.autograd.gradcheck(lambda *x: f(list(x), mask), tuple(xs))


def test_absent_inputs_get_zero_gradients() -> None:
    xs = [x.requires_grad_() for x in _xs()]
    VarFusion()(xs, torch.tensor([True, False, True, True])).sum().backward()
    assert xs[1].grad is not None and bool((xs[1].grad == 0).all())


@pytest.mark.parametrize(("name", "correction"), [("var", 1), ("std", 1), ("logsumexp", 1)])
def test_compile_fullgraph(name: str, correction: int) -> None:
    f = _make(name, correction)
    xs = _xs()
    mask = torch.tensor([True, True, False, True])
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(xs, mask), f(xs, mask))


def test_registry_config_and_errors() -> None:
    assert fusion_class("variance") is VarFusion
    assert fusion_class("StdFusion") is StdFusion
    assert fusion_class("logsumexp") is LogSumExpFusion
    f = StdFusion(correction=0, num_inputs=3)
    assert repr(f) == "StdFusion(correction=0, num_inputs=3)"
    assert repr(from_config(f.to_config())) == repr(f)
    assert not f.is_linear and f.num_parameters == 0
    with pytest.raises(ValueError, match=r"correction must be a non-negative int, got -1"):
        VarFusion(correction=-1)
    with pytest.raises(TypeError, match=r"correction must be a non-negative int, got 0.5"):
        StdFusion(correction=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"identical shapes"):
        LogSumExpFusion()([torch.ones(2, 3), torch.ones(2, 4)])
