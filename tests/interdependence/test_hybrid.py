"""HybridInterdependence: fused matrices, the outputs strategy, config, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import interfuse
from interfuse import (
    BilinearInterdependence,
    ConcatFusion,
    HybridInterdependence,
    MaxFusion,
    MeanFusion,
    ParameterizedInterdependence,
    ProdFusion,
    ProjectedConcatFusion,
    SumFusion,
    WeightedSumFusion,
)
from interfuse.config import from_config
from interfuse.fusion import Fusion, resolve_fusion
from interfuse.interdependence import is_linear_fusion

AXES = ["attribute", "instance"]
D = 6  # the mixed dimension of x
OTHER = 5  # the other dimension of x


def _x(axis: str, *lead: int, d: int = D, other: int = OTHER) -> torch.Tensor:
    return torch.randn(*lead, other, d) if axis == "attribute" else torch.randn(*lead, d, other)


def _square_parts(axis: str, bilinear: bool = True) -> list[Any]:
    """Parts whose matrices are all (…, D, D): two data-free, optionally one bilinear."""
    parts: list[Any] = [
        ParameterizedInterdependence(D, matrix="lowrank", axis=axis, matrix_options={"rank": 2}),
        ParameterizedInterdependence(D, matrix="hm", axis=axis, matrix_options={"p": 2, "q": 3}),
    ]
    if bilinear:
        # attribute: A = XᵀWX is m×m with W of side b; instance: XWXᵀ is b×b with W of side m
        parts.append(
            BilinearInterdependence(OTHER, axis=axis, matrix="lowrank", matrix_options={"rank": 2})
        )
    return parts


def _explicit(
    module: HybridInterdependence,
    x: torch.Tensor,
    data: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    mats = [p.interdependence_matrix(x) for p in module.parts]
    lead = torch.broadcast_shapes(*(a.shape[:-2] for a in mats))
    mats = [a.expand(*lead, *a.shape[-2:]) for a in mats]
    a = module.fusion(mats, mask)
    d = x if data is None else data
    return d @ a if module.axis == "attribute" else a.mT @ d


FUSIONS: list[tuple[str, Callable[[int, int], Fusion]]] = [
    ("mean", lambda k, n: MeanFusion()),
    ("sum", lambda k, n: SumFusion()),
    ("weighted_sum", lambda k, n: WeightedSumFusion(k, weights=[0.5, -1.0, 2.0][:k])),
    ("weighted_softmax", lambda k, n: WeightedSumFusion(k, normalize="softmax")),
    ("prod", lambda k, n: ProdFusion()),
    ("max", lambda k, n: MaxFusion()),
    ("median", lambda k, n: resolve_fusion("median", mode="mean")),
    ("norm", lambda k, n: resolve_fusion("norm", p=2.0)),
    ("concat", lambda k, n: ConcatFusion()),
    (
        "projected",
        lambda k, n: ProjectedConcatFusion(
            [n] * k, 4, matrix="lowrank", matrix_options={"rank": 2}
        ),
    ),
    ("projected_nobias", lambda k, n: ProjectedConcatFusion([n] * k, 4, bias=False)),
]
FUSION_IDS = [f for f, _ in FUSIONS]
LINEAR = {"mean", "sum", "weighted_sum", "weighted_softmax", "concat", "projected_nobias"}


# -- semantics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("fname", "make"), FUSIONS, ids=FUSION_IDS)
def test_matrices_strategy_applies_the_fused_matrix(fname: str, make: Callable, axis: str) -> None:
    torch.manual_seed(0)
    parts = _square_parts(axis)
    module = HybridInterdependence(parts, make(len(parts), D), strategy="matrices")
    x = _x(axis, 2)
    y = module(x)
    torch.testing.assert_close(y, _explicit(module, x), rtol=1e-4, atol=1e-5)
    assert y.shape == module.output_shape(x.shape)
    assert module.interdependence_matrix(x).shape[-2] == D


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(
    ("fname", "make"),
    [f for f in FUSIONS if f[0] in LINEAR],
    ids=[f for f in FUSION_IDS if f in LINEAR],
)
def test_outputs_strategy_equals_matrices_for_linear_fusions(
    fname: str, make: Callable, axis: str
) -> None:
    torch.manual_seed(1)
    parts = _square_parts(axis)
    fusion = make(len(parts), D)
    by_outputs = HybridInterdependence(parts, fusion, strategy="outputs")
    by_matrices = HybridInterdependence(parts, fusion, strategy="matrices")
    assert by_outputs.linear_fusion and is_linear_fusion(fusion)
    x = _x(axis, 3)
    torch.testing.assert_close(by_outputs(x), by_matrices(x), rtol=1e-4, atol=1e-5)
    mask = torch.tensor([True, False, True])
    torch.testing.assert_close(
        by_outputs(x, mask=mask), by_matrices(x, mask=mask), rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(
        by_matrices(x, mask=mask), _explicit(by_matrices, x, mask=mask), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("axis", AXES)
def test_separate_data(axis: str) -> None:
    torch.manual_seed(2)
    parts = _square_parts(axis)
    x = _x(axis, 2)
    data = torch.randn(2, 7, D) if axis == "attribute" else torch.randn(2, D, 9)
    for strategy in ("matrices", "outputs"):
        module = HybridInterdependence(parts, "mean", strategy=strategy)
        torch.testing.assert_close(
            module(x, data), _explicit(module, x, data), rtol=1e-4, atol=1e-5
        )


def test_graph_masked_attention_with_prod_fusion() -> None:
    """tinyBIG's graph_bilinear pattern: a bilinear A masked element-wise by a fixed graph."""
    torch.manual_seed(3)
    b, m = 5, 4
    attention = BilinearInterdependence(m, axis="instance")
    graph = ParameterizedInterdependence(b, axis="instance")
    adjacency = (torch.rand(b, b) > 0.5).float()
    with torch.no_grad():
        graph.matrix.weight.copy_(adjacency.mT)  # A = Wᵀ
    graph.requires_grad_(False)
    module = HybridInterdependence([attention, graph], "prod")
    x = torch.randn(3, b, m)
    a = attention.interdependence_matrix(x) * adjacency
    torch.testing.assert_close(module.interdependence_matrix(x), a)
    torch.testing.assert_close(module(x), a.mT @ x, rtol=1e-5, atol=1e-5)
    assert module.num_parameters == m * m + b * b  # frozen parameters still count


