"""The snippet in real headless Chromium: a landing page on one origin, the hub on another."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from tests.browser import CHROMIUM_ARGS
from tests.factories import make_tenant
from tests.tracking_factories import make_pool
from tracking.db import utcnow
from tracking.models import VisitSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "_artifacts"
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


@pytest.fixture
def tenant(db):
    t = make_tenant(db, "Acme")
    t.site.domains = ["127.0.0.1"]
    t.site.replace_numbers = ["+74951234567", "+78005553535"]
    db.commit()
    make_pool(db, t.site, 3)
    return t


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


def tag(hub_url: str, key: str, config: str = "") -> str:
    cfg = f"<script>window.OtkudaConfig = {config};</script>" if config else ""
    return f'{cfg}<script async src="{hub_url}/t/v1/{key}.js"></script>'


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Acme</title>{tag}</head><body>
<h1>Acme windows</h1>
<p id="p1">Call +7 (495) 123-45-67 today</p>
<p id="p2">Or 8 495 123 45 67, 8-495-123-45-67 and (495) 123-45-67 or +74951234567.</p>
<p id="p3">Free line: 8 (800) 555-35-35</p>
<p id="other">Service desk +7 (495) 999-00-00, order 84951234567890</p>
<p><a id="link" href="tel:84951234567">8 (495) 123-45-67</a>
 <a id="link2" href="tel:+7-800-555-35-35">call free</a></p>
<div data-otkuda-ignore id="ignored"><p>Legal: 8 (495) 123-45-67
 <a id="ilink" href="tel:+74951234567">x</a></p></div>
<p>Your code: <b id="promo" data-otkuda-promo>-</b></p>
<div id="late"></div>
<script>
window.seen = [];
document.addEventListener("otkuda:number", function (e) {{
  window.seen.push(["event", e.detail.number.e164]);
}});
</script>
</body></html>"""


def _session(db, public_id: str) -> VisitSession:
    db.expire_all()
    return db.scalar(select(VisitSession).where(VisitSession.public_id == public_id))


def test_swaps_every_format_link_and_number_and_keeps_the_rest(
    browser, hub, landing, tenant, db, open_page
) -> None:
    tenant.site.promo_codes_enabled = True
    db.commit()
    analytics = (
        '<script>document.cookie = "_ym_uid=1700000000123456789; path=/";'
        'document.cookie = "_ga=GA1.1.111.222; path=/";</script>'
    )
    landing.pages["/"] = PAGE.format(tag=analytics + tag(hub, tenant.site.site_key))
    p = open_page()
    p.open(landing.url + "/?utm_source=yandex&utm_medium=cpc&gclid=G1")
    state = p.page.evaluate("({status: Otkuda.status, number: Otkuda.number, promo: Otkuda.promo})")
    assert state["status"] == "ready"
    e164, shown = state["number"]["e164"], state["number"]["display"]
    assert e164 != "+74951234567" and shown.startswith("+7 (")
    assert p.text("#p1") == f"Call {shown} today"
    assert p.text("#p2") == f"Or {shown}, {shown} and {shown} or {shown}."
    assert p.text("#p3") == f"Free line: {shown}"
    assert p.text("#other") == "Service desk +7 (495) 999-00-00, order 84951234567890"
    assert p.page.get_attribute("#link", "href") == f"tel:{e164}" and p.text("#link") == shown
    assert p.page.get_attribute("#link2", "href") == f"tel:{e164}"
    assert p.text("#ignored") == "Legal: 8 (495) 123-45-67 x"
    assert p.page.get_attribute("#ilink", "href") == "tel:+74951234567"
    assert p.text("#promo") == state["promo"] and len(state["promo"]) == 5
    assert p.page.evaluate("window.seen") == [["event", e164]]
    got = p.page.evaluate("new Promise(r => Otkuda.onNumber(d => r([d.number.e164, d.promo_code])))")
    assert got == [e164, state["promo"]]
    # What the hub recorded about this visit.
    session = db.scalar(select(VisitSession).where(VisitSession.visitor_id.is_not(None)))
    assert (session.utm_source, session.gclid, session.device) == ("yandex", "G1", "desktop")
    assert (session.ym_client_id, session.ga_client_id) == ("1700000000123456789", "111.222")
    assert session.screen and "x" in session.screen
    assert session.number.e164 == e164 and session.landing_url.startswith(landing.url)
    assert p.console_errors() == []


def test_late_content_observer_and_rescan(browser, hub, landing, tenant, open_page) -> None:
    landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key))
    p = open_page()
    p.open(landing.url + "/")
    shown = p.page.evaluate("Otkuda.number.display")
    p.page.evaluate(
        """() => {
        const d = document.createElement('div');
        d.id = 'added';
        d.innerHTML = '<span>Call 8 (495) 123-45-67</span> <a id="alink" href="tel:84951234567">now</a>';
        document.getElementById('late').appendChild(d);
        const ig = document.createElement('div');
        ig.id = 'added-ignored';
        ig.setAttribute('data-otkuda-ignore', '');
        ig.textContent = '8 (495) 123-45-67';
        document.getElementById('late').appendChild(ig);
    }"""
    )
    p.page.wait_for_function(f"document.getElementById('added').innerText.includes({shown!r})")
    assert p.text("#added") == f"Call {shown} now"
    assert p.page.get_attribute("#alink", "href").startswith("tel:+7")
    assert p.text("#added-ignored") == "8 (495) 123-45-67"
    # rescan() swaps synchronously, before the observer's callback could run.
    sync_result = p.page.evaluate(
        """() => {
        const el = document.getElementById('p1');
        el.firstChild.nodeValue = 'New: +7 495 123-45-67';
        Otkuda.rescan();
        return el.textContent;
    }"""
    )
    assert sync_result == f"New: {shown}"
    assert p.console_errors() == []


