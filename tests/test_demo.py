"""The demo a newcomer sees: re-seeded up to the current time through the real services and the setup pages'
functions, a lived-in client page, a swapping landing page."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from flask import g
from markupsafe import escape
from sqlalchemy import func, select

from hub import dashboard
from hub.demo import (
    BUSINESS_NUMBER,
    DAYS,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    OKNA,
    RECORDING_PATH,
    _set_up,
    landing_app,
    landing_page,
    seed,
)
from hub.pipeline_queries import client_sync_runs
from hub.public import snippet_tag
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, serve
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import csrf, make_tenant, web_login
from tracking import romi
from tracking.crypto import decrypt_json
from tracking.errors import Refused
from tracking.models import (
    Agency,
    Call,
    Client,
    Delivery,
    DeliveryStatus,
    NumberAssignment,
    Pool,
    PoolStat,
    Site,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)
from tracking.models.calls import AttributionMethod, CallStatus

TABLES = (VisitSession, NumberAssignment, Call, TrackingNumber, Pool)
# 10:30 on 1 March in Moscow: "this month" of the demo's first client is a morning old.
NOW = dt.datetime(2026, 3, 1, 7, 30, tzinfo=dt.UTC)
ORIGIN = "127.0.0.1:5001"


def counts(db) -> dict[str, int]:
    return {t.__tablename__: db.scalar(select(func.count()).select_from(t)) for t in TABLES}


def seeded(app, db, now: dt.datetime = NOW, origins=(ORIGIN,)):
    with app.app_context():
        return seed(db, list(origins), now=now)


def test_seed_goes_through_the_services_relative_to_now(app, db) -> None:
    info = seeded(app, db)
    assert not info.replaced
    before = counts(db)
    assert before["visit_sessions"] > 250 and before["number_assignments"] > 0
    assert before["tracking_numbers"] == 14 + 8  # Okna: 10 pool + fallback + 3 static; Dveri: 6 + 1 + 1
    methods = dict(
        db.execute(select(Call.attribution_method, func.count()).group_by(Call.attribution_method)).all()
    )
    assert methods[AttributionMethod.STATIC] > 10 and methods[AttributionMethod.DYNAMIC] > 40
    # Calls to pool numbers were matched to the sessions that held them, with a confidence.
    dynamic = db.scalars(select(Call).where(Call.attribution_method == AttributionMethod.DYNAMIC)).all()
    assert all(c.session_id is not None and 0 < c.session_confidence <= 1 for c in dynamic)
    # Nothing lies in the future of the seeding, and the latest call is minutes old.
    latest = max(c.called_at for c in db.scalars(select(Call)))
    assert NOW - dt.timedelta(minutes=15) < latest < NOW

    # The default period ("this month", one morning old) has calls, spend and a deal; the last 30 days
    # have money won, and the billboard's cost typed in by hand.
    client = db.get(Client, info.client_id)
    today = NOW.astimezone(ZoneInfo(client.timezone)).date()
    assert today == dt.date(2026, 3, 1)
    start, end = romi.preset_period("this_month", today)
    current = romi.report(db, client, start, end).total.metrics
    assert current.calls >= 1 and current.spend > 0 and current.deals >= 1
    month = romi.report(db, client, *romi.preset_period("last_30", today))
    rows = {n.label: n.metrics for n in month.rows(1)}
    assert rows["Yandex Direct"].spend > 0 and rows["Yandex Direct"].calls > 0
    assert month.total.metrics.won > 0 and month.total.metrics.revenue > 0
    assert rows["Billboard"].spend > 0 and rows["Billboard"].calls > 0
    # The period before it has figures too, so the overview's change against it means something.
    before_month = romi.report(db, client, *dashboard.previous_period(*romi.preset_period("last_30", today)))
    assert before_month.total.metrics.calls > 0 and before_month.total.metrics.spend > 0

    # Visitors come back through other channels, so the attribution models credit different channels.
    by_visitor: dict[str, set[int]] = {}
    for visitor, channel in db.execute(select(VisitSession.visitor_id, VisitSession.channel_id)):
        by_visitor.setdefault(visitor, set()).add(channel)
    assert sum(1 for channels in by_visitor.values() if len(channels) > 1) > 20
    per_model = {
        model: {
            n.label: (n.metrics.calls, n.metrics.romi)
            for n in romi.report(db, client, *romi.preset_period("last_30", today), model=model).rows(1)
        }
        for model in romi.Model
    }
    assert len({tuple(sorted(p.items())) for p in per_model.values()}) == 3
    direct = romi.Model
    assert (
        per_model[direct.LAST_TOUCH]["Direct / unknown"][0]
        > per_model[direct.LAST_NON_DIRECT]["Direct / unknown"][0]
    )
    assert (
        per_model[direct.FIRST_TOUCH]["Yandex Direct"] != per_model[direct.LAST_NON_DIRECT]["Yandex Direct"]
    )

    # Deliveries the calls queued through the outbox, with what the workers made of them, and job history.
    statuses = dict(
        db.execute(
            select(Delivery.status, func.count())
            .where(Delivery.client_id == client.id)
            .group_by(Delivery.status)
        ).all()
    )
    assert (
        statuses[DeliveryStatus.DONE] > 20
        and statuses[DeliveryStatus.RETRY]
        and statuses[DeliveryStatus.DEAD]
    )
    assert db.scalar(select(func.count()).select_from(client_sync_runs(client.id).subquery())) > 20
    # A week of hourly pool statistics for each pool.
    for pool in db.scalars(select(Pool)):
        hours = db.scalars(select(PoolStat.hour).where(PoolStat.pool_id == pool.id)).all()
        assert len(hours) >= 7 * 24 and min(h.replace(tzinfo=dt.UTC) for h in hours) <= NOW - dt.timedelta(
            days=7
        )

    # The clients were set up through the setup pages' functions: the site's domain went through the same
    # check as a form (the landing origin's port is dropped), the PBX got a secret the hub made and sealed.
    site = db.scalar(select(Site).where(Site.site_key == info.site_key))
    assert site.domains == ["127.0.0.1"] and site.replace_numbers == [BUSINESS_NUMBER]
    integration = db.scalar(
        select(TelephonyIntegration).where(TelephonyIntegration.client_id == info.client_id)
    )
    assert len(decrypt_json(TEST_ENCRYPTION_KEY, integration.secrets_encrypted)["secret"]) >= 32

    # Answered calls have a recording, which the demo landing server plays.
    answered = db.scalars(select(Call).where(Call.status == CallStatus.ANSWERED)).all()
    assert answered and {c.recording_url for c in answered} == {"http://127.0.0.1:5001" + RECORDING_PATH}
    got: list = []
    wav = b"".join(landing_app(lambda: "")({"PATH_INFO": RECORDING_PATH}, lambda s, h: got.append((s, h))))
    assert got[0][0] == "200 OK" and wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 60_000


def test_a_profile_the_setup_pages_refuse_is_refused_by_the_demo_too(app, db) -> None:
    t = make_tenant(db, "Setup")
    with app.app_context(), pytest.raises(Refused, match="time zone"):
        g.db_session = db
        _set_up(t.agency, replace(OKNA, name="Mars office", timezone="Mars/Olympus"), ["mars.example"])
    assert db.scalar(select(func.count()).where(Client.name == "Mars office")) == 0


def test_each_run_re_seeds_up_to_its_own_now(app, db) -> None:
    first = seeded(app, db)
    later = NOW + dt.timedelta(days=40, hours=3)
    again = seeded(app, db, now=later)
    assert again.replaced and again.site_key != first.site_key
    assert db.scalar(select(func.count()).select_from(Agency)) == 1
    assert db.scalar(select(func.count()).select_from(Client)) == 2
    latest = max(c.called_at for c in db.scalars(select(Call)))
    assert later - dt.timedelta(minutes=15) < latest < later
    # Nothing is left from the first run: no call is older than the demo's span before the new now.
    oldest = min(c.called_at for c in db.scalars(select(Call)))
    assert oldest > later - dt.timedelta(days=DAYS + 1)
    assert web_login(app.test_client(), DEMO_EMAIL, DEMO_PASSWORD).status_code == 302


def test_client_page_shows_snippet_pools_numbers_and_activity(app, client, db) -> None:
    info = seeded(app, db, now=dt.datetime.now(dt.UTC))
    assert web_login(client, DEMO_EMAIL, DEMO_PASSWORD).status_code == 302
    page = client.get(f"/clients/{info.client_id}").get_data(as_text=True)
    assert str(escape(snippet_tag("http://hub.test", info.site_key))) in page
    assert "Site pool" in page and "+74950000200" in page and "Billboard" in page
    assert page.count("<tr>") > 40  # sessions, calls, numbers listed
    # The default period (this month) is never empty: the headline calls and spend are not zero.
    cards = dict(
        re.findall(r'data-key="(\w+)">\s*<div class="what">[^<]*</div>\s*<div class="figure">([^<]*)<', page)
    )
    assert cards["calls"] not in ("0", "—") and cards["spend"] not in ("0", "—")
    home = client.get("/").get_data(as_text=True)
    assert "Okna Plus (demo)" in home and "Dveri Market (demo)" in home
    advice = client.get(f"/clients/{info.client_id}/pool-advice")
    assert advice.status_code == 200
    for page_name in ("deliveries", "sync-history"):
        listing = client.get(f"/clients/{info.client_id}/{page_name}").get_data(as_text=True)
        assert "webhook" in listing.lower(), page_name

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
        with app.app_context():
            info = seed(db, [landing_url.removeprefix("http://")])
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
