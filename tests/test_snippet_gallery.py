"""The snippet on a gallery of realistic pages (tests/snippet_gallery/), in real Chromium.

Each page is opened twice: without the snippet (what the site shows) and with it. Every text node and every
attribute is compared: the numbers the page lists in its ``#expect`` block must show the session's number
digit for digit in the shape they were written in, inside the same nodes; everything else must be as it was.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.factories import make_pool, make_tenant
from tests.snippet_support import Blackhole, shaped, tag
from tracking.models import TrackingNumber, VisitSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GALLERY = Path(__file__).parent / "snippet_gallery"
MARKS = "?utm_source=yandex&utm_medium=cpc&utm_campaign=okna"

# Every text node (open shadow roots included) and every attribute, in document order.
SNAPSHOT = """() => {
  const texts = [], attrs = [];
  (function walk(root) {
    const tw = document.createTreeWalker(root, 5);
    let n;
    while ((n = tw.nextNode())) {
      if (n.nodeType === 3) {
        if (!n.parentElement || !n.parentElement.closest("script, style")) texts.push(n.nodeValue);
      } else if (!n.matches("script[data-site]")) {
        for (const a of n.attributes) attrs.push([n.tagName, a.name, a.value]);
        if (n.shadowRoot) walk(n.shadowRoot);
      }
    }
  })(document.body);
  return {texts, attrs};
}"""


@pytest.fixture
def tenant(db):
    t = make_tenant(db, "Okna")
    t.site.domains = ["127.0.0.1"]
    t.site.replace_numbers = ["+74951234567", "+78005553535"]
    t.site.swap_attributes = ["data-phone"]
    db.commit()
    make_pool(db, t.site, 3)
    return t


def page_html(name: str, tag_html: str) -> str:
    return (GALLERY / f"{name}.html").read_text(encoding="utf-8").replace("<!--OTKUDA-->", tag_html)


def expected(before: dict, expect: dict, e164: str) -> tuple[str, list]:
    """The page's text with each listed occurrence, in order, in its own shape; and its attributes."""
    joined, out, pos = "".join(before["texts"]), [], 0
    for occurrence in expect["text"]:
        at = joined.index(occurrence, pos)
        out += [joined[pos:at], shaped(occurrence, e164)]
        pos = at + len(occurrence)
    out.append(joined[pos:])

    def attr(value: str) -> str:
        if value not in expect["attrs"]:
            return value
        return "tel:" + shaped(value[4:], e164) if value.startswith("tel:") else shaped(value, e164)

    return "".join(out), [[t, n, attr(v)] for t, n, v in before["attrs"]]


def open_both(landing, hub, tenant, open_page, name: str, query: str = MARKS):
    landing.pages["/plain"] = page_html(name, "")
    landing.pages["/"] = page_html(name, tag(hub, tenant.site.site_key))
    p = open_page()
    p.page.goto(landing.url + "/plain")
    p.page.wait_for_function("window.galleryDone === true")
    before = p.page.evaluate(SNAPSHOT)
    expect = json.loads(p.page.text_content("#expect") or "{}")
    p.page.goto(landing.url + "/" + query)
    p.page.wait_for_function("window.Otkuda && Otkuda.status === 'ready' && window.galleryDone === true")
    return p, before, expect


def assert_swapped(p, before: dict, expect: dict) -> str:
    e164 = p.page.evaluate("Otkuda.number.e164")
    after = p.page.evaluate(SNAPSHOT)
    text, attrs = expected(before, expect, e164)
    # Same nodes, each with its own separators and spaces; only digits may differ ...
    assert len(after["texts"]) == len(before["texts"])
    masks = [[re.sub(r"\d", "0", t) for t in side["texts"]] for side in (before, after)]
    assert masks[0] == masks[1]
    # ... and exactly the listed numbers now carry the session's digits.
    assert "".join(after["texts"]) == text
    assert after["attrs"] == attrs
    assert p.console_errors() == []
    return e164


