"""WeightedSumFusion's ScalarMix options: scale γ, per-feature weights, init."""

from __future__ import annotations

import pytest
import torch

from interfuse.config import from_config
from interfuse.fusion import WeightedSumFusion


def _xs(k: int = 3, n: int = 5) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return [torch.randn(4, 2, n, dtype=torch.float64) for _ in range(k)]


def test_scalar_mix_equals_the_stacked_formula() -> None:
    f = WeightedSumFusion(3, normalize="softmax", scale=True, dtype=torch.float64)
    with torch.no_grad():
        f.weight.copy_(torch.tensor([0.3, -1.0, 2.0]))
        f.gamma.fill_(1.7)  # type: ignore[union-attr]
    xs = _xs()
    ref = 1.7 * (
        torch.tensor([0.3, -1.0, 2.0]).softmax(0)[:, None, None, None] * torch.stack(xs)
    ).sum(0)
    torch.testing.assert_close(f(xs), ref.double())
    assert f.num_parameters == 4
    assert [n for n, _ in f.named_parameters()] == ["weight", "gamma"]


def test_scale_starts_at_one_and_resets() -> None:
    f = WeightedSumFusion(2, scale=True)
    assert f.gamma is not None and f.gamma.item() == 1.0
    with torch.no_grad():
        f.gamma.fill_(3.0)
    f.reset_parameters()
    assert f.gamma.item() == 1.0


def test_scale_with_a_mask_multiplies_the_renormalized_sum() -> None:
    xs = _xs()
    xs[1] = torch.full_like(xs[1], float("nan"))
    f = WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], scale=True, dtype=torch.float64)
    with torch.no_grad():
        f.gamma.fill_(2.0)  # type: ignore[union-attr]
    mask = torch.tensor([True, False, True])
    ref = 2.0 * (0.2 * xs[0] + 0.3 * xs[2]) / 0.5
    torch.testing.assert_close(f(xs, mask), ref)


def test_per_feature_weights_against_the_stacked_formula() -> None:
    xs = _xs(n=5)
    w = torch.randn(3, 5, dtype=torch.float64)
    f = WeightedSumFusion(3, weights=w, per_feature=True, num_features=5, dtype=torch.float64)
    assert f.weight.shape == (3, 5) and f.num_parameters == 15
    torch.testing.assert_close(f(xs), (w[:, None, None, :] * torch.stack(xs)).sum(0))
    g = WeightedSumFusion(
        3, weights=w, per_feature=True, num_features=5, normalize="softmax", dtype=torch.float64
    )
    torch.testing.assert_close(g(xs), (w.softmax(0)[:, None, None, :] * torch.stack(xs)).sum(0))


@pytest.mark.parametrize("per_row", [False, True])
def test_per_feature_masked_renormalizes_per_feature_and_skips_nan(per_row: bool) -> None:
    xs = _xs(n=5)
    w = torch.rand(3, 5, dtype=torch.float64) + 0.1
    f = WeightedSumFusion(3, weights=w, per_feature=True, num_features=5, dtype=torch.float64)
    if per_row:
        mask = torch.tensor([[True, False, True], [False, True, True]]).expand(4, 2, 3)
    else:
        mask = torch.tensor([True, False, True])
    xs = [torch.where(mask[..., i, None], x, float("nan")) for i, x in enumerate(xs)]
    m = mask.to(torch.float64)
    stacked = torch.stack([torch.nan_to_num(x, nan=0.0) for x in xs], dim=-2)  # (..., k, n)
    num = (m[..., None] * w * stacked).sum(-2)
    present = (m[..., None] * w).sum(-2)
    torch.testing.assert_close(f(xs, mask), num * w.sum(0) / present)


def test_per_feature_gradcheck_masked() -> None:
    xs = [x.requires_grad_() for x in _xs(n=3)]
    f = WeightedSumFusion(
        3, per_feature=True, num_features=3, normalize="softmax", scale=True, dtype=torch.float64
    )
    mask = torch.tensor([[True, False, True], [True, True, False]]).expand(4, 2, 3)

    def fn(w: torch.Tensor, g: torch.Tensor, *x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(f, {"weight": w, "gamma": g}, (list(x), mask))

    w = f.weight.detach().clone().requires_grad_()
    g = f.gamma.detach().clone().requires_grad_()  # type: ignore[union-attr]
    assert torch.autograd.gradcheck(fn, (w, g, *xs))


def test_init_last_is_the_identity_on_the_last_input() -> None:
    xs = _xs()
    for kwargs in ({}, {"per_feature": True, "num_features": 5}):
        f = WeightedSumFusion(3, init="last", dtype=torch.float64, **kwargs)  # type: ignore[arg-type]
        torch.testing.assert_close(f(xs), xs[-1])
        # a mask dropping the last input renormalizes by the (zero) present weight: a user
        # who masks the residual must pick another init
    assert WeightedSumFusion(3, init="uniform").weight.tolist() == pytest.approx([1 / 3] * 3)


def test_option_errors() -> None:
    with pytest.raises(ValueError, match=r"per_feature=True needs num_features"):
        WeightedSumFusion(3, per_feature=True)
    with pytest.raises(ValueError, match=r"num_features=4 applies only with per_feature=True"):
        WeightedSumFusion(3, num_features=4)
    with pytest.raises(ValueError, match=r"init='last' needs normalize='none'"):
        WeightedSumFusion(3, init="last", normalize="softmax")
    with pytest.raises(ValueError, match=r"give weights or init='last', not both"):
        WeightedSumFusion(2, weights=[1.0, 2.0], init="last")
    with pytest.raises(ValueError, match=r"init must be one of \['uniform', 'last'\]"):
        WeightedSumFusion(2, init="zeros")
    with pytest.raises(TypeError, match=r"scale must be a bool, got 1"):
        WeightedSumFusion(2, scale=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"weights must have shape \(3,\) or \(3, 4\)"):
        WeightedSumFusion(3, weights=[[1.0] * 4] * 2, per_feature=True, num_features=4)
    f = WeightedSumFusion(3, per_feature=True, num_features=4)
    with pytest.raises(
        ValueError,
        match=r"xs have width 5 but WeightedSumFusion was built for "
        r"num_features=4",
    ):
        f([torch.ones(2, 5)] * 3)
    with pytest.raises(ValueError, match=r"differ from num_features=4"):
        f.out_features([5, 5, 5])
    assert f.out_features([4, 4, 4]) == 4


def test_config_round_trip_with_options() -> None:
    w = [[0.1, 0.2], [0.3, 0.4]]
    f = WeightedSumFusion(2, weights=w, per_feature=True, num_features=2, scale=True)
    config = f.to_config()
    assert config["params"]["weights"] == w
    rebuilt = from_config(config)
    assert repr(rebuilt) == repr(f)
    torch.testing.assert_close(rebuilt.weight, f.weight)
    assert from_config(WeightedSumFusion(3, init="last").to_config()).weight.tolist() == [0, 0, 1]


def test_compile_fullgraph_per_feature() -> None:
    f = WeightedSumFusion(3, per_feature=True, num_features=5, scale=True, dtype=torch.float64)
    xs = _xs()
    mask = torch.tensor([True, False, True])
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(xs, mask), f(xs, mask))
