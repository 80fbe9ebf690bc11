"""Reproductions of bugs found in a user-style review of the modern API.

Each test is marked ``xfail(strict=True)``: it passes while the bug is present and turns
into an XPASS (a failure) once it is fixed, so the marker must then be removed.
"""

from __future__ import annotations

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch.func import functional_call, grad, vmap

import interfuse as itf
from interfuse import functional as fn


@pytest.mark.xfail(
    strict=True,
    reason="RandomAdaptedMatrix.reset_parameters does not redraw the frozen random factors, "
    "so meta-device init + to_empty + reset_parameters leaves uninitialized memory in them",
)
def test_random_adapted_meta_init_then_reset_parameters() -> None:
    reference = itf.RandomAdaptedMatrix(32, 16, rank=4, seed=3)
    with torch.device("meta"):
        matrix = itf.RandomAdaptedMatrix(32, 16, rank=4, seed=3)
    matrix.to_empty(device="cpu")
    matrix.reset_parameters()
    torch.testing.assert_close(matrix.random_out, reference.random_out)
    torch.testing.assert_close(matrix.random_in, reference.random_in)


@pytest.mark.xfail(
    strict=True,
    reason="the blocked element-wise kernels use out= ops, which have no vmap batching rule",
)
def test_sum_fusion_under_vmap() -> None:
    xs = [torch.randn(4, 6) for _ in range(3)]
    out = vmap(lambda a, b, c: itf.SumFusion()([a, b, c]))(*xs)
    torch.testing.assert_close(out, xs[0] + xs[1] + xs[2])


@pytest.mark.xfail(
    strict=True,
    reason="_LinearFn/_SplitLinearFn are autograd.Functions without setup_context, which "
    "torch.func transforms reject",
)
def test_weighted_sum_fusion_under_func_grad() -> None:
    fusion = itf.WeightedSumFusion(2)
    xs = [torch.randn(4, 6), torch.randn(4, 6)]
    params = dict(fusion.named_parameters())
    grads = grad(lambda p: functional_call(fusion, p, (xs,)).sum())(params)
    torch.testing.assert_close(grads["weight"], torch.stack([x.sum() for x in xs]))


@pytest.mark.xfail(
    strict=True,
    reason="the split (concatenation-free) dense projection is an autograd.Function with "
    "no setup_context, so torch.func.grad fails",
)
def test_dense_projected_concat_under_func_grad() -> None:
    fusion = itf.ProjectedConcatFusion([6, 6], 4)
    xs = [torch.randn(3, 6), torch.randn(3, 6)]
    params = dict(fusion.named_parameters())
    grads = grad(lambda p: functional_call(fusion, p, (xs,)).sum())(params)
    assert grads["matrix.weight"].shape == (4, 12)


@pytest.mark.xfail(
    strict=True,
    reason="forward-mode AD: the blocked kernels use out= ops / Functions without jvp",
)
def test_sum_fusion_forward_mode_ad() -> None:
    xs = [torch.randn(4, 6) for _ in range(2)]
    with fwAD.dual_level():
        duals = [fwAD.make_dual(x, torch.ones_like(x)) for x in xs]
        tangent = fwAD.unpack_dual(itf.SumFusion()(duals)).tangent
    torch.testing.assert_close(tangent, torch.full((4, 6), 2.0))


@pytest.mark.xfail(
    strict=True,
    reason="_extreme_ref chains torch.maximum, whose backward splits ties, while the blocked "
    "kernel routes the gradient to the first input: the gradient depends on memory layout",
)
def test_max_fusion_tie_gradient_does_not_depend_on_layout() -> None:
    a = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = torch.tensor([[1.0, 0.0], [3.0, 5.0]], requires_grad=True)
    itf.MaxFusion()([a, b]).sum().backward()
    contiguous = (a.grad.clone(), b.grad.clone())
    a.grad = b.grad = None
    itf.MaxFusion()([a.mT.contiguous().mT, b.mT.contiguous().mT]).sum().backward()
    torch.testing.assert_close((a.grad, b.grad), contiguous)


@pytest.mark.xfail(
    strict=True,
    reason="with a (k,) mask the blocked kernels return None for absent inputs, the "
    "reference formulas (non-contiguous inputs, torch.compile) return zeros",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="HybridInterdependence's 'outputs' strategy (chosen by 'auto') fuses part outputs "
    "of different leading shapes when data broadcasts against x",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="dense_linear adds the float32 bias outside F.linear, so under autocast the dense "
    "projection returns float32 (every other matrix, and nn.Linear, return the autocast dtype)",
)
def test_dense_projected_concat_autocast_dtype() -> None:
    fusion = itf.ProjectedConcatFusion([8, 8], 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fusion([torch.randn(2, 8), torch.randn(2, 8)])
    assert out.dtype == torch.bfloat16


@pytest.mark.xfail(
    strict=True, reason="functional.concat passes mismatched inputs to torch.cat unchecked"
)
def test_functional_concat_rejects_mismatched_leading_shapes() -> None:
    with pytest.raises(ValueError):
        fn.concat([torch.randn(4, 8), torch.randn(3, 8)])


@pytest.mark.xfail(
    strict=True, reason="functional.masked_inputs indexes a too-short mask (IndexError)"
)
def test_functional_masked_inputs_rejects_short_mask() -> None:
    with pytest.raises(ValueError):
        fn.masked_inputs([torch.randn(4, 8), torch.randn(4, 8)], torch.tensor([True]))


@pytest.mark.xfail(
    strict=True,
    reason="fused_median fills absent entries with +inf before sorting, and sort puts a "
    "present nan after them, so a masked median of [nan, 1] is inf instead of nan",
)
def test_masked_median_propagates_nan_like_unmasked() -> None:
    xs = [torch.tensor([float("nan")]), torch.tensor([1.0]), torch.tensor([5.0])]
    masked = itf.MedianFusion("mean")(xs, torch.tensor([True, True, False]))
    assert torch.isnan(masked).all()