@pytest.mark.parametrize("name", ["theme", "typeset", "shadow", "popup"])
def test_gallery_page_swaps_exactly_its_numbers_in_their_own_shape(
    name, browser, hub, landing, tenant, db, open_page
) -> None:
    p, before, expect = open_both(landing, hub, tenant, open_page, name)
    assert expect["text"]
    e164 = assert_swapped(p, before, expect)
    session = db.scalars(select(VisitSession)).one()
    assert session.number.e164 == e164
    assert (session.utm_source, session.utm_medium, session.utm_campaign) == ("yandex", "cpc", "okna")
    assert session.landing_url == landing.url + "/" + MARKS


def test_theme_header_split_number_is_swapped_inside_its_own_elements(
    browser, hub, landing, tenant, open_page
) -> None:
    p, before, expect = open_both(landing, hub, tenant, open_page, "theme")
    e164 = p.page.evaluate("Otkuda.number.e164")
    new = shaped("8 (495) 123-45-67", e164)
    assert p.text(".phone-code") == new[:7] and p.text(".phone-link") == new
    assert p.page.inner_html(".header-phone2").endswith(f"<b>{e164[5:8]}</b>-{e164[8:10]}-{e164[10:]}")
    assert p.page.get_attribute(".callback", "data-inn") == "4951234567"


def test_local_numbers_are_swapped_only_when_the_site_opts_in(
    browser, hub, landing, tenant, db, open_page
) -> None:
    tenant.site.replace_numbers = ["+74991234567"]  # the pool's numbers are in 499 too
    db.commit()
    p, before, expect = open_both(landing, hub, tenant, open_page, "local")
    # Not opted in: the full number is swapped, the local forms stay.
    e164 = p.page.evaluate("Otkuda.number.e164")
    only_full = {"text": [expect["text"][1]], "attrs": []}
    assert "".join(p.page.evaluate(SNAPSHOT)["texts"]) == expected(before, only_full, e164)[0]
    tenant.site.swap_local_numbers = True
    db.commit()
    p2, before, expect = open_both(landing, hub, tenant, open_page, "local")
    assert_swapped(p2, before, expect)


def test_spa_keeps_cleaned_marks_and_new_marks_start_a_new_visit(
    browser, hub, landing, tenant, db, open_page
) -> None:
    p, before, expect = open_both(landing, hub, tenant, open_page, "spa")
    first = assert_swapped(p, before, expect)
    assert p.page.evaluate("location.search") == ""  # the site cleaned its URL before the snippet ran
    session = db.scalars(select(VisitSession)).one()
    assert (session.utm_source, session.utm_campaign) == ("yandex", "okna")
    # Routes without marks, or with the marks already sent, are the same visit; new marks are a new landing.
    p.page.evaluate("go('/about')")
    p.page.evaluate("go('/catalog?utm_source=vk&utm_campaign=spring')")
    p.page.wait_for_function(f"Otkuda.number.e164 !== {first!r}")
    second = p.page.evaluate("Otkuda.number.e164")
    p.page.wait_for_function(f"document.getElementById('route-link').textContent.includes({second[8:10]!r})")
    assert p.text("#app-phone") == f"Звоните {shaped('8 (495) 123-45-67', second)} ежедневно"
    assert p.text("#route-link") == shaped("8 495 123 45 67", second)
    assert p.page.get_attribute("#route-link", "href") == f"tel:{shaped('84951234567', second)}"
    p.page.evaluate("go('/catalog/doors?utm_source=vk&utm_campaign=spring')")
    p.page.evaluate("go('/sale?gclid=G-1')")
    p.page.wait_for_function(f"Otkuda.number.e164 !== {second!r}")
    db.expire_all()
    sessions = db.scalars(select(VisitSession).order_by(VisitSession.id)).all()
    assert [(s.utm_source, s.gclid) for s in sessions] == [("yandex", None), ("vk", None), (None, "G-1")]
    assert sessions[1].landing_url == landing.url + "/catalog?utm_source=vk&utm_campaign=spring"
    assert sessions[2].landing_url == landing.url + "/sale?gclid=G-1"
    assert p.console_errors() == []


