"""The built documentation site reads offline: no page loads a script, stylesheet, font or image
from another host, and its formulas render in headless Chromium with the network off.

The site is built once (``mkdocs build --strict``) into a temporary folder. The Chromium
checks run where a Chromium is installed (``apt-get install chromium``) and skip elsewhere;
MathJax comes from ``npm ci`` (``make docs`` and ``make test`` run it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the docs extra builds the site")

ROOT = Path(__file__).resolve().parents[2]
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MATHJAX.is_file():
        pytest.skip("MathJax is not installed: run `npm ci` (make docs does)")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


class _Resources(HTMLParser):
    """Every URL a page makes the browser fetch by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "audio", "video", "source") and a.get("src"):
            self.urls.append(str(a["src"]))
        rel = (a.get("rel") or "").lower()
        if tag == "link" and a.get("href") and rel in ("stylesheet", "preload", "modulepreload"):
            self.urls.append(str(a["href"]))


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    remote: dict[str, list[str]] = {}
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        found = [u for u in parser.urls if REMOTE.match(u)]
        if found:
            remote[str(page.relative_to(site))] = found
    for sheet in site.rglob("*.css"):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        found = re.findall(r"(?:@import\s+|url\()\s*['\"]?((?:https?:)?//[^'\")\s]+)", text)
        if found:
            remote[str(sheet.relative_to(site))] = found
    assert not remote, f"remote resources: {remote}"
    assert (site / "javascripts" / "vendor" / "mathjax" / "tex-svg-full.js").is_file()


# -- headless Chromium, network off ---------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def _offline_prefix() -> list[str]:
    """``unshare -rn`` (a network namespace with no interface at all) where it works."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def render(page: Path) -> str:
    """The DOM of ``page`` after its scripts ran, in headless Chromium with the network off."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    done = subprocess.run(
        [
            *_offline_prefix(),
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            # no host answers, should the namespace be missing: every request but file:// fails
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=30000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _formulas(page: Path) -> int:
    return page.read_text(encoding="utf-8").count('class="arithmatex"')


@pytest.mark.parametrize("name", ["elementwise", "api"])
def test_formulas_render_offline(site: Path, name: str) -> None:
    page = site / name / "index.html"
    expected = _formulas(page)
    assert expected > 5
    dom = render(page)
    assert dom.count("<mjx-container") == expected
    assert '<g data-mml-node="merror"' not in dom  # no TeX error either


def test_a_remote_mathjax_would_not_render_offline(site: Path, tmp_path: Path) -> None:
    """The control: the same page loading MathJax from a CDN shows raw TeX, so the check
    above really runs without a network."""
    source = site / "elementwise" / "index.html"
    text = source.read_text(encoding="utf-8")
    local = re.search(r'src="([^"]*tex-svg-full\.js)"', text)
    assert local is not None
    remote = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg-full.js"
    copy = site / "elementwise" / "remote-control.html"
    copy.write_text(text.replace(local.group(1), remote), encoding="utf-8")
    try:
        dom = render(copy)
    finally:
        copy.unlink()
    assert "<mjx-container" not in dom
    assert "\\(" in dom  # the TeX stays as written


def test_api_page_shows_no_internals(site: Path) -> None:
    """reST roles render as links or code, private bases stay hidden, and the page says
    nothing about how it is generated."""
    page = (site / "api" / "index.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", page)
    roles = re.findall(r":(?:mod|class|func|meth|data|attr|obj|exc|math):`?\S{0,40}", text)
    assert not roles, roles[:5]
    bases = re.findall(r"Bases:\s*([^\n]*)", text)
    assert bases and not [b for b in bases if re.search(r"(^|[\s,])_[A-Za-z]", b)], bases
    assert "tests.docs" not in text
    # a cross-reference in a package docstring became a link to its entry
    assert 'href="#interfuse.tinybig"' in page
    # a class whose __init__ comes from a private base keeps its parameters
    var = text[text.index("VarFusion(") :][:400]
    assert "correction: int = 1" in var
