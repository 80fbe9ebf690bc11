"""interfuse.tinybig.interdependence: spec §11 cases 18–30 and 35, the fixes, the error paths."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import interfuse.tinybig as tb
import interfuse.tinybig.interdependence as idp
from interfuse.tinybig.config import instantiation_from_configs
from interfuse.tinybig.errors import (
    TinybigWarning,
    ValueAssertionError,
    ValueAttributeError,
    ValueRuntimeError,
)
from interfuse.tinybig.fabrication import Fabrication
from tests.tinybig.rpn_doubles import (
    IdentityExpansion,
    IdentityReconciliation,
    LowRankReconciliation,
    TaylorExpansion,
)

X_T = torch.tensor([[2.0, 7, 6, 4], [6, 5, 0, 4]])  # the tutorial's X
DATA_FREE = [
    (tb.parameterized_interdependence, {}),
    (tb.lowrank_parameterized_interdependence, {"r": 2}),
    (tb.hm_parameterized_interdependence, {"p": 2, "q": 2}),
    (tb.lphm_parameterized_interdependence, {"r": 1, "p": 2, "q": 2}),
    (tb.dual_lphm_parameterized_interdependence, {"r": 2, "p": 2, "q": 2}),
    (tb.random_matrix_adaption_parameterized_interdependence, {"r": 2}),
]
BILINEAR = [
    (tb.parameterized_bilinear_interdependence, {}),
    (tb.lowrank_parameterized_bilinear_interdependence, {"r": 2}),
    (tb.hm_parameterized_bilinear_interdependence, {"p": 2, "q": 2}),
    (tb.lphm_parameterized_bilinear_interdependence, {"r": 1, "p": 2, "q": 2}),
    (tb.dual_lphm_parameterized_bilinear_interdependence, {"r": 2, "p": 2, "q": 2}),
    (tb.random_matrix_adaption_parameterized_bilinear_interdependence, {"r": 2}),
]
HM = [
    tb.hm_parameterized_interdependence,
    tb.lphm_parameterized_interdependence,
    tb.dual_lphm_parameterized_interdependence,
]
HM_BILINEAR = [
    tb.hm_parameterized_bilinear_interdependence,
    tb.lphm_parameterized_bilinear_interdependence,
    tb.dual_lphm_parameterized_bilinear_interdependence,
]


def _ids(params: list[tuple[type, dict[str, Any]]]) -> list[str]:
    return [cls.__name__ for cls, _ in params]


def _w(f: idp.interdependence, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, f.calculate_l(), generator=g)


def _roundtrip(f: idp.interdependence) -> idp.interdependence:
    config = f.to_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt: idp.interdependence = instantiation_from_configs(config)
    assert type(rebuilt) is type(f)
    assert rebuilt.to_config() == config
    rebuilt.load_state_dict(f.state_dict())
    return rebuilt


# -- §11 case 18–20: fabricated matrices ----------------------------------------------------------


def test_case18_hm_matrix() -> None:
    f = tb.hm_parameterized_interdependence(b=3, m=4, m_prime=6, p=2, q=3)
    assert f.calculate_l() == 10
    A = f.calculate_A(w=torch.arange(1.0, 11.0).view(1, 10))
    expected = [
        [7, 8, 9, 10, 14, 16],
        [18, 20, 21, 24, 27, 30],
        [28, 32, 36, 40, 35, 40],
        [45, 50, 42, 48, 54, 60],
    ]
    torch.testing.assert_close(A, torch.tensor(expected, dtype=torch.float32))


def test_case19_lphm_and_dual_lphm_matrices() -> None:
    w = torch.arange(1.0, 9.0).view(1, 8)
    A = tb.lphm_parameterized_interdependence(b=3, m=4, p=2, q=2, r=1).calculate_A(w=w)
    row = torch.tensor([35.0, 40, 42, 48])
    torch.testing.assert_close(A, torch.stack([k * row for k in range(1, 5)]))
    dual = tb.dual_lphm_parameterized_interdependence(b=3, m=4, p=2, q=2, r=1).calculate_A(w=w)
    expected = [
        [105, 120, 126, 144],
        [140, 160, 168, 192],
        [210, 240, 252, 288],
        [280, 320, 336, 384],
    ]
    torch.testing.assert_close(dual, torch.tensor(expected, dtype=torch.float32))


def test_case20_rma_matrix_from_buffers() -> None:
    f = tb.random_matrix_adaption_parameterized_interdependence(b=3, m=4, m_prime=5, r=2)
    w = torch.arange(1.0, 7.0).view(1, 6)
    expected = torch.diag(w[0, :4]) @ f.R_A @ torch.diag(w[0, 4:6]) @ f.R_B.t()
    torch.testing.assert_close(f.calculate_A(w=w), expected)
    assert tuple(f.R_A.shape) == (4, 2) and tuple(f.R_B.shape) == (5, 2)
    assert set(f.state_dict()) == {"R_A", "R_B", "_extra_state"}


def test_rma_seed_is_deterministic_and_factors_can_be_given() -> None:
    a = tb.random_matrix_adaption_parameterized_interdependence(b=3, m=4, r=2, seed=5)
    b = tb.random_matrix_adaption_parameterized_interdependence(b=3, m=4, r=2, seed=5)
    c = tb.random_matrix_adaption_parameterized_interdependence(b=3, m=4, r=2, seed=6)
    assert torch.equal(a.R_A, b.R_A) and not torch.equal(a.R_A, c.R_A)
    ra, rb = torch.ones(4, 2), torch.full((4, 2), 2.0)
    given_pair = tb.random_matrix_adaption_parameterized_interdependence(
        b=3, m=4, r=2, random_factors=(ra, rb)
    )
    given_map = tb.random_matrix_adaption_parameterized_interdependence(
        b=3, m=4, r=2, random_factors={"A": ra, "B": rb}
    )
    assert torch.equal(given_pair.R_A, ra) and torch.equal(given_map.R_B, rb)
    with pytest.raises(ValueAssertionError, match=r"random_factors must have shapes \(4, 2\)"):
        tb.random_matrix_adaption_parameterized_interdependence(
            b=3, m=4, r=2, random_factors=(torch.ones(3, 2), rb)
        )
    with pytest.raises(TypeError, match="seed must be an int"):
        tb.random_matrix_adaption_parameterized_interdependence(b=3, m=4, seed="0")  # type: ignore[arg-type]


def test_random_factors_are_read_alike_on_both_faces() -> None:
    """Pairs or {'A', 'B'} mappings of tensors or array-likes; anything else is a TypeError."""
    np = pytest.importorskip("numpy")
    ra, rb = np.ones((4, 2)), np.full((4, 2), 2.0)  # float64 arrays: stored in the default dtype
    interdependence = tb.random_matrix_adaption_parameterized_interdependence(
        b=3, m=4, r=2, random_factors=(ra, rb)
    )
    fusion = tb.random_matrix_adaption_parameterized_concatenation_fusion(
        n=4, dims=[2, 2], r=2, random_factors={"A": ra, "B": rb}
    )
    for f in (interdependence, fusion):
        assert f.R_A.dtype == torch.float32
        assert torch.equal(f.R_B, torch.full((4, 2), 2.0))
    makers = (
        lambda rf: tb.random_matrix_adaption_parameterized_interdependence(
            b=3, m=4, r=2, random_factors=rf
        ),
        lambda rf: tb.random_matrix_adaption_parameterized_concatenation_fusion(
            n=4, dims=[2, 2], r=2, random_factors=rf
        ),
    )
    for make in makers:
        with pytest.raises(TypeError, match=r"random_factors must be a pair \(R_A, R_B\)"):
            make(ra)
        with pytest.raises(ValueError, match=r"must have the keys 'A' and 'B', got \['A'\]"):
            make({"A": ra})


def test_rma_buffers_follow_dtype_moves() -> None:
    f = tb.random_matrix_adaption_parameterized_bilinear_interdependence(b=3, m=4, r=2)
    f.to(torch.float64)
    assert f.R_A.dtype == torch.float64 and f.R_B.dtype == torch.float64


# -- §11 case 21–22: reshape interdependence ------------------------------------------------------


def test_case21_attribute_reshape() -> None:
    f = tb.parameterized_interdependence(b=5, m=3, m_prime=4)
    assert f.calculate_l() == 12
    w = torch.arange(12.0).view(1, 12)
    X = torch.arange(15.0).view(5, 3)
    torch.testing.assert_close(f.calculate_A(w=w), w.view(3, 4))
    out = f(x=X, w=w)
    torch.testing.assert_close(out, X @ w.view(3, 4))
    torch.testing.assert_close(out[0], torch.tensor([20.0, 23, 26, 29]))
    assert f(x=torch.randn(7, 3), w=w).shape == (7, 4)
    kappa = f(x=X, w=w, kappa_x=torch.ones(5, 3))
    torch.testing.assert_close(kappa, torch.tensor([[12.0, 15, 18, 21]]).expand(5, 4))
    # 1-D w is accepted too (deliberate difference: tinyBIG asserted w.ndim == 2)
    torch.testing.assert_close(f(x=X, w=w.view(12)), out)


def test_case21_errors() -> None:
    f = tb.parameterized_interdependence(b=5, m=3, m_prime=4)
    w = torch.arange(12.0).view(1, 12)
    with pytest.raises(ValueAssertionError, match=r"the data has 4 columns .* A expects 3"):
        f(x=torch.ones(5, 4), w=w)
    with pytest.raises(AssertionError):
        f(x=torch.ones(5, 4), w=w)
    with pytest.raises(ValueAttributeError, match=r"w is required to compute A: pass l=12"):
        f.calculate_A(w=None)
    with pytest.raises(AttributeError):
        f.calculate_A(w=None)
    with pytest.raises(ValueAssertionError, match=r"w is required \(require_parameters=True\)"):
        f(x=torch.ones(5, 3), w=None)
    with pytest.raises(ValueAssertionError, match=r"w must hold l=12 parameters .* got \(1, 11\)"):
        f.calculate_A(w=torch.ones(1, 11))
    with pytest.raises(ValueAssertionError, match=r"w must hold l=12"):
        f(x=torch.ones(5, 3), w=torch.ones(1, 13))
    with pytest.raises(ValueAssertionError, match=r"x must be a 2-D tensor \(b, m\), got \(3,\)"):
        f(x=torch.ones(3), w=w)


def test_case22_instance_reshape() -> None:
    f = tb.parameterized_interdependence(b=5, m=3, b_prime=2, interdependence_type="instance")
    assert f.calculate_l() == 10
    w = torch.arange(10.0).view(1, 10)
    X = torch.arange(15.0).view(5, 3)
    torch.testing.assert_close(f.calculate_A(w=w), w.view(5, 2))
    torch.testing.assert_close(f(x=X, w=w), torch.tensor([[180.0, 200, 220], [210, 235, 260]]))
    assert f(x=X, w=w, kappa_x=torch.randn(5, 7)).shape == (2, 7)
    assert f.calculate_m_prime() == 3 and f.calculate_b_prime() == 2
    attr = tb.parameterized_interdependence(b=5, m=3, b_prime=2)
    assert attr.calculate_b_prime() == 5
    with pytest.raises(ValueAssertionError, match="batches of exactly 5 rows"):
        f(x=torch.randn(4, 3), w=w)
    with pytest.raises(AssertionError):
        f(x=torch.randn(4, 3), w=w)


# -- §11 case 23: interdependence types -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "n_w"),
    [
        ("instance_interdependence", 4),
        ("instance", 4),
        ("left", 4),
        ("row", 4),
        ("attribute_interdependence", 9),
        ("attribute", 9),
        ("right", 9),
        ("column", 9),
    ],
)
def test_case23_types(kind: str, n_w: int) -> None:
    f = tb.parameterized_interdependence(b=2, m=3, interdependence_type=kind)
    assert f.calculate_l() == n_w
    assert f.is_instance == (n_w == 4)
    X = torch.randn(2, 3)
    w = _w(f)
    expected = f.calculate_A(w=w).t() @ X if f.is_instance else X @ f.calculate_A(w=w)
    torch.testing.assert_close(f(x=X, w=w), expected)


def test_row_means_instance_and_column_means_attribute() -> None:
    X, w = torch.randn(2, 3), torch.randn(1, 4)
    row = tb.parameterized_interdependence(b=2, m=3, interdependence_type="row")
    inst = tb.parameterized_interdependence(b=2, m=3, interdependence_type="instance")
    torch.testing.assert_close(row(x=X, w=w), inst(x=X, w=w))
    column = tb.parameterized_bilinear_interdependence(b=2, m=3, interdependence_type="column")
    attr = tb.parameterized_bilinear_interdependence(b=2, m=3, interdependence_type="attribute")
    torch.testing.assert_close(column(x=X, w=w), attr(x=X, w=w))


@pytest.mark.parametrize("bad", ["foo", "rows", "", None, 1])
def test_case23_bad_type(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"interdependence_type must be one of .*'row'.*got"):
        tb.parameterized_interdependence(b=2, m=3, interdependence_type=bad)
    f = tb.parameterized_interdependence(b=2, m=3)
    with pytest.raises(ValueError, match="interdependence_type must be one of"):
        f.interdependence_type = bad
    assert f.interdependence_type == "attribute"


# -- §11 case 24: caching -------------------------------------------------------------------------


def test_case24_no_stale_cache() -> None:
    f = tb.parameterized_interdependence(b=5, m=3, require_parameters=False)
    assert f.calculate_A(w=torch.ones(1, 9)).sum().item() == 9
    # tinyBIG returned the first A (sum 9) forever; a new w recomputes it
    assert f.calculate_A(w=torch.zeros(1, 9)).sum().item() == 0
    # a call without w reuses the last A (nothing required, nothing given)
    assert f.calculate_A().sum().item() == 0
    assert f.get_A() is not None and f.get_A().sum().item() == 0
    out = f(x=torch.ones(2, 3), w=torch.full((1, 9), 2.0))
    torch.testing.assert_close(out, torch.full((2, 3), 6.0))
    torch.testing.assert_close(f(x=torch.ones(2, 3)), torch.full((2, 3), 6.0))
    f.to(torch.float64)
    assert f.A is None  # .to() drops the cache instead of keeping a stale copy


def test_cache_only_when_nothing_is_required() -> None:
    f = tb.parameterized_interdependence(b=5, m=3)
    f.calculate_A(w=torch.ones(1, 9))
    assert f.A is None
    with pytest.warns(UserWarning, match="The A matrix is None"):
        assert f.get_A() is None


def test_data_dependent_cache_recomputes_for_new_x() -> None:
    f = tb.parameterized_bilinear_interdependence(
        b=2, m=3, require_parameters=False, require_data=False, interdependence_type="attribute"
    )
    w = torch.randn(1, 4)
    A1 = f.calculate_A(torch.randn(2, 3), w)
    x2 = torch.randn(2, 3)
    A2 = f.calculate_A(x2, w)
    assert not torch.allclose(A1, A2)
    assert f.calculate_A() is f.A
    torch.testing.assert_close(f.calculate_A(), A2)


# -- §11 case 25: low-rank ------------------------------------------------------------------------


def test_case25_lowrank() -> None:
    f = tb.lowrank_parameterized_interdependence(b=5, m=3, m_prime=4, r=2)
    assert f.calculate_l() == 14
    A = f.calculate_A(w=torch.arange(14.0).view(1, 14))
    expected = [[10, 11, 12, 13], [42, 47, 52, 57], [74, 83, 92, 101]]
    torch.testing.assert_close(A, torch.tensor(expected, dtype=torch.float32))


# -- §11 case 26–27: bilinear ---------------------------------------------------------------------


def test_case26_bilinear() -> None:
    f = tb.lowrank_parameterized_bilinear_interdependence(
        b=2, m=4, r=1, interdependence_type="attribute"
    )
    w = torch.tensor([[1.0, 2, 3, 4]])
    A = f.calculate_A(X_T, w)
    torch.testing.assert_close(
        A, X_T.t() @ (torch.tensor([[1.0], [2]]) @ torch.tensor([[3.0, 4]])) @ X_T
    )
    torch.testing.assert_close(A[0], torch.tensor([420.0, 574, 252, 392]))
    torch.testing.assert_close(f(x=X_T, w=w), X_T @ A)

    full = tb.parameterized_bilinear_interdependence(b=2, m=4, interdependence_type="instance")
    w16 = torch.arange(16.0).view(1, 16)
    out = full(x=X_T, w=w16)
    torch.testing.assert_close(out, (X_T @ w16.view(4, 4) @ X_T.t()).t() @ X_T)
    torch.testing.assert_close(out[0], torch.tensor([16432.0, 29400, 17670, 18808]))
    assert full(x=torch.randn(7, 4), w=w16).shape == (7, 4)  # any batch for the instance type

    with pytest.raises(ValueRuntimeError, match="batches must have exactly b rows"):
        f(x=torch.randn(3, 4), w=w)
    with pytest.raises(RuntimeError):
        f(x=torch.randn(3, 4), w=w)


def test_case27_bilinear_missing_inputs() -> None:
    f = tb.parameterized_bilinear_interdependence(b=2, m=4)
    with pytest.raises(ValueAssertionError, match=r"x is required to compute A = xᵀ W x"):
        f.calculate_A(None, torch.ones(1, 16))
    with pytest.raises(ValueAssertionError, match=r"w is required"):
        f.calculate_A(X_T.t(), None)
    with pytest.raises(AssertionError):
        f.calculate_A(X_T.t(), None)
    with pytest.raises(ValueAssertionError, match=r"x is required \(require_data=True\)"):
        f(w=torch.ones(1, 16))
    with pytest.raises(ValueRuntimeError, match="x has 3 attributes but W is 4×4"):
        f(x=torch.ones(2, 3), w=torch.ones(1, 16))


def test_case29_tutorial_bilinear() -> None:
    f = tb.lowrank_parameterized_bilinear_interdependence(
        b=2, m=4, r=1, interdependence_type="attribute"
    )
    assert f.calculate_l() == 4
    w = torch.tensor([[-1.1229, -0.1863, 2.2082, -0.6380]])  # printed to 4 decimals
    A = f.calculate_A(X_T, w)
    torch.testing.assert_close(
        A[0], torch.tensor([-1.9793, -41.2637, -44.5661, -21.1267]), rtol=1e-3, atol=1e-3
    )


# -- §11 case 27–28: rpn --------------------------------------------------------------------------


def test_case27_rpn_requires_parts() -> None:
    with pytest.raises(ValueError, match="data_transformation must be specified"):
        tb.parameterized_rpn_interdependence(
            b=5, m=2, data_transformation=None, parameter_fabrication=IdentityReconciliation()
        )
    with pytest.raises(ValueError, match="parameter_fabrication must be specified"):
        tb.parameterized_rpn_interdependence(
            b=5, m=2, data_transformation=IdentityExpansion(), parameter_fabrication=None
        )


def test_case28_rpn_attribute_identity() -> None:
    f = tb.parameterized_rpn_interdependence(
        b=5,
        m=2,
        m_prime=3,
        data_transformation=IdentityExpansion(),
        parameter_fabrication=IdentityReconciliation(),
    )
    assert f.calculate_l() == 15
    X = torch.arange(10.0).view(5, 2)
    w = torch.arange(15.0).view(1, 15)
    A = f.calculate_A(X, w)
    torch.testing.assert_close(A, X.t() @ w.view(3, 5).t())
    out = f(x=X, w=w)
    assert out.shape == (5, 3)
    torch.testing.assert_close(out, X @ A)
    with pytest.raises(ValueAssertionError, match="x must be a 2-D tensor, got None"):
        f.calculate_A(None, w)
    with pytest.raises(ValueAssertionError, match="w must hold l=15"):
        f.calculate_A(X, torch.ones(1, 14))


def test_case28_rpn_instance_taylor_lowrank() -> None:
    f = tb.parameterized_rpn_interdependence(
        b=5,
        m=2,
        b_prime=4,
        interdependence_type="instance",
        data_transformation=TaylorExpansion(2),
        parameter_fabrication=LowRankReconciliation(1),
    )
    assert f.calculate_l() == 10
    X = torch.randn(5, 2)
    w = torch.randn(1, 10)
    out = f(x=X, w=w)
    assert out.shape == (4, 2)
    phi = LowRankReconciliation(1)(w, n=4, D=6)
    A = TaylorExpansion(2)(X) @ phi.t()
    torch.testing.assert_close(out, A.t() @ X)


# -- §11 case 30: parameter counts (spec §10 table) -----------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "n_w"),
    [
        (tb.parameterized_interdependence, {}, 4096),
        (tb.lowrank_parameterized_interdependence, {"r": 2}, 256),
        (tb.hm_parameterized_interdependence, {"p": 8, "q": 8}, 128),
        (tb.lphm_parameterized_interdependence, {"r": 2, "p": 8, "q": 8}, 96),
        (tb.dual_lphm_parameterized_interdependence, {"r": 2, "p": 8, "q": 8}, 64),
        (tb.random_matrix_adaption_parameterized_interdependence, {"r": 2}, 66),
    ],
)
def test_case30_counts_data_free(cls: type, kwargs: dict[str, Any], n_w: int) -> None:
    assert cls(b=64, m=64, **kwargs).calculate_l() == n_w
    assert cls(b=64, m=3, interdependence_type="instance", **kwargs).calculate_l() == n_w


@pytest.mark.parametrize(
    ("cls", "kwargs", "n_w"),
    [
        (tb.parameterized_bilinear_interdependence, {}, 1024),
        (tb.lowrank_parameterized_bilinear_interdependence, {"r": 2}, 128),
        (tb.hm_parameterized_bilinear_interdependence, {"p": 8, "q": 8}, 80),
        (tb.lphm_parameterized_bilinear_interdependence, {"r": 2, "p": 8, "q": 8}, 80),
        (tb.dual_lphm_parameterized_bilinear_interdependence, {"r": 2, "p": 8, "q": 8}, 48),
        (tb.random_matrix_adaption_parameterized_bilinear_interdependence, {"r": 2}, 34),
    ],
)
def test_case30_counts_bilinear(cls: type, kwargs: dict[str, Any], n_w: int) -> None:
    assert cls(b=32, m=5, interdependence_type="attribute", **kwargs).calculate_l() == n_w
    assert cls(b=5, m=32, interdependence_type="instance", **kwargs).calculate_l() == n_w


# -- §11 case 35 and every class: config round trips ----------------------------------------------


def test_case35_instance_type_survives_round_trip() -> None:
    f = tb.parameterized_interdependence(b=5, m=3, b_prime=2, interdependence_type="instance")
    rebuilt = instantiation_from_configs(f.to_config())
    assert rebuilt.interdependence_type == "instance"
    assert rebuilt.calculate_l() == 10
    f.interdependence_type = "left"  # set after construction: still written
    assert instantiation_from_configs(f.to_config()).interdependence_type == "left"


def test_tinybig_written_config_keeps_type() -> None:
    """A config dumped by tinyBIG 0.2.1 (``_interdependence_type`` and module internals)."""
    cfg = {
        "function_class": "tinybig.interdependence.parameterized_interdependence."
        "parameterized_interdependence",
        "function_parameters": {
            "training": True,
            "_parameters": {},
            "_buffers": {},
            "_modules": {},
            "name": "parameterized_interdependence",
            "device": "cpu",
            "_interdependence_type": "instance",
            "b": 5,
            "m": 3,
            "require_data": False,
            "require_parameters": True,
            "A": None,
            "parameter_fabrication": None,
            "b_prime": 2,
            "m_prime": 3,
        },
    }
    f = instantiation_from_configs(cfg)
    assert isinstance(f, tb.parameterized_interdependence)
    assert f.interdependence_type == "instance" and f.calculate_l() == 10


ALL_SIMPLE = [
    *[
        (cls, {**kw, "interdependence_type": t})
        for cls, kw in DATA_FREE
        for t in ("attribute", "row")
    ],
    *[
        (cls, {**kw, "interdependence_type": t})
        for cls, kw in BILINEAR
        for t in ("column", "instance")
    ],
]


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    ALL_SIMPLE,
    ids=[f"{c.__name__}-{k['interdependence_type']}" for c, k in ALL_SIMPLE],
)
def test_config_round_trip(cls: type, kwargs: dict[str, Any]) -> None:
    f = cls(b=4, m=6, **kwargs)
    rebuilt = _roundtrip(f)
    assert rebuilt.interdependence_type == kwargs["interdependence_type"]
    x = torch.randn(4, 6)
    w = _w(f)
    torch.testing.assert_close(rebuilt(x=x, w=w), f(x=x, w=w))


def test_config_round_trip_base_class() -> None:
    f = idp.interdependence(b=3, m=2, interdependence_type="instance", require_data=False)
    rebuilt = _roundtrip(f)
    assert rebuilt.interdependence_type == "instance" and not rebuilt.require_data


def test_config_round_trip_rpn() -> None:
    f = tb.parameterized_rpn_interdependence(
        b=4,
        m=3,
        m_prime=2,
        data_transformation=TaylorExpansion(2),
        parameter_fabrication=LowRankReconciliation(2),
    )
    rebuilt = _roundtrip(f)
    assert isinstance(rebuilt.data_transformation, TaylorExpansion)
    assert rebuilt.parameter_fabrication.r == 2  # type: ignore[attr-defined]
    x, w = torch.randn(4, 3), _w(f)
    torch.testing.assert_close(rebuilt(x=x, w=w), f(x=x, w=w))


def test_config_with_postprocess_function() -> None:
    f = tb.parameterized_interdependence(b=3, m=2, postprocess_functions="sigmoid")
    rebuilt = _roundtrip(f)
    w = _w(f)
    torch.testing.assert_close(rebuilt.calculate_A(w=w), torch.sigmoid(w.view(2, 2)))


def test_config_round_trip_rma_keeps_given_factors_via_state_dict() -> None:
    ra, rb = torch.randn(6, 2), torch.randn(3, 2)
    f = tb.random_matrix_adaption_parameterized_interdependence(
        b=4, m=6, m_prime=3, r=2, random_factors=(ra, rb)
    )
    config = f.to_config()
    assert config["function_parameters"]["random_factors"] is None
    rebuilt = _roundtrip(f)
    assert torch.equal(rebuilt.R_A, ra) and torch.equal(rebuilt.R_B, rb)


# -- kronecker ------------------------------------------------------------------------------------


def _kron_factors(
    cls: type, w: torch.Tensor, d: int, dp: int, p: int, q: int, r: int
) -> tuple[torch.Tensor, torch.Tensor]:
    f = w.reshape(-1)
    s, t = d // p, dp // q
    if cls.__name__.startswith("hm"):
        return f[: p * q].view(p, q), f[p * q :].view(s, t)
    if cls.__name__.startswith("lphm"):
        a = f[: p * q].view(p, q)
        S = f[p * q : p * q + s * r].view(s, r)
        return a, S @ f[p * q + s * r :].view(r, t)
    o1, o2, o3 = p * r, p * r + r * q, p * r + r * q + s * r
    P, Q = f[:o1].view(p, r), f[o1:o2].view(r, q)
    S, T = f[o2:o3].view(s, r), f[o3:].view(r, t)
    return P @ Q, S @ T


@pytest.mark.parametrize("cls", HM, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", ["attribute", "instance"])
def test_kronecker_equals_torch_kron(cls: type, kind: str) -> None:
    b, m, p, q, r = 6, 4, 2, 3, 2
    kw: dict[str, Any] = (
        {"p": p, "q": q} if cls is tb.hm_parameterized_interdependence else {"p": p, "q": q, "r": r}
    )
    if kind == "attribute":
        f = cls(b=b, m=m, m_prime=6, kronecker=True, **kw)
        d, dp = m, 6
    else:
        f = cls(b=b, m=m, b_prime=9, kronecker=True, interdependence_type=kind, **kw)
        d, dp = b, 9
    w = _w(f)
    a, bb = _kron_factors(cls, w, d, dp, p, q, r)
    A = f.calculate_A(w=w)
    torch.testing.assert_close(A, torch.kron(a, bb))
    x = torch.randn(b, m)
    expected = A.t() @ x if kind == "instance" else x @ A
    torch.testing.assert_close(f(x=x, w=w), expected, rtol=1e-5, atol=1e-5)
    compat = (
        cls(b=b, m=m, m_prime=dp, **kw)
        if kind == "attribute"
        else cls(b=b, m=m, b_prime=dp, interdependence_type=kind, **kw)
    )
    # the default (tinyBIG's reshaped outer product) differs in this (q > 1, p < d) regime
    assert not torch.allclose(compat.calculate_A(w=w), A)


@pytest.mark.parametrize("cls", HM_BILINEAR, ids=lambda c: c.__name__)
def test_kronecker_bilinear_equals_torch_kron(cls: type) -> None:
    b, m, p, q, r = 4, 6, 3, 2, 1
    kw: dict[str, Any] = (
        {"p": p, "q": q}
        if cls is tb.hm_parameterized_bilinear_interdependence
        else {"p": p, "q": q, "r": r}
    )
    f = cls(b=b, m=m, kronecker=True, **kw)  # instance type: W is m×m
    w = _w(f)
    a, bb = _kron_factors(cls, w, m, m, p, q, r)
    x = torch.randn(b, m)
    W = torch.kron(a, bb)
    torch.testing.assert_close(f.calculate_A(x.t(), w), x @ W @ x.t(), rtol=1e-4, atol=1e-4)


def test_hm_divisibility_is_checked() -> None:
    with pytest.raises(ValueAssertionError, match=r"p=3 must divide m=4"):
        tb.hm_parameterized_interdependence(b=2, m=4, p=3)
    with pytest.raises(AssertionError):
        tb.lphm_parameterized_interdependence(b=2, m=4, m_prime=6, r=1, p=2, q=4)
    with pytest.raises(ValueAssertionError, match="must divide"):
        tb.dual_lphm_parameterized_bilinear_interdependence(b=2, m=6, r=1, p=4)
    with pytest.raises(TypeError):
        tb.hm_parameterized_interdependence(b=2, m=4)  # type: ignore[call-arg]
    assert tb.hm_parameterized_interdependence(b=2, m=4, p=2).q == 2  # q defaults to p
    with pytest.raises(ValueError, match="r must be a positive int, got 0"):
        tb.lowrank_parameterized_interdependence(b=2, m=4, r=0)
    with pytest.raises(ValueError, match="b must be a positive int"):
        tb.parameterized_interdependence(b=0, m=4)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: tb.hm_parameterized_interdependence(b=2, m=3, p=2),
            r"^hm_parameterized_interdependence: p=2 must divide m=3 \(the Kronecker factor "
            r"sizes are m/p\); choose a divisor of 3: \[1, 3\]$",
        ),
        (
            lambda: tb.lphm_parameterized_interdependence(b=2, m=3, r=1, p=2),
            r"^lphm_parameterized_interdependence: p=2 must divide m=3",
        ),
        (
            lambda: tb.dual_lphm_parameterized_interdependence(b=2, m=3, r=1, p=2),
            r"^dual_lphm_parameterized_interdependence: p=2 must divide m=3",
        ),
        (  # p divides m, q divides m'
            lambda: tb.lphm_parameterized_interdependence(b=2, m=4, m_prime=6, r=1, p=2, q=4),
            r"q=4 must divide m_prime=6 \(the Kronecker factor sizes are m_prime/q\)",
        ),
        (  # the instance type: A is b×b'
            lambda: tb.hm_parameterized_interdependence(
                b=3, m=4, b_prime=4, p=2, interdependence_type="instance"
            ),
            r"^hm_parameterized_interdependence: p=2 must divide b=3 \(the Kronecker",
        ),
        (
            lambda: tb.dual_lphm_parameterized_interdependence(
                b=4, m=4, b_prime=3, r=1, p=2, interdependence_type="instance"
            ),
            r"^dual_lphm_parameterized_interdependence: q=2 must divide b_prime=3",
        ),
        (  # bilinear: W is m×m (instance type) or b×b (attribute type)
            lambda: tb.dual_lphm_parameterized_bilinear_interdependence(b=2, m=6, r=1, p=4),
            r"^dual_lphm_parameterized_bilinear_interdependence: p=4 must divide m=6",
        ),
        (
            lambda: tb.hm_parameterized_bilinear_interdependence(
                b=3, m=4, p=2, interdependence_type="attribute"
            ),
            r"^hm_parameterized_bilinear_interdependence: p=2 must divide b=3",
        ),
    ],
)
def test_hm_divisibility_names_the_class_arguments(make: Any, match: str) -> None:
    """Fix: the message names the class and its own dimension arguments, not the fusion's
    ``n`` and ``D``; the exception is still a ValueAssertionError (an AssertionError)."""
    with pytest.raises(ValueAssertionError, match=match) as info:
        make()
    assert not re.search(r"\b(n|D)=", str(info.value))


def test_hm_divisibility_after_rebinding_names_the_arguments() -> None:
    f = tb.hm_parameterized_interdependence(b=4, m=4, p=2)
    with pytest.raises(
        ValueAssertionError, match=r"p=2 must divide m=3 \(the Kronecker factor sizes"
    ):
        f._set_shape(4, 3, "attribute")


def test_fabrication_check_shape_defaults_to_n_and_D() -> None:
    """The fusion-side names stay ``n`` and ``D`` unless a caller passes its own."""
    with pytest.raises(ValueAssertionError, match=r"^p=2 must divide n=3 \(the Kronecker"):
        Fabrication("hm", p=2, q=2).check_shape(3, 3)


# -- factored application equals the materialized matrix ------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    idx=st.integers(0, len(DATA_FREE) - 1),
    instance=st.booleans(),
    rows=st.integers(1, 6),
    kappa_cols=st.integers(1, 5),
    use_kappa=st.booleans(),
    kronecker=st.booleans(),
)
def test_factored_forward_equals_materialized_data_free(
    idx: int, instance: bool, rows: int, kappa_cols: int, use_kappa: bool, kronecker: bool
) -> None:
    cls, kw = DATA_FREE[idx]
    kw = dict(kw)
    if cls in HM:
        kw["kronecker"] = kronecker
    b, m = (4, 6) if instance else (rows, 6)
    f = cls(
        b=b,
        m=m,
        b_prime=2,
        m_prime=4,
        interdependence_type="instance" if instance else "attribute",
        **kw,
    )
    x = torch.randn(b, m, dtype=torch.float64)
    f.to(torch.float64)
    w = _w(f).double()
    A = f.calculate_A(w=w)
    if instance:
        data = torch.randn(b, kappa_cols, dtype=torch.float64) if use_kappa else x
        expected = A.t() @ data
    else:
        data = torch.randn(rows + 1, m, dtype=torch.float64) if use_kappa else x
        expected = data @ A
    out = f(x=x, w=w, kappa_x=data if use_kappa else None)
    torch.testing.assert_close(out, expected)


@settings(max_examples=25, deadline=None)
@given(
    idx=st.integers(0, len(BILINEAR) - 1),
    instance=st.booleans(),
    rows=st.integers(1, 9),
    kappa_rows=st.integers(1, 9),
    use_kappa=st.booleans(),
)
def test_factored_forward_equals_materialized_bilinear(
    idx: int, instance: bool, rows: int, kappa_rows: int, use_kappa: bool
) -> None:
    cls, kw = BILINEAR[idx]
    b, m = (rows, 4) if instance else (4, 2 * rows)
    f = cls(b=b, m=m, interdependence_type="instance" if instance else "attribute", **kw)
    f.to(torch.float64)
    x = torch.randn(b, m, dtype=torch.float64)
    w = _w(f).double()
    x_in = x.t() if instance else x
    A = f.calculate_A(x_in, w)
    if use_kappa:
        data = (
            torch.randn(b, kappa_rows, dtype=torch.float64)
            if instance
            else torch.randn(kappa_rows, m, dtype=torch.float64)
        )
    else:
        data = x
    expected = A.t() @ data if instance else data @ A
    torch.testing.assert_close(f(x=x, w=w, kappa_x=data if use_kappa else None), expected)


def test_postprocess_forces_the_materialized_path() -> None:
    f = tb.lowrank_parameterized_interdependence(b=3, m=4, r=1, postprocess_functions=[torch.tanh])
    w, x = _w(f), torch.randn(3, 4)
    torch.testing.assert_close(f(x=x, w=w), x @ torch.tanh(f._fab.matrix(w, 4, 4)))


def test_preprocess_applies_to_bilinear_x_but_not_to_the_data() -> None:
    f = tb.parameterized_bilinear_interdependence(
        b=3, m=2, interdependence_type="attribute", preprocess_functions="relu"
    )
    x, w = torch.randn(3, 2), torch.randn(1, 9)
    xr = torch.relu(x)
    torch.testing.assert_close(f(x=x, w=w), x @ (xr.t() @ w.view(3, 3) @ xr))


def test_sparse_data() -> None:
    f = tb.parameterized_interdependence(b=3, m=4, m_prime=2)
    w = _w(f)
    x = torch.tensor([[0.0, 1, 0, 2], [3, 0, 0, 0], [0, 0, 4, 0]])
    torch.testing.assert_close(f(x=x, w=w, kappa_x=x.to_sparse()), x @ f.calculate_A(w=w))
    g = tb.parameterized_interdependence(b=3, m=4, b_prime=2, interdependence_type="instance")
    w = _w(g)
    torch.testing.assert_close(g(x=x, w=w, kappa_x=x.to_sparse()), g.calculate_A(w=w).t() @ x)


def test_gradients_flow_to_w_and_x() -> None:
    f = tb.lphm_parameterized_bilinear_interdependence(b=4, m=6, r=1, p=2, q=3)
    x = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    w = _w(f).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: f(x=a, w=b), (x, w))


# -- forward contract fixes -----------------------------------------------------------------------


def test_forward_without_x_when_data_is_not_required() -> None:
    f = tb.parameterized_interdependence(b=5, m=3, m_prime=2)
    w, kappa = _w(f), torch.randn(4, 3)
    torch.testing.assert_close(f(w=w, kappa_x=kappa), kappa @ f.calculate_A(w=w))
    with pytest.raises(ValueAttributeError, match="pass x or kappa_x"):
        f(w=w)
    with pytest.raises(AttributeError):
        f(w=w)
    with pytest.raises(ValueAssertionError, match="kappa_x must be a 2-D tensor"):
        f(w=w, kappa_x=torch.ones(3))


def test_base_class() -> None:
    f = idp.interdependence(b=3, m=2)
    assert f.calculate_l() == 0 and f.get_b() == 3 and f.get_m() == 2
    assert f.calculate_A() is None
    assert f.calculate_m_prime() == 2
    with pytest.warns(UserWarning, match="not about the instances"):
        assert f.calculate_b_prime() == 3
    g = idp.interdependence(b=3, m=2, interdependence_type="instance")
    with pytest.warns(UserWarning, match="not about the attributes"):
        assert g.calculate_m_prime(5) == 5
    with pytest.raises(ValueAssertionError, match="computes no matrix; use a subclass"):
        f(x=torch.ones(3, 2))


def test_check_A_shape_validity() -> None:
    f = tb.parameterized_interdependence(b=3, m=2, m_prime=4)
    assert f.check_A_shape_validity(torch.ones(2, 4))
    with pytest.raises(ValueError, match="A is None"):
        f.check_A_shape_validity(None)
    with pytest.raises(ValueAssertionError, match=r"A must have shape \(2, 4\) .* got \(4, 2\)"):
        f.check_A_shape_validity(torch.ones(4, 2))
    g = tb.parameterized_interdependence(b=3, m=2, b_prime=5, interdependence_type="instance")
    assert g.check_A_shape_validity(torch.ones(3, 5))


def test_postprocess_that_changes_shape_is_reported() -> None:
    f = tb.parameterized_interdependence(
        b=3, m=2, postprocess_functions=[lambda a: a.t()], m_prime=4
    )
    with pytest.raises(ValueAssertionError, match=r"A has shape \(4, 2\) .* expects \(2, 4\)"):
        f.calculate_A(w=torch.ones(1, 8))


def test_no_bare_assert_in_source() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(idp))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.Assert)]


def test_repr_and_names() -> None:
    f = tb.lowrank_parameterized_interdependence(b=3, m=2, r=1)
    assert repr(f).startswith("lowrank_parameterized_interdependence(")
    assert f.get_name() == "lowrank_parameterized_interdependence"
    assert f.parameter_fabrication is not None and f.parameter_fabrication.kind == "lowrank"
    assert tb.parameterized_interdependence(b=3, m=2).parameter_fabrication is None


def test_unknown_keyword_warns_and_is_ignored() -> None:
    """tinyBIG's ``**kwargs`` swallowed unknown keywords: here they warn (with a hint)."""
    with pytest.warns(
        TinybigWarning, match=r"unexpected keyword argument 'rank'.*accepts: r, .*ignored"
    ):
        f = tb.lowrank_parameterized_interdependence(b=3, m=2, rank=1)
    assert f.r == 2 and "rank" not in f.to_config()["function_parameters"]


