"""from_dense, relative_error, bias and to_linear on every registered family, against optima
computed here independently (SVD, the Van Loan–Pitsianis rearrangement, block SVDs)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from interfuse.config import from_config
from interfuse.matrices import (
    MATRICES,
    DenseMatrix,
    DualLowRankKroneckerMatrix,
    KroneckerMatrix,
    LowRankKroneckerMatrix,
    LowRankMatrix,
    MonarchMatrix,
    RandomAdaptedMatrix,
    StructuredMatrix,
)
from tests import registry  # noqa: F401  (before the entries it imports, against a cycle)
from tests.entries_matrices import IN, OPTIONS, OUT

pytestmark = pytest.mark.filterwarnings("ignore::interfuse.matrices.StructureWarning")
F64 = torch.float64
NAMES = sorted(MATRICES)


def _random(name: str, bias: bool = False) -> StructuredMatrix:
    torch.manual_seed(len(name))
    m = MATRICES[name](IN, OUT, bias=bias, dtype=F64, **OPTIONS.get(name, {}))
    with torch.no_grad():  # scales away from their constant initialization
        for p in m.parameters():
            p.copy_(torch.randn_like(p))
    return m


def _options(m: StructuredMatrix) -> dict[str, Any]:
    cfg = m.get_config()
    return {k: v for k, v in cfg.items() if k not in ("in_features", "out_features", "bias")}


# ---------------------------------------------------------------------------------------------
# Every family: exact recovery, bias, to_linear
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_from_dense_recovers_its_own_structure_exactly(name: str) -> None:
    m = _random(name, bias=True)
    w = m.materialize().detach()
    assert m.bias is not None
    fitted = type(m).from_dense(w, m.bias.detach(), **_options(m))
    assert type(fitted) is type(m) and fitted.get_config() == m.get_config()
    assert fitted.relative_error(w) < 1e-9
    torch.testing.assert_close(fitted.materialize(), w)
    x = torch.randn(4, IN, dtype=F64)
    torch.testing.assert_close(fitted(x), m(x))
    assert all(p.grad_fn is None and p.requires_grad for p in fitted.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_from_dense_takes_the_weights_device_and_dtype_and_leaves_it_alone(name: str) -> None:
    w = _random(name).materialize().detach().float().requires_grad_()
    before = w.detach().clone()
    fitted = MATRICES[name].from_dense(w, **OPTIONS.get(name, {}))
    assert next(fitted.parameters()).dtype == torch.float32
    assert torch.equal(w.detach(), before) and w.grad is None
    as64 = MATRICES[name].from_dense(w, dtype=F64, **OPTIONS.get(name, {}))
    assert next(as64.parameters()).dtype == F64


@pytest.mark.parametrize("name", NAMES)
def test_to_linear_round_trips(name: str) -> None:
    m = _random(name, bias=True)
    linear = m.to_linear()
    assert type(linear) is nn.Linear and linear.weight.dtype == F64
    x = torch.randn(7, IN, dtype=F64)
    torch.testing.assert_close(linear(x), m(x))
    assert linear.bias is not None and m.bias is not None
    back = type(m).from_dense(linear.weight, linear.bias, **_options(m))
    torch.testing.assert_close(back(x), m(x))
    no_bias = _random(name).to_linear()
    assert no_bias.bias is None


@pytest.mark.parametrize("name", NAMES)
def test_bias_is_counted_saved_and_added(name: str) -> None:
    m = _random(name, bias=True)
    assert m.bias is not None
    cls = type(m)
    options = _options(m)
    assert m.num_parameters == cls.count_parameters(IN, OUT, bias=True, **options)
    assert m.num_parameters == cls.count_parameters(IN, OUT, **options) + OUT
    assert "bias" in m.state_dict() and "bias=True" in repr(m)
    assert m.get_config()["bias"] is True and "bias" not in _random(name).get_config()
    rebuilt = from_config(m.to_config(), dtype=F64)
    rebuilt.load_state_dict(m.state_dict())
    x = torch.randn(3, IN, dtype=F64)
    torch.testing.assert_close(rebuilt(x), m(x))
    w = m.materialize()
    torch.testing.assert_close(m(x), x @ w.T + m.bias)
    extra = torch.randn(OUT, dtype=F64)  # a bias given to forward adds to the matrix's own
    torch.testing.assert_close(m(x, bias=extra), x @ w.T + m.bias + extra)
    m.reset_parameters()
    assert float(m.bias.detach().abs().max()) <= 1 / math.sqrt(IN)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: LowRankMatrix.from_dense([[1.0]]), TypeError, r"weight must be a torch.Tensor"),
        (
            lambda: LowRankMatrix.from_dense(torch.ones(2, 2, dtype=torch.long)),
            TypeError,
            r"weight must have a floating dtype, got torch.int64",
        ),
        (
            lambda: LowRankMatrix.from_dense(torch.ones(4)),
            ValueError,
            r"weight must be 2-D \(out_features, in_features\), got shape \(4,\)",
        ),
        (
            lambda: DenseMatrix.from_dense(torch.ones(3, 4), torch.ones(4)),
            ValueError,
            r"bias must have shape \(3,\) \(the weight's rows\), got \(4,\)",
        ),
        (
            lambda: LowRankMatrix.from_dense(torch.ones(3, 4), rnak=2),
            TypeError,
            r"LowRankMatrix.from_dense does not take the options \['rnak'\]; it takes",
        ),
        (
            lambda: LowRankMatrix.from_dense(torch.ones(3, 4), in_features=4),
            TypeError,
            r"from_dense sets \['in_features'\] from weight and bias",
        ),
        (
            lambda: KroneckerMatrix.from_dense(torch.ones(6, 4), p=4, q=2),
            ValueError,
            r"p=4 must divide out_features=6",
        ),
        (
            lambda: LowRankMatrix.from_dense(torch.ones(3, 4), rank=1.5),
            ValueError,
            r"rank as a float is a fraction in \(0, 1\], got 1.5",
        ),
        (
            lambda: DenseMatrix(4, 3).relative_error(torch.ones(4, 3)),
            ValueError,
            r"weight must have shape \(3, 4\) \(this matrix's\), got \(4, 3\)",
        ),
        (lambda: DenseMatrix(4, 3, bias=1), TypeError, r"bias must be a bool, got 1"),
    ],
    ids=[
        "not-tensor",
        "int",
        "1-d",
        "bias-shape",
        "option",
        "in-features",
        "kron-divides",
        "rank-fraction",
        "error-shape",
        "bias-bool",
    ],
)
def test_from_dense_errors(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def test_relative_error_of_zero() -> None:
    zero = torch.zeros(3, 4)
    assert DenseMatrix.from_dense(zero).relative_error(zero) == 0.0
    assert DenseMatrix.from_dense(torch.ones(3, 4)).relative_error(zero) == math.inf


# ---------------------------------------------------------------------------------------------
# The optima on random weights, computed independently
# ---------------------------------------------------------------------------------------------
def _random_weight(out_f: int, in_f: int, seed: int) -> Tensor:
    return torch.randn(out_f, in_f, generator=torch.Generator().manual_seed(seed), dtype=F64)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(0, 99))
def test_lowrank_is_the_truncated_svd(out_f: int, in_f: int, rank: int, seed: int) -> None:
    w = _random_weight(out_f, in_f, seed)
    sv = torch.linalg.svdvals(w)
    expected = float(sv[rank:].square().sum().sqrt() / sv.square().sum().sqrt())
    m = LowRankMatrix.from_dense(w, rank=rank)
    assert m.rank == rank
    assert m.relative_error(w) == pytest.approx(expected, abs=1e-9)


def test_lowrank_rank_as_a_fraction_keeps_that_share_of_the_energy() -> None:
    # singular values 4, 2, 1, 1 → energies 16, 4, 1, 1 (total 22)
    u, _ = torch.linalg.qr(_random_weight(6, 4, 0))
    v, _ = torch.linalg.qr(_random_weight(5, 4, 1))
    w = u @ torch.diag(torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=F64)) @ v.T
    for fraction, rank in [(0.5, 1), (16 / 22, 1), (0.8, 2), (20 / 22, 2), (0.95, 3), (1.0, 4)]:
        assert LowRankMatrix.from_dense(w, rank=fraction).rank == rank, fraction
    exact = LowRankMatrix.from_dense(w[:, :2] @ w[:2, :], rank=1.0)  # rank 2
    assert exact.rank == 2


def _rearranged(w: Tensor, p: int, q: int) -> Tensor:
    """Van Loan–Pitsianis: row i·q + j is the block (i, j) of W flattened (loops, on purpose)."""
    s, t = w.shape[0] // p, w.shape[1] // q
    rows = [
        w[i * s : (i + 1) * s, j * t : (j + 1) * t].reshape(-1) for i in range(p) for j in range(q)
    ]
    return torch.stack(rows)


@settings(max_examples=25, deadline=None)
@given(*(st.integers(1, 4) for _ in range(4)), st.integers(0, 99))
def test_kronecker_is_the_leading_pair_of_the_rearrangement(
    p: int, q: int, s: int, t: int, seed: int
) -> None:
    w = _random_weight(p * s, q * t, seed)
    sv = torch.linalg.svdvals(_rearranged(w, p, q))
    expected = float(sv[1:].square().sum().sqrt() / sv.square().sum().sqrt())
    m = KroneckerMatrix.from_dense(w, p=p, q=q)
    assert m.relative_error(w) == pytest.approx(expected, abs=1e-9)
    # ... and nothing in the neighbourhood does better
    for _ in range(3):
        a = m.a.detach() + 1e-3 * torch.randn_like(m.a)
        b = m.b.detach() + 1e-3 * torch.randn_like(m.b)
        assert (
            float(torch.linalg.matrix_norm(w - torch.kron(a, b)))
            >= float(torch.linalg.matrix_norm(w - m.materialize())) - 1e-12
        )


def test_lowrank_kronecker_forms_truncate_the_nearest_kronecker_factors() -> None:
    w = _random_weight(12, 16, 3)
    kron = KroneckerMatrix.from_dense(w, p=3, q=4)
    a, b = kron.a.detach(), kron.b.detach()  # B is 4 × 4
    lp = LowRankKroneckerMatrix.from_dense(w, rank=2, p=3, q=4)
    u, sv, vh = torch.linalg.svd(b)
    b2 = u[:, :2] @ torch.diag(sv[:2]) @ vh[:2]
    torch.testing.assert_close(lp.materialize(), torch.kron(a, b2))
    full = LowRankKroneckerMatrix.from_dense(w, rank=4, p=3, q=4)
    assert full.relative_error(w) == pytest.approx(kron.relative_error(w), abs=1e-12)
    dual = DualLowRankKroneckerMatrix.from_dense(w, rank=2, p=3, q=4)
    ua, sa, vha = torch.linalg.svd(a)
    a2 = ua[:, :2] @ torch.diag(sa[:2]) @ vha[:2]
    torch.testing.assert_close(dual.materialize(), torch.kron(a2, b2))
    by_fraction = DualLowRankKroneckerMatrix.from_dense(w, rank=1.0, p=3, q=4)
    assert by_fraction.rank == 4
    assert by_fraction.relative_error(w) == pytest.approx(kron.relative_error(w), abs=1e-9)


def test_monarch_is_the_rank_one_fit_of_every_block() -> None:
    k, s, t = 3, 2, 4
    w = _random_weight(k * s, k * t, 5)
    residual = 0.0
    for i in range(k):  # the block of (i, j): rows u·k + j, columns i·t + τ
        for j in range(k):
            block = w[j::k, i * t : (i + 1) * t]
            sv = torch.linalg.svdvals(block)
            residual += float(sv[1:].square().sum())
    expected = math.sqrt(residual) / float(torch.linalg.matrix_norm(w))
    m = MonarchMatrix.from_dense(w, num_blocks=k)
    assert m.relative_error(w) == pytest.approx(expected, abs=1e-9)


def test_random_adapted_scales_are_a_least_squares_stationary_point() -> None:
    w = _random_weight(10, 14, 7)
    m = RandomAdaptedMatrix.from_dense(w, rank=4, seed=3)
    assert torch.equal(
        m.random_out, RandomAdaptedMatrix(14, 10, rank=4, seed=3).random_out.double()
    )
    loss = (m.materialize() - w).square().sum()
    grads = torch.autograd.grad(loss, [m.scale_out, m.scale_rank])
    assert max(float(g.abs().max()) for g in grads) < 1e-5 * float(w.square().sum())
    assert 0 < m.relative_error(w) < 1


# ---------------------------------------------------------------------------------------------
# Guardrails
# ---------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("default::interfuse.matrices.StructureWarning")
def test_a_rank_at_or_above_min_side_warns_where_the_user_called() -> None:
    from interfuse.matrices import StructureWarning

    with pytest.warns(
        StructureWarning,
        match=r"rank=6 >= min\(in_features, out_features\)=6 "
        r"has 72 parameters, more than the dense matrix's 36",
    ) as record:
        LowRankMatrix(6, 6, rank=6)
    assert record[0].filename == __file__
    with pytest.warns(StructureWarning, match=r"rank=4 >= min"):
        LowRankMatrix.from_dense(_random_weight(4, 8, 0), rank=1.0)


@pytest.mark.filterwarnings("default::interfuse.matrices.StructureWarning")
def test_degenerate_automatic_kronecker_factors_warn_with_the_split() -> None:
    from interfuse.matrices import StructureWarning

    with pytest.warns(
        StructureWarning,
        match=r"1021 × 1024 matrix are A 1021 × 1 and B 1 × 1024: .*rank is at most 1; pass p",
    ):
        m = KroneckerMatrix(1024, 1021)
    assert (m.p, m.q) == (1021, 1)
    with pytest.warns(StructureWarning, match=r"KroneckerMatrix|Kronecker factors"):
        LowRankKroneckerMatrix(1024, 1021, rank=4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KroneckerMatrix(1024, 1024)  # sizes with divisors: no warning
        LowRankMatrix(64, 32, rank=8)


def test_the_warning_category_can_be_filtered() -> None:
    import warnings

    from interfuse.matrices import StructureWarning

    assert issubclass(StructureWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", StructureWarning)
        LowRankMatrix(4, 4, rank=4)


@pytest.mark.parametrize("name", NAMES)
def test_a_zero_width_piece_works_in_every_family(name: str) -> None:
    m = _random(name)
    x = torch.randn(3, IN, dtype=F64)
    pieces = [x[:, :0], x[:, :5], x[:, 5:5], x[:, 5:]]
    leaves = [piece.clone().requires_grad_() for piece in pieces]
    torch.testing.assert_close(m(leaves), m(x))
    m(leaves).sum().backward()
    assert [tuple(leaf.grad.shape) for leaf in leaves if leaf.grad is not None] == [
        tuple(piece.shape) for piece in pieces
    ]
    assert torch.autograd.gradcheck(
        lambda *xs: m(list(xs)), [leaf.detach().requires_grad_() for leaf in leaves]
    )
