"""The demo a newcomer sees: seeded through the real services, a client page, a swapping landing page."""

from __future__ import annotations

import datetime as dt

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from hub.demo import (
    BUSINESS_NUMBER,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    RECORDING_PATH,
    landing_app,
    landing_page,
    seed,
)
from hub.public import snippet_tag
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import csrf, make_tenant, web_login
from tracking import romi
from tracking.models import Call, Client, NumberAssignment, Pool, TrackingNumber, VisitSession
from tracking.models.calls import AttributionMethod, CallStatus

TABLES = (VisitSession, NumberAssignment, Call, TrackingNumber, Pool)


def counts(db) -> dict[str, int]:
    return {t.__tablename__: db.scalar(select(func.count()).select_from(t)) for t in TABLES}


def test_seed_goes_through_the_services_and_is_idempotent(db) -> None:
    first = seed(db, ["127.0.0.1:5001"], TEST_ENCRYPTION_KEY)
    assert first.created
    before = counts(db)
    assert before["visit_sessions"] == 120 and before["number_assignments"] > 0
    assert before["tracking_numbers"] == 14  # 10 pool + fallback + 3 static
    methods = dict(
        db.execute(select(Call.attribution_method, func.count()).group_by(Call.attribution_method)).all()
    )
    assert methods[AttributionMethod.STATIC] == 3
    assert methods[AttributionMethod.DYNAMIC] > 0
    # Calls to pool numbers were matched to the sessions that held them, with a confidence.
    dynamic = db.scalars(select(Call).where(Call.attribution_method == AttributionMethod.DYNAMIC)).all()
    assert all(c.session_id is not None and 0 < c.session_confidence <= 1 for c in dynamic)

    # The ROMI report of the last days has spend, calls and money on the paid channels.
    client = db.get(Client, first.client_id)
    today = dt.datetime.now(dt.UTC).date()
    rep = romi.report(db, client, today - dt.timedelta(days=4), today + dt.timedelta(days=1))
    rows = {n.label: n.metrics for n in rep.rows(1)}
    assert rows["Yandex Direct"].spend > 0 and rows["Yandex Direct"].calls > 0
    assert rep.total.metrics.won > 0 and rep.total.metrics.revenue > 0
    assert rows["Billboard"].spend > 0 and rows["Billboard"].calls == 1

    # Answered calls have a recording, which the demo landing server plays.
    answered = db.scalars(select(Call).where(Call.status == CallStatus.ANSWERED)).all()
    assert answered and {c.recording_url for c in answered} == {"http://127.0.0.1:5001" + RECORDING_PATH}
    got: list = []
    wav = b"".join(landing_app(lambda: "")({"PATH_INFO": RECORDING_PATH}, lambda s, h: got.append((s, h))))
    assert got[0][0] == "200 OK" and wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 60_000

    again = seed(db, ["127.0.0.1:5001"], TEST_ENCRYPTION_KEY)
    assert not again.created and again.client_id == first.client_id and again.site_key == first.site_key
    assert counts(db) == before


def test_client_page_shows_snippet_pools_numbers_and_activity(client, db) -> None:
    info = seed(db, ["127.0.0.1:5001"], TEST_ENCRYPTION_KEY)
    assert web_login(client, DEMO_EMAIL, DEMO_PASSWORD).status_code == 302
    page = client.get(f"/clients/{info.client_id}").get_data(as_text=True)
    assert str(escape(snippet_tag("http://hub.test", info.site_key))) in page
    assert "Site pool" in page and "+74950000200" in page and "Billboard" in page
    assert page.count("<tr>") > 40  # sessions, calls, numbers listed
    advice = client.get(f"/clients/{info.client_id}/pool-advice")
    assert advice.status_code == 200 and "Rule of thumb" in advice.get_data(as_text=True)

    other = make_tenant(db, "Other")
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 302
    web_login(client, other.admin.email)
    assert client.get(f"/clients/{info.client_id}").status_code == 404
    assert client.get(f"/clients/{info.client_id}/pool-advice").status_code == 404


@pytest.mark.browser
def test_demo_landing_page_swaps_the_number(app, db) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(app) as hub_url, serve(landing_app(lambda: page_html)) as landing_url:
        app.config["BASE_URL"] = hub_url
        info = seed(db, [landing_url.removeprefix("http://")], TEST_ENCRYPTION_KEY)
        page_html = landing_page(hub_url, info.site_key)
        pool_numbers = {
            n.e164 for n in db.scalars(select(TrackingNumber).where(TrackingNumber.pool_id.is_not(None)))
        }
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(landing_url + "/")
            link = page.locator("a.phone")
            page.wait_for_function("() => !document.querySelector('a.phone').href.endsWith('74951234567')")
            href = link.get_attribute("href")
            assert href.startswith("tel:+") and href[4:] in pool_numbers
            assert page.locator("[data-otkuda-ignore]").inner_text().endswith("+7 (495) 123-45-67")
            assert page.locator("[data-otkuda-promo]").inner_text().isdigit()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"demo-landing-{db.bind.dialect.name}.png"), full_page=True)
            browser.close()
        assert errors == []
        assert BUSINESS_NUMBER not in href
