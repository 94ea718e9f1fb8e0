"""The workbook's website in a real browser (headless Chromium driven by Playwright).

The site is built from the stored notebooks (``python3 scripts/workbook.py book``); the session
fixture builds it when ``_build/html/index.html`` is missing or older than a source.  Pages are served
from 127.0.0.1 by a thread of ``http.server``; every request to any other host is blocked and
counted as a failure, so the test proves the site works offline (MathJax, fonts and theme included).

Needs Debian's Chromium (``apt-get install chromium``) or ``$LLM_AUCTION_CHROMIUM``; without one
every test here is skipped.  Screenshots go to ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "notebooks"
CONF = ROOT / "docs"
BUILD = ROOT / "_build"
HTML = BUILD / "html"
SHOTS = BUILD / "screenshots"
SPHINX_ARGS = ["-b", "html", "-W", "--keep-going", "--fresh-env", "-q",
               "-c", "docs", "-d", "_build/doctrees", "notebooks", "_build/html"]  # as scripts/workbook.py book

CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL_HINT = "no Chromium found: install one with `apt-get install chromium` (or set LLM_AUCTION_CHROMIUM)"

NOTEBOOKS = sorted(SOURCE.glob("[0-9][0-9]-*.ipynb"))
PAGES = ["index.html", "theory.html", "api.html", "references.html", *(f"{p.stem}.html" for p in NOTEBOOKS)]
READING_ORDER = ["index.html", "theory.html", *(f"{p.stem}.html" for p in NOTEBOOKS), "api.html", "references.html"]
API_MODULES = ["llm_auction_utils.theory", "llm_auction_utils.llm", "llm_auction_utils.workbook.notebook",
               "llm_auction_utils.workbook.parameters", "llm_auction_utils.workbook.plotting",
               "llm_auction_utils.workbook.runner", "llm_auction_utils.workbook.batch"]


def _find_chromium() -> str | None:
    candidates = [os.environ.get("LLM_AUCTION_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                  shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _sources() -> list[Path]:
    """What the site is built from: the pages, the configuration, and the package (api.md's docstrings)."""
    return [*SOURCE.glob("*.ipynb"), *SOURCE.glob("*.md"), *SOURCE.glob("*.bib"), *CONF.glob("*.py"),
            *(ROOT / "llm_auction_utils").rglob("*.py")]


def _stale() -> bool:
    index = HTML / "index.html"
    if not index.exists():
        return True
    built = index.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _sources())


@pytest.fixture(scope="session")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        pytest.skip(INSTALL_HINT)
    pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: install requirements.lock")
    return path


@pytest.fixture(scope="session")
def site(chromium: str) -> Path:
    """The built site; (re)built here when missing or older than a notebook, page or conf.py."""
    if _stale():
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "sphinx", *SPHINX_ARGS], cwd=ROOT,
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"site build failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
        print(f"site built in {time.perf_counter() - started:.0f} s")
    return HTML


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep pytest output clean
        pass


@pytest.fixture(scope="session")
def base_url(site: Path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(chromium: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        # A persistent context with a fresh, throw-away profile directory (= --user-data-dir).
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900}, device_scale_factor=1,
        )
        yield context
        context.close()


class Page:
    """A browser tab that records console errors, page errors and blocked off-site requests."""

    def __init__(self, context, base_url: str):
        self.base_url = base_url
        self.errors: list[str] = []
        self.offsite: list[str] = []
        self.tab = context.new_page()
        self.tab.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.tab.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.tab.on("requestfailed", lambda r: urlsplit(r.url).hostname == "127.0.0.1"
                    and self.errors.append(f"request failed: {r.url} ({r.failure})"))
        self.tab.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.offsite.append(url)
            route.abort()

    def open(self, name: str) -> None:
        response = self.tab.goto(self.base_url + name, wait_until="load")
        assert response is not None and response.ok, f"{name}: HTTP {response and response.status}"
        self.settle()

    def settle(self) -> None:
        # MathJax typesets after load; wait for it, then for every image (none are lazy here, but be sure).
        self.tab.wait_for_function("() => !document.querySelector('.math') || "
                                   "(window.MathJax && MathJax.startup && MathJax.startup.document)", timeout=30_000)
        self.tab.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        self.tab.evaluate("""() => Promise.all([...document.images].map(img => {
            img.loading = 'eager';
            return img.complete ? null : new Promise(done => { img.onload = img.onerror = done; });
        }))""")

    def close(self) -> None:
        self.tab.close()


