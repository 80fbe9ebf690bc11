"""One integer policy for both faces (``interfuse._validation``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import interfuse.tinybig as tb
from interfuse._validation import as_int, check_positive_int, check_seed
from interfuse.matrices import LowRankMatrix


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), torch.tensor(3)])
def test_integers_of_every_kind_are_accepted(value: object) -> None:
    assert as_int("n", value) == 3 and type(as_int("n", value)) is int
    assert LowRankMatrix(6, 4, rank=value).rank == 3  # type: ignore[arg-type]
    assert tb.lowrank_parameterized_interdependence(b=2, m=6, r=value).r == 3


@pytest.mark.parametrize(
    "value", [True, np.bool_(True), torch.tensor(True), 2.0, "2", torch.tensor([2]), None]
)
def test_everything_else_is_a_type_error_naming_the_argument(value: object) -> None:
    with pytest.raises(TypeError, match=r"^r must be a positive int, got "):
        check_positive_int("r", value)
    # one error type for one mistake, in both faces
    with pytest.raises(TypeError, match="rank must be a positive int"):
        LowRankMatrix(6, 4, rank=value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="r must be a positive int"):
        tb.lowrank_parameterized_interdependence(b=2, m=6, r=value)


def test_non_positive_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="r must be a positive int, got 0"):
        check_positive_int("r", np.int64(0))


@pytest.mark.parametrize("seed", [-(2**63), 0, 2**64 - 1, np.uint64(2**64 - 1)])
def test_seed_range_is_the_generators(seed: object) -> None:
    torch.Generator().manual_seed(check_seed(seed))


@pytest.mark.parametrize("seed", [-(2**63) - 1, 2**64])
def test_seed_outside_names_seed(seed: int) -> None:
    with pytest.raises(ValueError, match=r"^seed must be in \[-2\*\*63, 2\*\*64 - 1\]"):
        check_seed(seed)


def test_tensor_list_widths_are_checked_in_the_one_pass() -> None:
    from interfuse._validation import check_tensor_list

    ok = [torch.ones(2, 3), torch.ones(2, 1)]
    assert check_tensor_list("xs", ok, widths=(3, 1), owner="F") == ok
    with pytest.raises(ValueError, match=r"xs have widths \[3, 1\] but F was built for in_dims"):
        check_tensor_list("xs", ok, widths=(3, 2), owner="F")
    mixed = [torch.ones(2, 3), torch.ones(2, 1, dtype=torch.float64)]
    with pytest.raises(ValueError, match=r"xs have widths \[3, 1\] but F was built for"):
        check_tensor_list("xs", mixed, widths=(1, 3), owner="F")
    # A count differing is the caller's to name (e.g. "xs has 2 tensors but ... num_inputs=3").
    assert len(check_tensor_list("xs", ok, widths=(3, 1, 2), owner="F")) == 2
