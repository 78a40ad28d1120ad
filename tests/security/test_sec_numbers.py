"""Numbers from outside are bounded and finite: each nonsense value is a clear 4xx (or "unknown" where a
provider sent it), nothing is written, and nothing already stored can break ROMI or its exports."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from hub.crm_webhooks import webhook_path
from jobs.pulls import pull_deals
from tests.connectors.test_amocrm import amo, connect, runtime  # noqa: F401  (the fake amoCRM fixture)
from tests.factories import make_pool, make_tenant
from tests.test_public_endpoints import row_counts
from tracking.models import Deal, DealStatus, ManualSpend, Pool

PERIOD = "start=2026-11-01&end=2026-11-30"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("value", ["²", "١٢", "1e3", "-1", "99999999999999999999", " 1"])
def test_unicode_digits_and_huge_query_numbers_are_400(client, db, value) -> None:
    t = make_tenant(db)
    for path in (
        f"/api/v1/clients/{t.client.id}/calls?page={value}",
        f"/api/v1/clients/{t.client.id}/calls?channel_id={value}",
        f"/api/v1/clients/{t.client.id}/sessions?site_id={value}",
        f"/api/v1/clients/{t.client.id}/deliveries?limit={value}",
    ):
        resp = client.get(path, headers=_auth(t.token))
        assert resp.status_code == 400, (path, resp.status_code)


def test_ids_beyond_the_database_range_are_404(client, db) -> None:
    t = make_tenant(db)
    for path in (
        "/api/v1/clients/99999999999999999999",
        "/api/v1/pools/2147483648",
        "/api/v1/sites/1" + "0" * 30,
    ):
        assert client.get(path, headers=_auth(t.token)).status_code == 404, path
    # Ids in a JSON body: refused by validation, not by the database.
    resp = client.post(
        f"/api/v1/clients/{t.client.id}/pools", json={"name": "P", "site_id": 10**30}, headers=_auth(t.token)
    )
    assert resp.status_code == 400 and resp.get_json()["field"] == "site_id"


def test_a_pool_hold_of_ten_to_the_twelve_seconds_is_refused(client, db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 1)
    url = f"/api/v1/pools/{pool.id}"
    for patch in (
        {"hold_seconds": 10**12},
        {"max_hold_seconds": 10**12},
        {"grace_seconds": 10**12},
        {"hold_seconds": 2**31},
        {"grace_seconds": -1},
    ):
        resp = client.patch(url, json=patch, headers=_auth(t.token))
        assert resp.status_code == 400, patch
    db.expire_all()
    stored = db.get(Pool, pool.id)
    assert (stored.hold_seconds, stored.grace_seconds, stored.max_hold_seconds) == (
        pool.hold_seconds,
        pool.grace_seconds,
        pool.max_hold_seconds,
    )
    # Visits still work with the pool as it was.
    visit = client.post(
        f"/t/v1/{t.site.site_key}/visit",
        data=json.dumps({"visitor_id": "visitor-0001"}),
        headers={"Origin": "https://acme.example"},
        content_type="text/plain",
    )
    assert visit.status_code == 200


@pytest.mark.parametrize("amount", ["1e30", "1000000000000", "NaN", "Infinity", "-0.01", "sNaN", "1e-9"])
def test_absurd_manual_spend_is_refused(client, db, amount) -> None:
    t = make_tenant(db)
    body = {"period_start": "2026-11-01", "period_end": "2026-11-30", "amount": amount}
    resp = client.post(f"/api/v1/clients/{t.client.id}/manual-spend", json=body, headers=_auth(t.token))
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(ManualSpend)) == 0


@pytest.mark.parametrize(
    "field,value",
    [
        ("visitor_id", "visitor\x00-0001"),
        ("url", "https://acme.example/\x00"),
        ("url", "https://acme.example/?utm_source=a%00b"),
        ("referrer", "https://ya.ru/\x00"),
        ("utm_campaign", "\x00"),
        ("screen", "1920\x00x1080"),
        ("ym_uid", "²³"),
        ("ga", "GA1.1.\x00.1"),
    ],
)
def test_nul_and_unicode_digits_in_snippet_fields_are_400(client, db, field, value) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1)
    before = row_counts(db)
    body = {"visitor_id": "visitor-0001", field: value}
    resp = client.post(
        f"/t/v1/{t.site.site_key}/visit",
        data=json.dumps(body),
        headers={"Origin": "https://acme.example"},
        content_type="text/plain",
    )
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert row_counts(db) == before
    for action in ("heartbeat", "release"):
        resp = client.post(
            f"/t/v1/{t.site.site_key}/{action}",
            data=json.dumps({"session_id": "s\x00"}),
            headers={"Origin": "https://acme.example"},
            content_type="text/plain",
        )
        assert resp.status_code == 400


PRICES = [float("nan"), float("inf"), -5, 1e30, "12abc"]


def test_nonsense_deal_prices_from_the_pull_are_kept_as_unknown(db, engine, database_url, amo) -> None:  # noqa: F811
    t = make_tenant(db)
    connect(db, t, amo)
    ids = [amo.add_lead(None, status_id=142, price=p) for p in PRICES]  # type: ignore[arg-type]
    amo.leads[ids[0]].closed_at = 10**20
    amo.leads[ids[1]].updated_at = 10**20
    ok = amo.add_lead(None, status_id=142, price=12500)
    [tally] = pull_deals(
        runtime(database_url, engine, amo), since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    )
    assert tally.errors == []
    db.expire_all()
    deals = {d.external_id: d for d in db.scalars(select(Deal))}
    assert set(deals) == {str(i) for i in [*ids, ok]}
    for i in ids:
        deal = deals[str(i)]
        assert deal.status == DealStatus.WON and deal.amount == Decimal("0.00")
        assert "amount" in deal.raw["amount_unknown"]
    assert deals[str(ok)].amount == Decimal("12500.00") and "amount_unknown" not in deals[str(ok)].raw


def test_nonsense_deal_prices_from_the_webhook_are_kept_as_unknown(app, client, db, amo) -> None:  # noqa: F811
    t = make_tenant(db)
    conn = connect(db, t, amo)
    path = webhook_path(app.config["SECRET_KEY"], conn.id)
    for i, price in enumerate(["NaN", "inf", "-5", "1e30", "1e400"], start=1):
        form = {
            "leads[status][0][id]": str(100 + i),
            "leads[status][0][status_id]": "142",
            "leads[status][0][price]": price,
            "leads[status][0][name]": "deal\x00name",
            "leads[status][0][last_modified]": "1e20",
        }
        assert client.post(path, data=form).status_code == 200, price
    db.expire_all()
    deals = db.scalars(select(Deal)).all()
    assert len(deals) == 5 and all(d.amount == 0 and d.raw.get("amount_unknown") for d in deals)
    assert all("\x00" not in d.name for d in deals)


def test_a_non_finite_stored_amount_cannot_break_romi(client, db, shop) -> None:
    won = db.scalars(select(Deal).where(Deal.amount == Decimal("20000"))).one()
    bad = "'NaN'" if db.get_bind().dialect.name == "postgresql" else "9e999"  # SQLite keeps no NaN, only inf
    db.execute(text(f"UPDATE deals SET amount = {bad} WHERE id = :id"), {"id": won.id})
    db.commit()
    auth = _auth(shop.t.token)
    body = client.get(f"/api/v1/clients/{shop.t.client.id}/romi?{PERIOD}", headers=auth)
    assert body.status_code == 200
    assert body.get_json()["totals"]["revenue"] == "57000.00"  # 77,000 less the unreadable 20,000
    for fmt in ("csv", "xlsx"):
        export = client.get(f"/api/v1/clients/{shop.t.client.id}/romi.{fmt}?{PERIOD}", headers=auth)
        assert export.status_code == 200
        if fmt == "csv":
            assert "nan" not in export.get_data(as_text=True).lower()


def test_dates_beyond_what_the_hub_reports_on_are_400(client, db) -> None:
    t = make_tenant(db)
    cid = t.client.id
    for path in (
        f"/api/v1/clients/{cid}/calls?from=9999-12-31&to=9999-12-31",
        f"/api/v1/clients/{cid}/calls?from=0001-01-01",
        f"/api/v1/clients/{cid}/calls?to=9999-12-31T23:59:59Z",
        f"/api/v1/clients/{cid}/romi?start=9999-12-31&end=9999-12-31",
        f"/api/v1/clients/{cid}/romi.csv?start=0001-01-01&end=0001-01-02",
        f"/api/v1/clients/{cid}/sessions?from=9999-12-31",
    ):
        assert client.get(path, headers=_auth(t.token)).status_code == 400, path
    body = {"period_start": "0001-01-01", "period_end": "9999-12-31", "amount": "10"}
    resp = client.post(f"/api/v1/clients/{cid}/manual-spend", json=body, headers=_auth(t.token))
    assert resp.status_code == 400
    assert db.scalar(select(func.count()).select_from(ManualSpend)) == 0