@pytest.fixture
def page(browser, base_url):
    tab = Page(browser, base_url)
    yield tab
    tab.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline_without_errors(page: Page, name: str) -> None:
    page.open(name)
    state = page.tab.evaluate("""() => ({
        title: document.title,
        math: document.querySelectorAll('.math').length,
        typeset: document.querySelectorAll('.math mjx-container').length,
        mathErrors: document.querySelectorAll('mjx-merror').length,
        rawTex: [...document.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'))
                 .map(m => m.textContent.slice(0, 60)),
        images: [...document.images].map(img => ({src: img.getAttribute('src'), w: img.naturalWidth})),
        next: document.querySelector('a.right-next')?.getAttribute('href') ?? null,
    })""")
    assert not page.errors, f"{name}: browser errors: {page.errors}"
    assert not page.offsite, f"{name}: requests off 127.0.0.1 (the site must work offline): {page.offsite}"
    assert state["typeset"] == state["math"], f"{name}: math left as raw TeX: {state['rawTex'][:5]}"
    assert state["mathErrors"] == 0, f"{name}: {state['mathErrors']} MathJax errors"
    position = READING_ORDER.index(name)
    expected_next = READING_ORDER[position + 1] if position + 1 < len(READING_ORDER) else None
    assert state["next"] == expected_next, f"{name}: 'next' goes to {state['next']}, not {expected_next}"
    broken = [img["src"] for img in state["images"] if img["w"] == 0]
    assert not broken, f"{name}: images that did not load: {broken}"
    if name.startswith(tuple("0123456789")):
        notebook = SOURCE / name.replace(".html", ".ipynb")
        pngs = sum("image/png" in out.get("data", {})
                   for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
                   for out in cell.get("outputs", []))
        assert len(state["images"]) >= pngs, f"{name}: {pngs} PNG outputs, {len(state['images'])} images shown"


def test_api_reference_lists_every_public_name(page: Page) -> None:
    """api.html documents each name of the three layers' ``__all__`` (autodoc, from the docstrings)."""
    import importlib

    page.open("api.html")
    documented = set(page.tab.evaluate("() => [...document.querySelectorAll('dt.sig[id]')].map(d => d.id)"))
    missing = []
    for module_name in API_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not any(d == f"{module_name}.{name}" or d.endswith(f".{name}") for d in documented):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names missing from the API reference: {missing}"
    assert page.tab.locator("dt.sig").count() >= 100 and not page.errors and not page.offsite


def test_math_is_typeset_by_local_mathjax(page: Page) -> None:
    page.open("theory.html")
    src = page.tab.evaluate("() => [...document.scripts].map(s => s.src).find(s => s.includes('mathjax')) || ''")
    assert src.startswith(page.base_url) and urlsplit(src).path.endswith("/tex-chtml.js"), src
    assert page.tab.locator(".math mjx-container").count() >= 5


def test_next_link_reaches_the_next_notebook(page: Page) -> None:
    """Click 'next' on the first notebook; every page's 'next' target is checked by the test above."""
    first, second = READING_ORDER[2], READING_ORDER[3]
    page.open(first)
    with page.tab.expect_navigation(wait_until="domcontentloaded"):
        page.tab.locator("a.right-next").first.click()
    assert urlsplit(page.tab.url).path.endswith("/" + second)
    assert page.tab.locator("h1").first.inner_text().startswith(second[:2])
    assert not page.errors and not page.offsite


def _first_notebook_with_solution() -> Path | None:
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        if any("solution" in c.get("metadata", {}).get("tags", []) for c in cells):
            return notebook
    return None


def test_solutions_are_collapsed_and_open_on_click(page: Page) -> None:
    notebook = _first_notebook_with_solution()
    if notebook is None:
        pytest.skip("no notebook has a cell tagged 'solution' yet")
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    kinds = {c["cell_type"] for c in cells if "solution" in c.get("metadata", {}).get("tags", [])}
    page.open(f"{notebook.stem}.html")
    if "code" in kinds:  # myst-nb hide-cell: <details> closed, summary "Show solution"
        details = page.tab.locator(".cell.tag_solution details").first
        assert details.get_attribute("open") is None
        code = details.locator(".cell_input").first
        assert not code.is_visible()
        details.locator("summary").first.click()
        assert details.get_attribute("open") is not None
        assert code.is_visible()
    if "markdown" in kinds:  # sphinx-togglebutton: admonition body hidden until its button is clicked
        admonition = page.tab.locator(".admonition.dropdown").first
        body = admonition.locator("p:not(.admonition-title)").first
        assert not body.is_visible()
        admonition.locator("button.toggle-button").first.click()
        body.wait_for(state="visible", timeout=5_000)
    assert not page.errors and not page.offsite


@pytest.mark.parametrize("name", ["index.html", "06-hawaii-ad-creatives.html"])
def test_screenshot(page: Page, name: str) -> None:
    if name not in PAGES:
        pytest.skip(f"{name} is not part of this workbook")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.open(name)
    target = SHOTS / name.replace(".html", ".png")
    page.tab.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