# -- hybrid ---------------------------------------------------------------------------------------


def _parts(kind: str) -> list[idp.interdependence]:
    return [
        tb.parameterized_interdependence(b=4, m=3, b_prime=2, m_prime=2, interdependence_type=kind),
        tb.lowrank_parameterized_interdependence(
            b=4, m=3, b_prime=2, m_prime=2, r=1, interdependence_type=kind
        ),
    ]


@pytest.mark.parametrize("kind", ["attribute", "instance"])
def test_hybrid_mean_fusion_both_types(kind: str) -> None:
    parts = _parts(kind)
    f = tb.hybrid_interdependence(
        b=4,
        m=3,
        interdependence_type=kind,
        interdependence_functions=parts,
        fusion_function=tb.mean_fusion(dims=[2, 2]),
    )
    assert f.get_function_parameter_numbers() == [parts[0].calculate_l(), parts[1].calculate_l(), 0]
    w = _w(f)
    l0 = parts[0].calculate_l()
    A0 = parts[0].calculate_A(w=w[:, :l0])
    A1 = parts[1].calculate_A(w=w[:, l0:])
    A = f.calculate_A(w=w)
    torch.testing.assert_close(A, (A0 + A1) / 2)
    x = torch.randn(4, 3)
    if kind == "attribute":
        assert f.calculate_m_prime() == 2 and f.calculate_b_prime() == 4
        torch.testing.assert_close(f(x=x, w=w), x @ A)
    else:
        assert f.calculate_b_prime() == 2 and f.calculate_m_prime() == 3
        torch.testing.assert_close(f(x=x, w=w), A.t() @ x)


