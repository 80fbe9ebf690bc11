"""Replays every fusion case recorded from tinyBIG 0.2.1 (``tinybig-0.2.1.json``).

Each case names a class of :mod:`interfuse.tinybig.fusion`, its constructor arguments, the
inputs, ``w`` and (for the random-matrix-adaption classes) the random factors the original
drew; the output, ``calculate_n()`` and ``calculate_l()`` must match to float32 tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import interfuse.tinybig.fusion as tbf

_HERE = Path(__file__).parent
_CANDIDATES = [
    _HERE / "data" / "tinybig-0.2.1.json",
    _HERE.parents[2] / "shared" / "spec" / "golden" / "tinybig-0.2.1.json",
]
GOLDEN = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])


def _cases() -> list[dict[str, Any]]:
    data = json.loads(GOLDEN.read_text())
    return [c for c in data["cases"] if c["kind"] == "fusion"]


CASES = _cases()


def _case_id(case: dict[str, Any]) -> str:
    dims = case["init"].get("dims")
    return f"{case['class']}-{'x'.join(map(str, dims))}"


def test_golden_file_holds_every_fusion_class() -> None:
    assert len(CASES) == 76
    names = {c["class"] for c in CASES}
    assert names <= set(tbf.__all__)
    assert len(names) == 19


def _build(case: dict[str, Any]) -> torch.nn.Module:
    cls = getattr(tbf, case["class"])
    kwargs = dict(case["init"])
    for key, value in case.get("tensor_init", {}).items():
        kwargs[key] = torch.tensor(value)
    if "random_factors" in case:
        rf = case["random_factors"]
        kwargs["random_factors"] = (torch.tensor(rf["A"]), torch.tensor(rf["B"]))
    module: torch.nn.Module = cls(**kwargs)
    return module


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"{i:02d}-{_case_id(c)}") for i, c in enumerate(CASES)]
)
def test_golden_case(case: dict[str, Any]) -> None:
    module = _build(case)
    xs = [torch.tensor(x) for x in case["inputs"]]
    w = None if case["w"] is None else torch.tensor(case["w"])
    expect = case["expect"]
    out = module(xs, w)
    torch.testing.assert_close(out, torch.tensor(expect["output"]), rtol=1e-4, atol=1e-5)
    assert module.calculate_n() == expect["n"]
    assert module.calculate_l() == expect["l"]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=_case_id(c)) for c in CASES if "random_factors" in c],
)
def test_golden_random_factors_survive_state_dict_and_config(case: dict[str, Any]) -> None:
    """A replayed random-matrix case keeps its factors through ``state_dict`` + config rebuild."""
    from interfuse.tinybig.config import instantiation_from_configs

    module = _build(case)
    rebuilt = instantiation_from_configs(module.to_config())
    rebuilt.load_state_dict(module.state_dict())
    xs = [torch.tensor(x) for x in case["inputs"]]
    w = torch.tensor(case["w"])
    torch.testing.assert_close(
        rebuilt(xs, w), torch.tensor(case["expect"]["output"]), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=_case_id(c)) for c in CASES if "n" in c["init"]],
)
def test_golden_list_input_equals_tensor_math(case: dict[str, Any]) -> None:
    """The split (no-concat) path gives the materialized ``cat(x) @ Wᵀ``."""
    module = _build(case).double()
    xs = [torch.tensor(x, dtype=torch.float64) for x in case["inputs"]]
    w = torch.tensor(case["w"], dtype=torch.float64)
    W = module.matrix(w)
    torch.testing.assert_close(module(xs, w), torch.cat(xs, -1) @ W.T)
