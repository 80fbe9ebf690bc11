"""Concatenation kernels (``interfuse.functional.concat``): values, masks, gradients, aliasing."""

from __future__ import annotations

import math

import pytest
import torch

from interfuse import functional as fn


def test_concat_without_mask_is_torch_cat_and_never_aliases() -> None:
    xs = [torch.randn(2, 3), torch.randn(2, 1), torch.randn(2, 2)]
    out = fn.concat(xs)
    torch.testing.assert_close(out, torch.cat(xs, -1))
    single = fn.concat([xs[0]])
    torch.testing.assert_close(single, xs[0])
    assert single.data_ptr() != xs[0].data_ptr()  # a single input is cloned


@pytest.mark.parametrize("per_row", [False, True])
def test_absent_inputs_become_zeros_of_their_width_without_leaking_nan(per_row: bool) -> None:
    xs = [torch.ones(2, 2), torch.full((2, 3), math.nan), torch.full((2, 1), 5.0)]
    if per_row:
        mask = torch.tensor([[True, False, True], [False, False, True]])
        expected = torch.tensor([[1.0, 1, 0, 0, 0, 5], [0, 0, 0, 0, 0, 5]])
    else:
        mask = torch.tensor([True, False, True])
        expected = torch.tensor([[1.0, 1, 0, 0, 0, 5]] * 2)
    torch.testing.assert_close(fn.concat(xs, mask), expected)
    pieces = fn.masked_inputs(xs, mask)
    assert [p.shape for p in pieces] == [x.shape for x in xs]
    torch.testing.assert_close(torch.cat(pieces, -1), expected)


def test_masked_concat_gradients_are_zero_for_absent_entries() -> None:
    xs = [torch.randn(3, 2, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    mask = torch.tensor([[True, False, True], [True, True, False], [False, True, True]])
    assert torch.autograd.gradcheck(lambda *t: fn.concat(list(t), mask), tuple(xs))
    fn.concat(xs, mask).sum().backward()
    for i, x in enumerate(xs):
        assert x.grad is not None
        torch.testing.assert_close(x.grad, mask[:, i, None].double().expand(3, 2))


def test_masked_inputs_without_mask_returns_the_inputs_themselves() -> None:
    xs = [torch.randn(2, 3), torch.randn(2, 4)]
    assert all(a is b for a, b in zip(fn.masked_inputs(xs, None), xs))


@pytest.mark.parametrize(
    ("xs", "mask", "match"),
    [
        ([torch.ones(4, 2), torch.ones(3, 2)], None, r"all but the last dimension must agree"),
        ([torch.ones(2, 2), torch.ones(2, 2)], torch.tensor([True]), r"mask"),
        ([], None, r"at least one tensor"),
    ],
)
def test_bad_inputs_are_named(xs: list[torch.Tensor], mask: object, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        fn.concat(xs, mask)  # type: ignore[arg-type]
