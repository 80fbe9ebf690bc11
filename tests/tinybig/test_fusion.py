"""The tinyBIG-face fusions against the spec's differential cases (§11, cases 1–17).

Values are tinyBIG 0.2.1's (verified against the original); each kept quirk, each deliberate
fix and each error path is tested, errors both by their interfuse class (with the message) and
by the original's type (``AssertionError``, ``AttributeError``, ``RuntimeError``,
``IndexError``), to prove that existing ``except`` clauses keep working.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import pytest
import torch
from torch import nn

import interfuse.tinybig as tb
import interfuse.tinybig.fusion as tbf
from interfuse.functional import _common
from interfuse.tinybig._base import (
    BUILTIN_NAMES,
    _accepted_arguments,
    apply_functions,
    resolve_functions,
)
from interfuse.tinybig.config import choices, from_config, instantiation_from_configs
from interfuse.tinybig.errors import (
    TinybigWarning,
    ValueAssertionError,
    ValueAttributeError,
    ValueIndexError,
    ValueRuntimeError,
)

yaml = pytest.importorskip("yaml")

X1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
X2 = torch.tensor([[5.0, 6.0], [7.0, 8.0]])
X3 = torch.tensor([[9.0, 10.0], [11.0, 12.0]])
Y2 = torch.tensor([[5.0, 0.0], [7.0, 1.0]])
Y3 = torch.tensor([[9.0, 2.0], [11.0, 3.0]])
XY = [X1, Y2, Y3]
X123 = [X1, X2, X3]
ROW = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])]
W8 = torch.arange(1.0, 9.0).view(1, 8)


def close(a: torch.Tensor, b: Any, **kw: Any) -> None:
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), rtol=1e-4, atol=1e-4, **kw)


# ---------------------------------------------------------------------------------------------
# 1-3: the weighted-summation family
# ---------------------------------------------------------------------------------------------


def test_case1_weighted_summation() -> None:
    f = tb.weighted_summation_fusion(dims=[2, 2, 2], weights=torch.tensor([0.2, 0.5, 0.3]))
    close(f(XY), [[5.4, 1.0], [7.4, 2.2]])
    assert f.calculate_n() == 2 and f.calculate_l() == 0
    # tinyBIG asserted len(x) == len(weights); the dims mismatch alone only warns
    with (
        pytest.warns(TinybigWarning, match=r"widths \[2, 2\] but dims=\[2, 2, 2\]"),
        pytest.raises(ValueAssertionError, match=r"weights must have shape \(2,\).*\(3,\)"),
    ):
        f([X1, Y2])
    with pytest.raises(AssertionError), pytest.warns(TinybigWarning):
        f([X1, Y2])


def test_case1_weights_size_checked_without_dims() -> None:
    f = tb.weighted_summation_fusion(weights=torch.tensor([0.2, 0.5, 0.3]))
    with pytest.raises(
        ValueAssertionError, match=r"weights must have shape \(2,\).*got shape \(3,\)"
    ):
        f([X1, Y2])
    # tinyBIG stored them and fused 2 inputs: a warning
    with pytest.warns(TinybigWarning, match=r"2 weights for dims=\[2, 2, 2\]"):
        g = tb.weighted_summation_fusion(dims=[2, 2, 2], weights=torch.tensor([0.2, 0.8]))
    with pytest.warns(TinybigWarning):
        close(g([X1, Y2]), 0.2 * X1 + 0.8 * Y2)


def test_weighted_summation_require_parameters_through_kwargs() -> None:
    f = tb.weighted_summation_fusion(dims=[2, 2, 2], require_parameters=True)
    assert f.calculate_l() == 3
    close(f(XY, w=torch.tensor([[0.3, 0.3, 0.4]])), [[5.4, 1.4], [7.4, 2.7]])


def test_weighted_summation_without_weights_is_a_clear_error() -> None:
    f = tb.weighted_summation_fusion(dims=[2, 2, 2])
    with pytest.raises(ValueAssertionError, match="has no weights: pass weights="):
        f(XY)
    with pytest.raises(AssertionError):
        f(XY)


def test_case2_summation_and_average() -> None:
    close(tb.summation_fusion(dims=[2, 2, 2])(XY), [[15.0, 4.0], [21.0, 8.0]])
    close(tb.average_fusion(dims=[2, 2, 2])(XY), [[5.0, 1.3333], [7.0, 2.6667]])
    assert tb.summation_fusion(dims=[2, 2, 2]).calculate_l() == 0
    # require_parameters is accepted and ignored, as in tinyBIG
    assert tb.summation_fusion([2, 2], require_parameters=True).require_parameters is False


@pytest.mark.parametrize("cls", [tb.summation_fusion, tb.average_fusion])
def test_case2_summation_requires_dims(cls: type) -> None:
    with pytest.raises(TypeError, match="dims"):
        cls()
    with pytest.raises(TypeError, match="requires dims"):
        cls(dims=None)


def test_fixed_weights_are_buffers() -> None:
    """Fix B-F3: the fixed weights are in the state_dict and move with .to()."""
    f = tb.average_fusion(dims=[2, 2, 2])
    assert list(f.state_dict()) == ["weights"]
    f = f.to(torch.float64)
    assert f.weights is not None and f.weights.dtype == torch.float64
    out = f([x.double() for x in XY])
    assert out.dtype == torch.float64
    g = tb.weighted_summation_fusion(dims=[2, 2, 2], weights=torch.tensor([0.2, 0.5, 0.3]))
    torch.testing.assert_close(g.state_dict()["weights"], torch.tensor([0.2, 0.5, 0.3]))


@pytest.mark.parametrize(
    "w", [[0.3, 0.3, 0.4], [[0.3], [0.3], [0.4]], [[0.3, 0.3, 0.4]]], ids=["k", "k1", "1k"]
)
def test_case3_parameterized_weighted_summation_shapes(w: Any) -> None:
    """(k,), (k, 1) work as in tinyBIG; (1, k) is accepted (fix B-F1, tinyBIG asserted)."""
    f = tb.parameterized_weighted_summation_fusion(dims=[2, 2, 2])
    close(f(XY, torch.tensor(w)), [[5.4, 1.4], [7.4, 2.7]])
    assert f.calculate_l() == 3
    assert f.require_parameters


def test_case3_parameterized_weighted_summation_errors() -> None:
    f = tb.parameterized_weighted_summation_fusion(dims=[2, 2, 2])
    with pytest.raises(ValueAssertionError, match=r"w is required.*got w=None"):
        f(XY)
    with pytest.raises(AssertionError):
        f(XY)
    with pytest.raises(ValueAssertionError, match=r"w must have shape \(3,\).*got shape \(2, 2\)"):
        f(XY, torch.ones(2, 2))
    with pytest.raises(ValueAssertionError, match=r"got shape \(4,\)"):
        f(XY, torch.ones(4))
    assert tb.parameterized_weighted_summation_fusion().calculate_l() == 0


# ---------------------------------------------------------------------------------------------
# 4-7: metric fusions and input checks
# ---------------------------------------------------------------------------------------------

METRIC_EXPECT = {
    "max_fusion": [[9, 2], [11, 4]],
    "min_fusion": [[1, 0], [3, 1]],
    "sum_fusion": [[15, 4], [21, 8]],
    "mean_fusion": [[5, 1.3333], [7, 2.6667]],
    "prod_fusion": [[45, 0], [231, 12]],
    "median_fusion": [[5, 2], [7, 3]],
    "l1_norm_fusion": [[15, 4], [21, 8]],
    "l2_norm_fusion": [[10.3441, 2.8284], [13.3791, 5.0990]],
}


@pytest.mark.parametrize("name", sorted(METRIC_EXPECT))
def test_case4_metric_values(name: str) -> None:
    f = getattr(tb, name)(dims=[2, 2, 2])
    close(f(XY), METRIC_EXPECT[name])
    assert f.calculate_n() == 2 and f.calculate_l() == 0
    assert f.name == name
    assert isinstance(f, tb.metric_fusion)


def test_case4_metric_fusion_by_name_and_callable() -> None:
    close(tb.metric_fusion([2, 2, 2], "max")(XY), METRIC_EXPECT["max_fusion"])

    def batch_range(t: torch.Tensor) -> torch.Tensor:
        return t.max(dim=1).values - t.min(dim=1).values

    close(tb.metric_fusion([2, 2, 2], batch_range)(XY), [[8, 2], [8, 3]])
    with pytest.raises(ValueError, match=r"metric must be one of .*got 'avg'"):
        tb.metric_fusion([2, 2], "avg")
    with pytest.raises(AssertionError):
        tb.metric_fusion([2, 2], 3)  # type: ignore[arg-type]


def test_case5_median_lower_and_l1() -> None:
    f = tb.median_fusion(dims=[1, 1])
    close(f([torch.tensor([1.0]), torch.tensor([4.0])]), [1.0])
    g = tb.median_fusion(dims=[1] * 4)
    close(g([torch.tensor([v]) for v in (1.0, 4.0, 2.0, 3.0)]), [2.0])
    close(tb.l1_norm_fusion(dims=[1, 1])([torch.tensor([-1.0]), torch.tensor([-2.0])]), [3.0])


def test_case5_l1_l2_exported() -> None:
    """Fix B-F2: l1/l2 norm fusions are exported; tinybig.fusion.mean_fusion is the metric one."""
    assert "l1_norm_fusion" in tb.__all__ and "l2_norm_fusion" in tb.__all__
    assert issubclass(tb.mean_fusion, tb.metric_fusion)
    assert not issubclass(tb.mean_fusion, tb.average_fusion)


def test_case6_metric_dims_none() -> None:
    f = tb.max_fusion(dims=None)
    close(f(XY), METRIC_EXPECT["max_fusion"])
    with pytest.raises(ValueAssertionError, match="calculate_n needs dims"):
        f.calculate_n()
    with pytest.raises(AssertionError):
        f.calculate_n()
    assert f.calculate_n(dims=[2, 2]) == 2
    with pytest.raises(ValueAssertionError, match=r"dims must be all equal, got \[2, 3\]"):
        f.calculate_n(dims=[2, 3])


def test_case6_metric_signature_quirks() -> None:
    with pytest.raises(TypeError, match="dims"):
        tb.max_fusion()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="require_parameters"):
        tb.max_fusion(dims=[2, 2], require_parameters=True)  # type: ignore[call-arg]
    # tinyBIG's subclasses take the name first
    assert tb.max_fusion("my_max", dims=[2, 2]).name == "my_max"


@pytest.mark.parametrize(
    "make",
    [
        lambda: tb.sum_fusion(dims=None),
        lambda: tb.summation_fusion(dims=[2, 2]),
        lambda: tb.parameterized_weighted_summation_fusion(),
    ],
    ids=["metric", "summation", "pws"],
)
def test_case7_input_checks(make: Any) -> None:
    f = make()
    with pytest.raises(ValueError, match=r"x must have the same shape: x\[1\] has shape \(2, 3\)"):
        f([X1, torch.ones(2, 3)])
    with pytest.raises(ValueError, match="x cannot be empty"):
        f([])
    with pytest.raises(ValueRuntimeError, match=r"got a single Tensor of shape \(2, 2, 2\)"):
        f(torch.stack([X1, X2]))
    with pytest.raises(RuntimeError):
        f(torch.stack([X1, X2]))
    with pytest.raises(TypeError, match=r"x\[1\] must be a torch.Tensor"):
        f([X1, [1.0, 2.0]])


def test_dims_checked_against_inputs() -> None:
    """Fix B-F5: the real widths are compared with dims; where tinyBIG computed a result
    (it ignored dims) the mismatch warns, where its matmul failed it raises."""
    with pytest.warns(TinybigWarning, match=r"widths \[2, 2\] but dims=\[3, 3\]"):
        close(tb.mean_fusion(dims=[3, 3])([X1, X2]), (X1 + X2) / 2)
    with pytest.warns(TinybigWarning, match=r"widths \[2, 2\] but dims=\[2, 2, 2\]"):
        assert tb.concatenation_fusion(dims=[2, 2, 2])([X1, X2]).shape == (2, 4)
    f = tb.parameterized_concatenation_fusion(n=3, dims=[2, 2, 2])
    with pytest.raises(ValueRuntimeError, match=r"widths \[2, 2\] \(concatenated: 4\)"):
        f([X1, X2], torch.ones(18))
    with pytest.raises(RuntimeError):
        f([X1, X2], torch.ones(18))
    with pytest.warns(TinybigWarning, match=r"widths \[2, 4\] but dims=\[2, 2, 2\]"):
        out = f([X1, torch.ones(2, 4)], W18)  # the same D = 6, split otherwise
    close(out, torch.cat([X1, torch.ones(2, 4)], -1) @ W18.view(3, 6).T)


@pytest.mark.parametrize(
    ("dims", "err", "match"),
    [
        ([0, 2], ValueError, r"dims\[0\] must be a positive int, got 0"),
        ([], ValueError, "at least one input width"),
        ("ab", TypeError, "dims must be a list or tuple"),
        ([2.0], TypeError, r"dims\[0\] must be a positive int, got 2.0 of type float"),
    ],
)
def test_dims_validated(dims: Any, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        tb.concatenation_fusion(dims=dims)


# ---------------------------------------------------------------------------------------------
# base class getters
# ---------------------------------------------------------------------------------------------


def test_get_dim_bounds() -> None:
    """Fix B-F4: every out-of-range index raises ValueIndexError (a ValueError and IndexError)."""
    f = tbf.fusion(dims=[2, 3])
    assert f.get_dim(0) == 2 and f.get_dim(1) == 3
    assert f.get_dims() == [2, 3] and f.get_num() == 2
    for bad in (2, 3, -1, None):
        with pytest.raises(ValueIndexError, match=rf"index must be an int in \[0, 1\].*got {bad}"):
            f.get_dim(bad)  # type: ignore[arg-type]
    with pytest.raises(IndexError):
        f.get_dim(2)
    with pytest.raises(ValueError):
        f.get_dim(-1)
    g = tbf.fusion()
    assert g.get_dim(5) is None and g.get_num() == 0 and g.get_dims() is None
    assert tbf.fusion(dims=(2, 2)).get_dims() == (2, 2)


def test_base_fusion_is_abstract_in_use() -> None:
    f = tbf.fusion(dims=[2, 2], name="base")
    assert f.get_name() == "base"
    with pytest.raises(NotImplementedError, match="does not implement forward"):
        f([X1, X2])
    with pytest.raises(NotImplementedError, match="calculate_n"):
        f.calculate_n()
    with pytest.raises(NotImplementedError, match="calculate_l"):
        f.calculate_l()
    assert f.to_config()["function_class"] == "interfuse.tinybig.fusion"


# ---------------------------------------------------------------------------------------------
# 8-9: concatenation and pre/post-processing
# ---------------------------------------------------------------------------------------------


def test_case8_concatenation() -> None:
    f = tb.concatenation_fusion(dims=[2, 2, 2])
    close(f(X123), [[1, 2, 5, 6, 9, 10], [3, 4, 7, 8, 11, 12]])
    assert f.calculate_n() == 6 and f.calculate_l() == 0
    assert f.calculate_n(dims=[3, 2, 4]) == 9
    g = tb.concatenation_fusion()
    assert g([torch.ones(2, 3), torch.ones(2, 2), torch.ones(2, 4)]).shape == (2, 9)
    with pytest.raises(
        ValueError, match=r"excluding the last dimension.*x\[1\] has leading shape \(3,\)"
    ):
        g([torch.ones(2, 3), torch.ones(3, 3)])
    assert g([torch.ones(3), torch.ones(2)]).shape == (5,)
    with pytest.raises(ValueAssertionError, match="calculate_n needs dims"):
        g.calculate_n()
    with pytest.raises(AssertionError):
        g.calculate_n()


def test_case9_layer_norm_sees_stacked_inputs() -> None:
    f = tb.concatenation_fusion(dims=[2, 2], preprocess_functions="layer_norm")
    close(f([X1, X2]), [[-0.99998, 0.99998, -0.99998, 0.99998]] * 2)


X9 = [torch.tensor([[-1.0, 2.0]]), torch.tensor([[3.0, -4.0]])]


def test_case9_module_and_string_hooks() -> None:
    f = tb.concatenation_fusion(
        dims=[2, 2], preprocess_functions=[nn.ReLU()], postprocess_functions=[nn.Tanh()]
    )
    close(f(X9), [[0, 0.96403, 0.99505, 0]])
    g = tb.concatenation_fusion(dims=[2, 2], postprocess_functions="sigmoid")
    close(g(X9), [[0.26894, 0.88080, 0.95257, 0.01799]])
    h = tb.concatenation_fusion(dims=[2, 2], postprocess_functions=lambda t: 2 * t)
    close(h(X9), [[-2, 4, 6, -8]])


@pytest.mark.parametrize("bad", ["softmax", "torch.sigmoid", "no_such_function", "torch.nn.Nope"])
def test_case9_unknown_string_is_an_error(bad: str) -> None:
    """Fix: tinyBIG warned at call time and returned x unchanged; this fails at construction."""
    with pytest.raises(ValueError, match=rf"postprocess_functions: .*{bad!r}.*'sigmoid'"):
        tb.concatenation_fusion(dims=[2, 2], postprocess_functions=bad)
    with pytest.raises(ValueError, match=r"preprocess_functions\[1\]"):
        tb.concatenation_fusion(dims=[2, 2], preprocess_functions=["relu", bad])


def test_case9_whitelist_resolution() -> None:
    x = torch.tensor([[-1.0, 0.5, 2.0]])
    for name in ("Sigmoid", "torch.nn.functional.sigmoid", torch.nn.functional.sigmoid):
        (fn,) = resolve_functions(name, argument="f")
        torch.testing.assert_close(apply_functions(x, [fn]), torch.sigmoid(x))
    (exp,) = resolve_functions("torch.exp")
    torch.testing.assert_close(apply_functions(x, [exp]), torch.exp(x))
    (bn,) = resolve_functions("torch.nn.BatchNorm1d")
    y = apply_functions(torch.randn(8, 3), [bn])
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    # F.layer_norm as an object gets the built-in semantics (tinyBIG crashed calling it bare)
    (ln,) = resolve_functions(torch.nn.functional.layer_norm)
    torch.testing.assert_close(apply_functions(x, [ln]), torch.nn.functional.layer_norm(x, [3]))
    assert len(BUILTIN_NAMES) == 14
    with pytest.raises(TypeError, match="expected a callable, a function name or a config dict"):
        resolve_functions([3], argument="preprocess_functions")


def test_dropout_follows_eval_mode() -> None:
    """Fix: tinyBIG's 'dropout' dropped in eval() too."""
    f = tb.mean_fusion(dims=[64, 64], preprocess_functions="dropout")
    xs = [torch.ones(4, 64), torch.ones(4, 64)]
    torch.manual_seed(0)
    assert (f(xs) == 0).any()
    f.eval()
    torch.testing.assert_close(f(xs), torch.ones(4, 64))


