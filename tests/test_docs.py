"""The documentation site builds in strict mode and every page works in a real browser.

``mkdocs build --strict`` (every link, anchor and API reference resolves; every page under
docs/ is in the nav), then the site is served from a localhost ``http.server`` and each page
opened in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
Selenium with an explicit driver path, so nothing is downloaded). Checked: each page loads
without a severe console message and fetches nothing from outside the site; the API page
documents every name in every public module's ``__all__``; the notebook pages show their
plots (images that decoded to a nonzero size).

Needs ``pip install -e ".[docs]"`` and Chromium; without them the tests skip, unless
``JAXFUNC_REQUIRE_DOCS=1`` (set by the CI's docs leg), which turns the skip into a failure.
``JAXFUNC_DOCS_SCREENSHOTS=DIR`` saves the front page and the API page as PNGs there.
Deselect with ``-m "not docs"``.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("JAXFUNC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JAXFUNC_CHROMEDRIVER", "/usr/bin/chromedriver")
REQUIRED = os.environ.get("JAXFUNC_REQUIRE_DOCS") == "1"
BUILD_TIMEOUT_S = 600  # ~15 s alone; this is for a loaded 2-core machine
# Flags for a browser that talks to nothing but the local server.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]


def _need(ok: bool, reason: str) -> None:
    if ok:
        return
    if REQUIRED:
        pytest.fail(f"{reason}; JAXFUNC_REQUIRE_DOCS=1 says these tests must run here")
    pytest.skip(reason)


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def public_api() -> dict[str, list[str]]:
    """Module name -> the public names it documents: ``jaxfunc`` and every module reachable
    through ``__all__``, each with its ``__all__`` less submodules and dunders."""
    api: dict[str, list[str]] = {}

    def visit(name: str) -> None:
        module = importlib.import_module(name)
        names = []
        for n in module.__all__:
            value = getattr(module, n)
            if isinstance(value, types.ModuleType):
                visit(value.__name__)
            elif not n.startswith("__"):
                names.append(n)
        if names:
            api[name] = names

    visit("jaxfunc")
    return api


def _notebook_images(path: Path) -> int:
    cells = json.loads(path.read_text())["cells"]
    return sum(
        "image/png" in out.get("data", {})
        for cell in cells
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    missing = [
        m
        for m in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_jupyter")
        if not _have(m.split(".")[0]) or not _have(m)
    ]
    _need(not missing, f"{', '.join(missing)} not installed (pip install -e '.[docs]')")
    work = tmp_path_factory.mktemp("docs")
    out = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", ROOT / "mkdocs.yml", "-d", out],
        cwd=work,  # mkdocs-jupyter keeps a cache in the working directory
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def server(site: Path):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    _need(_have("selenium"), "selenium not installed (pip install -e '.[docs]')")
    _need(
        Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file(),
        f"no {CHROMIUM} or {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager (which would download one) is never run.
    service = Service(
        executable_path=CHROMEDRIVER,
        log_output=str(tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"),
    )
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _pages(site: Path) -> list[str]:
    return sorted(
        p.relative_to(site).as_posix()
        for p in site.rglob("*.html")
        if p.name != "404.html" and "assets" not in p.parts
    )


def _open(browser, server: str, page: str) -> list[dict]:
    """Load the page; return its console messages."""
    browser.get_log("browser")  # drop what earlier pages left
    browser.get(server + page)
    browser.execute_script("return document.readyState")  # after the load event
    return browser.get_log("browser")


def _expected_pages() -> list[str]:
    docs = sorted(p.with_suffix(".html").name for p in (ROOT / "docs").glob("*.md"))
    notebooks = sorted(f"notebooks/{p.stem}.html" for p in (ROOT / "notebooks").glob("*.ipynb"))
    return [*docs, "api.html", *notebooks]


def test_every_page_was_built(site):
    missing = set(_expected_pages()) - set(_pages(site))
    assert not missing, f"not built: {sorted(missing)}"


@pytest.mark.parametrize("page", _expected_pages())
def test_page_loads_cleanly(browser, server, site, page):
    messages = _open(browser, server, page)
    severe = [m for m in messages if m["level"] == "SEVERE"]
    assert not severe, f"{page}: console errors {severe}"
    assert browser.find_elements("css selector", "article h1"), f"{page} has no title"
    # nothing fetched from anywhere but this site (no web fonts, no CDN scripts)
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    foreign = [r for r in resources if not r.startswith(server) and not r.startswith("data:")]
    assert not foreign, f"{page} fetched {foreign}"


def test_api_page_documents_every_public_name(browser, server, site):
    _open(browser, server, "api.html")
    api = public_api()
    assert {"jaxfunc", "jaxfunc.func", "jaxfunc.autograd.functional"} <= set(api)
    missing = []
    for module, names in api.items():
        for name in names:
            obj = getattr(importlib.import_module(module), name)
            heading = browser.find_elements("id", f"{module}.{name}")
            if not heading or name not in heading[0].text:
                missing.append(f"{module}.{name} (no heading)")
                continue
            # the docstring's first words are shown under the heading
            doc = " ".join((obj.__doc__ or "").split())
            if not doc:
                missing.append(f"{module}.{name} (no docstring)")
                continue
            body = browser.execute_script(
                "return arguments[0].closest('.doc-object').innerText", heading[0]
            )
            first_words = " ".join(doc.replace("`", "").replace("*", "").split()[:3])
            if first_words not in " ".join(body.split()):
                missing.append(f"{module}.{name} (docstring {first_words!r} not shown)")
    assert not missing, f"api.html lacks: {missing}"
    # doctest examples are shown as code blocks
    assert browser.find_elements("css selector", ".doc-object .highlight code")


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_notebook_page_shows_its_outputs(browser, server, site, notebook):
    page = f"notebooks/{Path(notebook).stem}.html"
    _open(browser, server, page)
    cells = browser.find_elements("css selector", ".jp-CodeCell")
    assert cells, f"{page} shows no code cells"
    want = _notebook_images(ROOT / "notebooks" / notebook)
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('.jp-OutputArea img'))"
        ".map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    shown = [s for s in sizes if s[0] and s[1] > 0 and s[2] > 0]
    assert len(shown) == want == len(sizes), f"{page}: {want} plots in the notebook, {sizes}"
    outputs = browser.find_elements("css selector", ".jp-OutputArea-output")
    assert outputs, f"{page} shows no outputs"


def test_some_notebook_has_a_plot():
    assert any(_notebook_images(p) for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_benchmark_plot_is_shown(browser, server, site):
    _open(browser, server, "benchmarks.html")
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('article img'))"
        ".map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    assert any(src.endswith("cpu_vs_n.png") and width > 0 for src, width in sizes), sizes


@pytest.mark.parametrize("page", ["index.html", "api.html"])
def test_screenshot(browser, server, site, page, tmp_path):
    _open(browser, server, page)
    target = tmp_path / f"{Path(page).stem}.png"
    assert browser.save_screenshot(str(target))
    assert target.stat().st_size > 10_000  # a rendered page, not an empty canvas
    keep = os.environ.get("JAXFUNC_DOCS_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, Path(keep) / target.name)
