"""The README's Python examples run, in order, in one namespace (they assert their results)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples_for_both_faces() -> None:
    text = "\n".join(python_blocks())
    assert "import interfuse" in text
    assert "from interfuse.tinybig import" in text


def test_readme_examples_run() -> None:
    namespace: dict[str, object] = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
