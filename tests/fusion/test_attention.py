"""AttentionFusion against a stacked reference: weights, projections, masks, nan in absent
inputs, gradients, named inputs, compile."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from interfuse.config import from_config
from interfuse.fusion import AttentionFusion, fusion_class


def _reference(f: AttentionFusion, xs: list[Tensor], mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The same fusion written the obvious way: stack, score, softmax, weighted sum."""
    k = len(xs)
    present = torch.ones(k, dtype=torch.bool) if mask is None else mask
    zs = [torch.where(present[..., i, None], x, 0.0) for i, x in enumerate(xs)]
    if f.projections is not None:
        zs = [p(z) for p, z in zip(f.projections, zs, strict=True)]
    filled = torch.stack(zs, -2)  # (..., k, d)
    scores = f.scorer(filled).squeeze(-1) + f.bias
    alpha = scores.masked_fill(~present, float("-inf")).softmax(-1)
    return (alpha[..., None] * filled).sum(-2), alpha


def _xs(widths: list[int], lead: tuple[int, ...] = (2, 5)) -> list[Tensor]:
    torch.manual_seed(0)
    return [torch.randn(*lead, n, dtype=torch.float64) for n in widths]


MODULES = {
    "linear-scorer": lambda: AttentionFusion([6, 6, 6], dtype=torch.float64),
    "additive": lambda: AttentionFusion([6, 6, 6], hidden_dim=4, dtype=torch.float64),
    "projected": lambda: AttentionFusion([6, 3, 5], out_dim=4, dtype=torch.float64),
    "projected-additive": lambda: AttentionFusion(
        [6, 3, 5], out_dim=4, hidden_dim=2, dtype=torch.float64
    ),
}


def _random_bias(f: AttentionFusion) -> AttentionFusion:
    with torch.no_grad():
        f.bias.copy_(torch.tensor([0.5, -1.0, 0.25]))
    return f


@pytest.mark.parametrize("make", MODULES.values(), ids=MODULES.keys())
@pytest.mark.parametrize("mask_form", [None, "k", "rows"])
def test_values_and_weights_against_the_stacked_reference(make, mask_form) -> None:  # type: ignore[no-untyped-def]
    f = _random_bias(make())
    xs = _xs(list(f.in_dims))
    if mask_form is None:
        mask = None
    elif mask_form == "k":
        mask = torch.tensor([True, False, True])
    else:
        mask = torch.tensor(
            [
                [True, False, True],
                [False, True, True],
                [True, True, True],
                [False, False, True],
                [True, False, False],
            ]
        ).expand(2, 5, 3)
    if mask is not None:  # absent inputs hold nan placeholders
        xs = [torch.where(mask[..., i, None], x, float("nan")) for i, x in enumerate(xs)]
    out, alpha = f(xs, mask, return_weights=True)
    ref_out, ref_alpha = _reference(f, xs, mask)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(alpha, ref_alpha)
    assert alpha.shape == (2, 5, 3)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2, 5, dtype=torch.float64))
    if mask is not None:
        assert bool((alpha[~mask.expand(2, 5, 3)] == 0).all())  # exactly zero
    assert torch.isfinite(out).all()


def test_weights_depend_on_the_data() -> None:
    f = AttentionFusion([4, 4], hidden_dim=3)
    a = f([torch.randn(1, 4), torch.randn(1, 4)], return_weights=True)[1]
    b = f([torch.randn(1, 4) * 5, torch.randn(1, 4)], return_weights=True)[1]
    assert not torch.allclose(a, b)


def test_starts_without_preference_between_identical_inputs() -> None:
    f = AttentionFusion([4, 4, 4])
    x = torch.randn(3, 4)
    _, alpha = f([x, x, x], return_weights=True)
    torch.testing.assert_close(alpha, torch.full((3, 3), 1 / 3))


