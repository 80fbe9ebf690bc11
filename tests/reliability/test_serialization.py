"""Checkpoints and configs on disk, for every class of both faces and for composite models.

The contract suite already round-trips each module's ``state_dict`` in memory and through
``torch.save``/``torch.load(weights_only=True)``, and its config through ``json``/``yaml``
strings. This file adds what it does not cover: configs written to and read from ``.json`` and
``.yaml`` *files*; one checkpoint file holding config and state together, loaded with
``weights_only=True``; bit-identical outputs after reloading; random factors travelling in the
checkpoint rather than being re-drawn; composite models and a training checkpoint with the
optimizer state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import interfuse
from interfuse.config import dump_config, from_config, load_config
from interfuse.tinybig import instantiation_from_configs
from tests.registry import ALL_ENTRIES, ModuleEntry
from tests.reliability._common import build, is_tinybig, sample

yaml = pytest.importorskip("yaml")

CONFIGURABLE = [e for e in ALL_ENTRIES if e.roundtrip is not None]


def _perturb(module: nn.Module) -> None:
    """Move every parameter away from its initialization, so a reload that kept the fresh
    initialization would be caught."""
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.add_(0.01 * (i + 1))


def _rebuild(config: dict[str, Any], tinybig: bool) -> nn.Module:
    if tinybig:
        module: nn.Module = instantiation_from_configs(config)
        return module
    return from_config(config)


def _write_config(config: dict[str, Any], path: Path) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps(config, indent=2))
    else:
        path.write_text(yaml.safe_dump(config, sort_keys=False))


def _read_config(path: Path) -> dict[str, Any]:
    text = path.read_text()
    loaded: dict[str, Any] = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return loaded


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize("entry", CONFIGURABLE, ids=lambda e: e.id)
def test_config_file_and_checkpoint_give_bit_identical_outputs(
    entry: ModuleEntry, suffix: str, tmp_path: Path
) -> None:
    module = build(entry)
    _perturb(module)
    args, kwargs = sample(entry)
    expected = module(*args, **kwargs)

    config_path = tmp_path / f"config{suffix}"
    _write_config(module.to_config(), config_path)  # type: ignore[operator]
    torch.save(module.state_dict(), tmp_path / "state.pt")

    rebuilt = _rebuild(_read_config(config_path), is_tinybig(module)).eval()
    rebuilt.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    assert torch.equal(rebuilt(*args, **kwargs), expected)
    assert rebuilt.to_config() == module.to_config()  # type: ignore[operator]


@pytest.mark.parametrize("entry", CONFIGURABLE, ids=lambda e: e.id)
def test_single_file_checkpoint_with_config(entry: ModuleEntry, tmp_path: Path) -> None:
    """Config and state in one file, loadable with ``weights_only=True`` (configs are plain
    JSON-safe data, which the restricted unpickler accepts)."""
    module = build(entry)
    _perturb(module)
    path = tmp_path / "checkpoint.pt"
    torch.save({"config": module.to_config(), "state_dict": module.state_dict()}, path)  # type: ignore[operator]
    checkpoint = torch.load(path, weights_only=True)
    rebuilt = _rebuild(checkpoint["config"], is_tinybig(module)).eval()
    rebuilt.load_state_dict(checkpoint["state_dict"])
    args, kwargs = sample(entry)
    assert torch.equal(rebuilt(*args, **kwargs), module(*args, **kwargs))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_dump_and_load_config_files(suffix: str, tmp_path: Path) -> None:
    """The modern face's own file helpers, on every registered modern class in the registry."""
    for entry in CONFIGURABLE:
        module = build(entry)
        if is_tinybig(module):
            continue
        path = tmp_path / f"{entry.id}{suffix}"
        dump_config(module, path)  # type: ignore[arg-type]
        rebuilt = load_config(path)
        assert type(rebuilt) is type(module)
        assert rebuilt.to_config() == module.to_config()  # type: ignore[operator]


def test_random_factors_travel_in_the_checkpoint(tmp_path: Path) -> None:
    """A random-adapted matrix rebuilt with another seed takes the saved factors, not new ones."""
    saved = interfuse.RandomAdaptedMatrix(12, 6, rank=3, seed=1)
    _perturb(saved)
    torch.save(saved.state_dict(), tmp_path / "rma.pt")
    other = interfuse.RandomAdaptedMatrix(12, 6, rank=3, seed=2)
    x = torch.randn(4, 12)
    assert not torch.equal(other(x), saved(x))
    other.load_state_dict(torch.load(tmp_path / "rma.pt", weights_only=True))
    assert torch.equal(other(x), saved(x))
    assert torch.equal(other.random_out, saved.random_out)


