"""A Griffe extension for the API reference: render the reStructuredText bits of docstrings.

interfuse docstrings are Google style but use a few reStructuredText constructs that Markdown
shows literally. Before mkdocstrings renders a docstring, this rewrites

* ``:math:`expr``` to ``$expr$`` and ``.. math::`` blocks to ``$$ … $$`` (pymdownx.arithmatex
  then hands both to MathJax),
* cross-reference roles (``:class:`~pkg.Name```, ``:func:``, ``:meth:``, ``:mod:``,
  ``:data:``, ``:attr:``) to code spans showing the name (the last part with ``~``),
* the escaped space of ``:class:`X`\\ s`` to nothing,
* an ``Example:`` heading to ``Examples:``, the spelling Griffe's Google parser knows, so the
  ``>>>`` lines render as a code block instead of running together as prose.

Roles become code spans rather than links so that a reference to an object outside the site
(``torch.nn.Linear``) cannot break ``mkdocs build --strict``.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):`(~?)([^`]+)`")
_MATH = re.compile(r":math:`([^`]+)`")
_EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")


def _role(match: re.Match[str]) -> str:
    target = match.group(2).strip()
    if target.startswith("!"):
        target = target[1:]
    shown = target.rsplit(".", 1)[-1] if match.group(1) else target
    return f"`{shown}`"


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


def rst_to_markdown(text: str) -> str:
    """Rewrite the reStructuredText math and roles of a docstring as Markdown."""
    text = _math_blocks(text)
    text = _MATH.sub(lambda m: f"${m.group(1).strip()}$", text)
    text = _ROLE.sub(_role, text)
    text = _EXAMPLE.sub(r"\1Examples:", text)
    return text.replace("`\\ ", "`")


class RstToMarkdown(griffe.Extension):
    """Apply :func:`rst_to_markdown` to every docstring once the object tree is built."""

    def on_object(self, *, obj: griffe.Object, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
