"""Open redirect after login: a ``next`` that a browser reads as another host never leaves the hub."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, serve
from tests.factories import PASSWORD, csrf, make_tenant
from tests.security.listener import CountingListener

# Each of these is "//evil" (another host) to a browser, though most start with a single "/".
FORGED = [
    "//{evil}/",
    "/\t/{evil}/",
    "/\n/{evil}/",
    "/\r\n/{evil}/",
    "/\\{evil}/",
    "/\\/{evil}/",
    "\\\\{evil}/",
    " //{evil}/",
    "\x00//{evil}/",
    "/\t\\{evil}/",
    "http://{evil}/",
    "https:{evil}/",
    "javascript:alert(1)//",
    "///{evil}/",
]


@pytest.mark.parametrize("forged", FORGED)
def test_login_never_redirects_off_the_hub(client, db, forged) -> None:
    t = make_tenant(db)
    target = forged.format(evil="evil.example")
    resp = client.post(
        "/login?next=" + quote(target, safe=""),
        data={"email": t.admin.email, "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert "evil.example" not in location and location.startswith("/") and not location.startswith("//")
    assert "\t" not in location and "\\" not in location


def test_local_next_still_works(client, db) -> None:
    t = make_tenant(db)
    path = f"/clients/{t.client.id}/calls?status=missed"
    resp = client.post(
        "/login?next=" + quote(path, safe=""),
        data={"email": t.admin.email, "password": PASSWORD, "csrf_token": csrf(client)},
    )
    assert resp.headers["Location"] == path


@pytest.mark.browser
def test_chromium_stays_on_the_hub(app, db) -> None:
    """The same attacks in a real browser: after logging in, the page is still the hub's."""
    t = make_tenant(db)
    with CountingListener() as evil, serve(app) as hub, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for forged in FORGED:
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{hub}/login?next=" + quote(forged.format(evil=f"127.0.0.1:{evil.port}"), safe=""))
                page.fill("input[name=email]", t.admin.email)
                page.fill("input[name=password]", PASSWORD)
                with page.expect_navigation():
                    page.click("button[type=submit]")
                assert urlsplit(page.url).netloc == urlsplit(hub).netloc, (forged, page.url)
                context.close()
        finally:
            browser.close()
    assert evil.accepted == 0