def test_function_configs() -> None:
    cfg = {"function_class": "torch.nn.ReLU", "function_parameters": {}}
    f = tb.concatenation_fusion(dims=[2, 2], preprocess_function_configs=cfg)
    close(f(X9), [[0, 2, 3, 0]])
    named = {
        "first": {"function_class": "torch.nn.ReLU"},
        "second": {"function_class": "torch.nn.Tanh"},
    }
    g = tb.concatenation_fusion(dims=[2, 2], postprocess_function_configs=named)
    close(g(X9), [[0, 0.96403, 0.99505, 0]])
    h = tb.concatenation_fusion(dims=[2, 2], postprocess_function_configs=[cfg, named["second"]])
    close(h(X9), [[0, 0.96403, 0.99505, 0]])
    # functions win over configs, as in tinyBIG
    k = tb.concatenation_fusion(
        dims=[2, 2], postprocess_functions="sigmoid", postprocess_function_configs=cfg
    )
    close(k(X9), [[0.26894, 0.88080, 0.95257, 0.01799]])
    with pytest.raises(ValueError, match="cannot be imported"):
        tb.concatenation_fusion(dims=[2, 2], preprocess_function_configs={"function_class": "a.b"})


def test_function_modules_are_registered() -> None:
    f = tb.concatenation_fusion(dims=[3, 3], preprocess_functions=[nn.LayerNorm(3)])
    assert "preprocess_modules.0.weight" in f.state_dict()
    assert f.to(torch.float64).preprocess_modules[0].weight.dtype == torch.float64


