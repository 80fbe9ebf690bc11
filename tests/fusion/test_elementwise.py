"""Element-wise fusions: values, leading dimensions, masks, weights, errors, properties."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch.overrides import TorchFunctionMode

import interfuse
from interfuse.config import from_config
from interfuse.functional import _common
from interfuse.fusion import (
    FUSIONS,
    Fusion,
    MaxFusion,
    MeanFusion,
    MedianFusion,
    MinFusion,
    NormFusion,
    ProdFusion,
    SumFusion,
    WeightedSumFusion,
    fusion_class,
    resolve_fusion,
)

FEW = settings(max_examples=30, deadline=None)

# The spec's fixtures (§11): X1, Y2, Y3.
X1 = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
Y2 = torch.tensor([[5.0, 0.0], [7.0, 1.0]])
Y3 = torch.tensor([[9.0, 2.0], [11.0, 3.0]])
XS = [X1, Y2, Y3]


def _stacked_reference(name: str, **kw: Any) -> Callable[[list[Tensor]], Tensor]:
    """The same fusion written the obvious way: stack, then reduce over dim 0."""

    def median_mean(s: Tensor) -> Tensor:
        v = s.sort(0).values
        k = s.shape[0]
        return (v[(k - 1) // 2] + v[k // 2]) / 2

    reduce: dict[str, Callable[[Tensor], Tensor]] = {
        "sum": lambda s: s.sum(0),
        "mean": lambda s: s.mean(0),
        "prod": lambda s: s.prod(0),
        "max": lambda s: s.amax(0),
        "min": lambda s: s.amin(0),
        "median": lambda s: s.median(0).values,
        "median_mean": median_mean,
        "norm": lambda s: torch.linalg.vector_norm(s, ord=kw.get("p", 2.0), dim=0),
    }
    return lambda xs: reduce[name](torch.stack(xs))


SYMMETRIC: list[tuple[Callable[[], Fusion], str, dict[str, Any]]] = [
    (SumFusion, "sum", {}),
    (MeanFusion, "mean", {}),
    (ProdFusion, "prod", {}),
    (MaxFusion, "max", {}),
    (MinFusion, "min", {}),
    (MedianFusion, "median", {}),
    (lambda: MedianFusion(mode="mean"), "median_mean", {}),
    (NormFusion, "norm", {"p": 2.0}),
    (lambda: NormFusion(p=1), "norm", {"p": 1.0}),
    (lambda: NormFusion(p=3.5), "norm", {"p": 3.5}),
    (lambda: NormFusion(p=math.inf), "norm", {"p": math.inf}),
]
SYM_IDS = [
    "sum",
    "mean",
    "prod",
    "max",
    "min",
    "median",
    "median-mean",
    "l2",
    "l1",
    "l3.5",
    "linf",
]
ALL_ELEMENTWISE: list[Callable[[], Fusion]] = [
    *(make for make, _, _ in SYMMETRIC),
    lambda: WeightedSumFusion(3, weights=[0.2, 0.5, 0.3]),
    lambda: WeightedSumFusion(3, normalize="softmax"),
]
ALL_IDS = [*SYM_IDS, "weighted", "weighted-softmax"]


# ---------------------------------------------------------------------------------------------
# Values: the spec's fixtures, hand-computed
# ---------------------------------------------------------------------------------------------
def test_weighted_sum_fixed_weights_spec_fixture() -> None:
    f = WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], learnable=False)
    torch.testing.assert_close(f(XS), torch.tensor([[5.4, 1.0], [7.4, 2.2]]))


def test_weighted_sum_learnable_weights_spec_fixture() -> None:
    f = WeightedSumFusion(3, weights=torch.tensor([0.3, 0.3, 0.4]))
    torch.testing.assert_close(f(XS), torch.tensor([[5.4, 1.4], [7.4, 2.7]]))


def test_weighted_sum_default_is_the_mean() -> None:
    torch.testing.assert_close(WeightedSumFusion(3)(XS), MeanFusion()(XS))
    torch.testing.assert_close(WeightedSumFusion(3, normalize="softmax")(XS), MeanFusion()(XS))


def test_weighted_sum_softmax_weights() -> None:
    logits = [0.0, math.log(2.0), math.log(5.0)]  # softmax = [1, 2, 5] / 8
    f = WeightedSumFusion(3, weights=logits, normalize="softmax")
    torch.testing.assert_close(f.fusion_weights(), torch.tensor([1.0, 2.0, 5.0]) / 8)
    torch.testing.assert_close(f(XS), (X1 + 2 * Y2 + 5 * Y3) / 8)


@pytest.mark.parametrize(
    ("fusion", "expected"),
    [
        (SumFusion(), [[15.0, 4.0], [21.0, 8.0]]),
        (MeanFusion(), [[5.0, 4 / 3], [7.0, 8 / 3]]),
        (ProdFusion(), [[45.0, 0.0], [231.0, 12.0]]),
        (MaxFusion(), [[9.0, 2.0], [11.0, 4.0]]),
        (MinFusion(), [[1.0, 0.0], [3.0, 1.0]]),
        (MedianFusion(), [[5.0, 2.0], [7.0, 3.0]]),
        (NormFusion(p=1), [[15.0, 4.0], [21.0, 8.0]]),
        (NormFusion(), [[10.3441, 2.8284], [13.3791, 5.0990]]),
        (NormFusion(p=math.inf), [[9.0, 2.0], [11.0, 4.0]]),
    ],
    ids=["sum", "mean", "prod", "max", "min", "median", "l1", "l2", "linf"],
)
def test_metric_fusions_spec_fixture(fusion: Fusion, expected: list[list[float]]) -> None:
    torch.testing.assert_close(fusion(XS), torch.tensor(expected), atol=1e-4, rtol=1e-4)


def test_median_modes_with_an_even_count() -> None:
    two = [torch.tensor([1.0]), torch.tensor([4.0])]
    four = [torch.tensor([v]) for v in (1.0, 4.0, 2.0, 3.0)]
    assert MedianFusion()(two).tolist() == [1.0]
    assert MedianFusion(mode="mean")(two).tolist() == [2.5]
    assert MedianFusion()(four).tolist() == [2.0]
    assert MedianFusion(mode="mean")(four).tolist() == [2.5]
    # odd count: both modes give the middle value
    assert MedianFusion(mode="mean")(four[:3]).tolist() == [2.0]


def test_median_modes_with_a_mask() -> None:
    four = [torch.tensor([v]) for v in (1.0, 4.0, 2.0, 3.0)]
    mask = torch.tensor([True, True, False, True])  # present: 1, 4, 3
    assert MedianFusion()(four, mask=mask).tolist() == [3.0]
    mask = torch.tensor([True, False, True, True])  # present: 1, 2, 3 -> then drop 3
    assert MedianFusion(mode="mean")(four, mask=mask).tolist() == [2.0]
    mask = torch.tensor([True, True, False, False])  # present: 1, 4
    assert MedianFusion()(four, mask=mask).tolist() == [1.0]
    assert MedianFusion(mode="mean")(four, mask=mask).tolist() == [2.5]


def test_l1_norm_of_negative_values() -> None:
    assert NormFusion(p=1)([torch.tensor([-1.0]), torch.tensor([-2.0])]).tolist() == [3.0]


def test_norm_gradient_is_zero_at_zero() -> None:
    xs = [torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)]
    NormFusion()(xs).sum().backward()
    for x in xs:
        assert x.grad is not None
        assert torch.equal(x.grad, torch.zeros(3))


# ---------------------------------------------------------------------------------------------
# Any leading dimensions: equal to the stack-based reference
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lead", [(), (5,), (2, 3), (2, 1, 3)], ids=str)
@pytest.mark.parametrize(("make", "name", "kw"), SYMMETRIC, ids=SYM_IDS)
def test_leading_dimensions_match_stacked_reference(
    make: Callable[[], Fusion], name: str, kw: dict[str, Any], lead: tuple[int, ...]
) -> None:
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(*lead, 6, generator=gen, dtype=torch.float64) for _ in range(4)]
    out = make()(xs)
    assert out.shape == (*lead, 6)
    torch.testing.assert_close(out, _stacked_reference(name, **kw)(xs))


@pytest.mark.parametrize("lead", [(), (4,), (2, 3)], ids=str)
def test_weighted_sum_leading_dimensions(lead: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(*lead, 5, generator=gen) for _ in range(3)]
    f = WeightedSumFusion(3, weights=[0.5, -1.0, 2.0])
    expected = torch.tensor([0.5, -1.0, 2.0]).view(3, *[1] * (len(lead) + 1)) * torch.stack(xs)
    torch.testing.assert_close(f(xs), expected.sum(0))


def test_non_contiguous_inputs() -> None:
    base = [torch.randn(5, 4) for _ in range(3)]
    xs = [x.t() for x in base]  # (4, 5), not contiguous
    torch.testing.assert_close(SumFusion()(xs), torch.stack(xs).sum(0))
    torch.testing.assert_close(MaxFusion()(xs), torch.stack(xs).amax(0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("make", ALL_ELEMENTWISE, ids=ALL_IDS)
def test_output_dtype_follows_inputs(make: Callable[[], Fusion], dtype: torch.dtype) -> None:
    xs = [torch.rand(2, 3, dtype=dtype) + 0.5 for _ in range(3)]
    f = make().to(dtype)
    out = f(xs)
    assert out.dtype == dtype
    assert torch.isfinite(out).all()


def test_single_input() -> None:
    x = torch.randn(3, 4)
    for f in (SumFusion(), MeanFusion(), MaxFusion(), MedianFusion(), ProdFusion()):
        torch.testing.assert_close(f([x]), x)
    torch.testing.assert_close(NormFusion()([x]), x.abs())


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------
MASK_K = torch.tensor([True, False, True, True])


@pytest.mark.parametrize("make", [m for m, _, _ in SYMMETRIC], ids=SYM_IDS)
def test_mask_k_equals_present_inputs_alone(make: Callable[[], Fusion]) -> None:
    xs = [torch.randn(2, 3, 5) for _ in range(4)]
    present = [x for x, keep in zip(xs, MASK_K) if keep]
    torch.testing.assert_close(make()(xs, mask=MASK_K), make()(present))


@pytest.mark.parametrize("make", ALL_ELEMENTWISE, ids=ALL_IDS)
def test_nan_placeholders_in_absent_inputs_do_not_leak(make: Callable[[], Fusion]) -> None:
    xs = [torch.randn(4, 5) for _ in range(3)]
    mask_k = torch.tensor([True, False, True])
    rows = torch.tensor([[True, False, True], [False, True, True], [True, True, False]] * 2)[:4]
    f = make()
    for mask in (mask_k, rows):
        nan_xs = [torch.where(_col(mask, i), x, math.nan) for i, x in enumerate(xs)]
        out = f(nan_xs, mask=mask)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, f(xs, mask=mask))


def _col(mask: Tensor, i: int) -> Tensor:
    return mask[i] if mask.ndim == 1 else mask[:, i, None]


@pytest.mark.parametrize("make", ALL_ELEMENTWISE, ids=ALL_IDS)
def test_row_mask_equals_row_by_row_k_mask(make: Callable[[], Fusion]) -> None:
    xs = [torch.randn(4, 5) for _ in range(3)]
    rows = torch.tensor(
        [[True, False, True], [False, True, True], [True, True, True], [False] * 2 + [True]]
    )
    f = make()
    out = f(xs, mask=rows)
    for r in range(4):
        torch.testing.assert_close(out[r], f([x[r] for x in xs], mask=rows[r]))


@pytest.mark.parametrize("make", ALL_ELEMENTWISE, ids=ALL_IDS)
def test_row_mask_broadcasts_over_leading_dimensions(make: Callable[[], Fusion]) -> None:
    xs = [torch.randn(2, 3, 5) for _ in range(3)]
    mask = torch.tensor([[True, False, True], [False, True, True], [True, True, False]])  # (3, k)
    f = make()
    out = f(xs, mask=mask)
    full = f(xs, mask=mask.expand(2, 3, 3))
    torch.testing.assert_close(out, full)
    torch.testing.assert_close(f(xs, mask=mask[None]), full)  # (1, 3, k)


@pytest.mark.parametrize("make", ALL_ELEMENTWISE, ids=ALL_IDS)
def test_all_present_mask_is_no_mask(make: Callable[[], Fusion]) -> None:
    xs = [torch.randn(3, 5) for _ in range(3)]
    f = make()
    torch.testing.assert_close(f(xs, mask=torch.ones(3, dtype=torch.bool)), f(xs))
    torch.testing.assert_close(f(xs, mask=torch.ones(3, 3, dtype=torch.bool)), f(xs))


def test_weighted_sum_mask_renormalizes_over_present_inputs() -> None:
    f = WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], learnable=False)
    mask = torch.tensor([True, False, True])
    torch.testing.assert_close(f(XS, mask=mask), (0.2 * X1 + 0.3 * Y3) / 0.5)
    # unnormalized weights keep their total: Σw / Σ_present w
    g = WeightedSumFusion(3, weights=[1.0, 2.0, 3.0], learnable=False)
    torch.testing.assert_close(g(XS, mask=mask), (1 * X1 + 3 * Y3) * 6 / 4)


def test_weighted_sum_softmax_mask_is_softmax_over_present() -> None:
    logits = torch.tensor([0.3, -1.2, 2.0])
    f = WeightedSumFusion(3, weights=logits, normalize="softmax")
    mask = torch.tensor([False, True, True])
    w = logits[1:].softmax(0)
    torch.testing.assert_close(f(XS, mask=mask), w[0] * Y2 + w[1] * Y3)
    rows = torch.tensor([[True, True, True], [False, True, True]])
    out = f(XS, mask=rows)
    torch.testing.assert_close(out[0], f(XS)[0])
    torch.testing.assert_close(out[1], (w[0] * Y2 + w[1] * Y3)[1])


def test_mask_gradient_reaches_present_inputs_only() -> None:
    xs = [torch.randn(3, 4, requires_grad=True) for _ in range(3)]
    mask = torch.tensor([True, False, True])
    for f in (MeanFusion(), MaxFusion(), WeightedSumFusion(3)):
        for x in xs:
            x.grad = None
        f(xs, mask=mask).sum().backward()
        assert xs[1].grad is None or torch.equal(xs[1].grad, torch.zeros(3, 4))
        assert xs[0].grad is not None and xs[0].grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# WeightedSumFusion: parameters, buffers, factory kwargs, reset
# ---------------------------------------------------------------------------------------------
def test_learnable_weights_are_a_parameter_reset_to_uniform() -> None:
    f = WeightedSumFusion(4)
    assert isinstance(f.weight, torch.nn.Parameter)
    assert [n for n, _ in f.named_parameters()] == ["weight"]
    assert f.num_parameters == 4
    torch.testing.assert_close(f.weight.detach(), torch.full((4,), 0.25))
    with torch.no_grad():
        f.weight.mul_(3)
    f.reset_parameters()
    torch.testing.assert_close(f.weight.detach(), torch.full((4,), 0.25))


def test_reset_restores_given_initial_weights() -> None:
    f = WeightedSumFusion(3, weights=[1.0, 2.0, 3.0])
    with torch.no_grad():
        f.weight.zero_()
    f.reset_parameters()
    assert f.weight.tolist() == [1.0, 2.0, 3.0]


def test_fixed_weights_are_a_buffer_in_the_state_dict() -> None:
    f = WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], learnable=False)
    assert list(f.parameters()) == []
    assert f.num_parameters == 0
    assert "weight" in f.state_dict()
    assert "weight" in dict(f.named_buffers())
    g = f.to(torch.float64)
    assert g.weight.dtype == torch.float64


def test_weights_receive_gradients() -> None:
    f = WeightedSumFusion(3, normalize="softmax")
    f(XS).sum().backward()
    assert f.weight.grad is not None
    assert f.weight.grad.abs().sum() > 0


def test_factory_kwargs() -> None:
    f = WeightedSumFusion(3, dtype=torch.float64, device="cpu")
    assert f.weight.dtype == torch.float64
    assert f.weight.device.type == "cpu"
    meta = WeightedSumFusion(3, device="meta")
    assert meta.weight.device.type == "meta"


# ---------------------------------------------------------------------------------------------
# out_features, num_parameters, repr, config
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", ALL_ELEMENTWISE, ids=ALL_IDS)
def test_out_features_before_any_data(make: Callable[[], Fusion]) -> None:
    assert make().out_features([7, 7, 7]) == 7


@pytest.mark.parametrize(
    "cls", [c for c in FUSIONS.values() if c.same_shape], ids=lambda c: c.__name__
)
def test_repr_shows_every_constructor_argument(cls: type[Fusion]) -> None:
    f = cls(3) if cls is WeightedSumFusion else cls()
    text = repr(f)
    # names and input_dropout (the base's options) appear when set (tests/fusion/test_base.py)
    params = set(inspect.signature(cls).parameters) - {"device", "dtype", "names", "input_dropout"}
    assert text.startswith(cls.__name__ + "(")
    for name in params:
        assert f"{name}=" in text, f"{name} missing from {text}"


def test_repr_reproduces_the_call() -> None:
    f = WeightedSumFusion(2, weights=[1.0, 2.0], learnable=False, normalize="softmax")
    assert repr(f) == (
        "WeightedSumFusion(num_inputs=2, weights=[1.0, 2.0], learnable=False, normalize='softmax'"
        ", scale=False, per_feature=False, num_features=None, init='uniform')"
    )
    assert repr(NormFusion(p=1, num_inputs=2)) == "NormFusion(p=1.0, num_inputs=2)"
    assert repr(MedianFusion("mean")) == "MedianFusion(mode='mean', num_inputs=None)"


@pytest.mark.parametrize(
    "module",
    [
        WeightedSumFusion(3, weights=[0.2, 0.5, 0.3], learnable=False, normalize="softmax"),
        WeightedSumFusion(2),
        SumFusion(num_inputs=3),
        MedianFusion(mode="mean"),
        NormFusion(p=math.inf),
    ],
    ids=repr,
)
def test_config_round_trip(module: Fusion) -> None:
    rebuilt = from_config(module.to_config(), dtype=torch.float64)
    assert type(rebuilt) is type(module)
    assert repr(rebuilt) == repr(module)
    for t in rebuilt.buffers():
        assert t.dtype == torch.float64


# ---------------------------------------------------------------------------------------------
# No stacked copy: element-wise fusions never call torch.stack (the median alone must)
# ---------------------------------------------------------------------------------------------
class _Record(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: set[str] = set()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.calls.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    "make",
    [m for m in ALL_ELEMENTWISE if "Median" not in repr(m())],
    ids=[i for i in ALL_IDS if not i.startswith("median")],
)
def test_elementwise_fusions_never_stack(
    make: Callable[[], Fusion], monkeypatch: pytest.MonkeyPatch
) -> None:
    f = make()
    # Above the small-size threshold (here: every size); below it the plain stacked formulas
    # run, whose copy is at most SMALL_BYTES.
    monkeypatch.setattr(_common, "SMALL_BYTES", 0)
    xs = [torch.randn(4, 5, requires_grad=True) for _ in range(3)]
    masks = (None, torch.tensor([True, False, True]), torch.rand(4, 3) < 0.5)
    # Under a TorchFunctionMode the kernels take their reference formulas ...
    for mask in masks[:2]:
        with _Record() as rec:
            f(xs, mask=mask)
        assert not rec.calls & {"stack", "cat", "vstack", "hstack"}, rec.calls

    # ... so the blocked kernels are checked by making the copying functions fail.
    def boom(*args: Any, **kwargs: Any) -> Tensor:
        raise AssertionError("a (k, ...) copy was built")

    for name in ("stack", "cat", "vstack", "hstack"):
        monkeypatch.setattr(torch, name, boom)
    rows = masks[2]
    rows[:, 0] = True
    for mask in (*masks[:2], rows):
        f(xs, mask=mask).sum().backward()
        with torch.no_grad():
            f(xs, mask=mask)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------
@st.composite
def _inputs(draw: st.DrawFn, k_min: int = 1) -> list[Tensor]:
    k = draw(st.integers(k_min, 5))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=3)))
    n = draw(st.integers(1, 4))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    return [torch.randn(*lead, n, generator=gen, dtype=torch.float64) for _ in range(k)]


@FEW
@given(st.sampled_from(range(len(SYMMETRIC))), _inputs(), st.data())
def test_symmetric_fusions_are_permutation_invariant(
    which: int, xs: list[Tensor], data: st.DataObject
) -> None:
    f = SYMMETRIC[which][0]()
    order = data.draw(st.permutations(range(len(xs))))
    torch.testing.assert_close(f([xs[i] for i in order]), f(xs))
    present = data.draw(st.lists(st.booleans(), min_size=len(xs), max_size=len(xs)))
    present[0] = True
    mask = torch.tensor(present)
    torch.testing.assert_close(f([xs[i] for i in order], mask=mask[order]), f(xs, mask=mask))


@FEW
@given(
    _inputs(),
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.sampled_from(["none", "softmax"]),
    st.integers(0, 2**16),
)
def test_weighted_sum_is_linear(
    xs: list[Tensor], a: float, b: float, normalize: str, seed: int
) -> None:
    k = len(xs)
    gen = torch.Generator().manual_seed(seed)
    weights = torch.rand(k, generator=gen, dtype=torch.float64) + 0.1
    f = WeightedSumFusion(k, weights=weights, normalize=normalize, dtype=torch.float64)
    ys = [torch.randn(x.shape, generator=gen, dtype=torch.float64) for x in xs]
    mixed = [a * x + b * y for x, y in zip(xs, ys)]
    torch.testing.assert_close(f(mixed), a * f(xs) + b * f(ys))
    mask = torch.rand(k, generator=gen) < 0.5
    mask[-1] = True
    torch.testing.assert_close(f(mixed, mask=mask), a * f(xs, mask=mask) + b * f(ys, mask=mask))
    w = f.fusion_weights().detach()
    expected = sum(w[i] * xs[i] for i in range(k))
    torch.testing.assert_close(f(xs), expected)


# ---------------------------------------------------------------------------------------------
# The resolver
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("mean", MeanFusion),
        ("average", MeanFusion),
        ("MeanFusion", MeanFusion),
        ("weighted-sum", WeightedSumFusion),
        ("WeightedSumFusion", WeightedSumFusion),
        ("summation_fusion", SumFusion),
        ("concatenation", interfuse.ConcatFusion),
        ("projected", interfuse.ProjectedConcatFusion),
        (NormFusion, NormFusion),
    ],
)
def test_fusion_class_names_and_aliases(name: Any, cls: type[Fusion]) -> None:
    assert fusion_class(name) is cls


def test_resolve_fusion_builds_and_passes_instances_through() -> None:
    f = resolve_fusion("weighted_sum", num_inputs=2, normalize="softmax")
    assert isinstance(f, WeightedSumFusion)
    assert f.normalize == "softmax"
    assert resolve_fusion(f) is f
    assert isinstance(resolve_fusion(MaxFusion), MaxFusion)
    assert interfuse.resolve_fusion is resolve_fusion


def test_resolver_errors_list_the_choices() -> None:
    with pytest.raises(
        ValueError, match=r"fusion must be one of \['attention', 'concat', .*'weighted_sum'\]"
    ):
        fusion_class("avg_pool")
    with pytest.raises(TypeError, match=r"fusion must be a name, a Fusion class or a Fusion"):
        fusion_class(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"MeanFusion does not take \['p'\]; it takes"):
        resolve_fusion("mean", p=2)
    with pytest.raises(TypeError, match=r"WeightedSumFusion needs \['num_inputs'\]"):
        resolve_fusion("weighted_sum")
    with pytest.raises(TypeError, match=r"fusion options \['mode'\] apply only when"):
        resolve_fusion(MedianFusion(), mode="mean")


# ---------------------------------------------------------------------------------------------
# Errors: every validation path names the argument, the value and what was expected
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("xs", "kwargs", "error", "match"),
    [
        (
            torch.ones(3, 2, 2),
            {},
            TypeError,
            r"xs must be a list or tuple of tensors, got a single",
        ),
        ("abc", {}, TypeError, r"xs must be a list or tuple of tensors, got str"),
        ([], {}, ValueError, r"xs must hold at least one tensor"),
        ([X1, 1.0], {}, TypeError, r"xs\[1\] must be a torch.Tensor, got float"),
        ([X1, X1.long()], {}, TypeError, r"xs\[1\] must have a floating dtype, got torch.int64"),
        ([X1, torch.ones(2, 3)], {}, ValueError, r"xs\[1\] has shape \(2, 3\) but xs\[0\] has"),
        ([X1, torch.tensor(1.0)], {}, ValueError, r"xs\[1\] must have at least one dimension"),
        ([X1, X1.to("meta")], {}, ValueError, r"xs\[1\] is on meta but xs\[0\] is on cpu"),
        ([X1.cfloat()] * 2, {}, TypeError, r"xs must hold real floating tensors, got"),
        ([X1] * 2, {"mask": torch.ones(2)}, TypeError, r"mask must have dtype torch.bool"),
        ([X1] * 2, {"mask": [True, True]}, TypeError, r"mask must be a bool torch.Tensor"),
        (
            [X1] * 2,
            {"mask": torch.ones(3, dtype=torch.bool)},
            ValueError,
            r"mask must have shape \(k,\) or \(\.\.\., k\) with k=2 inputs, got \(3,\)",
        ),
        (
            [X1] * 2,
            {"mask": torch.zeros(2, dtype=torch.bool)},
            ValueError,
            r"mask leaves no input present",
        ),
        (
            [X1] * 2,
            {"mask": torch.ones(3, 2, dtype=torch.bool)},
            ValueError,
            r"mask has leading shape \(3,\), which does not broadcast",
        ),
        (
            [X1] * 2,
            {"mask": torch.ones(5, 2, 2, dtype=torch.bool)},
            ValueError,
            r"mask has leading shape \(5, 2\), which would enlarge the inputs' leading shape",
        ),
        (
            [X1] * 2,
            {"mask": torch.ones(2, dtype=torch.bool, device="meta")},
            ValueError,
            r"mask is on meta but the inputs are on cpu",
        ),
    ],
    ids=[
        "stacked",
        "str",
        "empty",
        "non-tensor",
        "integer",
        "shapes",
        "0-d",
        "devices",
        "complex",
        "mask-float",
        "mask-list",
        "mask-k",
        "mask-none-present",
        "mask-leading",
        "mask-enlarges",
        "mask-device",
    ],
)
@pytest.mark.parametrize(
    "make",
    [SumFusion, MedianFusion, lambda: WeightedSumFusion(2)],
    ids=["sum", "median", "weighted"],
)
def test_bad_inputs(
    make: Callable[[], Fusion], xs: Any, kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        make()(xs, **kwargs)


def test_wrong_number_of_inputs() -> None:
    with pytest.raises(
        ValueError, match=r"xs has 2 tensors but SumFusion was built for num_inputs=3"
    ):
        SumFusion(num_inputs=3)([X1, X1])
    with pytest.raises(
        ValueError, match=r"xs has 2 tensors but WeightedSumFusion was built for num_inputs=3"
    ):
        WeightedSumFusion(3)([X1, X1])


@pytest.mark.parametrize("cls", [SumFusion, MeanFusion, MaxFusion, MinFusion, ProdFusion])
def test_num_inputs_positional(cls: type[Fusion]) -> None:
    """As ``WeightedSumFusion(3)``: the first argument of a fusion that has no other is ``k``."""
    f = cls(3)
    assert f.get_config() == cls(num_inputs=3).get_config() == {"num_inputs": 3}
    with pytest.raises(ValueError, match=rf"xs has 2 tensors but {cls.__name__} was built"):
        f([X1, X1])


def test_module_on_another_device() -> None:
    with pytest.raises(ValueError, match=r"xs are on cpu but WeightedSumFusion is on meta"):
        WeightedSumFusion(2, device="meta")([X1, X1])


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: WeightedSumFusion(0), ValueError, r"num_inputs must be a positive int, got 0"),
        (lambda: WeightedSumFusion("3"), TypeError, r"num_inputs must be a positive int, got '3'"),
        (lambda: SumFusion(num_inputs=True), TypeError, r"num_inputs must be a positive int"),
        (
            lambda: WeightedSumFusion(3, weights=[1.0, 2.0]),
            ValueError,
            r"weights must have shape \(3,\) for num_inputs=3, got shape \(2,\)",
        ),
        (
            lambda: WeightedSumFusion(2, weights=torch.ones(1, 2)),
            ValueError,
            r"weights must have shape \(2,\) for num_inputs=2, got shape \(1, 2\)",
        ),
        (
            lambda: WeightedSumFusion(2, weights=[1.0, math.nan]),
            ValueError,
            r"weights must be finite, got \[1.0, nan\]",
        ),
        (lambda: WeightedSumFusion(2, weights="ab"), TypeError, r"weights must be a sequence"),
        (
            lambda: WeightedSumFusion(2, weights=["a", "b"]),
            TypeError,
            r"weights must hold 2 numbers",
        ),
        (lambda: WeightedSumFusion(2, learnable=1), TypeError, r"learnable must be a bool, got 1"),
        (
            lambda: WeightedSumFusion(2, normalize="sum"),
            ValueError,
            r"normalize must be one of \['none', 'softmax'\], got 'sum'",
        ),
        (
            lambda: MedianFusion(mode="upper"),
            ValueError,
            r"mode must be one of \['lower', 'mean'\], got 'upper'",
        ),
        (lambda: NormFusion(p=0.5), ValueError, r"p must be a number >= 1 or math.inf, got 0.5"),
        (
            lambda: NormFusion(p=math.nan),
            ValueError,
            r"p must be a number >= 1 or math.inf, got nan",
        ),
        (lambda: NormFusion(p="2"), TypeError, r"p must be a number >= 1 or math.inf, got '2'"),
        (lambda: NormFusion(p=True), TypeError, r"p must be a number >= 1 or math.inf, got True"),
    ],
    ids=[
        "num-inputs-zero",
        "num-inputs-str",
        "num-inputs-bool",
        "weights-length",
        "weights-2d",
        "weights-nan",
        "weights-str",
        "weights-non-numeric",
        "learnable",
        "normalize",
        "median-mode",
        "p-small",
        "p-nan",
        "p-str",
        "p-bool",
    ],
)
def test_bad_constructor_arguments(build: Callable[[], object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build()


def test_bad_out_features_arguments() -> None:
    with pytest.raises(
        ValueError, match=r"in_dims must all be equal for MeanFusion .*got \[2, 3\]"
    ):
        MeanFusion().out_features([2, 3])
    with pytest.raises(ValueError, match=r"in_dims has 2 widths but WeightedSumFusion was built"):
        WeightedSumFusion(3).out_features([2, 2])
    with pytest.raises(TypeError, match=r"in_dims must be a list or tuple of positive ints"):
        SumFusion().out_features(4)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in_dims\[1\] must be a positive int, got 0"):
        SumFusion().out_features([2, 0])


def test_fusion_is_abstract() -> None:
    with pytest.raises(TypeError, match=r"abstract"):
        Fusion()  # type: ignore[abstract]
