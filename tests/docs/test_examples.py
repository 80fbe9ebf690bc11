"""The Python examples of the README and of every docs page run (each page's blocks in order,
in one namespace; the README's assert their results, and each of them runs on its own too)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def test_readme_has_examples_for_both_faces() -> None:
    text = "\n".join(python_blocks(ROOT / "README.md"))
    assert "import interfuse" in text
    assert "from interfuse.tinybig import" in text


@pytest.mark.parametrize("index", range(len(python_blocks(ROOT / "README.md"))))
def test_every_readme_block_runs_on_its_own(index: int) -> None:
    """A reader copies one block: each must run in a fresh namespace."""
    block = python_blocks(ROOT / "README.md")[index]
    exec(compile(block, f"README.md block {index + 1}", "exec"), {"__name__": "example"})


def _demo_output(directory: Path) -> None:
    """What ``make demo`` leaves behind that the demo page's example loads: a saved model."""
    import torch

    from interfuse.demo.data import MULTIFEATURE_VIEWS
    from interfuse.demo.model import Strategy, build_model

    dims = [width for _, width in MULTIFEATURE_VIEWS.values()]
    model = build_model(Strategy("mean", "fusion", "mean"), dims, 10, width=8)
    (directory / "demo-results").mkdir()
    state = {"config": model.to_config(), "state_dict": model.state_dict()}
    torch.save(state, directory / "demo-results" / "best_model.pt")


@pytest.mark.parametrize(
    "page", [p for p in PAGES if python_blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _demo_output(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "example"}
    for block in python_blocks(page):
        exec(compile(block, str(page), "exec"), namespace)