# ---------------------------------------------------------------------------------------------
# 10-15: the parameterized concatenation family
# ---------------------------------------------------------------------------------------------

W18 = (torch.arange(18.0) / 10).view(1, 18)


def test_case10_parameterized_concatenation() -> None:
    f = tb.parameterized_concatenation_fusion(n=3, dims=[2, 2, 2])
    out = f(X123, W18)
    close(out, [[11.6, 31.4, 51.2], [14.6, 41.6, 68.6]])
    torch.testing.assert_close(out, torch.cat(X123, -1) @ W18.view(3, 6).T)
    assert f.calculate_l() == 18 and f.calculate_n() == 3
    torch.testing.assert_close(f(X123, W18.view(3, 6)), out)  # any shape of numel l, as tinyBIG


def test_case10_errors() -> None:
    f = tb.parameterized_concatenation_fusion(n=3, dims=[2, 2, 2])
    with pytest.raises(ValueAttributeError, match=r"w is required.*l=18.*got w=None"):
        f(X123)
    with pytest.raises(AttributeError):
        f(X123)
    with pytest.raises(ValueRuntimeError, match=r"l=n\*D=3\*6=18.*got shape \(1, 7\)"):
        f(X123, torch.ones(1, 7))
    with pytest.raises(RuntimeError):
        f(X123, torch.ones(1, 7))
    g = tb.parameterized_concatenation_fusion(n=4)
    with pytest.raises(ValueError, match=r"calculate_l needs dims.*got dims=None"):
        g.calculate_l()
    with pytest.raises(ValueError, match="forward needs dims"):
        g(X123, torch.ones(24))
    with pytest.raises(
        ValueAssertionError, match=r"n is required unless dims are all equal.*\[2, 3\]"
    ):
        tb.parameterized_concatenation_fusion(dims=[2, 3])
    with pytest.raises(AssertionError):
        tb.parameterized_concatenation_fusion()
    with pytest.raises(ValueError, match="n must be a positive int, got 0"):
        tb.parameterized_concatenation_fusion(n=0, dims=[2])