@pytest.mark.parametrize("kind", ["column", "row"])
def test_hybrid_parameterized_fusion_and_config(kind: str) -> None:
    parts = _parts(kind)
    fusion = tb.lowrank_parameterized_concatenation_fusion(n=3, dims=[2, 2], r=1)
    f = tb.hybrid_interdependence(
        b=4, m=3, interdependence_type=kind, interdependence_functions=parts, fusion_function=fusion
    )
    sizes = f.get_function_parameter_numbers()
    assert sizes[-1] == fusion.calculate_l() == 7
    assert f.calculate_l() == sum(sizes)
    w = _w(f)
    A0 = parts[0].calculate_A(w=w[:, : sizes[0]])
    A1 = parts[1].calculate_A(w=w[:, sizes[0] : sizes[0] + sizes[1]])
    expected_A = fusion(x=[A0, A1], w=w[:, sizes[0] + sizes[1] :])
    torch.testing.assert_close(f.calculate_A(w=w), expected_A)
    x = torch.randn(4, 3)
    out = f(x=x, w=w)
    torch.testing.assert_close(out, expected_A.t() @ x if kind == "row" else x @ expected_A)
    rebuilt = _roundtrip(f)
    torch.testing.assert_close(rebuilt(x=x, w=w), out)
    assert all(p.interdependence_type == kind for p in rebuilt.interdependence_functions)  # type: ignore[attr-defined]


