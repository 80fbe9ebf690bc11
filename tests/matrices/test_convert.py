"""replace_linear on a small trained MLP: outputs kept where the structure is exact, errors
reported where not, no dense weight left, the way back with to_linear."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import interfuse
from interfuse.matrices import (
    MATRICES,
    DenseMatrix,
    KroneckerMatrix,
    LowRankMatrix,
    MonarchMatrix,
    ReplacedLinear,
    StructuredMatrix,
    replace_linear,
)

pytestmark = pytest.mark.filterwarnings("ignore::interfuse.matrices.StructureWarning")


def _trained_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    mlp = nn.Sequential(
        nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )
    x, y = torch.randn(256, 16), torch.randn(256, 4)
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.mse_loss(mlp(x), y).backward()
        opt.step()
    return mlp


def _dense_names(model: nn.Module) -> list[str]:
    return [n for n, p in [*model.named_parameters(), *model.named_buffers()] if p.ndim == 2]


def test_dense_replacement_keeps_the_outputs_and_reports_zero_error() -> None:
    mlp = _trained_mlp()
    x = torch.randn(8, 16)
    expected = mlp(x)
    report = interfuse.replace_linear(mlp, "dense")
    assert list(report) == ["0", "2", "4"]
    assert all(isinstance(mlp[i], DenseMatrix) for i in (0, 2, 4))
    assert all(r.relative_error == 0.0 for r in report.values())
    assert report["2"].num_parameters == report["2"].dense_parameters == 32 * 32 + 32
    torch.testing.assert_close(mlp(x), expected)


def test_full_rank_lowrank_and_exactly_structured_layers_keep_the_outputs() -> None:
    mlp = _trained_mlp()
    x = torch.randn(8, 16)
    with torch.no_grad():  # make the middle layer an exact Kronecker product
        mlp[2].weight.copy_(torch.kron(torch.randn(4, 4), torch.randn(8, 8)))
    expected = mlp(x)
    report = replace_linear(mlp, "kronecker", target="2", p=4, q=4)
    assert report["2"].relative_error < 1e-6 and isinstance(mlp[2], KroneckerMatrix)
    assert report["2"].num_parameters == 16 + 64 + 32
    report = replace_linear(mlp, LowRankMatrix, target="0|4", rank=1.0)
    assert report["0"].matrix.rank == 16 and report["4"].matrix.rank == 4
    torch.testing.assert_close(mlp(x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MATRICES))
def test_every_family_replaces_and_reports_its_fit(name: str) -> None:
    mlp = _trained_mlp()
    original = {
        n: (m.weight.detach().clone(), m.bias.detach().clone())
        for n, m in mlp.named_children()
        if isinstance(m, nn.Linear)
    }
    report = replace_linear(mlp, name, target="[02]")
    assert list(report) == ["0", "2"] and type(mlp[4]) is nn.Linear
    for layer, r in report.items():
        assert isinstance(r, ReplacedLinear) and r.matrix is mlp[int(layer)]
        assert isinstance(r.matrix, MATRICES[name])
        weight, bias = original[layer]
        assert r.relative_error == pytest.approx(r.matrix.relative_error(weight))
        assert r.num_parameters == r.matrix.num_parameters
        assert r.dense_parameters == weight.numel() + bias.numel()
        assert r.matrix.bias is not None and torch.equal(r.matrix.bias.detach(), bias)
    if name != "dense":  # DenseMatrix's own weight is the structure
        assert not any(
            n.startswith(("0.", "2.")) and n.endswith("weight") for n in _dense_names(mlp)
        )


def test_no_dense_weight_remains_and_the_model_trains_and_merges_back() -> None:
    mlp = _trained_mlp()
    dense_count = sum(p.numel() for p in mlp.parameters())
    report = replace_linear(mlp, "lowrank", rank=4)
    assert _dense_names(mlp) == [f"{i}.{f}" for i in (0, 2, 4) for f in ("left", "right")]
    assert sum(p.numel() for p in mlp.parameters()) == sum(
        r.num_parameters for r in report.values()
    )
    assert sum(r.num_parameters for r in report.values()) < dense_count
    x, y = torch.randn(64, 16), torch.randn(64, 4)
    opt = torch.optim.SGD(mlp.parameters(), lr=1e-2)
    before = nn.functional.mse_loss(mlp(x), y)
    for _ in range(5):  # fine-tune the factors
        opt.zero_grad()
        nn.functional.mse_loss(mlp(x), y).backward()
        opt.step()
    assert float(nn.functional.mse_loss(mlp(x), y).detach()) < float(before.detach())
    expected = mlp(x)
    for i in (0, 2, 4):
        layer = mlp[i]
        assert isinstance(layer, StructuredMatrix)
        mlp[i] = layer.to_linear()
    assert all(type(mlp[i]) is nn.Linear for i in (0, 2, 4))
    torch.testing.assert_close(mlp(x), expected)


def test_shared_layers_become_one_matrix_and_linear_subclasses_are_left_alone() -> None:
    shared = nn.Linear(8, 8)
    model = nn.ModuleDict({"a": shared, "b": shared, "attn": nn.MultiheadAttention(8, 2)})
    report = replace_linear(model, "monarch")
    assert sorted(report) == ["a", "b"] and report["a"].matrix is report["b"].matrix
    assert isinstance(model["a"], MonarchMatrix) and model["a"] is model["b"]
    assert type(model["attn"].out_proj) is not MonarchMatrix  # NonDynamicallyQuantizableLinear
    x = torch.randn(3, 2, 8)
    assert model["attn"](x, x, x)[0].shape == (3, 2, 8)


def test_training_mode_dtype_and_device_follow_the_layer() -> None:
    mlp = _trained_mlp().double().eval()
    replace_linear(mlp, "kronecker")
    assert not mlp[0].training and mlp[0].a.dtype == torch.float64


def test_an_error_leaves_the_model_unchanged() -> None:
    mlp = _trained_mlp()
    with pytest.raises(ValueError, match=r"layer '4'"):
        replace_linear(mlp, "monarch", num_blocks=8)
    assert all(type(mlp[i]) is nn.Linear for i in (0, 2, 4))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda: replace_linear(_trained_mlp(), "lowrank", target="fc"),
            ValueError,
            r"target='fc' matches no nn.Linear in the model; they are \['0', '2', '4'\]",
        ),
        (
            lambda: replace_linear(_trained_mlp(), LowRankMatrix(16, 32)),
            TypeError,
            r"matrix must be a family name or a StructuredMatrix class .* got an instance",
        ),
        (
            lambda: replace_linear(nn.Linear(4, 4), "lowrank"),
            ValueError,
            r"model is itself an nn.Linear .*LowRankMatrix.from_dense\(model.weight",
        ),
        (
            lambda: replace_linear(_trained_mlp(), "monarch", num_blocks=8),
            ValueError,
            r"replace_linear: layer '4' \(32 → 4\): num_blocks=8 must divide both",
        ),
        (
            lambda: replace_linear(_trained_mlp(), "lowrank", rnak=2),
            TypeError,
            r"layer '0' .*LowRankMatrix.from_dense does not take the options \['rnak'\]",
        ),
        (lambda: replace_linear(_trained_mlp(), "lowrnak"), ValueError, r"matrix must be one of"),
        (
            lambda: replace_linear(_trained_mlp(), "lowrank", target=3),
            TypeError,
            r"target must be a regular expression string or None, got 3",
        ),
    ],
    ids=["no-match", "instance", "linear", "bad-option-layer", "unknown-option", "name", "target"],
)
def test_replace_linear_errors(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()  # type: ignore[operator]
