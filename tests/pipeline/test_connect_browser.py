"""The connect flow in a real browser: consent page, callback, the connection shown on the page."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from hub import create_app
from tests.browser import CHROMIUM_ARGS
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import PASSWORD, make_tenant
from tests.pipeline.support import BOX
from tracking.models import Connection, ConnectionStatus


@pytest.fixture
def live_hub(database_url, db, tmp_path, fakes, fake_connector) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, None, threaded=True)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{server.server_port}"
    server.app = create_app(  # type: ignore[attr-defined]
        {
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "SECRET_KEY": "browser-test",
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": base,
            **fakes.config(),
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()


@pytest.mark.browser
def test_connect_button_to_consent_and_back_in_chromium(live_hub, db, fakes) -> None:
    t = make_tenant(db)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_hub}/login")
            page.fill("input[name=email]", t.admin.email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{live_hub}/clients/{t.client.id}/connections")
            assert "No connections yet." in page.content()
            page.get_by_role("link", name="Connect Fake CRM", exact=True).click()
            # Consent (auto-approved by the fake provider) → callback → back on the connections page.
            page.wait_for_url(f"{live_hub}/clients/{t.client.id}/connections")
            row = page.locator("tr.connection")
            assert row.count() == 1
            text = row.inner_text()
            assert (
                "Subdomain: acme.fake.test" in text
                and "Active" in text
                and "Needs re-authorisation" not in text
            )
        finally:
            browser.close()
    conn = db.scalars(select(Connection)).one()
    assert conn.status == ConnectionStatus.ACTIVE
    assert BOX.open(conn.access_token_enc) in fakes.dest.valid_tokens