def test_hybrid_from_configs_fills_in_b_m_and_type() -> None:
    cfgs = [
        {"function_class": "interfuse.tinybig.parameterized_bilinear_interdependence"},
        {
            "function_class": "tinybig.interdependence.parameterized_interdependence",
            "function_parameters": {"m_prime": 5},
        },
    ]
    f = tb.hybrid_interdependence(
        b=3,
        m=5,
        interdependence_type="attribute",
        interdependence_function_configs=cfgs,
        fusion_function_config={
            "function_class": "interfuse.tinybig.sum_fusion",
            "function_parameters": {"dims": [5, 5]},
        },
    )
    assert f.require_data and f.require_parameters
    parts = list(f.interdependence_functions)
    assert [p.interdependence_type for p in parts] == ["attribute", "attribute"]
    assert all(p.b == 3 and p.m == 5 for p in parts)
    x = torch.randn(3, 5)
    w = _w(f)
    l0 = parts[0].calculate_l()
    expected = parts[0].calculate_A(x, w[:, :l0]) + parts[1].calculate_A(x, w[:, l0:])
    torch.testing.assert_close(f(x=x, w=w), x @ expected)


def test_hybrid_rebinds_given_parts_like_tinybig() -> None:
    part = tb.parameterized_interdependence(b=9, m=9)
    f = tb.hybrid_interdependence(
        b=4,
        m=3,
        interdependence_type="instance",
        interdependence_functions=[part],
        fusion_function=tb.max_fusion(dims=[4]),
    )
    assert (part.b, part.m, part.interdependence_type) == (4, 3, "instance")
    # b' was not given, so it follows the rebound b (tinyBIG kept the stale default b'=9)
    assert part.calculate_b_prime() == 4 and f.calculate_l() == 16
    given = tb.parameterized_interdependence(b=9, m=9, b_prime=2)
    tb.hybrid_interdependence(
        b=4,
        m=3,
        interdependence_type="instance",
        interdependence_functions=[given],
        fusion_function=tb.max_fusion(dims=[2]),
    )
    assert given.calculate_b_prime() == 2
    bad = tb.hm_parameterized_interdependence(b=4, m=4, p=2)
    with pytest.raises(ValueAssertionError, match="must divide"):
        tb.hybrid_interdependence(
            b=3,
            m=4,
            interdependence_type="instance",
            interdependence_functions=[bad],
            fusion_function=tb.max_fusion(dims=[3]),
        )