def test_case10_shapes() -> None:
    assert tb.parameterized_concatenation_fusion(dims=[4, 4]).n == 4
    f = tb.parameterized_concatenation_fusion(n=3, dims=[2, 2])
    out = f([torch.ones(4, 5, 2), torch.ones(4, 5, 2)], torch.ones(1, 12))
    assert out.shape == (4, 5, 3)
    assert f.require_parameters


def test_case11_lowrank() -> None:
    f = tb.lowrank_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], r=2)
    out = f(X123, W18)
    close(out, [[5.12, 21.64, 38.16], [6.86, 28.90, 50.94]])
    w = W18.view(-1)
    torch.testing.assert_close(out, torch.cat(X123, -1) @ (w[:6].view(3, 2) @ w[6:].view(2, 6)).T)
    # fix: a 1-D w of length l is accepted (tinyBIG asserted w.ndim == 2)
    torch.testing.assert_close(f(X123, w), out)
    with pytest.raises(
        ValueAssertionError, match=r"w must hold l=18 parameters.*got shape \(1, 17\)"
    ):
        f(X123, torch.ones(1, 17))
    with pytest.raises(AssertionError):
        f(X123, torch.ones(1, 17))


def test_case12_hm_compat_and_kronecker() -> None:
    f = tb.hm_parameterized_concatenation_fusion(n=4, dims=[2, 2], p=2, q=2)
    close(f(ROW, W8), [[70, 140, 210, 280]])
    k = tb.hm_parameterized_concatenation_fusion(n=4, dims=[2, 2], p=2, q=2, kronecker=True)
    close(k(ROW, W8), [[95, 129, 207, 281]])
    w = W8.view(-1)
    torch.testing.assert_close(k.matrix(W8), torch.kron(w[:4].view(2, 2), w[4:].view(2, 2)))
    assert f.calculate_l() == k.calculate_l() == 8