@pytest.mark.parametrize("axis", AXES)
def test_concat_of_rectangular_parts(axis: str) -> None:
    parts = [
        ParameterizedInterdependence(D, 3, axis=axis),
        ParameterizedInterdependence(D, 5, axis=axis, matrix="lowrank"),
    ]
    module = HybridInterdependence(parts, "concat")
    x = _x(axis, 2)
    expected = (2, OTHER, 8) if axis == "attribute" else (2, 8, OTHER)
    assert module(x).shape == expected == module.output_shape(x.shape)
    a = torch.cat([p.A for p in parts], dim=-1)
    torch.testing.assert_close(module.interdependence_matrix(), a)
    ref = torch.cat([p(x) for p in parts], dim=-1 if axis == "attribute" else -2)
    torch.testing.assert_close(module(x), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("strategy", ["matrices", "outputs"])
def test_batched_equals_per_element_loop(axis: str, strategy: str) -> None:
    torch.manual_seed(4)
    module = HybridInterdependence(_square_parts(axis), "weighted_sum", strategy=strategy)
    x = _x(axis, 2, 3)
    y = module(x)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(y[i, j], module(x[i, j]), rtol=1e-4, atol=1e-5)


def test_nested_hybrid() -> None:
    torch.manual_seed(5)
    inner = HybridInterdependence(_square_parts("attribute", bilinear=False), "sum")
    outer = HybridInterdependence([inner, ParameterizedInterdependence(D)], "max")
    x = _x("attribute", 2)
    a = torch.maximum(inner.interdependence_matrix(), outer.parts[1].A)
    torch.testing.assert_close(outer(x), x @ a, rtol=1e-5, atol=1e-6)
    assert not outer.data_dependent
    assert outer.num_parameters == inner.num_parameters + D * D


def test_identity_parts_mean_is_a_no_op() -> None:
    parts = [
        ParameterizedInterdependence(D, init="identity"),
        ParameterizedInterdependence(
            D, matrix="hm", init="identity", matrix_options={"p": 2, "q": 2}
        ),
    ]
    module = HybridInterdependence(parts, "mean")
    x = _x("attribute", 3)
    torch.testing.assert_close(module(x), x)


# -- strategy choice ---------------------------------------------------------------------------


def test_auto_strategy() -> None:
    lowrank = [
        ParameterizedInterdependence(256, matrix="lowrank", matrix_options={"rank": 2})
        for _ in range(2)
    ]
    assert HybridInterdependence(lowrank, "mean").uses_outputs((4096, 256))
    dense = [ParameterizedInterdependence(64) for _ in range(3)]
    assert not HybridInterdependence(dense, "mean").uses_outputs((4096, 64))
    assert not HybridInterdependence(lowrank, "max").uses_outputs((4096, 256))
    # a bilinear part with b ≫ m: fusing the outputs never builds the b×b matrices
    attn = [
        BilinearInterdependence(8, axis="instance", matrix="lowrank", matrix_options={"rank": 2})
        for _ in range(2)
    ]
    assert HybridInterdependence(attn, "sum").uses_outputs((2, 500, 8))


def test_outputs_strategy_never_builds_matrices(monkeypatch: pytest.MonkeyPatch) -> None:
    parts = [
        BilinearInterdependence(4, axis="instance", matrix="lowrank", matrix_options={"rank": 2})
        for _ in range(2)
    ]
    module = HybridInterdependence(parts, "mean", strategy="outputs")

    def forbidden(x: Any = None) -> torch.Tensor:
        raise AssertionError("A was built")

    for part in parts:
        monkeypatch.setattr(part, "interdependence_matrix", forbidden)
    assert module(torch.randn(2, 300, 4)).shape == (2, 300, 4)


@pytest.mark.parametrize(("fname", "make"), FUSIONS, ids=FUSION_IDS)
def test_is_linear_fusion(fname: str, make: Callable) -> None:
    assert is_linear_fusion(make(3, D)) is (fname in LINEAR)


# -- parameters, gradients, helpers, config -----------------------------------------------------


def test_num_parameters_is_parts_plus_fusion() -> None:
    parts = _square_parts("attribute")
    fusion = ProjectedConcatFusion([D] * 3, 4)
    module = HybridInterdependence(parts, fusion)
    # lowrank 2·12, hm 2·3 + 3·2, bilinear lowrank 2·10, projected 4·18 + 4
    assert module.num_parameters == 24 + 12 + 20 + 76
    assert module.num_parameters == sum(p.num_parameters for p in parts) + fusion.num_parameters


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("strategy", ["matrices", "outputs"])
def test_gradients_flow(axis: str, strategy: str) -> None:
    module = HybridInterdependence(_square_parts(axis), WeightedSumFusion(3), strategy=strategy)
    x = _x(axis, 2).requires_grad_()
    module(x).square().sum().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0
    for name, p in module.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_reset_parameters_resets_parts_and_fusion() -> None:
    parts = [ParameterizedInterdependence(D, init="identity"), ParameterizedInterdependence(D)]
    module = HybridInterdependence(parts, WeightedSumFusion(2))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    module.reset_parameters()
    torch.testing.assert_close(parts[0].A, torch.eye(D))
    torch.testing.assert_close(module.fusion.weight, torch.full((2,), 0.5))


def test_output_shape_and_out_features() -> None:
    parts = [ParameterizedInterdependence(4, 3), ParameterizedInterdependence(4, 5)]
    module = HybridInterdependence(parts, "concat")
    assert module.output_shape((2, 7, 4)) == torch.Size((2, 7, 8))
    assert module.out_features(4) == 8
    inst = HybridInterdependence(
        [ParameterizedInterdependence(4, 3, axis="instance")] * 1,
        "projected_concat",
        fusion_options={"in_dims": [3], "out_dim": 2},
    )
    assert inst.output_shape((4, 9)) == torch.Size((2, 9))
    assert inst.out_features(9) == 9


def test_name_built_fusion_gets_num_inputs_and_factory_kwargs() -> None:
    parts = [ParameterizedInterdependence(D, dtype=torch.float64) for _ in range(3)]
    module = HybridInterdependence(parts, "weighted_sum", dtype=torch.float64)
    assert isinstance(module.fusion, WeightedSumFusion)
    assert module.fusion.num_inputs == 3 and module.fusion.weight.dtype == torch.float64
    assert HybridInterdependence(parts, "mean").fusion.num_inputs == 3


def test_extra_repr_shows_every_argument() -> None:
    parts = [ParameterizedInterdependence(D), BilinearInterdependence(OTHER)]
    module = HybridInterdependence(parts, "mean", strategy="matrices")
    assert module.extra_repr() == (
        f"parts=[ParameterizedInterdependence({parts[0].extra_repr()}), "
        f"BilinearInterdependence({parts[1].extra_repr()})], "
        "fusion=MeanFusion(num_inputs=2), strategy='matrices'"
    )
    assert repr(module).startswith("HybridInterdependence(")


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize(("fname", "make"), FUSIONS, ids=FUSION_IDS)
def test_config_round_trip(fname: str, make: Callable, axis: str) -> None:
    parts = _square_parts(axis)
    module = HybridInterdependence(parts, make(len(parts), D))
    config = module.to_config()
    assert json.loads(json.dumps(config)) == config
    rebuilt = from_config(config)
    assert isinstance(rebuilt, HybridInterdependence)
    assert rebuilt.to_config() == config
    rebuilt.load_state_dict(module.state_dict())
    x = _x(axis, 2)
    torch.testing.assert_close(rebuilt(x), module(x))


def test_exported_from_package() -> None:
    assert interfuse.HybridInterdependence is HybridInterdependence
    assert "HybridInterdependence" in interfuse.__all__


# -- errors --------------------------------------------------------------------------------------


def test_constructor_errors() -> None:
    part = ParameterizedInterdependence(D)
    with pytest.raises(ValueError, match=r"parts must hold at least one interdependence module"):
        HybridInterdependence([], "mean")
    with pytest.raises(TypeError, match=r"parts must be a list of interdependence modules, got"):
        HybridInterdependence(part, "mean")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"parts\[1\] must be an interfuse Interdependence .*Linear"
    ):
        HybridInterdependence([part, nn.Linear(2, 2)], "mean")  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"parts\[1\] has axis='instance' but parts\[0\] has"):
        HybridInterdependence([part, ParameterizedInterdependence(D, axis="instance")], "mean")
    with pytest.raises(ValueError, match=r"fusion must be one of .*got 'avg'"):
        HybridInterdependence([part], "avg")
    with pytest.raises(TypeError, match=r"fusion must be a name, a Fusion class or a Fusion"):
        HybridInterdependence([part], 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fusion_options \['p'\] apply only when fusion is a name"):
        HybridInterdependence([part], MeanFusion(), fusion_options={"p": 1})
    with pytest.raises(TypeError, match=r"fusion_options must be a dict or None, got 3"):
        HybridInterdependence([part], "mean", fusion_options=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fusion='projected_concat' cannot be built .*in_dims"):
        HybridInterdependence([part], "projected_concat")
    with pytest.raises(ValueError, match=r"strategy='outputs' needs a linear fusion .*ProdFusion"):
        HybridInterdependence([part], "prod", strategy="outputs")
    with pytest.raises(ValueError, match=r"strategy='outputs' needs a linear fusion"):
        HybridInterdependence([part], ProjectedConcatFusion([D], 2), strategy="outputs")
    with pytest.raises(ValueError, match=r"strategy must be one of \['auto', 'matrices', 'outp"):
        HybridInterdependence([part], "mean", strategy="fast")


def test_forward_errors() -> None:
    module = HybridInterdependence(
        [ParameterizedInterdependence(D), ParameterizedInterdependence(D, 4)], "mean"
    )
    with pytest.raises(
        ValueError,
        match=r"MeanFusion cannot fuse the parts' matrices of widths"
        r" \[6, 4\]",
    ):
        module(torch.randn(3, D))
    ok = HybridInterdependence([ParameterizedInterdependence(D)] * 2, "mean")
    with pytest.raises(
        ValueError,
        match=r"parts\[0\] \(ParameterizedInterdependence\): x has 5 "
        r"features but in_dim=6",
    ):
        ok(torch.randn(3, 5))
    with pytest.raises(ValueError, match=r"mask must be a bool tensor of shape \(2,\), one flag"):
        ok(torch.randn(3, D), mask=torch.tensor([True]))
    with pytest.raises(ValueError, match=r"data has 4 features but x has 6"):
        ok(torch.randn(3, D), torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"x must have shape \(..., b, m\) with at least 2"):
        ok(torch.randn(D))
    attn = HybridInterdependence([BilinearInterdependence(3)], "sum")
    with pytest.raises(TypeError, match=r"x is required: this HybridInterdependence has data-dep"):
        attn.interdependence_matrix()


# -- properties --------------------------------------------------------------------------------


@st.composite
def _hybrids(draw: st.DrawFn) -> tuple[HybridInterdependence, torch.Tensor]:
    axis = draw(st.sampled_from(AXES))
    d = draw(st.integers(1, 6))
    other = draw(st.integers(1, 6))
    k = draw(st.integers(1, 3))
    parts: list[Any] = []
    for _ in range(k):
        kind = draw(st.sampled_from(["dense", "lowrank", "rma", "bilinear"]))
        if kind == "bilinear":
            parts.append(BilinearInterdependence(other, axis=axis, dtype=torch.float64))
        else:
            options = {} if kind == "dense" else {"rank": draw(st.integers(1, 3))}
            parts.append(
                ParameterizedInterdependence(
                    d, matrix=kind, axis=axis, matrix_options=options, dtype=torch.float64
                )
            )
    fname = draw(st.sampled_from(["mean", "sum", "weighted_sum", "prod", "max", "concat"]))
    strategy = draw(st.sampled_from(["auto", "matrices"]))
    if fname in ("mean", "sum", "weighted_sum", "concat"):
        strategy = draw(st.sampled_from(["auto", "matrices", "outputs"]))
    module = HybridInterdependence(parts, fname, strategy=strategy, dtype=torch.float64)
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return module, _x(axis, *lead, d=d, other=other).double()


@settings(max_examples=40, deadline=None)
@given(_hybrids(), st.integers(0, 2**16))
def test_property_forward_applies_the_fused_matrix(case: tuple, seed: int) -> None:
    module, x = case
    torch.manual_seed(seed)
    module.reset_parameters()
    y = module(x)
    assert y.shape == module.output_shape(x.shape)
    torch.testing.assert_close(y, _explicit(module, x))


def test_linearity_is_the_fusions_own_property() -> None:
    """A fusion class that declares itself linear is fused on the outputs with no edit to
    the hybrid; modality dropout and new data-dependent fusions fall back to the matrices."""

    class _Halve(Fusion):  # private: not registered for configs
        linear = True

        def forward(self, xs: Any, mask: Any = None) -> torch.Tensor:
            xs, mask = self.check_inputs(xs, mask)
            return interfuse.SumFusion()(xs, mask) / 2

        def out_features(self, in_dims: Any) -> int:
            return int(self.check_in_dims(in_dims)[0])

        def get_config(self) -> dict[str, Any]:
            return {}

    torch.manual_seed(2)
    parts = _square_parts("attribute")
    by_outputs = HybridInterdependence(parts, _Halve(), strategy="outputs")
    x = _x("attribute", 3)
    expected = HybridInterdependence(parts, _Halve(), strategy="matrices")(x)
    torch.testing.assert_close(by_outputs(x), expected, rtol=1e-4, atol=1e-5)
    dropping = interfuse.MeanFusion(num_inputs=3, input_dropout=0.2)
    assert not HybridInterdependence(parts, dropping).linear_fusion
    with pytest.raises(ValueError, match=r"strategy='outputs' needs a linear fusion .*input_drop"):
        HybridInterdependence(parts, dropping, strategy="outputs")
    for fusion in (interfuse.AttentionFusion([D] * 3), interfuse.VarFusion()):
        assert not HybridInterdependence(parts, fusion).linear_fusion
