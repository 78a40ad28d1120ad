"""Headers: dashboard pages cannot be framed or sniffed and run under a CSP; the snippet's CORS holds."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve
from tests.factories import PASSWORD, make_tenant, web_login


def _assert_page_headers(resp) -> None:
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "object-src 'none'" in csp


def test_dashboard_pages_and_api_answers_carry_the_headers(client, db: Session) -> None:
    t = make_tenant(db)
    _assert_page_headers(client.get("/login"))
    web_login(client, t.admin.email)
    for path in (
        "/",
        f"/clients/{t.client.id}",
        f"/clients/{t.client.id}/calls",
        f"/clients/{t.client.id}/romi",
        f"/clients/{t.client.id}/connections",
        f"/clients/{t.client.id}/pool-advice",
    ):
        resp = client.get(path)
        assert resp.status_code == 200, path
        _assert_page_headers(resp)
    api = client.get("/api/v1/clients", headers={"Authorization": f"Bearer {t.token}"})
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in api.headers["Content-Security-Policy"]


def test_snippet_endpoints_keep_their_cors_and_are_not_walled_in(client, db: Session) -> None:
    t = make_tenant(db)
    origin = f"https://{t.site.domains[0]}"
    resp = client.post(
        f"/t/v1/{t.site.site_key}/visit",
        data=json.dumps({"visitor_id": "a" * 32}),
        headers={"Origin": origin},
        content_type="text/plain",
    )
    assert resp.status_code == 200 and resp.headers["Access-Control-Allow-Origin"] == origin
    assert "Content-Security-Policy" not in resp.headers and "X-Frame-Options" not in resp.headers
    script = client.get(f"/t/v1/{t.site.site_key}.js")
    assert script.status_code == 200 and script.headers["X-Content-Type-Options"] == "nosniff"
    assert script.mimetype == "application/javascript"


@pytest.mark.browser
def test_pages_run_under_their_policy_and_cannot_be_framed(app, db: Session) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    t = make_tenant(db)

    def framer(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [f'<iframe id="f" src="{environ["HUB"]}/login"></iframe>'.encode()]

    with serve(app) as hub, sync_api.sync_playwright() as pw:

        def framing_page(environ, start_response):
            environ["HUB"] = hub
            return framer(environ, start_response)

        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        violations: list[str] = []
        page.on(
            "console",
            lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
        )
        page.goto(f"{hub}/login")
        page.fill("input[name=email]", t.admin.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{hub}/")
        for path in (
            f"/clients/{t.client.id}",
            f"/clients/{t.client.id}/calls",
            f"/clients/{t.client.id}/romi",
        ):
            page.goto(hub + path)
            # Styles apply (hub.css loads under style-src 'self'): the header is laid out by it.
            assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") == "flex"
        assert violations == []

        with serve(framing_page) as evil:
            page.goto(evil + "/")
            page.wait_for_timeout(500)
            frame = page.frame_locator("#f")
            assert frame.locator("input[name=password]").count() == 0
        browser.close()