class Composite(nn.Module):
    """A small model of interfuse parts of every kind inside plain PyTorch containers."""

    def __init__(self) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(
            {
                "project": interfuse.ProjectedConcatFusion(
                    [5, 3],
                    6,
                    matrix="lowrank_kronecker",
                    matrix_options={"rank": 2, "p": 2, "q": 2},
                ),
                "mix": interfuse.HybridInterdependence(
                    [
                        interfuse.ParameterizedInterdependence(
                            6, matrix="rma", matrix_options={"rank": 3, "seed": 3}
                        ),
                        interfuse.BilinearInterdependence(4, matrix="lowrank"),
                    ],
                    fusion="mean",
                ),
                "fuse": interfuse.WeightedSumFusion(2, normalize="softmax"),
            }
        )
        self.head = nn.Sequential(nn.Tanh(), interfuse.DenseMatrix(6, 3))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        h = self.parts["project"]([x1, x2])
        h = self.parts["fuse"]([h, self.parts["mix"](h)])
        return self.head(h)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    return (
        torch.randn(8, 4, 5, generator=gen),
        torch.randn(8, 4, 3, generator=gen),
        torch.randn(8, 4, 3, generator=gen),
    )


def test_composite_model_checkpoint_is_bit_identical(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Composite()
    x1, x2, y = _batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x1, x2), y).backward()
        optimizer.step()
    path = tmp_path / "train.pt"
    torch.save({"model": model.state_dict(), "optim": optimizer.state_dict(), "step": 3}, path)

    torch.manual_seed(123)  # a different initialization, overwritten by the checkpoint
    restored = Composite()
    restored_opt = torch.optim.Adam(restored.parameters(), lr=1e-2)
    checkpoint = torch.load(path, weights_only=True)
    restored.load_state_dict(checkpoint["model"])
    restored_opt.load_state_dict(checkpoint["optim"])
    assert torch.equal(restored(x1, x2), model(x1, x2))

    # Training resumes identically: one more step on both gives the same parameters.
    for m, opt in ((model, optimizer), (restored, restored_opt)):
        opt.zero_grad()
        nn.functional.mse_loss(m(x1, x2), y).backward()
        opt.step()
    for (name, a), (_, b) in zip(model.state_dict().items(), restored.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_composite_parts_rebuilt_from_configs(suffix: str, tmp_path: Path) -> None:
    """Each part's config (one JSON or YAML file) plus the model's state dict rebuild the
    model exactly, random factors included."""
    torch.manual_seed(0)
    model = Composite()
    _perturb(model)
    configs = {name: part.to_config() for name, part in model.parts.items()}
    configs["head"] = model.head[1].to_config()
    _write_config(configs, tmp_path / f"parts{suffix}")
    torch.save(model.state_dict(), tmp_path / "model.pt")

    loaded = _read_config(tmp_path / f"parts{suffix}")
    torch.manual_seed(99)
    rebuilt = Composite()
    for name in model.parts:
        rebuilt.parts[name] = from_config(loaded[name])
    rebuilt.head[1] = from_config(loaded["head"])
    rebuilt.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    x1, x2, _ = _batch()
    assert torch.equal(rebuilt(x1, x2), model(x1, x2))


def test_float64_checkpoint_into_float32_model(tmp_path: Path) -> None:
    """``load_state_dict`` casts: a float64 checkpoint loads into a float32 model and back."""
    m64 = interfuse.KroneckerMatrix(12, 6, p=2, q=3, dtype=torch.float64)
    torch.save(m64.state_dict(), tmp_path / "m64.pt")
    m32 = interfuse.KroneckerMatrix(12, 6, p=2, q=3)
    m32.load_state_dict(torch.load(tmp_path / "m64.pt", weights_only=True))
    assert m32.a.dtype == torch.float32
    x = torch.randn(3, 12, dtype=torch.float64)
    torch.testing.assert_close(m32(x.float()).double(), m64(x), rtol=1e-6, atol=1e-6)
