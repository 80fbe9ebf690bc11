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
from interfuse.bench import baselines, cases, checks, report, rows, timing


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
    assert {"elementwise", "masked", "small", "structured", "projection"} <= groups
    for r in payload["results"]:
        assert {"id", "group", "name", "params", "base", "rounds", "variants", "ratios"} <= set(r)
        subject = "modern" if r["group"] == "small" else "interfuse"
        assert subject in r["variants"] and r["base"] in r["variants"]
        for v in r["variants"].values():
            assert v["median_ms"] > 0 and math.isfinite(v["ratio"])
        for key, ratio in r["ratios"].items():
            # no bounds: on a shared machine one preempted call can make any ratio huge
            assert ratio > 0 and math.isfinite(ratio), (r["id"], key, ratio)
        if r["group"] in ("elementwise", "masked"):
            assert {"reference", "floor", "naive"} <= set(r["variants"])
            assert "interfuse/bandwidth" in r["ratios"]


def test_no_target_is_judged_at_tiny_sizes(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, payload = tiny_run
    assert all(r["targets"] == [] for r in payload["results"])


def test_crossover_rows_and_face_kernels(tiny_run: tuple[Path, dict[str, Any]]) -> None:
    _, payload = tiny_run
    row = payload["crossover"][0]
    keys = {"factored_ms", "dense_ms", "dense_layer_ms", "faster", "auto", "auto_loss"}
    assert keys <= set(row)
    assert row["auto_loss"] >= 1.0 and row["dense_layer_over_structured"] > 0
    by_id = {r["id"]: r for r in payload["face_kernels"]}
    summed = next(v for k, v in by_id.items() if k.startswith("small/sum/"))
    # (which kernel: the one `interfuse.functional` exposes for the call, whatever its path)
    assert summed["modern"] == summed["tinybig"] and summed["same"]


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
    assert len(cases.plan("tiny")) <= 12
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


LARGE = [r for r in rows.fusion_rows() if r.large]


@pytest.mark.parametrize(
    ("name", "masked"),
    [(r.name, False) for r in LARGE] + [(r.name, True) for r in LARGE if r.masked is not None],
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
    r = rows.row(name)
    expected = {"interfuse", "naive", "modern"} | (set() if masked else {"reference"})
    if r.tinybig and not masked:
        expected.add("tinybig")
    if r.pyg and not masked:
        expected.add("pyg")  # torch_geometric is in the test extra
    assert expected <= set(outs)
    _assert_all_match(outs)


SMALL = [r.name for r in rows.fusion_rows()] + [cases.INTERDEPENDENCE]


def _small_spec(name: str, phase: str) -> dict[str, Any]:
    return {
        "id": f"t/small/{name}/{phase}",
        "group": "small",
        "name": name,
        "k": 3,
        "rows": 5,
        "width": 6,
        "out": 4,
        "phase": phase,
        "threads": 1,
    }


def _expected_small(name: str) -> set[str]:
    expected = {"modern", "plain", "tinybig", "original"}
    if name != cases.INTERDEPENDENCE:
        r = rows.row(name)
        expected -= set() if r.tinybig else {"tinybig", "original"}
        expected |= {"pyg"} if r.pyg else set()
        expected |= {"kernel"} if r.kernel else set()
    return expected


@pytest.mark.parametrize("name", SMALL)
def test_small_grid_variants_compute_the_same_values(name: str) -> None:
    case = cases.build_case(_small_spec(name, "forward"))
    outs = {n: run() for n, run in case.variants().items()}
    # tinyBIG 0.2.1 is installed in the test environment: its `original` column must be there.
    assert _expected_small(name) == set(outs)
    for variant, out in outs.items():
        torch.testing.assert_close(out, outs["modern"], msg=lambda m, v=variant: f"{v}: {m}")


@pytest.mark.parametrize("name", SMALL)
def test_small_grid_variants_give_the_same_input_gradients(name: str) -> None:
    case = cases.build_case(_small_spec(name, "forward+backward"))
    grads = {n: run() for n, run in case.variants().items()}
    assert _expected_small(name) == set(grads)
    k = 1 if name == cases.INTERDEPENDENCE else 3
    for variant, got in grads.items():
        for a, b in zip(got[:k], grads["modern"][:k]):
            torch.testing.assert_close(a, b, msg=lambda m, v=variant: f"{v}: {m}")


def test_small_grid_covers_every_fusion_and_both_sizes_in_quick_and_full() -> None:
    for mode, threads in (("quick", {1}), ("full", {1, 2})):
        small = [s for s in cases.plan(mode) if s["group"] == "small"]
        assert {s["name"] for s in small} == set(SMALL)
        sizes = {(s["k"], s["rows"], s["width"], s["out"]) for s in small}
        assert sizes == set(cases.SMALL_SIZES)
        assert {s["phase"] for s in small} == {"forward", "forward+backward"}
        assert {s["threads"] for s in small} == threads


def test_small_grid_judges_the_issue_targets() -> None:
    spec = {**_small_spec("sum", "forward"), "k": 3, "rows": 32, "width": 64, "out": 32}
    texts = {(t["variant"], t["against"], t["max_ratio"]) for t in cases.build_case(spec).targets}
    assert texts == {("modern", "plain", 1.5), ("tinybig", "original", 1.0), ("modern", "pyg", 1.0)}
    spec = {**spec, "name": cases.INTERDEPENDENCE}
    assert {t["against"] for t in cases.build_case(spec).targets} == {"plain", "original"}


def test_a_constructor_regression_fails_the_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    from interfuse.fusion import MaxFusion

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TypeError("MaxFusion.__init__() got an unexpected keyword argument")

    monkeypatch.setattr(MaxFusion, "__init__", broken)
    with pytest.raises(TypeError, match="unexpected keyword"):
        cases.build_case(_small_spec("max", "forward")).variants()
    spec = {**_small_spec("max", "forward"), "group": "elementwise", "dtype": "float32"}
    with pytest.raises(TypeError, match="unexpected keyword"):
        cases.build_case(spec).variants()
    with pytest.raises(TypeError, match="unexpected keyword"):
        bench.main(["--tiny", "--only", "/max/", "--no-memory", "--no-plot", "--out", "/tmp/x"])


def test_a_registered_fusion_without_a_row_fails_the_plan() -> None:
    from interfuse.fusion import FUSIONS

    class NewFusion(torch.nn.Module):
        pass

    with pytest.raises(LookupError, match=r"\['NewFusion'\] are registered but have no bench row"):
        rows.fusion_rows({**FUSIONS, "new": NewFusion})


def test_rows_of_unregistered_classes_are_left_out() -> None:
    from interfuse.fusion import FUSIONS

    registered = {cls.__name__ for cls in FUSIONS.values()}
    got = {r.cls for r in rows.fusion_rows()}
    assert got == registered & {r.cls for r in rows.FUSION_ROWS}
    # issue 12's statistics appear once their classes are registered
    stats = [r for r in rows.FUSION_ROWS if r.cls in ("VarFusion", "StdFusion", "LogSumExpFusion")]
    assert len(stats) == 3 and all(r.pyg for r in stats)


def test_matrix_families_come_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from interfuse.matrices import MATRICES

    quick = cases.plan("quick")
    assert {s["name"] for s in quick if s["group"] == "structured"} == set(MATRICES) - {"dense"}
    monkeypatch.setattr(cases, "matrix_families", lambda: [*MATRICES, "monarch"])
    full_ids = {s["id"] for s in cases.plan("full")}
    assert "structured/monarch/4096to4096/b4096/forward" in full_ids
    assert any(i.startswith("crossover/monarch/") for i in full_ids)


def test_tinybig_original_loads_without_its_dependencies() -> None:
    import sys

    original = baselines.tinybig_original()
    assert original is not None, baselines.SKIPPED
    assert original.fusion.mean_fusion.__module__ == "tinybig.fusion.metric_fusion"
    assert not any(isinstance(m, baselines._Stub) for m in sys.modules.values())


def test_summary_lists_every_missed_target_with_its_figure() -> None:
    target = {"text": "≤ 1.5× the plain module", "met": False, "ratio": 2.0}
    results = [{"id": f"small/c{i}", "targets": [dict(target)]} for i in range(12)]
    lines = report.missed({"results": results})
    assert len(lines) == 12 and lines[-1] == "small/c11: ≤ 1.5× the plain module, measured 2.00"


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


def _shrunk(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` at a size that runs in milliseconds (same group, row, phase, dtype, mask)."""
    small = {**spec, "compiled": False}
    group = spec["group"]
    if group in ("elementwise", "masked"):
        small.update(rows=4, width=3)
    elif group == "small":
        small.update(rows=5, width=6, out=4)
    elif group == "structured":
        small.update(in_features=64, out_features=64 if spec["out_features"] > 1024 else 32)
        small.update(batch=4)
    elif group == "projection":
        small.update(widths=[8] * len(spec["widths"]), out_features=8, batch=4)
    elif group == "crossover":
        small.update(in_features=64, out_features=64, rows=2)
    return small


def test_every_case_of_the_full_plan_builds_and_runs() -> None:
    """Each kind of case the full run times (deduplicated over sizes) builds and its variants
    run: a row or matrix the full run would trip on fails here, not an hour into a run."""
    seen = set()
    for spec in cases.plan("full"):
        kind = tuple(spec.get(key) for key in ("group", "name", "phase", "dtype", "masked"))
        kind += (spec.get("out_features", 0) > 1024,)
        if kind in seen:
            continue
        seen.add(kind)
        for name, run in cases.build_case(_shrunk(spec)).variants().items():
            out = run()
            assert out is not None, (spec["id"], name)
    assert len(seen) > 50
