"""A Griffe extension for the API reference: render the reStructuredText bits of docstrings
and keep private classes out of the class headers.

interfuse docstrings are Google style but use a few reStructuredText constructs that Markdown
shows literally. Before mkdocstrings renders a docstring (of every object, the packages
included), this rewrites

* ``:math:`expr``` to ``$expr$`` and ``.. math::`` blocks to ``$$ … $$`` (pymdownx.arithmatex
  then hands both to MathJax),
* cross-reference roles (``:class:`~pkg.Name```, ``:func:``, ``:meth:``, ``:mod:``,
  ``:data:``, ``:attr:``, ``:obj:``, ``:exc:``) to links to the object's entry in the
  reference, showing the name (its last part with ``~``) as code; a bare name is looked up
  from the docstring's own scope,
* the escaped space of ``:class:`X`\\ s`` to nothing,
* an ``Example:`` heading to ``Examples:``, the spelling Griffe's Google parser knows, so the
  ``>>>`` lines render as a code block instead of running together as prose,
* an argument entry that documents several parameters at once (``names, input_dropout: …``)
  to one entry per parameter, as Griffe's Google parser expects.

The links are mkdocs-autorefs' *optional* references: a target the site does not document
(``torch.nn.Linear``, a private helper) renders as plain code instead of breaking
``mkdocs build --strict``.

A class's private bases (``_ParameterFree``, ``_KroneckerBase``) are implementation details:
the header shows the public classes they derive from instead.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):`(~?)([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")


def _target(obj: griffe.Object | None, name: str) -> str:
    """The full path of ``name`` as written in ``obj``'s docstring: a dotted name as is, a bare
    one resolved in ``obj``'s scope (its members, then its module's names) when it can be."""
    if obj is None or "." in name:
        return name
    try:
        return obj.resolve(name)
    except (griffe.NameResolutionError, AttributeError, KeyError):
        return name


def _role(match: re.Match[str], obj: griffe.Object | None = None) -> str:
    target = match.group(2).strip()
    if target.startswith("!"):
        target = target[1:]
    shown = target.rsplit(".", 1)[-1] if match.group(1) else target
    path = _target(obj, target)
    return (
        f'<autoref identifier="{html.escape(path)}" optional>'
        f"<code>{html.escape(shown)}</code></autoref>"
    )


def _math_blocks(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        found = _DIRECTIVE.match(lines[i])
        if not found:
            out.append(lines[i])
            i += 1
            continue
        indent = found.group("indent")
        body = [found.group("rest")] if found.group("rest").strip() else []
        i += 1
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():
            block.pop()
        body += textwrap.dedent("\n".join(block)).splitlines()
        out += ["", f"{indent}$$", *(f"{indent}{b}" for b in body if b.strip()), f"{indent}$$", ""]
    return "\n".join(out)


_SECTION = re.compile(r"^([ \t]*)(Args|Arguments|Parameters|Keyword Args):[ \t]*$")
_GROUPED = re.compile(r"^(?P<indent>[ \t]+)(?P<names>\w+(?:,[ \t]*\w+)+):(?P<rest>.*)$")


def _split_grouped_args(text: str) -> str:
    lines = text.splitlines()
    out: list[str] = []
    section: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if (head := _SECTION.match(line)) is not None:
            section = head.group(1)
        elif section is not None and line.strip() and not line.startswith(section + " "):
            section = None  # dedented: the section ended
        found = _GROUPED.match(line) if section is not None else None
        if found is None:
            out.append(line)
            i += 1
            continue
        indent = found.group("indent")
        entry = [found.group("rest")]
        i += 1
        while i < len(lines) and lines[i].startswith(indent + " ") and lines[i].strip():
            entry.append(lines[i])
            i += 1
        for name in re.split(r",[ \t]*", found.group("names")):
            out.append(f"{indent}{name}:{entry[0]}")
            out.extend(entry[1:])
    return "\n".join(out)


def rst_to_markdown(text: str, obj: griffe.Object | None = None) -> str:
    """Rewrite the reStructuredText math and roles of a docstring (of ``obj``, whose scope
    resolves bare names) as Markdown."""
    text = _math_blocks(text)
    text = _MATH.sub(lambda m: f"${m.group(1).strip()}$", text)
    text = _ROLE.sub(lambda m: _role(m, obj), text)
    text = _EXAMPLE.sub(r"\1Examples:", text)
    text = _split_grouped_args(text)
    return text.replace("`\\ ", "`").replace("</autoref>\\ ", "</autoref>")


def _is_private(path: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in path.split("."))


def public_bases(cls: griffe.Class) -> list[Any]:
    """``cls``'s bases with every private one replaced by its own public bases (recursively,
    without repeats)."""
    out: list[Any] = []
    for base in cls.bases:
        path = getattr(base, "canonical_path", str(base))
        if not _is_private(path.rsplit(".", 1)[-1]):
            found = base
        else:
            try:
                parent = cls.modules_collection[path]
            except (KeyError, ValueError, AttributeError):
                continue
            found = None
            for inherited in public_bases(parent) if isinstance(parent, griffe.Class) else []:
                if str(inherited) not in map(str, out):
                    out.append(inherited)
        if found is not None and str(found) not in map(str, out):
            out.append(found)
    return out


def _classes(obj: griffe.Object) -> list[griffe.Class]:
    found: list[griffe.Class] = []
    for member in obj.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Class):
            found.append(member)
        if isinstance(member, (griffe.Class, griffe.Module)):
            found += _classes(member)
    return found


def hide_private_bases(pkg: griffe.Module) -> None:
    """Show the public bases of every class of ``pkg`` (:func:`public_bases`), after giving a
    class that inherits its ``__init__`` from a private base that ``__init__`` as its own, so
    that its signature and parameters still render."""
    classes = _classes(pkg)
    for cls in classes:
        if "__init__" in cls.members or not any(
            _is_private(getattr(b, "canonical_path", str(b)).rsplit(".", 1)[-1]) for b in cls.bases
        ):
            continue
        init = cls.all_members.get("__init__")
        if init is not None:
            target = init.final_target if isinstance(init, griffe.Alias) else init
            cls.set_member("__init__", griffe.Alias("__init__", target, parent=cls))
    for cls in classes:
        cls.bases = public_bases(cls)


class RstToMarkdown(griffe.Extension):
    """Apply :func:`rst_to_markdown` to every docstring and :func:`hide_private_bases` to the
    package once its object tree is built."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value, obj)

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        # on_object visits members only: the package's own docstring comes here; the package
        # is loaded whole, so every base class can be looked up
        if pkg.docstring is not None:
            pkg.docstring.value = rst_to_markdown(pkg.docstring.value, pkg)
        hide_private_bases(pkg)
