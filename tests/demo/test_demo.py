"""``interfuse demo``: the quick run on digits, the CSV path and its errors."""

from __future__ import annotations

import contextlib
import io
import json
import random
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip("sklearn", reason="the demo's bundled data needs scikit-learn (demo extra)")
pytest.importorskip("matplotlib", reason="the demo's plot needs matplotlib (demo extra)")
pytest.importorskip("tqdm", reason="the demo's progress bar needs tqdm (demo extra)")

from interfuse.config import REGISTRY, from_config
from interfuse.demo import load_model, main
from interfuse.demo.data import MIN_ROWS, DemoDataError, digits_arrays, load_csv, load_digits
from interfuse.demo.model import STRATEGIES, Strategy, build_model, model_from_config
from interfuse.matrices import MATRICES

NAMES = [s.name for s in STRATEGIES]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    """``interfuse demo --quick --out tmp``, run once in-process for the tests below."""
    out = tmp_path_factory.mktemp("demo") / "tmp"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["--quick", "--out", str(out), "--no-progress"])
    return code, out, buf.getvalue()


@pytest.mark.slow
def test_quick_run_exit_code_and_files(quick_run: tuple[int, Path, str]) -> None:
    code, out, _ = quick_run
    assert code == 0
    for name in ("results.md", "results.json", "accuracy_vs_params.png", "best_model.pt"):
        assert (out / name).is_file(), name
    png = (out / "accuracy_vs_params.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


@pytest.mark.slow
def test_quick_run_table_has_a_row_per_strategy(quick_run: tuple[int, Path, str]) -> None:
    _, out, stdout = quick_run
    markdown = (out / "results.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(STRATEGIES)
    for name in NAMES:
        assert f"`{name}`" in markdown
        assert any(line.split()[0].startswith(name) for line in stdout.splitlines() if line)
    assert "reload check passed" in stdout
    assert "Reload check: **passed**" in markdown


@pytest.mark.slow
def test_quick_run_json(quick_run: tuple[int, Path, str]) -> None:
    _, out, _ = quick_run
    payload = json.loads((out / "results.json").read_text())
    assert set(payload) >= {"data", "settings", "results", "best", "reload_check", "plot"}
    assert payload["data"]["name"] == "digits"
    assert payload["data"]["features"] == 64 and payload["data"]["classes"] == 10
    assert [r["strategy"] for r in payload["results"]] == NAMES
    for r in payload["results"]:
        assert set(r) >= {"strategy", "fusion", "matrix", "accuracy", "parameters", "train_seconds"}
        assert 0.0 <= r["accuracy"] <= 1.0 and r["parameters"] > 0 and r["train_seconds"] > 0
    # even the quick run separates the digits well
    assert max(r["accuracy"] for r in payload["results"]) >= 0.9
    best = max(payload["results"], key=lambda r: (r["accuracy"], -r["parameters"]))
    assert payload["best"]["strategy"] == best["strategy"]
    check = payload["reload_check"]
    assert check["passed"] is True
    assert check["matching_predictions"] == check["rows"] == payload["data"]["test_rows"]


@pytest.mark.slow
def test_saved_model_reloads(quick_run: tuple[int, Path, str]) -> None:
    _, out, _ = quick_run
    model = load_model(out / "best_model.pt")
    data = load_digits()
    with torch.no_grad():
        acc = (model(data.x_test).argmax(-1) == data.y_test).float().mean().item()
    payload = json.loads((out / "results.json").read_text())
    assert acc == pytest.approx(payload["best"]["model_accuracy"], abs=1e-6)
    assert payload["best"]["model_accuracy"] == payload["best"]["accuracy"]  # one seed


def test_demo_classes_stay_out_of_the_library_registry() -> None:
    demo_names = {"WideRPN", "RPNHead", "IdentityExpansion", "PolynomialExpansion"}
    assert not demo_names & set(REGISTRY)
    config = build_model(STRATEGIES[0], 12, 3, width=8, fourier_features=16).to_config()
    with pytest.raises(ValueError, match="'WideRPN' is not registered"):
        from_config(config)
    before = dict(REGISTRY)
    model_from_config(config)
    assert before == REGISTRY


def test_digits_match_scikit_learn() -> None:
    from sklearn.datasets import load_digits as sk_load_digits

    x, y = digits_arrays()
    bunch = sk_load_digits()
    assert torch.equal(x, torch.as_tensor(bunch.data, dtype=torch.float32))
    assert torch.equal(y, torch.as_tensor(bunch.target, dtype=torch.long))


def test_digits_split_is_fixed_and_stratified() -> None:
    a, b = load_digits(), load_digits()
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.x_train.shape == (1347, 64) and a.x_test.shape == (450, 64)
    counts = torch.bincount(a.y_test, minlength=10)
    assert int(counts.min()) >= 43 and int(counts.max()) <= 46


@pytest.mark.parametrize("strategy", STRATEGIES, ids=NAMES)
def test_every_strategy_builds_and_round_trips(strategy: Strategy) -> None:
    model = build_model(strategy, 12, 3, width=8, fourier_features=16)
    x = torch.randn(5, 12)
    clone = model_from_config(model.to_config())
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    assert model(x).shape == (5, 3)
    torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("matrix", sorted(MATRICES))
@pytest.mark.parametrize("features", [12, 7])
def test_any_matrix_for_the_heads(matrix: str, features: int) -> None:
    model = build_model(
        STRATEGIES[0],
        features,
        3,
        width=8,
        interdependence=matrix,
        projection=matrix,
        fourier_features=16,
    )
    x = torch.randn(5, features)
    clone = model_from_config(model.to_config())
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone(x), model(x), rtol=0, atol=0)


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
    argv = ["--data", str(table), "--target", "label", "--quick", "--out", str(out)]
    code = main([*argv, "--strategies", "mean,proj_lowrank", "--no-progress"])
    assert code == 0
    payload = json.loads((out / "results.json").read_text())
    assert payload["data"] == {
        "name": "animals.csv",
        "train_rows": 44,
        "test_rows": 16,
        "features": 3,
        "classes": 2,
        "target": "label",
    }
    assert [r["strategy"] for r in payload["results"]] == ["mean", "proj_lowrank"]
    assert payload["reload_check"]["passed"]
    assert max(r["accuracy"] for r in payload["results"]) >= 0.9  # well-separated classes
    assert "proj_lowrank" in capsys.readouterr().out


def test_csv_labels_and_columns(tmp_path: Path) -> None:
    data = load_csv(_write_table(tmp_path / "t.csv", features=4), "label")
    assert data.class_names == ["cat", "dog"]
    assert data.feature_names == ["f0", "f1", "f2", "f3"]
    assert data.num_features == 4
    # standardized with training statistics
    torch.testing.assert_close(data.x_train.mean(0), torch.zeros(4), atol=1e-5, rtol=0)


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
    with pytest.raises(DemoDataError, match=r"fewer than 2 rows \('bird'\)"):
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
        (["--strategies", "sum,median"], r"unknown \['median'\]"),
        (["--epochs", "0"], "--epochs must be positive"),
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
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder\n")
    out = blocker / sub if sub else blocker
    code = main(["--quick", "--out", str(out), "--no-progress"])
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
    code = main(["--quick", "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("interfuse demo: error: --out "), err
    assert "cannot write the results: Permission denied" in err
    assert "results.json" in err


def test_cli_entry_point_reports_a_bad_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from interfuse.cli import main as cli_main

    blocker = tmp_path / "taken"
    blocker.touch()
    assert cli_main(["demo", "--quick", "--out", str(blocker), "--no-progress"]) == 2
    assert "interfuse demo: error: --out" in capsys.readouterr().err