def test_returning_visitor_keeps_number_and_different_visitors_differ(
    browser, hub, landing, tenant, db, open_page
) -> None:
    landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key))
    first = open_page()
    first.open(landing.url + "/")
    number = first.page.evaluate("Otkuda.number.e164")
    first.page.reload()
    first.page.wait_for_function("window.Otkuda && Otkuda.status !== 'pending'")
    assert first.page.evaluate("Otkuda.number.e164") == number
    cookie = [c for c in first.context.cookies() if c["name"] == "otkuda_vid"]
    assert cookie and cookie[0]["domain"] == "127.0.0.1"
    second = open_page()  # a new browser context: another visitor
    second.open(landing.url + "/")
    assert second.page.evaluate("Otkuda.number.e164") != number
    assert db.scalar(select(VisitSession.id).where(VisitSession.visitor_id == cookie[0]["value"])) is not None


def test_heartbeats_while_visible_and_release_on_leaving(
    browser, hub, landing, tenant, db, open_page
) -> None:
    landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key, "{heartbeat: 0.2}"))
    landing.pages["/next"] = "<!doctype html><p>elsewhere</p>"
    p = open_page()
    p.open(landing.url + "/")
    assert p.page.evaluate("Otkuda.status") == "ready"
    session = db.scalars(select(VisitSession)).one()
    started = session.last_seen_at
    deadline = time.monotonic() + 10
    while _session(db, session.public_id).last_seen_at == started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(db, session.public_id).last_seen_at > started
    # A tab coming back into view sends a heartbeat at once.
    seen = _session(db, session.public_id).last_seen_at
    p.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    deadline = time.monotonic() + 10
    while _session(db, session.public_id).last_seen_at == seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session(db, session.public_id).last_seen_at > seen
    assert _session(db, session.public_id).left_at is None
    p.page.goto(landing.url + "/next")
    deadline = time.monotonic() + 10
    while _session(db, session.public_id).left_at is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(db, session.public_id).left_at is not None
    assert p.console_errors() == []


def test_hub_down_keeps_the_page_as_it_was(browser, hub, app, landing, tenant, open_page) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    # The snippet comes from the hub, but every call it makes goes to a port nobody listens on.
    app.config["BASE_URL"] = dead
    landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key))
    p = open_page()
    p.open(landing.url + "/")
    assert p.page.evaluate("Otkuda.status") == "failed"
    assert p.text("#p1") == "Call +7 (495) 123-45-67 today"
    assert p.page.get_attribute("#link", "href") == "tel:84951234567"
    assert p.page.evaluate("window.seen") == []
    # The browser itself logs the refused connection; the snippet adds no error of its own.
    assert p.console_errors(allow_network_failures=True) == []


def test_hub_slow_times_out_and_keeps_the_page(browser, hub, app, landing, tenant, open_page) -> None:
    hole = Blackhole()
    try:
        app.config["BASE_URL"] = hole.url
        landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key, "{timeout: 700}"))
        p = open_page()
        p.open(landing.url + "/")
        assert p.page.evaluate("Otkuda.status") == "failed"
        assert p.text("#p1") == "Call +7 (495) 123-45-67 today"
        assert p.text("#p3") == "Free line: 8 (800) 555-35-35"
        assert p.console_errors(allow_network_failures=True) == []
    finally:
        hole.close()


def test_foreign_page_gets_nothing(browser, hub, landing, tenant, db, open_page) -> None:
    tenant.site.domains = ["acme.example"]
    db.commit()
    landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key))
    p = open_page()
    p.open(landing.url + "/")
    assert p.page.evaluate("Otkuda.status") == "failed"
    assert p.text("#p1") == "Call +7 (495) 123-45-67 today"
    assert db.scalars(select(VisitSession)).all() == []


def test_expired_hold_gets_a_new_number_swapped_in(browser, hub, landing, db, open_page) -> None:
    t = make_tenant(db, "Sleepy")
    t.site.domains = ["127.0.0.1"]
    t.site.replace_numbers = ["+74951234567"]
    db.commit()
    make_pool(db, t.site, 2, hold_seconds=1, grace_seconds=1)
    landing.pages["/"] = PAGE.format(tag=tag(hub, t.site.site_key))
    p = open_page()
    p.open(landing.url + "/")
    first = p.page.evaluate("Otkuda.number")
    assert p.text("#p1") == f"Call {first['display']} today"
    session = db.scalars(select(VisitSession)).one()
    # Let the one-second hold run out, as in a tab left in the background, then bring the tab back.
    deadline = time.monotonic() + 10
    while _session(db, session.public_id).hold_until >= utcnow() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.1)
    p.page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    p.page.wait_for_function(f"Otkuda.number && Otkuda.number.e164 !== {first['e164']!r}", timeout=15000)
    second = p.page.evaluate("Otkuda.number")
    # The number shown before is replaced too, wherever the snippet had put it.
    p.page.wait_for_function(f"document.getElementById('p1').innerText.includes({second['display']!r})")
    assert p.text("#p1") == f"Call {second['display']} today"
    assert p.page.get_attribute("#link", "href") == f"tel:{second['e164']}"
    assert p.page.evaluate("window.seen") == [["event", first["e164"]], ["event", second["e164"]]]
    assert len(db.scalars(select(VisitSession)).all()) == 2
    assert p.console_errors() == []