def test_shadow_widget_content_added_later_is_followed(browser, hub, landing, tenant, open_page) -> None:
    p, before, expect = open_both(landing, hub, tenant, open_page, "shadow")
    e164 = p.page.evaluate("Otkuda.number.e164")
    p.page.evaluate(
        """() => {
        const p = document.createElement('p');
        p.id = 'later';
        p.append('Ещё: ', '8 495 ', '123-45-67');
        document.querySelector('booking-widget').shadowRoot.appendChild(p);
    }"""
    )
    later = "document.querySelector('booking-widget').shadowRoot.getElementById('later').textContent"
    p.page.wait_for_function(f"{later}.includes({e164[5:8]!r})")
    assert p.page.evaluate(later) == "Ещё: " + shaped("8 495 123-45-67", e164)


def test_hung_hub_never_holds_the_load_event(browser, landing, tenant, open_page) -> None:
    hole = Blackhole()  # accepts connections and never answers: the script and the API both hang
    try:
        landing.pages["/"] = page_html("preloader", tag(hole.url, tenant.site.site_key))
        landing.pages["/legacy"] = page_html(
            "preloader", f'<script async src="{hole.url}/t/v1/{tenant.site.site_key}.js"></script>'
        )
        p = open_page()
        p.page.goto(landing.url + "/", wait_until="load", timeout=10000)
        assert p.page.evaluate("document.getElementById('preloader')") is None
        assert p.text("#phone") == "8 (495) 123-45-67"
        # The script tag such sites used before: the page stays behind its preloader while the hub hangs.
        legacy = open_page()
        legacy.page.goto(landing.url + "/legacy", wait_until="domcontentloaded")
        legacy.page.wait_for_timeout(1500)
        assert legacy.page.evaluate("document.readyState") != "complete"
        assert legacy.page.evaluate("document.getElementById('preloader')") is not None
    finally:
        hole.close()


def test_visit_answered_after_the_timeout_gives_its_number_back(
    browser, hub, app, landing, tenant, db, open_page
) -> None:
    wsgi = app.wsgi_app

    def slow(environ, start_response):
        if environ["PATH_INFO"].endswith("/visit"):
            time.sleep(1.5)  # the hub is busy: the snippet gives up at 0.5 s
        return wsgi(environ, start_response)

    app.wsgi_app = slow
    try:
        landing.pages["/"] = page_html("theme", tag(hub, tenant.site.site_key, "{timeout: 500}"))
        p = open_page()
        p.page.goto(landing.url + "/")
        p.page.wait_for_function("window.Otkuda && Otkuda.status === 'failed'")
        assert p.text(".phone-link") == "8 (495) 123-45-67"
        deadline = time.monotonic() + 15
        session = None
        while time.monotonic() < deadline:
            db.expire_all()
            session = db.scalar(select(VisitSession))
            if session is not None and session.left_at is not None:
                break
            time.sleep(0.1)
        assert session is not None and session.left_at is not None
        number = db.get(TrackingNumber, session.number_id)
        assert number.held_by_session_id is None  # free for the next visitor at once, not after the hold
        assert p.text(".phone-link") == "8 (495) 123-45-67"
    finally:
        app.wsgi_app = wsgi


def test_visitor_id_is_random_and_a_bad_cookie_is_replaced(
    browser, hub, landing, tenant, db, open_page
) -> None:
    landing.pages["/"] = page_html("theme", tag(hub, tenant.site.site_key))
    p = open_page()
    p.context.add_cookies([{"name": "otkuda_vid", "value": "visitor-0001", "url": landing.url}])
    p.page.goto(landing.url + "/")
    p.page.wait_for_function("window.Otkuda && Otkuda.status === 'ready'")
    vid = next(c["value"] for c in p.context.cookies() if c["name"] == "otkuda_vid")
    assert re.fullmatch(r"[0-9a-f]{32}", vid)
    assert db.scalars(select(VisitSession.visitor_id)).all() == [vid]
