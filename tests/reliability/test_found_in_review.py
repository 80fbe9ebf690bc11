"""What a user-style review of the modern API found broken, now fixed: meta-device init of the
random adaption, torch.func transforms and forward-mode AD, tie and absent-input gradients that
depended on memory layout, broadcast data in the hybrid, autocast dtype of the dense
projection, the public kernels' checks, and nan in the masked median.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call, grad, vmap

import interfuse as itf
from interfuse import functional as fn


def test_random_adapted_meta_init_then_reset_parameters() -> None:
    reference = itf.RandomAdaptedMatrix(32, 16, rank=4, seed=3)
    with torch.device("meta"):
        matrix = itf.RandomAdaptedMatrix(32, 16, rank=4, seed=3)
    matrix.to_empty(device="cpu")
    matrix.reset_parameters()
    torch.testing.assert_close(matrix.random_out, reference.random_out)
    torch.testing.assert_close(matrix.random_in, reference.random_in)


def test_sum_fusion_under_vmap() -> None:
    xs = [torch.randn(4, 6) for _ in range(3)]
    out = vmap(lambda a, b, c: itf.SumFusion()([a, b, c]))(*xs)
    torch.testing.assert_close(out, xs[0] + xs[1] + xs[2])


def test_weighted_sum_fusion_under_func_grad() -> None:
    fusion = itf.WeightedSumFusion(2)
    xs = [torch.randn(4, 6), torch.randn(4, 6)]
    params = dict(fusion.named_parameters())
    grads = grad(lambda p: functional_call(fusion, p, (xs,)).sum())(params)
    torch.testing.assert_close(grads["weight"], torch.stack([x.sum() for x in xs]))


def test_dense_projected_concat_under_func_grad() -> None:
    fusion = itf.ProjectedConcatFusion([6, 6], 4)
    xs = [torch.randn(3, 6), torch.randn(3, 6)]
    params = dict(fusion.named_parameters())
    grads = grad(lambda p: functional_call(fusion, p, (xs,)).sum())(params)
    assert grads["matrix.weight"].shape == (4, 12)


def test_sum_fusion_forward_mode_ad() -> None:
    xs = [torch.randn(4, 6) for _ in range(2)]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, torch.ones_like(x)) for x in xs]
        tangent = fwAD.unpack_dual(itf.SumFusion()(duals)).tangent
    torch.testing.assert_close(tangent, torch.full((4, 6), 2.0))


def test_max_fusion_tie_gradient_does_not_depend_on_layout() -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = torch.tensor([[1.0, 0.0], [3.0, 5.0]], requires_grad=True)
    itf.MaxFusion()([a, b]).sum().backward()
    contiguous = (a.grad.clone(), b.grad.clone())
    a.grad = b.grad = None
    itf.MaxFusion()([a.mT.contiguous().mT, b.mT.contiguous().mT]).sum().backward()
    torch.testing.assert_close((a.grad, b.grad), contiguous)


def test_absent_input_gradient_does_not_depend_on_layout() -> None:
    def head_grad(contiguous: bool) -> torch.Tensor | None:
        torch.manual_seed(0)
        heads = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(2))
        hs = [h(torch.randn(3, 4)) for h in heads]
        if not contiguous:
            hs = [h.mT.contiguous().mT for h in hs]
        itf.MeanFusion()(hs, torch.tensor([True, False])).sum().backward()
        return heads[1].weight.grad

    assert (head_grad(True) is None) == (head_grad(False) is None)


def test_hybrid_outputs_strategy_with_broadcast_data() -> None:
    parts = [
        itf.ParameterizedInterdependence(64, matrix="lowrank", matrix_options={"rank": 1}),
        itf.BilinearInterdependence(4, matrix="lowrank", matrix_options={"rank": 1}),
    ]
    hybrid = itf.HybridInterdependence(parts, "sum")
    x, data = torch.randn(2, 1, 4, 64), torch.randn(3, 4, 64)
    assert hybrid.uses_outputs(x.shape, data.shape)
    a = parts[0].A + parts[1].interdependence_matrix(x)
    torch.testing.assert_close(hybrid(x, data), data @ a)


def test_dense_projected_concat_autocast_dtype() -> None:
    fusion = itf.ProjectedConcatFusion([8, 8], 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fusion([torch.randn(2, 8), torch.randn(2, 8)])
    assert out.dtype == torch.bfloat16


def test_functional_concat_rejects_mismatched_leading_shapes() -> None:
    with pytest.raises(ValueError):
        fn.concat([torch.randn(4, 8), torch.randn(3, 8)])


def test_functional_masked_inputs_rejects_short_mask() -> None:
    with pytest.raises(ValueError):
        fn.masked_inputs([torch.randn(4, 8), torch.randn(4, 8)], torch.tensor([True]))


def test_masked_median_propagates_nan_like_unmasked() -> None:
    xs = [torch.tensor([float("nan")]), torch.tensor([1.0]), torch.tensor([5.0])]
    masked = itf.MedianFusion("mean")(xs, torch.tensor([True, True, False]))
    assert torch.isnan(masked).all()


ELEMENTWISE = [
    itf.SumFusion,
    itf.MeanFusion,
    itf.MaxFusion,
    itf.MinFusion,
    itf.ProdFusion,
    itf.NormFusion,
    lambda: itf.NormFusion(1),
    lambda: itf.WeightedSumFusion(3),
    itf.MedianFusion,
]


@pytest.mark.parametrize("make", ELEMENTWISE)
def test_elementwise_fusions_under_vmap_and_jvp(make: Any) -> None:
    """vmap over a batch equals the loop; jvp equals the finite difference direction."""
    f = make()
    torch.manual_seed(0)
    xs = [torch.randn(5, 4, 3, dtype=torch.float64) + 2 for _ in range(3)]
    batched = vmap(lambda a, b, c: f([a, b, c]))(*xs)
    torch.testing.assert_close(batched, f(xs))
    tangents = [torch.randn_like(x) for x in xs]
    out, tangent_out = torch.func.jvp(lambda a, b, c: f([a, b, c]), tuple(xs), tuple(tangents))
    eps = 1e-6
    shifted = f([x + eps * t for x, t in zip(xs, tangents)])
    torch.testing.assert_close(tangent_out, (shifted - out) / eps, atol=1e-4, rtol=1e-4)
