"""The documentation site stays complete: every public name is in the API reference, every
``:::`` directive names a real object, every page is in the navigation."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

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
    "interfuse.demo",
)

#: Public submodules whose ``__all__`` the API reference must cover too, each in a section after
#: its package's. Most of their names are re-exported by the package and documented there once;
#: the others get a ``::: submodule.name`` directive in the submodule's section.
SUBMODULES = {
    "interfuse.tinybig": (
        "interfuse.tinybig.config",
        "interfuse.tinybig.errors",
        "interfuse.tinybig.fabrication",
        "interfuse.tinybig.fusion",
        "interfuse.tinybig.interdependence",
    ),
}

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


def _is_submodule(path: str) -> bool:
    """Whether ``path`` names an importable module (mkdocstrings then renders the module)."""
    try:
        return importlib.util.find_spec(path) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


def _directive(module: str, name: str) -> str:
    """The ``:::`` path documenting ``module.name``: that path, unless a submodule of the same
    name shadows it for mkdocstrings (``interfuse.functional.concat`` is both a module and the
    function it exports); then the object's defining path, e.g.
    ``interfuse.functional.concat.concat``."""
    path = f"{module}.{name}"
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, ModuleType) or not _is_submodule(path):
        return path
    return f"{value.__module__}.{value.__qualname__}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_has_a_directive(package: str) -> None:
    module = importlib.import_module(package)
    documented = set(_directives())
    missing = [n for n in module.__all__ if _directive(package, n) not in documented]
    assert not missing, f"docs/api.md lacks '::: {package}.<name>' for {missing}"


@pytest.mark.parametrize("submodule", [m for subs in SUBMODULES.values() for m in subs])
def test_every_public_name_of_a_submodule_is_documented(submodule: str) -> None:
    module = importlib.import_module(submodule)
    assert submodule in _directives(), f"docs/api.md lacks '::: {submodule}'"
    objects = [_resolve(d) for d in _directives()]
    missing = [n for n in module.__all__ if not any(getattr(module, n) is obj for obj in objects)]
    assert not missing, f"docs/api.md documents none of {submodule}.{missing}"


def test_no_directive_renders_a_shadowed_module() -> None:
    """``::: a.b`` renders module ``a.b`` even where ``a.b`` is a function at run time."""
    wrong = []
    for path in _directives():
        parent, _, name = path.rpartition(".")
        shadowed = parent and _is_submodule(path)
        if shadowed and getattr(importlib.import_module(parent), name) is not _resolve(path):
            wrong.append(path)
    assert not wrong, f"these directives render a module, not the object exported: {wrong}"


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

#: Section titles of the packages and submodules.
TITLES = {
    "interfuse.matrices": "Structured matrices",
    "interfuse.fusion": "Fusion",
    "interfuse.interdependence": "Interdependence",
    "interfuse.functional": "Functional kernels",
    "interfuse.config": "Configs",
    "interfuse.tinybig": "The tinyBIG face",
    "interfuse.tinybig.config": "tinyBIG configs",
    "interfuse.tinybig.errors": "tinyBIG errors",
    "interfuse.tinybig.fabrication": "tinyBIG parameter fabrication",
    "interfuse.tinybig.fusion": "tinyBIG fusions",
    "interfuse.tinybig.interdependence": "tinyBIG interdependences",
    "interfuse.demo": "The demo",
}


def _section(module_name: str, homes: dict[int, str], *, submodule: bool) -> str:
    """One ``##`` section: the module's docstring, then a directive per public name not
    documented yet (in a submodule, names re-exported by the package are linked instead)."""
    module = importlib.import_module(module_name)
    own_sections = set(SUBMODULES.get(module_name, ()))
    lines = [
        f"## `{module_name}`: {TITLES[module_name]}",
        "",
        f"::: {module_name}",
        "    options:",
        "      members: false",
        "      show_root_heading: false",
        "",
    ]
    above = []
    for name in module.__all__:
        value = getattr(module, name)
        if submodule and id(value) in homes:
            above.append(f"[`{name}`][{homes[id(value)]}]")
            continue
        path = _directive(module_name, name)
        homes.setdefault(id(value), path)
        if path in own_sections:  # a submodule with a section of its own, just below
            continue
        lines += [f"::: {path}", ""]
    if above:  # one link per line keeps the generated Markdown readable
        links = [f"{link}," for link in above[:-1]] + [f"{above[-1]}."]
        lines += ["Documented above:", *links, ""]
    return "\n".join(lines)


def render_api_page() -> str:
    """The text of ``docs/api.md``: one ``:::`` directive per public name of every package
    (and per name of a submodule that its package does not re-export), and a table of the
    top-level re-exports pointing at them."""
    import interfuse

    homes: dict[int, str] = {}
    sections: list[str] = []
    for package in PACKAGES:
        sections.append(_section(package, homes, submodule=False))
        for sub in SUBMODULES.get(package, ()):
            sections.append(_section(sub, homes, submodule=True))
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