def test_gradcheck_masked_with_nan_absent_parameters_get_finite_gradients() -> None:
    f = AttentionFusion([3, 2, 4], out_dim=2, hidden_dim=2, dtype=torch.float64)
    xs = [x.requires_grad_() for x in _xs([3, 2, 4], lead=(4,))]
    mask = torch.tensor(
        [[True, False, True], [False, True, True], [True, True, False], [True, False, False]]
    )
    assert torch.autograd.gradcheck(lambda *x: f(list(x), mask), tuple(xs))
    nan_xs = [torch.where(mask[:, i, None], x.detach(), float("nan")) for i, x in enumerate(xs)]
    f(nan_xs, mask).sum().backward()
    for name, p in f.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_named_inputs_and_masks_by_name() -> None:
    f = AttentionFusion([4, 2], out_dim=3, names=["image", "text"])
    xs = {"text": torch.randn(5, 2), "image": torch.full((5, 4), float("nan"))}
    out, alpha = f(xs, mask={"image": False}, return_weights=True)
    torch.testing.assert_close(alpha, torch.tensor([[0.0, 1.0]]).expand(5, 2))
    torch.testing.assert_close(out, f.projections[1](xs["text"]))  # type: ignore[index]


def test_input_dropout_in_training_only() -> None:
    f = AttentionFusion([4, 4, 4], input_dropout=0.5)
    xs = [torch.randn(200, 4) for _ in range(3)]
    torch.manual_seed(0)
    _, alpha = f.train()(xs, return_weights=True)
    assert bool((alpha == 0).any()) and bool(((alpha > 0).sum(-1) >= 1).all())
    _, alpha = f.eval()(xs, return_weights=True)
    assert bool((alpha > 0).all())


def test_compile_fullgraph() -> None:
    f = AttentionFusion([6, 3, 5], out_dim=4, hidden_dim=2)
    xs = [x.float() for x in _xs([6, 3, 5])]
    mask = torch.tensor([True, False, True])
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(xs, mask), f(xs, mask))


def test_parameters_config_repr_registry() -> None:
    f = AttentionFusion([6, 6], hidden_dim=4)
    assert f.num_parameters == 6 * 4 + 4 + 4 + 2
    assert AttentionFusion([6, 6]).num_parameters == 6 + 2
    assert AttentionFusion([6, 3], out_dim=4).num_parameters == 9 * 4 + 2 * 4 + 4 + 2
    assert "AttentionFusion(\n  in_dims=[6, 6], out_dim=None, hidden_dim=4\n" in repr(f)
    rebuilt = from_config(f.to_config())
    rebuilt.load_state_dict(f.state_dict())
    xs = [torch.randn(2, 6), torch.randn(2, 6)]
    torch.testing.assert_close(rebuilt(xs), f(xs))
    assert fusion_class("attn") is AttentionFusion
    assert not f.is_linear
    assert f.out_features([6, 6]) == 6 and AttentionFusion([6, 3], 4).out_features([6, 3]) == 4


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"in_dims=\[6, 3\] differ: .* give out_dim"):
        AttentionFusion([6, 3])
    with pytest.raises(ValueError, match=r"hidden_dim must be a positive int, got 0"):
        AttentionFusion([6, 6], hidden_dim=0)
    f = AttentionFusion([6, 3], out_dim=4)
    with pytest.raises(
        ValueError,
        match=r"xs have widths \[6, 4\] but AttentionFusion was built "
        r"for in_dims=\[6, 3\]",
    ):
        f([torch.ones(2, 6), torch.ones(2, 4)])
    with pytest.raises(
        ValueError,
        match=r"xs has 3 tensors but AttentionFusion was built for "
        r"num_inputs=2",
    ):
        f([torch.ones(2, 6), torch.ones(2, 3), torch.ones(2, 3)])
    with pytest.raises(ValueError, match=r"in_dims=\[6, 4\] differ from the in_dims=\[6, 3\]"):
        f.out_features([6, 4])
