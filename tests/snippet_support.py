"""The snippet's browser tests' shared parts: a landing site, a hung hub, Chromium pages, the tag, shapes."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.serving import make_server

from hub.public import snippet_tag
from tests.browser import ARTIFACTS, CHROMIUM_ARGS

NETWORK_FAILURE = "Failed to load resource"


class Landing:
    """A tiny site on its own port: ``pages[path] = html``."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                if self.path == "/favicon.ico":
                    self.send_response(204)
                    self.end_headers()
                    return
                if body is None:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Blackhole:
    """Accepts connections and never answers: a hub that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def hub(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def landing() -> Iterator[Landing]:
    site = Landing()
    yield site
    site.close()


class Page:
    def __init__(self, browser, name: str) -> None:
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.name = name
        self.console: list[str] = []
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function("window.Otkuda && window.Otkuda.status !== 'pending'", timeout=15000)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def close(self) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            self.page.screenshot(path=str(ARTIFACTS / f"{self.name}.png"), full_page=True)
        finally:
            self.context.close()

    def console_errors(self, allow_network_failures: bool = False) -> list[str]:
        errs = [m for m in self.console if m.startswith(("error", "warning"))]
        if allow_network_failures:
            errs = [m for m in errs if NETWORK_FAILURE not in m]
        return errs + self.errors


@pytest.fixture
def open_page(browser, request) -> Iterator:
    pages: list[Page] = []

    def make() -> Page:
        p = Page(browser, f"{request.node.name}-{len(pages)}")
        pages.append(p)
        return p

    yield make
    for p in pages:
        p.close()


def tag(hub_url: str, key: str, config: str = "", api_url: str | None = None) -> str:
    """The tag the site API gives; with ``api_url`` a direct tag whose calls go to another address."""
    cfg = f"<script>window.OtkudaConfig = {config};</script>" if config else ""
    if api_url:
        src = f"{hub_url}/t/v1/otkuda.js"
        return f'{cfg}<script async src="{src}" data-site="{key}" data-hub="{api_url}"></script>'
    return cfg + snippet_tag(hub_url, key)


def shaped(text: str, e164: str) -> str:
    """``text`` (a Russian number in any written shape) with the digits of ``e164`` in the same shape."""
    national, digits = e164[2:], re.sub(r"\D", "", text)
    new = {13: "007" + national, 11: digits[:1] + national, 10: national, 7: national[3:]}[len(digits)]
    it = iter(new)
    return re.sub(r"\d", lambda m: next(it), text)
