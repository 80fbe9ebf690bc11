"""Seed and spec behaviours an audit of the tinyBIG face found missing, now kept.

Each test names the seeds' or the spec's words it holds the face to; the deliberate differences
that remain are listed in docs/tinybig.md.
"""

from __future__ import annotations

import pytest
import torch

import interfuse.tinybig as tb
from interfuse.tinybig.fabrication import Fabrication

X1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
X2 = torch.tensor([[5.0, 6.0], [7.0, 8.0]])
X3 = torch.tensor([[9.0, 10.0], [11.0, 12.0]])
W18 = torch.arange(18.0).view(1, 18) / 10


def test_instantiation_from_configs_positional_order() -> None:
    """Spec §6: ``instantiation_from_configs(configs, class_name, parameter_name, device)``."""
    cfg = {
        "head_class": "tinybig.fusion.metric_fusion.max_fusion",
        "head_parameters": {"dims": [2, 2]},
    }
    obj = tb.instantiation_from_configs(cfg, "head_class", "head_parameters", "cpu")
    assert type(obj) is tb.max_fusion and obj.dims == [2, 2]


def test_parameter_fabrication_is_callable() -> None:
    """Seeds: ``parameter_fabrication`` is called as ``F(w=w, n=n, D=D, device=device)``."""
    g = tb.lowrank_parameterized_interdependence(b=5, m=3, r=2)
    w = torch.arange(12.0).view(1, 12)
    W = g.parameter_fabrication(w=w, n=3, D=3, device="cpu")
    torch.testing.assert_close(W, g.calculate_A(w=w))
    rma = tb.random_matrix_adaption_parameterized_interdependence(b=3, m=4, m_prime=5, r=2)
    w = torch.arange(1.0, 7.0)
    factors = (rma.R_A, rma.R_B)
    W = rma.parameter_fabrication(w=w, n=4, D=5, random_factors=factors)
    torch.testing.assert_close(W, rma.calculate_A(w=w))
    with pytest.raises(ValueError, match=r"random_factors=\(module.R_A, module.R_B\)"):
        rma.parameter_fabrication(w=w, n=4, D=5)
    assert isinstance(Fabrication("reshape")(torch.ones(6), n=2, D=3), torch.Tensor)


def test_plain_concatenation_accepts_any_shape_of_l_elements() -> None:
    """Spec §1: the plain reshape variants accept any shape whose numel is ``l``."""
    f = tb.parameterized_concatenation_fusion(n=3, dims=[2, 2, 2])
    out = f([X1, X2, X3], w=W18.view(1, 1, 18))
    torch.testing.assert_close(out, torch.tensor([[11.6, 31.4, 51.2], [14.6, 41.6, 68.6]]))
    with pytest.raises(ValueError, match=r"w must hold l=9 parameters"):  # fabricated: 1-2 dims
        tb.lowrank_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], r=1)(
            [X1, X2, X3], w=torch.ones(1, 1, 9)
        )


def test_dims_take_any_integer_type() -> None:
    """Spec §2.1: ``dims`` as given; numpy's integers work and configs write them as ints."""
    np = pytest.importorskip("numpy")
    f = tb.mean_fusion(dims=[np.int64(2), np.int64(2)])
    assert f.get_num() == 2 and f.dims == [2, 2]
    assert f.to_config()["function_parameters"]["dims"] == [2, 2]
    assert type(f.to_config()["function_parameters"]["dims"][0]) is int


def test_kronecker_is_keyword_only() -> None:
    """tinyBIG's hm interdependences took nothing positional after ``name``: a positional
    argument there must not silently become ``kronecker``."""
    with pytest.raises(TypeError, match="too many positional arguments"):
        tb.hm_parameterized_interdependence(2, 1, "hm", 5, 6)  # type: ignore[misc]
    f = tb.hm_parameterized_interdependence(2, 1, b=5, m=6, kronecker=True)
    assert f.kronecker


def test_warnings_point_at_the_callers_line() -> None:
    """A TinybigWarning names the user's line, not a frame of interfuse or torch."""
    import inspect

    with pytest.warns(tb.TinybigWarning) as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        tb.mean_fusion(dims=[4, 4])([X1, X2])
    assert caught[0].filename == __file__ and caught[0].lineno == line
    with pytest.warns(tb.TinybigWarning) as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        tb.weighted_summation_fusion(dims=[2, 2], weight=[1.0, 1.0])
    assert caught[0].filename == __file__ and caught[0].lineno == line
