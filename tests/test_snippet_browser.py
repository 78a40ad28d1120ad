"""The snippet in real headless Chromium: a landing page on one origin, the hub on another."""

from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import select

from tests.factories import make_pool, make_tenant
from tests.snippet_support import Blackhole, shaped, tag
from tracking.db import utcnow
from tracking.models import VisitSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def tenant(db):
    t = make_tenant(db, "Acme")
    t.site.domains = ["127.0.0.1"]
    t.site.replace_numbers = ["+74951234567", "+78005553535"]
    db.commit()
    make_pool(db, t.site, 3)
    return t


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
    # Each occurrence keeps the shape the site wrote it in.
    forms = ["8 495 123 45 67", "8-495-123-45-67", "(495) 123-45-67", "+74951234567"]
    assert p.text("#p2") == "Or {}, {} and {} or {}.".format(*(shaped(f, e164) for f in forms))
    assert p.text("#p3") == f"Free line: {shaped('8 (800) 555-35-35', e164)}"
    assert p.text("#other") == "Service desk +7 (495) 999-00-00, order 84951234567890"
    assert p.page.get_attribute("#link", "href") == f"tel:{shaped('84951234567', e164)}"
    assert p.text("#link") == shaped("8 (495) 123-45-67", e164)
    assert p.page.get_attribute("#link2", "href") == f"tel:{shaped('+7-800-555-35-35', e164)}"
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
    e164 = p.page.evaluate("Otkuda.number.e164")
    shown = shaped("8 (495) 123-45-67", e164)
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
    assert p.page.get_attribute("#alink", "href") == f"tel:{shaped('84951234567', e164)}"
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
    assert sync_result == f"New: {shaped('+7 495 123-45-67', e164)}"
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
    landing.pages["/"] = PAGE.format(tag=tag(hub, tenant.site.site_key, api_url=dead))
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
        landing.pages["/"] = PAGE.format(
            tag=tag(hub, tenant.site.site_key, "{timeout: 700}", api_url=hole.url)
        )
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
    assert p.page.get_attribute("#link", "href") == f"tel:{shaped('84951234567', second['e164'])}"
    assert p.text("#link") == shaped("8 (495) 123-45-67", second["e164"])
    assert p.page.evaluate("window.seen") == [["event", first["e164"]], ["event", second["e164"]]]
    assert len(db.scalars(select(VisitSession)).all()) == 2
    assert p.console_errors() == []
