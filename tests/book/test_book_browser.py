"""Open every page of the built book in headless Chromium, served on loopback.

Checks what a reader would notice: pages load with no console errors and no request to any
other host, every image has loaded, every formula is typeset by the bundled MathJax, and the
navigation reaches every chapter. Needs `make book` first (`make test` does it) and Debian's
chromium; a missing browser or book is a failure, not a skip.
"""

from __future__ import annotations

import functools
import http.server
import pathlib
import re
import shutil
import threading
import urllib.parse

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.book


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part.get("chapters", [])]
    return pages


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Debian's chromium is not installed: run `make browser` (make test does it)"
    return path


@pytest.fixture(scope="module")
def server():
    assert (HTML / "index.html").is_file(), "the book is not built: run `make book` first"
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _visit(browser, url: str):
    """Load url; return (page, console errors, foreign requests). Foreign requests are blocked."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        host = urllib.parse.urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            r.continue_()
        else:
            foreign.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    return context, page, errors, foreign


@pytest.mark.parametrize("doc", _toc_pages())
def test_page_renders_offline(server, browser, doc):
    url = f"{server}/{doc}.html" if doc != _toc_pages()[0] else f"{server}/index.html"
    context, page, errors, foreign = _visit(browser, url)
    try:
        assert not foreign, f"{doc}: requests to other hosts: {foreign}"
        # MathJax 3 sets MathJax.startup.promise; wait for typesetting to finish.
        has_math = page.evaluate("document.querySelectorAll('.math, .amsmath').length") > 0
        if has_math:
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("MathJax.startup.promise")
            typeset = page.evaluate("document.querySelectorAll('mjx-container').length")
            assert typeset > 0, f"{doc}: formulas present but none typeset by MathJax"
        text = page.evaluate("document.querySelector('main, article, body').innerText")
        raw = re.findall(r"\$\$|\\\(|\\\[", text)
        assert not raw, f"{doc}: untypeset math left in the page text: {raw[:5]}"
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
            ".map(i => i.src)"
        )
        assert not broken, f"{doc}: images that did not load: {broken}"
        assert not errors, f"{doc}: console errors: {errors}"
    finally:
        context.close()


def test_navigation_reaches_every_chapter(server, browser):
    context, page, errors, foreign = _visit(browser, f"{server}/index.html")
    try:
        hrefs = page.evaluate(
            "Array.from(document.querySelectorAll('nav a, .bd-sidebar a')).map(a => a.href)"
        )
        reached = {urllib.parse.urlsplit(h).path.lstrip("/").removesuffix(".html") for h in hrefs}
        missing = [d for d in _toc_pages()[1:] if d not in reached]
        assert not missing, f"the navigation does not link to: {missing}"
        for doc in _toc_pages()[1:]:
            page.goto(f"{server}/{doc}.html")
            assert page.title(), f"{doc} has no title"
            assert page.locator("h1").count() >= 1, f"{doc} has no heading"
    finally:
        context.close()
