"""GatedFusion (the gated multimodal unit) against a plain GMU: gates, masks, nan in absent
inputs, gradients, named inputs, compile."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from interfuse.config import from_config
from interfuse.fusion import GatedFusion, fusion_class

WIDTHS = [5, 3, 4]


def _reference(f: GatedFusion, xs: list[Tensor], mask: Tensor | None) -> Tensor:
    """A plain GMU: concatenate, gate, stack the squashed inputs, sum."""
    k = len(xs)
    present = torch.ones(k, dtype=torch.bool) if mask is None else mask
    filled = [torch.where(present[..., i, None], x, 0.0) for i, x in enumerate(xs)]
    h = torch.stack([torch.tanh(layer(x)) for layer, x in zip(f.hidden, filled)], -2)
    logits = f.gate(torch.cat(filled, -1)).unflatten(-1, (k, f.out_dim))
    if f.gate_kind == "softmax":
        z = logits.masked_fill(~present[..., None], float("-inf")).softmax(-2)
    else:
        z = logits.sigmoid() * present[..., None]
    return (z * h).sum(-2)


def _xs(lead: tuple[int, ...] = (2, 5)) -> list[Tensor]:
    torch.manual_seed(0)
    return [torch.randn(*lead, n, dtype=torch.float64) for n in WIDTHS]


@pytest.mark.parametrize("gate", ["softmax", "sigmoid"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mask_form", [None, "k", "rows"])
def test_values_against_a_plain_gmu(gate: str, bias: bool, mask_form: str | None) -> None:
    f = GatedFusion(WIDTHS, 6, gate=gate, bias=bias, dtype=torch.float64)
    xs = _xs()
    if mask_form is None:
        mask = None
    elif mask_form == "k":
        mask = torch.tensor([True, False, True])
    else:
        mask = torch.rand(2, 5, 3) < 0.5
        mask[..., 2] |= ~mask.any(-1)
    if mask is not None:
        xs = [torch.where(mask[..., i, None], x, float("nan")) for i, x in enumerate(xs)]
    out = f(xs, mask)
    assert out.shape == (2, 5, 6) and torch.isfinite(out).all()
    torch.testing.assert_close(out, _reference(f, xs, mask))


def test_two_inputs_softmax_is_the_bimodal_unit() -> None:
    """k = 2: z and 1 - z with z = σ(l₁ - l₂) (the paper's bimodal GMU)."""
    f = GatedFusion([3, 3], 2, dtype=torch.float64)
    xs = [torch.randn(2, 5, 3, dtype=torch.float64) for _ in range(2)]
    logits = f.gate(torch.cat(xs, -1)).unflatten(-1, (2, 2))
    z = torch.sigmoid(logits[..., 0, :] - logits[..., 1, :])
    h1, h2 = (torch.tanh(layer(x)) for layer, x in zip(f.hidden, xs))
    torch.testing.assert_close(f(xs), z * h1 + (1 - z) * h2)


def test_a_single_present_input_gets_all_of_the_softmax_gate() -> None:
    f = GatedFusion(WIDTHS, 6, dtype=torch.float64)
    xs = _xs()
    out = f(xs, torch.tensor([False, True, False]))
    torch.testing.assert_close(out, torch.tanh(f.hidden[1](xs[1])))


def test_gradcheck_masked_and_finite_gradients_with_nan_absent() -> None:
    f = GatedFusion(WIDTHS, 2, dtype=torch.float64)
    xs = [x.requires_grad_() for x in _xs(lead=(3,))]
    mask = torch.tensor([[True, False, True], [False, True, False], [True, True, True]])
    assert torch.autograd.gradcheck(lambda *x: f(list(x), mask), tuple(xs))
    nan_xs = [torch.where(mask[:, i, None], x.detach(), float("nan")) for i, x in enumerate(xs)]
    f(nan_xs, mask).sum().backward()
    for name, p in f.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_named_inputs() -> None:
    f = GatedFusion([5, 3], 4, names=["image", "text"])
    xs = {"text": torch.randn(2, 3), "image": torch.randn(2, 5)}
    torch.testing.assert_close(f(xs), f([xs["image"], xs["text"]]))


def test_compile_fullgraph() -> None:
    f = GatedFusion(WIDTHS, 6)
    xs = [x.float() for x in _xs()]
    mask = torch.tensor([True, False, True])
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(xs, mask), f(xs, mask))


def test_parameters_config_registry() -> None:
    f = GatedFusion(WIDTHS, 6)
    k, d = 3, sum(WIDTHS)
    assert f.num_parameters == (k + 1) * 6 * d + 2 * k * 6
    assert GatedFusion(WIDTHS, 6, bias=False).num_parameters == (k + 1) * 6 * d
    rebuilt = from_config(f.to_config())
    assert repr(rebuilt) == repr(f)
    assert f.get_config() == {"in_dims": WIDTHS, "out_dim": 6, "gate": "softmax", "bias": True}
    assert fusion_class("gmu") is GatedFusion
    assert not f.is_linear and f.out_features(WIDTHS) == 6


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"gate must be one of \['softmax', 'sigmoid'\]"):
        GatedFusion(WIDTHS, 6, gate="tanh")
    with pytest.raises(TypeError, match=r"bias must be a bool"):
        GatedFusion(WIDTHS, 6, bias=1)  # type: ignore[arg-type]
    f = GatedFusion(WIDTHS, 6)
    with pytest.raises(ValueError, match=r"xs have widths \[5, 3, 3\] but GatedFusion"):
        f([torch.ones(2, 5), torch.ones(2, 3), torch.ones(2, 3)])
    with pytest.raises(ValueError, match=r"in_dims=\[5, 3, 3\] differ from the in_dims"):
        f.out_features([5, 3, 3])