def test_hybrid_rebinds_rma_buffers() -> None:
    part = tb.random_matrix_adaption_parameterized_interdependence(b=4, m=3, r=2)
    tb.hybrid_interdependence(
        b=4,
        m=3,
        interdependence_type="instance",
        interdependence_functions=[part],
        fusion_function=tb.max_fusion(dims=[4]),
    )
    assert tuple(part.R_A.shape) == (4, 2) and tuple(part.R_B.shape) == (4, 2)
    assert part(x=torch.randn(4, 3), w=_w(part)).shape == (4, 3)


def test_hybrid_errors() -> None:
    with pytest.raises(ValueError, match="needs interdependence_functions or"):
        tb.hybrid_interdependence(b=2, m=2, fusion_function=tb.max_fusion(dims=[2]))
    with pytest.raises(ValueError, match="needs fusion_function or fusion_function_config"):
        tb.hybrid_interdependence(b=2, m=2, interdependence_functions=_parts("attribute"))
    with pytest.raises(TypeError, match=r"must be a fusion of interfuse\.tinybig\.fusion"):
        tb.hybrid_interdependence(
            b=2, m=2, interdependence_functions=_parts("attribute"), fusion_function=torch.nn.ReLU()
        )
    with pytest.raises(TypeError, match=r"interdependence_functions\[0\] must be"):
        tb.hybrid_interdependence(
            b=2,
            m=2,
            interdependence_functions=[torch.nn.ReLU()],  # type: ignore[list-item]
            fusion_function=tb.max_fusion(dims=[2]),
        )
    f = tb.hybrid_interdependence(
        b=4,
        m=3,
        interdependence_functions=_parts("attribute"),
        fusion_function=tb.mean_fusion(dims=[2, 2]),
    )
    with pytest.raises(ValueAssertionError, match=r"w must hold l=\d+"):
        f.calculate_A(w=torch.ones(1, 3))


