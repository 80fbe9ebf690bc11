"""A MkDocs hook that serves MathJax from the site itself, so that formulas render offline.

MathJax comes from npm (``package.json`` pins it; ``npm ci`` installs it into
``node_modules/``, and ``make docs`` runs that). The hook adds its single-file SVG build,
``tex-svg-full.js`` (every TeX extension inside, no fonts or other files fetched at run time),
to the site as :data:`SITE_PATH`, which ``mkdocs.yml`` lists in ``extra_javascript`` after the
settings in ``javascripts/mathjax.js``. No page then needs a network to show its math.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: Where the site serves MathJax (relative to the site root).
SITE_PATH = "javascripts/vendor/mathjax/tex-svg-full.js"
#: The file in the npm package.
PACKAGE_FILE = Path("node_modules", "mathjax", "es5", "tex-svg-full.js")


def on_files(files: Files, *, config: Any) -> Files:
    root = Path(config.config_file_path).parent
    source = root / PACKAGE_FILE
    if not source.is_file():
        raise PluginError(
            f"MathJax is not installed ({source} is missing): run `npm ci` in {root} "
            "(make docs does), which installs the version package.json pins"
        )
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(source)))
    return files
