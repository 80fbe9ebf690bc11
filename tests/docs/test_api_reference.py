"""The documentation site stays complete: every public name is in the API reference, every
``:::`` directive names a real object, every page is in the navigation."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API = DOCS / "api.md"

#: Packages whose ``__all__`` the API reference must cover, one ``::: package.name`` each.
PACKAGES = (
    "interfuse.matrices",
    "interfuse.fusion",
    "interfuse.interdependence",
    "interfuse.functional",
    "interfuse.config",
    "interfuse.tinybig",
)

pytestmark = pytest.mark.skipif(not API.is_file(), reason="docs/api.md is not in this checkout")


def _directives() -> list[str]:
    return re.findall(r"^::: ([\w.]+)\s*$", API.read_text(), flags=re.M)


def _resolve(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(path)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_directive(package: str) -> None:
    module = importlib.import_module(package)
    documented = set(_directives())
    missing = [n for n in module.__all__ if f"{package}.{n}" not in documented]
    assert not missing, f"docs/api.md lacks '::: {package}.<name>' for {missing}"


def test_top_level_names_are_documented_somewhere() -> None:
    import interfuse

    objects = [_resolve(d) for d in _directives()]
    text = API.read_text()
    missing = []
    for name in interfuse.__all__:
        value = getattr(interfuse, name)
        if isinstance(value, str):  # __version__
            if name not in text:
                missing.append(name)
        elif not any(value is obj for obj in objects):
            missing.append(name)
    assert not missing, f"interfuse.{missing} are not documented in docs/api.md"


def test_every_directive_resolves() -> None:
    for path in _directives():
        _resolve(path)  # raises if the name is gone


def test_every_page_is_in_the_nav() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [p for item in node for p in pages(item)]
        if isinstance(node, dict):
            return [p for v in node.values() for p in pages(v)]
        return []

    in_nav = set(pages(config["nav"]))
    on_disk = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    missing = sorted(on_disk - in_nav)
    assert not missing, f"pages missing from the nav of mkdocs.yml: {missing}"


# -- regenerating docs/api.md ---------------------------------------------------------------------

#: Section titles of the packages, in page order.
TITLES = {
    "interfuse.matrices": "Structured matrices",
    "interfuse.fusion": "Fusion",
    "interfuse.interdependence": "Interdependence",
    "interfuse.functional": "Functional kernels",
    "interfuse.config": "Configs",
    "interfuse.tinybig": "The tinyBIG face",
}


def render_api_page() -> str:
    """The text of ``docs/api.md``: one ``:::`` directive per public name of every package, and
    a table of the top-level re-exports pointing at them."""
    import interfuse

    homes: dict[int, str] = {}
    sections: list[str] = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        lines = [
            f"## `{package}`: {TITLES[package]}",
            "",
            f"::: {package}",
            "    options:",
            "      members: false",
            "      show_root_heading: false",
            "",
        ]
        for name in module.__all__:
            homes.setdefault(id(getattr(module, name)), f"{package}.{name}")
            lines += [f"::: {package}.{name}", ""]
        sections.append("\n".join(lines))
    rows = []
    for name in interfuse.__all__:
        value = getattr(interfuse, name)
        if isinstance(value, str):
            rows.append(f"| `interfuse.{name}` | the version string, `{value!r}` |")
        else:
            home = homes[id(value)]
            rows.append(f"| `interfuse.{name}` | [`{home}`][{home}] |")
    head = [
        "# API reference",
        "",
        "Every public name of interfuse, package by package. This page is generated from the",
        "packages' `__all__` (`python -m tests.docs.test_api_reference > docs/api.md`) and a",
        "test fails when a public name is missing from it.",
        "",
        "## `interfuse`",
        "",
        "::: interfuse",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "",
        "The top-level package re-exports the main classes of the modern API:",
        "",
        "| name | documented as |",
        "|---|---|",
        *rows,
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(sections)


def test_api_page_is_current() -> None:
    assert API.read_text() == render_api_page(), (
        "docs/api.md is stale: regenerate it with "
        "`python -m tests.docs.test_api_reference > docs/api.md`"
    )


if __name__ == "__main__":
    print(render_api_page(), end="")