def test_case13_lphm_and_dual() -> None:
    f = tb.lphm_parameterized_concatenation_fusion(n=4, dims=[2, 2], p=2, q=2, r=1)
    close(f(ROW, W8), [[433, 866, 1299, 1732]])
    assert f.calculate_l() == 8
    g = tb.dual_lphm_parameterized_concatenation_fusion(n=4, dims=[2, 2], p=2, q=2, r=1)
    close(g(ROW, W8), [[1299, 1732, 2598, 3464]])
    assert g.calculate_l() == 8


@pytest.mark.parametrize("cls_name", ["lphm", "dual_lphm"])
def test_lphm_kronecker_matches_torch_kron(cls_name: str) -> None:
    torch.manual_seed(0)
    cls = getattr(tb, f"{cls_name}_parameterized_concatenation_fusion")
    f = cls(r=2, p=2, q=3, n=4, dims=[2, 3, 1], kronecker=True)
    w = torch.randn(f.calculate_l(), dtype=torch.float64)
    xs = [torch.randn(5, d, dtype=torch.float64) for d in (2, 3, 1)]
    W = f.matrix(w)
    torch.testing.assert_close(f(xs, w), torch.cat(xs, -1) @ W.T)
    p, q, s, t, r = 2, 3, 2, 2, 2
    if cls_name == "lphm":
        A = w[: p * q].view(p, q)
        B = w[p * q : p * q + s * r].view(s, r) @ w[p * q + s * r :].view(r, t)
    else:
        o = [p * r, p * r + r * q, p * r + r * q + s * r]
        A = w[: o[0]].view(p, r) @ w[o[0] : o[1]].view(r, q)
        B = w[o[1] : o[2]].view(s, r) @ w[o[2] :].view(r, t)
    torch.testing.assert_close(W, torch.kron(A, B))


def test_case14_hm_constructor() -> None:
    with pytest.raises(ValueAssertionError, match=r"p=2 must divide n=3 \(the Kronecker"):
        tb.hm_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], p=2)
    with pytest.raises(AssertionError):
        tb.hm_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], p=2)
    with pytest.raises(ValueAssertionError, match=r"q=4 must divide D=6 .*choose a divisor of 6"):
        tb.hm_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], p=3, q=4)
    with pytest.raises(TypeError, match="p"):
        tb.hm_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2])  # type: ignore[call-arg]
    assert tb.hm_parameterized_concatenation_fusion(n=4, dims=[2, 2], p=2).q == 2
    with pytest.raises(ValueAssertionError, match="needs dims"):
        tb.lphm_parameterized_concatenation_fusion(r=1, p=2, n=4)
    # the code's convention: p | n and q | D (tinyBIG's docstring had them swapped)
    f = tb.hm_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], p=3, q=2)
    assert f.calculate_l() == 3 * 2 + 1 * 3


def test_case15_random_matrix_adaption() -> None:
    f = tb.random_matrix_adaption_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], r=2)
    assert f.calculate_l() == 5  # n + r (tinyBIG's code; its docs said D + r)
    w = torch.randn(1, 5)
    out = f(X123, w)
    assert out.shape == (2, 3)
    torch.testing.assert_close(f(X123, w), out)
    # fix B-F7: the factors are seeded buffers, saved and moved
    assert sorted(f.state_dict()) == ["R_A", "R_B", "_extra_state"]  # the seed travels too
    assert f.R_A.shape == (3, 2) and f.R_B.shape == (6, 2)
    g = tb.random_matrix_adaption_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2], r=2)
    torch.testing.assert_close(g(X123, w), out)
    h = tb.random_matrix_adaption_parameterized_concatenation_fusion(
        n=3, dims=[2, 2, 2], r=2, seed=1
    )
    assert not torch.equal(h.R_A, f.R_A)
    assert f.to(torch.float64).R_B.dtype == torch.float64


def test_case15_random_matrix_formula() -> None:
    A, B = torch.randn(3, 2), torch.randn(6, 2)
    f = tb.random_matrix_adaption_parameterized_concatenation_fusion(
        n=3, dims=[2, 2, 2], r=2, random_factors=(A, B)
    )
    w = torch.randn(1, 5)
    lam1, lam2 = w[0, :3], w[0, 3:]
    W = torch.diag(lam1) @ A @ torch.diag(lam2) @ B.T
    torch.testing.assert_close(f.matrix(w), W)
    torch.testing.assert_close(f(X123, w), torch.cat(X123, -1) @ W.T, rtol=1e-5, atol=1e-4)
    with pytest.raises(
        ValueAssertionError, match=r"shapes \(3, 2\) and \(6, 2\), got \(3, 2\) and \(5, 2\)"
    ):
        tb.random_matrix_adaption_parameterized_concatenation_fusion(
            n=3, dims=[2, 2, 2], r=2, random_factors=(A, B[:5])
        )


def test_case15_random_matrix_without_dims() -> None:
    f = tb.random_matrix_adaption_parameterized_concatenation_fusion(n=3)
    assert list(f.state_dict()) == ["_extra_state"]  # no factors until dims are known
    with pytest.raises(ValueError, match="forward needs dims"):
        f(X123, torch.ones(5))


# ---------------------------------------------------------------------------------------------
# 16-17: fabrication layouts, through the fusions' matrix()
# ---------------------------------------------------------------------------------------------


def test_case16_lowrank_layout() -> None:
    f = tb.lowrank_parameterized_concatenation_fusion(r=2, n=3, dims=[5])
    w = torch.randn(1, f.calculate_l())
    torch.testing.assert_close(f.matrix(w), w[:, :6].reshape(3, 2) @ w[:, 6:].reshape(2, 5))


def test_case17_hm_layout_and_rank() -> None:
    f = tb.hm_parameterized_concatenation_fusion(p=2, q=2, n=4, dims=[4])
    W = f.matrix(W8)
    torch.testing.assert_close(
        W, torch.outer(torch.tensor([1.0, 2, 3, 4]), torch.tensor([5.0, 6, 7, 8]))
    )
    assert torch.linalg.matrix_rank(W) == 1
    torch.manual_seed(0)
    g = tb.hm_parameterized_concatenation_fusion(p=2, q=3, n=6, dims=[6])
    gk = tb.hm_parameterized_concatenation_fusion(p=2, q=3, n=6, dims=[6], kronecker=True)
    w = torch.randn(g.calculate_l(), dtype=torch.float64)
    assert torch.linalg.matrix_rank(g.matrix(w)) == 1
    assert torch.linalg.matrix_rank(gk.matrix(w)) == 4
    one = tb.hm_parameterized_concatenation_fusion(p=1, q=1, n=3, dims=[4])
    w = torch.randn(one.calculate_l())
    torch.testing.assert_close(one.matrix(w), w[0] * w[1:].view(3, 4))


