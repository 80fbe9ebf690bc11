"""Random-matrix adaption (``interfuse/matrices/random_adapted.py``): seeded factor buffers,
given factors, one pair of functions that draws and checks them for both faces, and the seed
travelling in the state_dict."""

from __future__ import annotations

import pytest
import torch

import interfuse.tinybig as tb
from interfuse.matrices import RandomAdaptedMatrix
from interfuse.matrices.random_adapted import check_random_factors, draw_random_factors


def test_draw_is_seeded_and_cpu_generated() -> None:
    a1, b1 = draw_random_factors(4, 3, 2, seed=7)
    torch.manual_seed(123)  # the global RNG plays no part
    a2, b2 = draw_random_factors(4, 3, 2, seed=7)
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and a1.shape == (4, 2)
    gen = torch.Generator().manual_seed(7)
    assert torch.equal(a1, torch.randn(4, 2, generator=gen))  # R_A first, then R_B


@pytest.mark.parametrize(
    ("given", "err", "match"),
    [
        ({"A": torch.ones(4, 2)}, ValueError, r"keys 'A' and 'B'"),
        (torch.ones(4, 2), TypeError, r"pair \(R_A, R_B\)"),
        ((torch.ones(4, 2), torch.ones(3, 1)), ValueError, r"shapes \(4, 2\) and \(3, 2\)"),
        ((torch.ones(4, 2), torch.full((3, 2), float("inf"))), ValueError, "R_B must hold finite"),
        ((["a"], torch.ones(3, 2)), TypeError, "tensors or array-likes"),
    ],
)
def test_check_refuses(given: object, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        check_random_factors(given, 4, 3, 2)


def test_both_faces_accept_the_same_forms() -> None:
    ra, rb = torch.randn(3, 2), torch.randn(4, 2)
    for given in ((ra, rb), {"A": ra, "B": rb}, (ra.tolist(), rb.tolist())):
        m = RandomAdaptedMatrix(4, 3, rank=2, random_factors=given)
        f = tb.random_matrix_adaption_parameterized_interdependence(
            b=2, m=3, m_prime=4, r=2, random_factors=given
        )
        torch.testing.assert_close(m.random_out, ra)
        torch.testing.assert_close(f.R_A, ra)


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: RandomAdaptedMatrix(6, 4, rank=2, seed=seed),
        lambda seed: tb.random_matrix_adaption_parameterized_interdependence(
            b=3, m=4, r=2, seed=seed
        ),
        lambda seed: tb.random_matrix_adaption_parameterized_concatenation_fusion(
            r=2, n=3, dims=[2, 2], seed=seed
        ),
    ],
    ids=["modern", "tinybig-interdependence", "tinybig-fusion"],
)
def test_loading_another_seed_keeps_config_and_reset_consistent(make) -> None:  # type: ignore[no-untyped-def]
    a, b = make(1), make(2)
    b.load_state_dict(a.state_dict())
    assert b.seed == 1
    config = b.to_config()
    params = config.get("function_parameters", config.get("params"))
    assert params["seed"] == 1
    if isinstance(b, RandomAdaptedMatrix):
        b.reset_parameters()
        assert torch.equal(b.random_out, a.random_out)
    state = a.state_dict()
    name = next(k for k in state if k in ("random_out", "R_A"))
    state[name] = state[name] * float("nan")
    with pytest.raises(RuntimeError, match="the random factors must be finite"):
        make(3).load_state_dict(state)


def test_a_state_dict_from_before_the_seed_was_saved_still_loads() -> None:
    a = RandomAdaptedMatrix(6, 4, rank=2, seed=1)
    legacy = {k: v for k, v in a.state_dict().items() if k != "_extra_state"}
    same = RandomAdaptedMatrix(6, 4, rank=2, seed=1)
    same.load_state_dict(legacy)
    assert same._seeded  # the factors are this seed's draw
    other = RandomAdaptedMatrix(6, 4, rank=2, seed=2)
    other.load_state_dict(legacy)
    other.reset_parameters()  # kept, as given factors are: they are not seed 2's
    assert not other._seeded and torch.equal(other.random_out, a.random_out)


def test_given_factors_go_to_the_parameters_device_and_dtype() -> None:
    m = RandomAdaptedMatrix(
        4,
        3,
        rank=2,
        random_factors=(torch.ones(3, 2, dtype=torch.float64), torch.ones(4, 2)),
        device="meta",
    )
    assert m.random_out.device.type == "meta" and m.random_out.dtype == torch.float32


def test_seed_outside_the_64_bit_range_names_seed() -> None:
    for make in (
        lambda: RandomAdaptedMatrix(4, 3, seed=2**64),
        lambda: tb.random_matrix_adaption_parameterized_interdependence(
            b=3, m=4, seed=-(2**63) - 1
        ),
    ):
        with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64 - 1\]"):
            make()


def test_random_factors_are_seeded_buffers() -> None:
    a = RandomAdaptedMatrix(8, 5, rank=3, seed=7)
    b = RandomAdaptedMatrix(8, 5, rank=3, seed=7)
    c = RandomAdaptedMatrix(8, 5, rank=3, seed=8)
    assert torch.equal(a.random_out, b.random_out) and torch.equal(a.random_in, b.random_in)
    assert not torch.equal(a.random_out, c.random_out)
    state = a.state_dict()
    assert {"random_out", "random_in"} <= set(state)
    assert {n for n, _ in a.named_parameters()} == {"scale_out", "scale_rank"}
    assert a.num_parameters == 5 + 3
    torch.manual_seed(123)  # the global RNG plays no part
    d = RandomAdaptedMatrix(8, 5, rank=3, seed=7)
    assert torch.equal(d.random_in, a.random_in)
    moved = a.to(torch.float64)
    assert moved.random_out.dtype == torch.float64
    # loading a state_dict replaces the random factors too
    c.load_state_dict(b.state_dict())
    assert torch.equal(c.random_in, b.random_in)


def test_given_random_factors_are_used() -> None:
    r_out, r_in = torch.randn(3, 2), torch.randn(4, 2)
    m = RandomAdaptedMatrix(4, 3, rank=2, random_factors=(r_out, r_in))
    assert torch.equal(m.random_out, r_out) and torch.equal(m.random_in, r_in)
    expected = (m.scale_out[:, None] * r_out * m.scale_rank) @ r_in.T
    torch.testing.assert_close(m.materialize(), expected)


def test_given_random_factors_take_the_parameters_dtype() -> None:
    r_out, r_in = torch.randn(3, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    m = RandomAdaptedMatrix(4, 3, rank=2, random_factors=(r_out, r_in))
    assert m.random_out.dtype == m.scale_out.dtype == torch.float32
    assert m(torch.randn(5, 4)).shape == (5, 3)
    torch.testing.assert_close(m.random_in, r_in.float())