def test_hybrid_without_parameters_caches_per_w() -> None:
    parts = [tb.parameterized_interdependence(b=2, m=2, require_parameters=False) for _ in range(2)]
    f = tb.hybrid_interdependence(
        b=2, m=2, interdependence_functions=parts, fusion_function=tb.sum_fusion(dims=[2, 2])
    )
    assert f.calculate_l() == 0 and not f.require_parameters
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for p in parts:
            p.calculate_A(w=torch.eye(2).view(1, 4))
    torch.testing.assert_close(f.calculate_A(), 2 * torch.eye(2))


def test_fabrication_counts_cache_keeps_equality_and_hash() -> None:
    """calculate_l's per-instance cache is no part of a Fabrication's identity."""
    a, b = Fabrication("lowrank", r=2), Fabrication("lowrank", r=2)
    assert a.calculate_l(3, 5) == 16 and a.calculate_l(3, 5) == 16
    assert a == b and hash(a) == hash(b) and repr(a) == repr(b)


@pytest.mark.parametrize("kind", ["attribute", "instance"])
def test_plain_reshape_interdependence_is_tinybigs_product(kind: str) -> None:
    """The reshape layout multiplies as tinyBIG did: x @ A (attribute) or Aᵀ @ x (instance)."""
    b, m = 4, 3
    f = tb.parameterized_interdependence(b=b, m=m, interdependence_type=kind)
    w = torch.randn(1, f.calculate_l(), dtype=torch.float64, requires_grad=True)
    x = torch.randn(b, m, dtype=torch.float64)
    d = m if kind == "attribute" else b
    A = w.reshape(d, d)
    expected = x @ A if kind == "attribute" else A.t() @ x
    torch.testing.assert_close(f(x=x, w=w), expected)
    assert torch.autograd.gradcheck(lambda w_: f(x=x, w=w_), (w,))