@pytest.mark.parametrize(
    ("n", "D", "p", "q"),
    [
        (4, 4, 2, 1),
        (4, 6, 4, 2),
        (6, 4, 3, 1),
        (3, 3, 3, 3),
        (3, 3, 1, 3),
        (4, 4, 1, 2),
        (4, 4, 2, 4),
    ],
)
def test_case17_compat_equals_kron_iff(n: int, D: int, p: int, q: int) -> None:
    f = tb.hm_parameterized_concatenation_fusion(p=p, q=q, n=n, dims=[D])
    k = tb.hm_parameterized_concatenation_fusion(p=p, q=q, n=n, dims=[D], kronecker=True)
    w = torch.randn(f.calculate_l(), dtype=torch.float64)
    assert torch.allclose(f.matrix(w), k.matrix(w)) == (q == 1 or p == n)


# ---------------------------------------------------------------------------------------------
# the core: no stacking, no concatenation copy
# ---------------------------------------------------------------------------------------------


def _forbid(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"torch.{name} was called")

    monkeypatch.setattr(torch, name, boom)


@pytest.mark.parametrize(
    "make",
    [
        lambda: tb.weighted_summation_fusion(dims=[2] * 3, weights=torch.ones(3)),
        lambda: tb.average_fusion(dims=[2] * 3),
        lambda: tb.mean_fusion(dims=[2] * 3),
        lambda: tb.max_fusion(dims=[2] * 3),
        lambda: tb.prod_fusion(dims=[2] * 3),
        lambda: tb.l2_norm_fusion(dims=[2] * 3),
    ],
)
def test_elementwise_fusions_never_stack(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    f = make()
    monkeypatch.setattr(_common, "SMALL_BYTES", 0)  # small inputs take the stacked formulas
    _forbid(monkeypatch, "stack")
    assert f(XY).shape == (2, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: tb.parameterized_concatenation_fusion(n=3, dims=[2, 2, 2]),
        lambda: tb.lowrank_parameterized_concatenation_fusion(r=1, n=3, dims=[2, 2, 2]),
        lambda: tb.random_matrix_adaption_parameterized_concatenation_fusion(n=3, dims=[2, 2, 2]),
    ],
)
def test_projections_never_concatenate(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    f = make()
    w = torch.randn(f.calculate_l())
    ref = torch.cat(X123, -1) @ f.matrix(w).T
    _forbid(monkeypatch, "cat")
    _forbid(monkeypatch, "stack")
    torch.testing.assert_close(f(X123, w), ref)


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------

ALL_FUSIONS: list[Any] = [
    lambda: tb.weighted_summation_fusion(dims=[2, 2, 2], weights=torch.tensor([0.2, 0.5, 0.3])),
    lambda: tb.summation_fusion(dims=[2, 2, 2]),
    lambda: tb.average_fusion(dims=[2, 2, 2]),
    lambda: tb.parameterized_weighted_summation_fusion(dims=[2, 2, 2]),
    lambda: tb.metric_fusion([2, 2, 2], "median"),
    *[(lambda c=c: getattr(tb, c)(dims=[2, 2, 2])) for c in sorted(METRIC_EXPECT)],
    lambda: tb.concatenation_fusion(dims=[2, 2, 2], postprocess_functions="sigmoid"),
    lambda: tb.parameterized_concatenation_fusion(n=3, dims=[2, 2, 2]),
    lambda: tb.lowrank_parameterized_concatenation_fusion(r=1, n=3, dims=[2, 2, 2]),
    lambda: tb.hm_parameterized_concatenation_fusion(p=3, q=2, n=3, dims=[2, 2, 2]),
    lambda: tb.lphm_parameterized_concatenation_fusion(
        1, 3, 2, n=3, dims=[2, 2, 2], kronecker=True
    ),
    lambda: tb.dual_lphm_parameterized_concatenation_fusion(1, 3, n=3, dims=[2, 2, 2]),
    lambda: tb.random_matrix_adaption_parameterized_concatenation_fusion(
        n=3, dims=[2, 2, 2], seed=5
    ),
]


def _w_for(f: Any) -> torch.Tensor | None:
    return torch.linspace(-1, 1, f.calculate_l()).view(1, -1) if f.calculate_l() else None


@pytest.mark.parametrize("make", ALL_FUSIONS)
def test_config_round_trip(make: Any) -> None:
    """Fix: to_config holds only constructor arguments, is JSON/YAML-safe, and round-trips
    (tinyBIG's metric fusions failed here with TypeError)."""
    f = make()
    cfg = f.to_config()
    assert cfg["function_class"] == f"interfuse.tinybig.{type(f).__name__}"
    assert json.loads(json.dumps(cfg)) == cfg
    assert yaml.safe_load(yaml.safe_dump(cfg)) == cfg
    params = cfg["function_parameters"]
    assert set(params) == {p.name for p in _accepted_arguments(type(f))[0]}  # arguments only
    g = from_config(cfg)
    assert type(g) is type(f) and g.to_config() == cfg
    g.load_state_dict(f.state_dict())
    torch.testing.assert_close(g(XY, _w_for(f)), f(XY, _w_for(f)))


def test_config_records_arguments_not_state() -> None:
    f = tb.lphm_parameterized_concatenation_fusion(1, 3, 2, n=3, dims=(2, 2, 2), kronecker=True)
    assert f.to_config()["function_parameters"] == {
        "r": 1,
        "p": 3,
        "q": 2,
        "name": "lphm_parameterized_concatenation_fusion",
        "n": 3,
        "dims": [2, 2, 2],
        "require_parameters": True,
        "kronecker": True,
        "preprocess_functions": None,
        "postprocess_functions": None,
        "preprocess_function_configs": None,
        "postprocess_function_configs": None,
        "device": "cpu",
    }
    w = tb.weighted_summation_fusion(dims=[2, 2], weights=torch.ones(2))
    assert w.to_config()["function_parameters"]["weights"] == [1.0, 1.0]  # fixed: plain floats


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize(
    "weights",
    [
        torch.tensor([0.2, 0.5, 0.3]),
        torch.tensor([[0.1], [-0.7], [1.3]]),
        torch.tensor([[1 / 3, 2 / 7, 0.9]]),
        torch.tensor([1, 2, 3]),
    ],
    ids=["k", "k1", "1k", "int"],
)
def test_config_round_trip_keeps_fixed_weights(fmt: str, weights: torch.Tensor) -> None:
    """Fix: to_config writes the fixed weights as floats, so the rebuilt module needs no
    state_dict and computes bit-identical outputs."""
    f = tb.weighted_summation_fusion(dims=[2, 2, 2], weights=weights)
    cfg = f.to_config()
    written = cfg["function_parameters"]["weights"]
    assert isinstance(written, list) and all(type(v) is float for v in written)
    text = json.dumps(cfg) if fmt == "json" else yaml.safe_dump(cfg)
    loaded = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert loaded == cfg
    g = from_config(loaded)
    assert g.weights is not None and torch.equal(g.weights, f.weights)
    assert torch.equal(g(XY), f(XY))
    assert g.to_config() == cfg


@pytest.mark.parametrize(
    "weights", [[0.25, 0.75], (0.25, 0.75), [[0.25], [0.75]], [[0.25, 0.75]], [1, 3]]
)
def test_weights_accept_lists(weights: Any) -> None:
    f = tb.weighted_summation_fusion(dims=[2, 2], weights=weights)
    assert f.weights is not None and f.weights.dtype == torch.get_default_dtype()
    expected = torch.tensor(weights, dtype=torch.float32).reshape(-1)
    torch.testing.assert_close(f.weights, expected)
    close(f([X1, X2]), expected[0] * X1 + expected[1] * X2)


@pytest.mark.parametrize("weights", ["ab", 0.5, [1.0, "a"], [[1.0, 2.0], [3.0]], {"a": 1.0}])
def test_weights_of_the_wrong_type(weights: Any) -> None:
    with pytest.raises(TypeError, match=r"weights must be a torch.Tensor or a list of numbers"):
        tb.weighted_summation_fusion(dims=[2, 2], weights=weights)


def test_config_without_weights_comes_back_through_state_dict() -> None:
    """A config holding weights=None (written before weights were serialized) still loads;
    the weights then come from the state_dict."""
    f = tb.weighted_summation_fusion(dims=[2, 2, 2], weights=torch.tensor([0.2, 0.5, 0.3]))
    cfg = f.to_config()
    cfg["function_parameters"]["weights"] = None
    g = instantiation_from_configs(cfg)
    assert g.weights is None
    with pytest.raises(ValueAssertionError, match="load a state_dict"):
        g(XY)
    g.load_state_dict(f.state_dict())
    torch.testing.assert_close(g(XY), f(XY))
    assert g.to_config() == f.to_config()


def test_config_pre_post_functions() -> None:
    f = tb.concatenation_fusion(
        dims=[2, 2],
        preprocess_functions=[nn.LeakyReLU(0.2), nn.LayerNorm(2)],
        postprocess_functions=["tanh", torch.nn.functional.sigmoid],
    )
    cfg = f.to_config()
    params = cfg["function_parameters"]
    assert params["preprocess_functions"] is None
    assert params["preprocess_function_configs"] == [
        {
            "function_class": "torch.nn.modules.activation.LeakyReLU",
            "function_parameters": {"negative_slope": 0.2, "inplace": False},
        },
        {
            "function_class": "torch.nn.modules.normalization.LayerNorm",
            "function_parameters": {
                "normalized_shape": [2],
                "eps": 1e-05,
                "elementwise_affine": True,
                "bias": True,
            },
        },
    ]
    assert params["postprocess_functions"] == ["tanh", "sigmoid"]
    assert yaml.safe_load(yaml.safe_dump(cfg)) == cfg
    g = from_config(cfg)
    assert g.to_config() == cfg
    g.load_state_dict(f.state_dict())
    torch.testing.assert_close(g(X9), f(X9))


def test_config_mixed_functions() -> None:
    f = tb.mean_fusion(dims=[2, 2], postprocess_functions=[nn.ReLU(), "tanh"])
    cfg = f.to_config()
    assert cfg["function_parameters"]["postprocess_functions"] == [
        {
            "function_class": "torch.nn.modules.activation.ReLU",
            "function_parameters": {"inplace": False},
        },
        "tanh",
    ]
    g = from_config(cfg)
    assert g.to_config() == cfg
    torch.testing.assert_close(g(X9), f(X9))


def test_config_unserializable_is_a_clear_error() -> None:
    f = tb.concatenation_fusion(dims=[2, 2], postprocess_functions=lambda t: 2 * t)
    with pytest.raises(
        TypeError, match=r"postprocess_functions=<function .*cannot be written to a config"
    ):
        f.to_config()

    def local_metric(t: torch.Tensor) -> torch.Tensor:
        return t.sum(1)

    with pytest.raises(TypeError, match=r"metric=.*cannot be written to a config"):
        tb.metric_fusion([2, 2], local_metric).to_config()


def test_metric_fusion_with_importable_metric_round_trips() -> None:
    f = tb.metric_fusion([2, 2, 2], "torch.nn.functional.softmin")
    assert f.to_config()["function_parameters"]["metric"] == "torch.nn.functional.softmin"
    g = tb.metric_fusion([2, 2, 2], torch.nn.functional.softmin)
    assert g.to_config()["function_parameters"]["metric"] == "torch.nn.functional.softmin"


def _tinybig_internals() -> dict[str, Any]:
    """What tinyBIG's ``self.__dict__`` dump added to every config."""
    return {
        "training": True,
        "_parameters": OrderedDict(),
        "_buffers": OrderedDict(),
        "_non_persistent_buffers_set": set(),
        "_backward_pre_hooks": OrderedDict(),
        "_backward_hooks": OrderedDict(),
        "_is_full_backward_hook": None,
        "_forward_hooks": OrderedDict(),
        "_forward_hooks_with_kwargs": OrderedDict(),
        "_forward_hooks_always_called": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_forward_pre_hooks_with_kwargs": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_state_dict_pre_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_load_state_dict_post_hooks": OrderedDict(),
        "_modules": OrderedDict(),
    }


def test_tinybig_written_configs_load() -> None:
    base = {"device": "cpu", "require_parameters": False, **_tinybig_internals()}
    mx = instantiation_from_configs(
        {
            "function_class": "tinybig.fusion.metric_fusion.max_fusion",
            "function_parameters": {
                **base,
                "name": "max_fusion",
                "dims": [2, 2, 2],
                "metric": lambda t: t.max(dim=1).values,
            },
        }
    )
    assert type(mx) is tb.max_fusion
    close(mx(XY), METRIC_EXPECT["max_fusion"])
    mean = instantiation_from_configs(
        {
            "function_class": "tinybig.fusion.mean_fusion",
            "function_parameters": {**base, "name": "mean_fusion", "dims": [2, 2, 2]},
        }
    )
    assert type(mean) is tb.mean_fusion
    ws = instantiation_from_configs(
        {
            "function_class": "tinybig.fusion.basic_fusion.weighted_summation_fusion",
            "function_parameters": {
                **base,
                "name": "ws",
                "dims": [2, 2, 2],
                "weights": torch.tensor([0.2, 0.5, 0.3]),
            },
        }
    )
    close(ws(XY), [[5.4, 1.0], [7.4, 2.2]])
    sm = instantiation_from_configs(
        {
            "function_class": "tinybig.fusion.basic_fusion.summation_fusion",
            "function_parameters": {
                **base,
                "name": "s",
                "dims": [2, 2, 2],
                "weights": torch.ones(3),
            },
        }
    )
    close(sm(XY), [[15, 4], [21, 8]])
    lr = instantiation_from_configs(
        {
            "function_class": "tinybig.fusion.parameterized_concatenation_fusion."
            "lowrank_parameterized_concatenation_fusion",
            "function_parameters": {
                **base,
                "require_parameters": True,
                "name": "lowrank_parameterized_concatenation_fusion",
                "dims": [2, 2, 2],
                "n": 3,
                "r": 2,
                "parameter_fabrication": object(),
                "preprocess_function_configs": [
                    {
                        "function_class": "torch.nn.modules.activation.ReLU",
                        "function_parameters": {**_tinybig_internals(), "inplace": False},
                    }
                ],
            },
        }
    )
    assert isinstance(lr, tb.lowrank_parameterized_concatenation_fusion) and lr.r == 2
    close(lr(X123, W18), [[5.12, 21.64, 38.16], [6.86, 28.90, 50.94]])


def test_tinybig_interdependence_config_keeps_its_type() -> None:
    """tinyBIG's private ``_interdependence_type`` becomes ``interdependence_type`` (fix B-I7)."""
    m = instantiation_from_configs(
        {
            "function_class": "tinybig.interdependence.parameterized_interdependence",
            "function_parameters": {
                **_tinybig_internals(),
                "name": "parameterized_interdependence",
                "device": "cpu",
                "b": 5,
                "m": 3,
                "b_prime": 2,
                "m_prime": 3,
                "require_data": False,
                "require_parameters": True,
                "A": None,
                "parameter_fabrication": None,
                "_interdependence_type": "instance",
            },
        }
    )
    assert m.interdependence_type == "instance"


def test_config_errors() -> None:
    with pytest.raises(
        ValueError, match=r"names no interfuse.tinybig class; choose one of \[.*'max_fusion'"
    ):
        instantiation_from_configs({"function_class": "tinybig.fusion.foo_fusion"})
    with pytest.raises(ValueError, match="must be a dict with a 'function_class' key"):
        instantiation_from_configs({"class": "max_fusion"})
    with pytest.raises(TypeError, match=r"unknown keys \['dimz'\]"):
        instantiation_from_configs(
            {"function_class": "interfuse.tinybig.max_fusion", "function_parameters": {"dimz": [2]}}
        )
    assert "max_fusion" in choices() and "fusion" in choices()
    h = instantiation_from_configs(
        {"head_class": "interfuse.tinybig.sum_fusion", "head_parameters": {"dims": [2, 2]}},
        class_name="head_class",
        parameter_name="head_parameters",
    )
    assert type(h) is tb.sum_fusion


def test_repr_shows_arguments() -> None:
    text = repr(tb.hm_parameterized_concatenation_fusion(p=2, n=4, dims=[2, 2], kronecker=True))
    assert text.startswith("hm_parameterized_concatenation_fusion(p=2")
    assert "kronecker=True" in text and "dims=[2, 2]" in text


def test_given_random_factors_take_the_default_dtype() -> None:
    ra, rb = torch.randn(3, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    f = tb.random_matrix_adaption_parameterized_concatenation_fusion(
        n=3, dims=[2, 2], r=2, random_factors=(ra, rb)
    )
    assert f.R_A.dtype == f.R_B.dtype == torch.get_default_dtype()
    out = f([torch.randn(5, 2), torch.randn(5, 2)], w=torch.randn(1, f.calculate_l()))
    assert out.shape == (5, 3) and out.dtype == torch.float32
    i = tb.random_matrix_adaption_parameterized_interdependence(
        b=5, m=4, m_prime=3, r=2, random_factors=(ra[:, :2].repeat(2, 1)[:4], rb[:3])
    )
    assert i(torch.randn(5, 4), w=torch.randn(1, i.calculate_l())).shape == (5, 3)


def test_preprocessing_that_changes_widths_is_checked_after_it() -> None:
    """forward checks the widths before pre-processing; a hook that changes them must still
    fail naming the widths, not inside the product."""
    f = tb.parameterized_concatenation_fusion(
        n=2, dims=[2, 2], preprocess_functions=[lambda t: t[..., :1]]
    )
    w = torch.ones(1, f.calculate_l())
    with pytest.raises(ValueError, match=r"width 2 but the matrix expects in_features=4"):
        f([torch.ones(3, 2), torch.ones(3, 2)], w=w)
