"""Smoke tests of the ``interfuse bench`` machinery (tiny sizes; no timing targets asserted)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import interfuse.functional as fn
from interfuse import bench
from interfuse.bench import cases, checks, timing


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    assert bench.main(["--tiny", "--out", str(out)]) == 0
    return out, json.loads((out / "bench-results.json").read_text())


def test_tiny_run_writes_json_markdown_and_plot(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    out, payload = tiny_run
    assert set(payload) >= {"meta", "results", "crossover", "face_kernels", "notes"}
    meta = payload["meta"]
    assert meta["mode"] == "tiny" and meta["torch"] == torch.__version__
    assert {"date", "machine", "threads", "malloc", "seconds", "phase_seconds"} <= set(meta)
    md = (out / "bench-results.md").read_text()
    for heading in ("# interfuse bench", "## Element-wise fusions", "## Structured matrices"):
        assert heading in md
    has_png = (out / "bench.png").exists()
    assert has_png or any("matplotlib" in note for note in payload["notes"])


def test_results_have_variants_and_sane_ratios(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, payload = tiny_run
    groups = {r["group"] for r in payload["results"]}
    assert {"elementwise", "masked", "structured", "projection"} <= groups
    for r in payload["results"]:
        assert {"id", "group", "name", "params", "base", "rounds", "variants", "ratios"} <= set(r)
        assert "interfuse" in r["variants"] and r["base"] in r["variants"]
        for v in r["variants"].values():
            assert v["median_ms"] > 0 and math.isfinite(v["ratio"])
        for key, ratio in r["ratios"].items():
            assert 1e-4 < ratio < 1e4, (r["id"], key, ratio)
        if r["group"] in ("elementwise", "masked"):
            assert {"reference", "floor", "naive"} <= set(r["variants"])
            assert "interfuse/bandwidth" in r["ratios"]


def test_no_target_is_judged_at_tiny_sizes(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, payload = tiny_run
    assert all(r["target"] is None for r in payload["results"])


def test_crossover_rows_and_face_kernels(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, payload = tiny_run
    row = payload["crossover"][0]
    assert {"factored_ms", "dense_ms", "faster", "auto", "auto_loss"} <= set(row)
    assert row["auto_loss"] >= 1.0
    by_id = {r["id"]: r for r in payload["face_kernels"]}
    ws = next(v for k, v in by_id.items() if "weighted_sum" in k)
    assert ws["modern"] == ws["tinybig"] == ["weighted_sum"] and ws["same"]


def test_peak_memory_of_one_case(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, payload = tiny_run
    measured = [r for r in payload["results"] if "memory" in r]
    if not measured:
        pytest.skip("peak memory could not be measured here: " + "; ".join(payload["notes"]))
    mem = measured[0]["memory"]["interfuse"]
    assert mem["peak_mib"] is None or mem["peak_mib"] >= 0


def test_measure_interleaves_and_reports_ratios() -> None:
    a = torch.randn(1000)
    t = timing.measure({"x": lambda: a.sum(), "y": lambda: a.mul(2).sum()}, "x", 0.05, 2, 3)
    assert t.base == "x" and 2 <= t.rounds <= 3
    assert t.ratio("x") == 1.0 and t.ratio("y") > 0 and t.median("y") > 0
    assert t.spread("y") >= 0


def test_configure_malloc_modes() -> None:
    assert timing.configure_malloc("default") == "default"
    with pytest.raises(ValueError, match="malloc mode must be"):
        timing.configure_malloc("fast")


def test_build_case_rejects_unknown_group() -> None:
    with pytest.raises(ValueError, match="case group must be one of"):
        cases.build_case({"group": "nope", "id": "x"})


def test_plans_judge_targets_only_at_the_issue_sizes() -> None:
    quick = cases.plan("quick")
    ids = {s["id"] for s in quick}
    assert "elementwise/weighted_sum/k8/4096x1024/float32/forward" in ids
    assert any(s["group"] == "structured" and s["in_features"] == 4096 for s in quick)
    assert len(cases.plan("tiny")) < 12
    full = cases.plan("full")
    assert {s["k"] for s in full if s["group"] == "elementwise"} == {2, 4, 8, 16}
    assert {"float32", "bfloat16"} <= {s["dtype"] for s in full if s["group"] == "elementwise"}


def test_count_kernels_counts_and_restores() -> None:
    original = fn.fused_sum
    xs = [torch.ones(2, 3), torch.ones(2, 3)]
    with checks.count_kernels() as calls:
        fn.fused_sum(xs)
        fn.fused_sum(xs)
    assert calls["fused_sum"] == 2
    assert fn.fused_sum is original


def test_produced_shapes_sees_backward() -> None:
    w = torch.randn(3, 5, requires_grad=True)
    x = torch.randn(2, 5)
    shapes = checks.produced_shapes(lambda: torch.autograd.grad((x @ w.t()).sum(), [w]))
    assert (2, 3) in shapes and (3, 5) in shapes


def _forward_outputs(case: cases.Case) -> dict[str, torch.Tensor]:
    outs = {name: run() for name, run in case.variants().items() if name != "floor"}
    return {name: out for name, out in outs.items() if isinstance(out, torch.Tensor)}


def _assert_all_match(outs: dict[str, torch.Tensor]) -> None:
    for variant, out in outs.items():
        torch.testing.assert_close(out, outs["interfuse"], msg=lambda m, v=variant: f"{v}: {m}")


@pytest.mark.parametrize(
    ("name", "masked"),
    [(n, False) for n in cases.ELEMENTWISE] + [(n, True) for n in cases.MASKED],
)
def test_elementwise_variants_compute_the_same_fusion(name: str, masked: bool) -> None:
    spec = {
        "id": f"t/{name}",
        "group": "masked" if masked else "elementwise",
        "name": name,
        "k": 4,
        "rows": 6,
        "width": 5,
        "dtype": "float32",
        "phase": "forward",
        "masked": masked,
    }
    outs = _forward_outputs(cases.build_case(spec))
    if masked:
        del outs["reference"]  # the unmasked reduction: a speed reference, not the same job
    # The baselines only mean something if they do the same job: PyG's combine step takes
    # part for sum/mean/max/min (torch_geometric is in the test extra).
    expected = {"interfuse", "naive", "modern"} | (set() if masked else {"reference", "tinybig"})
    if name in ("sum", "mean", "max", "min") and not masked:
        expected.add("pyg")
    assert expected <= set(outs)
    _assert_all_match(outs)


def test_projection_variants_compute_the_same_projection() -> None:
    spec = {
        "id": "t/proj",
        "group": "projection",
        "name": "dense",
        "widths": [8, 8, 8],
        "out_features": 5,
        "batch": 7,
        "phase": "forward",
    }
    outs = _forward_outputs(cases.build_case(spec))
    assert {"interfuse", "reference", "naive", "modern", "tinybig", "pyg"} <= set(outs)
    _assert_all_match(outs)


def test_projection_backward_variants_give_the_same_input_gradients() -> None:
    spec = {
        "id": "t/proj-bwd",
        "group": "projection",
        "name": "dense",
        "widths": [4, 4],
        "out_features": 3,
        "batch": 5,
        "phase": "forward+backward",
    }
    grads = {name: run() for name, run in cases.build_case(spec).variants().items()}
    assert "pyg" in grads
    # The first two gradients are those of the two inputs in every per-piece variant.
    for variant in ("modern", "tinybig", "pyg", "naive"):
        for got, want in zip(grads[variant][:2], grads["interfuse"][:2]):
            torch.testing.assert_close(got, want)


def test_only_selects_cases_containing_any_of_the_texts(tmp_path: Path) -> None:
    argv = ["--tiny", "--only", "/max/", "--only", "lowrank", "--no-memory", "--no-plot"]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "bench-results.json").read_text())
    ids = {r["id"] for r in payload["results"]}
    expected = {s["id"] for s in cases.plan("tiny") if "/max/" in s["id"] or "lowrank" in s["id"]}
    assert ids == expected - {s["id"] for s in cases.plan("tiny") if s["group"] == "crossover"}
    assert any("/max/" in i for i in ids) and any("lowrank" in i for i in ids)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["forward", "forward+backward"])
def test_compiled_variant_computes_the_same_masked_max(phase: str) -> None:
    spec = {
        "id": f"t/compiled/{phase}",
        "group": "masked",
        "name": "max",
        "k": 3,
        "rows": 6,
        "width": 5,
        "dtype": "float32",
        "phase": phase,
        "masked": True,
        "compiled": True,
    }
    got = {name: run() for name, run in cases.build_case(spec).variants().items()}
    assert "compiled" in got  # inductor compiles here (the test machine has a C++ compiler)
    torch.testing.assert_close(got["compiled"], got["interfuse"])


def test_full_plan_compiles_the_headline_element_wise_cases_only() -> None:
    full = cases.plan("full")
    compiled = [s for s in full if s.get("compiled")]
    assert compiled and all(s["headline"] for s in compiled)
    assert {s["group"] for s in compiled} == {"elementwise", "masked"}
    assert not any(s.get("compiled") for s in cases.plan("quick") + cases.plan("tiny"))
