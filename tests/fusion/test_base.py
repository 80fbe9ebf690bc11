"""The Fusion base: named inputs, masks by name, modality dropout (input_dropout), linearity."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import interfuse
from interfuse.config import from_config
from interfuse.fusion import (
    FUSIONS,
    ConcatFusion,
    Fusion,
    MaxFusion,
    MeanFusion,
    ProjectedConcatFusion,
    SumFusion,
    WeightedSumFusion,
)

FEW = settings(max_examples=25, deadline=None)


def _named(n: int = 4) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"text": torch.randn(3, n), "audio": torch.randn(3, n), "image": torch.randn(3, n)}


# ---------------------------------------------------------------------------------------------
# named inputs
# ---------------------------------------------------------------------------------------------
def test_mapping_is_ordered_by_sorted_keys_without_names() -> None:
    xs = _named()
    order = [xs["audio"], xs["image"], xs["text"]]
    f = WeightedSumFusion(3, weights=[1.0, 10.0, 100.0], learnable=False)
    torch.testing.assert_close(f(xs), f(order))
    torch.testing.assert_close(ConcatFusion()(xs), torch.cat(order, -1))


def test_mapping_is_ordered_by_names() -> None:
    xs = _named()
    f = ConcatFusion(names=["text", "image", "audio"])
    assert f.num_inputs == 3
    torch.testing.assert_close(f(xs), torch.cat([xs["text"], xs["image"], xs["audio"]], -1))
    # a list is taken in the names' order
    torch.testing.assert_close(f([xs["text"], xs["image"], xs["audio"]]), f(xs))


def test_names_with_different_widths() -> None:
    xs = {"a": torch.randn(2, 3), "b": torch.randn(2, 5)}
    f = ProjectedConcatFusion([5, 3], 4, names=["b", "a"])
    w = f.matrix.weight
    ref = xs["b"] @ w[:, :5].T + xs["a"] @ w[:, 5:].T + f.bias
    torch.testing.assert_close(f(xs), ref)


def test_mask_by_name() -> None:
    xs = _named()
    xs["audio"] = torch.full((3, 4), float("nan"))
    f = MeanFusion(names=["text", "audio", "image"])
    out = f(xs, mask={"audio": False})
    torch.testing.assert_close(out, (xs["text"] + xs["image"]) / 2)
    # per-row flags by name; names left out are present
    rows = torch.tensor([True, False, True])
    out = f(xs, mask={"audio": False, "image": rows})
    expected = torch.where(rows[:, None], (xs["text"] + xs["image"]) / 2, xs["text"])
    torch.testing.assert_close(out, expected)
    # sorted keys without names
    torch.testing.assert_close(
        MeanFusion()(xs, mask={"audio": False}), (xs["text"] + xs["image"]) / 2
    )


def test_names_validation() -> None:
    with pytest.raises(ValueError, match=r"names has 2 entries \['a', 'b'\] but num_inputs=3"):
        MeanFusion(3, names=["a", "b"])
    with pytest.raises(ValueError, match=r"names must be distinct.*\['a'\] repeated"):
        MeanFusion(names=["a", "a"])
    with pytest.raises(TypeError, match=r"names must be a list of str"):
        MeanFusion(names="ab")
    with pytest.raises(TypeError, match=r"names\[1\] must be a non-empty str, got 3"):
        MeanFusion(names=["a", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"names must name at least one input"):
        MeanFusion(names=[])
    with pytest.raises(ValueError, match=r"names has 3 entries \['a', 'b', 'c'\] but num_inputs=2"):
        ConcatFusion([2, 2], names=["a", "b", "c"])


def test_named_input_errors() -> None:
    xs = _named()
    f = MeanFusion(names=["text", "audio", "video"])
    with pytest.raises(ValueError, match=r"missing \['video'\], unexpected \['image'\]"):
        f(xs)
    with pytest.raises(TypeError, match=r"xs keys must be input names \(str\), got 0"):
        MeanFusion()({0: torch.ones(2)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"mask names \['video'\] are not inputs"):
        MeanFusion()(xs, mask={"video": False})
    with pytest.raises(TypeError, match=r"mask may be a mapping of names only for named inputs"):
        MeanFusion()(list(xs.values()), mask={"text": False})
    with pytest.raises(TypeError, match=r"mask\['text'\] must be a bool or a bool tensor"):
        MeanFusion()(xs, mask={"text": 0})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match=r"mask flags have shapes .* that do not broadcast"):
        MeanFusion()(
            xs,
            mask={
                "text": torch.ones(3, dtype=torch.bool),
                "audio": torch.ones(2, dtype=torch.bool),
            },
        )
    with pytest.raises(ValueError, match=r"mask leaves no input present"):
        MeanFusion()(xs, mask={"text": False, "audio": False, "image": False})


def test_config_and_repr_keep_names_and_dropout() -> None:
    f = WeightedSumFusion(2, names=["a", "b"], input_dropout=0.5)
    config = f.to_config()
    assert config["params"]["names"] == ["a", "b"]
    assert config["params"]["input_dropout"] == 0.5
    rebuilt = from_config(config)
    assert isinstance(rebuilt, WeightedSumFusion)
    assert rebuilt.names == ("a", "b") and rebuilt.input_dropout == 0.5
    assert repr(rebuilt) == repr(f)
    assert repr(f).endswith("names=['a', 'b'], input_dropout=0.5)")
    p = ProjectedConcatFusion([2, 3], 4, names=["a", "b"])
    assert "bias=True, names=['a', 'b']\n" in repr(p)
    # defaults stay out of configs
    assert "names" not in MeanFusion().to_config()["params"]


@pytest.mark.parametrize("cls", list(FUSIONS.values()), ids=lambda c: c.__name__)
def test_every_fusion_takes_names_and_input_dropout(cls: type[Fusion]) -> None:
    import inspect

    params = inspect.signature(cls).parameters
    assert params["names"].default is None
    assert params["input_dropout"].default == 0.0


# ---------------------------------------------------------------------------------------------
# input dropout
# ---------------------------------------------------------------------------------------------
class _Recorder(MeanFusion):
    """Records the mask the fusion applies."""

    def check_inputs(self, xs, mask=None):  # type: ignore[no-untyped-def]
        tensors, applied = super().check_inputs(xs, mask)
        self.seen = applied
        return tensors, applied


def test_input_dropout_validation() -> None:
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(
            ValueError, match=rf"input_dropout must be a probability in \[0, 1\), got {bad}"
        ):
            MeanFusion(input_dropout=bad)
    with pytest.raises(TypeError, match=r"input_dropout must be a probability"):
        MeanFusion(input_dropout=True)


def test_eval_mode_drops_nothing() -> None:
    f = MeanFusion(input_dropout=0.9).eval()
    xs = [torch.randn(64, 5) for _ in range(3)]
    torch.testing.assert_close(f(xs), torch.stack(xs).mean(0))


def test_training_drops_with_the_given_probability() -> None:
    torch.manual_seed(0)
    f = _Recorder(input_dropout=0.3).train()
    xs = [torch.randn(20000, 1) for _ in range(4)]
    f(xs)
    kept = f.seen
    assert kept.shape == (20000, 4)
    assert bool(kept.any(-1).all())
    # P(dropped) = p minus the rescues: a row with all four drawn (p⁴) keeps one of them
    expected = 0.3 - 0.3**4 / 4
    assert abs((1 - kept.float().mean()).item() - expected) < 0.01


def test_dropout_values_are_the_masked_fusion() -> None:
    xs = [torch.randn(50, 6) for _ in range(3)]
    f = _Recorder(input_dropout=0.5).train()
    torch.manual_seed(3)
    out = f(xs)
    ref = MeanFusion()(xs, mask=f.seen)
    torch.testing.assert_close(out, ref)


def test_dropout_is_seeded_by_torch() -> None:
    f = SumFusion(input_dropout=0.5).train()
    xs = [torch.randn(10, 3) for _ in range(3)]
    torch.manual_seed(7)
    a = f(xs)
    torch.manual_seed(7)
    b = f(xs)
    torch.testing.assert_close(a, b)


@FEW
@given(
    k=st.integers(1, 5),
    rows=st.integers(1, 30),
    p=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**16),
    per_row=st.booleans(),
)
def test_dropout_never_empties_a_row_and_keeps_absent_absent(
    k: int, rows: int, p: float, seed: int, per_row: bool
) -> None:
    torch.manual_seed(seed)
    xs = [torch.randn(rows, 2) for _ in range(k)]
    if per_row:
        mask = torch.rand(rows, k) < 0.6
        mask[torch.arange(rows), torch.randint(k, (rows,))] = True
    else:
        mask = torch.rand(k) < 0.6
        mask[torch.randint(k, ())] = True
    f = _Recorder(input_dropout=p).train()
    f(xs, mask)
    kept = f.seen
    assert bool(kept.any(-1).all())
    assert not bool((kept & ~mask).any())  # never revives an absent input


def test_dropout_absent_nan_does_not_leak() -> None:
    xs = [torch.randn(8, 3), torch.full((8, 3), float("nan")), torch.randn(8, 3)]
    f = MaxFusion(input_dropout=0.7).train()
    for seed in range(5):
        torch.manual_seed(seed)
        assert torch.isfinite(f(xs, mask=torch.tensor([True, False, True]))).all()


def test_dropout_under_compile_fullgraph() -> None:
    f = MeanFusion(input_dropout=0.5).train()
    xs = [torch.randn(16, 4) for _ in range(3)]
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    out = compiled(xs)
    assert out.shape == (16, 4) and torch.isfinite(out).all()


def test_named_inputs_under_compile_fullgraph() -> None:
    f = MeanFusion(names=["a", "b"])
    xs = {"a": torch.randn(4, 3), "b": torch.randn(4, 3)}
    compiled = torch.compile(f, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(xs, mask={"b": False}), xs["a"])


# ---------------------------------------------------------------------------------------------
# linearity (what HybridInterdependence reads)
# ---------------------------------------------------------------------------------------------
LINEAR: dict[str, Callable[[], Fusion]] = {
    "weighted_sum": lambda: WeightedSumFusion(2),
    "scalar_mix": lambda: WeightedSumFusion(2, normalize="softmax", scale=True),
    "per_feature": lambda: WeightedSumFusion(2, per_feature=True, num_features=3),
    "sum": SumFusion,
    "mean": MeanFusion,
    "concat": ConcatFusion,
    "projected_no_bias": lambda: ProjectedConcatFusion([3, 3], 2, bias=False),
}


@pytest.mark.parametrize("make", LINEAR.values(), ids=LINEAR.keys())
def test_linear_fusions_commute_with_a_left_product(make: Callable[[], Fusion]) -> None:
    f = make()
    assert f.is_linear
    a = [torch.randn(3, 3) for _ in range(2)]
    c = torch.randn(5, 3)
    mask = torch.tensor([True, False])
    torch.testing.assert_close(f([c @ x for x in a], mask), c @ f(a, mask))


def test_input_dropout_and_bias_make_a_fusion_non_linear() -> None:
    assert not MeanFusion(input_dropout=0.1).is_linear
    assert not ProjectedConcatFusion([3, 3], 2).is_linear
    assert not interfuse.ProdFusion().is_linear
