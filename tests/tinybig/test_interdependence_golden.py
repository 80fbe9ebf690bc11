"""Replay every interdependence case recorded from tinyBIG 0.2.1 (spec golden file).

Each case gives the constructor arguments, ``x``, ``w``, an optional ``kappa_x`` and, for the
random-matrix-adaption classes, the random factors the original drew. We check the output of
``forward``, the matrix ``calculate_A`` returns, ``calculate_l``, ``calculate_b_prime`` and
``calculate_m_prime``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import interfuse.tinybig.interdependence as idp

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (
    _HERE / "data" / "tinybig-0.2.1.json",  # the copy shipped with the tests
    _HERE.parents[2] / "shared" / "spec" / "golden" / "tinybig-0.2.1.json",  # ../shared/spec
)
GOLDEN = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])


def _cases() -> list[dict[str, Any]]:
    if not GOLDEN.exists():  # pragma: no cover - the shared spec lives next to the checkout
        return []
    data = json.loads(GOLDEN.read_text())
    return [c for c in data["cases"] if c.get("kind") != "fusion"]


CASES = _cases()


def _case_id(case: dict[str, Any]) -> str:
    init = case["init"]
    extra = ",".join(
        f"{k}={v}" for k, v in init.items() if k not in ("b", "m", "interdependence_type")
    )
    kappa = "-kappa" if case["kappa_x"] is not None else ""
    return f"{case['class']}-{init['interdependence_type']}-b{init['b']}m{init['m']}-{extra}{kappa}"


def _build(case: dict[str, Any]) -> idp.interdependence:
    cls = getattr(idp, case["class"])
    kwargs = dict(case["init"])
    if case.get("random_factors") is not None:
        rf = case["random_factors"]
        kwargs["random_factors"] = (torch.tensor(rf["A"]), torch.tensor(rf["B"]))
    module: idp.interdependence = cls(**kwargs)
    return module


def _close(got: torch.Tensor, expected: Any) -> None:
    want = torch.tensor(expected, dtype=torch.float32)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * max(1.0, want.abs().max().item()))


def test_there_are_112_interdependence_cases() -> None:
    if not GOLDEN.exists():  # pragma: no cover
        pytest.skip("golden file not found")
    assert len(CASES) == 112


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_golden_case(case: dict[str, Any]) -> None:
    module = _build(case)
    x = torch.tensor(case["x"])
    w = torch.tensor(case["w"])
    kappa = None if case["kappa_x"] is None else torch.tensor(case["kappa_x"])
    expect = case["expect"]

    assert module.calculate_l() == expect["l"]
    assert module.calculate_b_prime() == expect["b_prime"]
    assert module.calculate_m_prime() == expect["m_prime"]

    x_in = x.t() if module.is_instance else x
    _close(module.calculate_A(x_in, w), expect["A"])
    _close(module(x=x, w=w, kappa_x=kappa), expect["output"])


@pytest.mark.parametrize("case", [c for c in CASES if "random_matrix" in c["class"]], ids=_case_id)
def test_golden_random_factors_survive_state_dict(case: dict[str, Any]) -> None:
    """Recorded factors live in buffers: a seeded module that loads the state_dict replays."""
    recorded = _build(case)
    kwargs = dict(case["init"])
    fresh = getattr(idp, case["class"])(**kwargs, seed=123)
    fresh.load_state_dict(recorded.state_dict())
    x, w = torch.tensor(case["x"]), torch.tensor(case["w"])
    _close(fresh(x=x, w=w), case["expect"]["output"])
