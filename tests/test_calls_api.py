"""The calls REST API: filters, detail with session and candidates, CSV, operator edits, integrations."""

from __future__ import annotations

import csv
import datetime as dt
import io
from urllib.parse import urlencode

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories as h
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant, make_user
from tracking.calls import ingest
from tracking.crypto import decrypt_json
from tracking.models import AttributionChange, Call, Role, TelephonyIntegration
from tracking.telephony.base import CallOutcome, EventKind, ProviderEvent

T0 = h.T0
M = dt.timedelta(minutes=1)


def _ingest(
    db: Session,
    integ,
    cid: str,
    number: str,
    at: dt.datetime,
    caller: str | None,
    outcome: CallOutcome | None,
):
    common = {"provider": "generic", "provider_call_id": cid}
    ingest(
        db, integ, ProviderEvent(**common, kind=EventKind.START, occurred_at=at, caller=caller, called=number)
    )
    if outcome:
        ingest(
            db,
            integ,
            ProviderEvent(
                **common,
                kind=EventKind.END,
                occurred_at=at + M,
                ended_at=at + M,
                outcome=outcome,
                talk_seconds=30,
            ),
        )
    db.commit()
    return db.scalars(select(Call).where(Call.provider_call_id == cid)).one()


@pytest.fixture
def world(db: Session):
    t = make_tenant(db)
    ads, seo = h.make_channel(db, t.site, "Ads"), h.make_channel(db, t.site, "SEO")
    h.make_static(db, seo, e164="+74951110000")
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    s = h.make_visit(
        db,
        t,
        ads,
        started=T0,
        last_seen=T0 + 2 * M,
        utm_source="yandex",
        utm_campaign="=cmd()",
        gclid="G1",
        yclid="Y1",
        ym_client_id="1700.1",
        landing_url="https://acme.example/?utm_source=yandex",
        promo="AB12",
    )
    h.make_hold(db, s, p.numbers[0], T0, T0 + 17 * M)
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    calls = {
        "static": _ingest(db, integ, "c1", "+74951110000", T0 - 60 * M, "+79001112233", CallOutcome.ANSWERED),
        "dynamic": _ingest(
            db, integ, "c2", p.numbers[0].e164, T0 + 3 * M, "+79004445566", CallOutcome.MISSED
        ),
        "unmatched": _ingest(db, integ, "c3", "+74959990000", T0 + 4 * M, None, CallOutcome.BUSY),
        "repeat": _ingest(db, integ, "c4", "+74951110000", T0 + 5 * M, "+79001112233", None),
    }
    other = make_tenant(db, "Other")
    other_integ = h.make_integration(db, other, "generic", {"secret": "s"})
    foreign = _ingest(db, other_integ, "o1", "+74951110000", T0, "+79001112233", CallOutcome.ANSWERED)
    return t, {"ads": ads, "seo": seo}, s, calls, other, foreign


def _auth(t) -> dict[str, str]:
    return {"Authorization": f"Bearer {t.token}"}


def test_list_and_filters(client, world) -> None:
    t, ch, _s, calls, _other, _foreign = world
    url = f"/api/v1/clients/{t.client.id}/calls"

    def ids(query: str = "") -> list[int]:
        resp = client.get(url + query, headers=_auth(t))
        assert resp.status_code == 200, resp.get_json()
        return [c["id"] for c in resp.get_json()["items"]]

    assert ids() == [calls[k].id for k in ("repeat", "unmatched", "dynamic", "static")]
    assert ids(f"?channel_id={ch['seo'].id}") == [calls["repeat"].id, calls["static"].id]
    assert ids("?status=busy") == [calls["unmatched"].id]
    assert ids("?first_time=false") == [calls["repeat"].id, calls["unmatched"].id]
    assert ids("?attributed=false") == [calls["unmatched"].id]
    window = urlencode({"from": (T0 - M).isoformat(), "to": (T0 + 4 * M).isoformat()})
    assert ids(f"?{window}") == [calls["dynamic"].id]
    # Dates are days in the client's time zone (Moscow, UTC+3), "to" inclusive.
    assert len(ids("?from=2026-11-20&to=2026-11-20")) == 4
    assert ids("?from=2026-11-21") == []
    page = client.get(url + "?per_page=3&page=2", headers=_auth(t)).get_json()
    assert page["total"] == 4 and [c["id"] for c in page["items"]] == [calls["static"].id]
    for bad in (
        "?status=great",
        "?first_time=maybe",
        "?from=yesterday",
        "?per_page=0",
        "?from=2026-11-20T10:00:00",
    ):
        resp = client.get(url + bad, headers=_auth(t))
        assert resp.status_code == 400 and resp.get_json()["error"] == "bad_request", bad


def test_detail_with_session_and_candidates(client, world) -> None:
    t, ch, s, calls, _other, _foreign = world
    resp = client.get(f"/api/v1/clients/{t.client.id}/calls/{calls['dynamic'].id}", headers=_auth(t))
    data = resp.get_json()
    assert data["attribution"]["method"] == "dynamic" and data["channel"] == {
        "id": ch["ads"].id,
        "name": "Ads",
    }
    session = data["session"]
    assert session["id"] == s.public_id and session["gclid"] == "G1" and session["yclid"] == "Y1"
    assert (
        session["ym_client_id"] == "1700.1"
        and session["utm_source"] == "yandex"
        and session["device"] == "desktop"
    )
    assert session["landing_url"].startswith("https://acme.example/")
    assert [c["session"]["id"] for c in data["candidates"]] == [s.public_id]
    assert data["candidates"][0]["score"] == data["attribution"]["session_confidence"]
    assert data["history"][0]["by"] == "system" and data["history"][0]["to"]["method"] == "dynamic"


def test_foreign_calls_answer_404_and_change_nothing(client, db: Session, world) -> None:
    t, ch, _s, _calls, other, foreign = world
    base = f"/api/v1/clients/{other.client.id}/calls"
    assert client.get(base, headers=_auth(t)).status_code == 404
    assert client.get(f"{base}.csv", headers=_auth(t)).status_code == 404
    own_url = f"/api/v1/clients/{t.client.id}/calls/{foreign.id}"
    assert client.get(own_url, headers=_auth(t)).status_code == 404
    assert client.patch(own_url, json={"notes": "x"}, headers=_auth(t)).status_code == 404
    assert (
        client.post(f"{own_url}/channel", json={"channel_id": ch["ads"].id}, headers=_auth(t)).status_code
        == 404
    )
    assert client.post(f"{own_url}/promo-code", json={"code": "AB12"}, headers=_auth(t)).status_code == 404
    assert client.get(f"/api/v1/clients/{t.client.id}/calls").status_code == 401
    db.refresh(foreign)
    assert foreign.notes == "" and foreign.attribution_method.value == "unmatched"


def test_csv_export(client, world) -> None:
    t, _ch, _s, calls, _other, _foreign = world
    resp = client.get(f"/api/v1/clients/{t.client.id}/calls.csv?status=missed", headers=_auth(t))
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert [int(r["id"]) for r in rows] == [calls["dynamic"].id]
    row = rows[0]
    assert row["caller"] == "+79004445566" and row["channel"] == "Ads" and row["method"] == "dynamic"
    # A value a spreadsheet would run as a formula is written as text.
    assert row["utm_campaign"] == "'=cmd()"

    book = client.get(f"/api/v1/clients/{t.client.id}/calls.xlsx?status=missed", headers=_auth(t))
    assert book.status_code == 200 and book.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(book.get_data())).active
    header, *cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))).fieldnames)
    assert len(cells) == 1 and cells[0][header.index("id")] == calls["dynamic"].id
    assert cells[0][header.index("caller")] == "+79004445566"
    assert cells[0][header.index("utm_campaign")] == "'=cmd()"


def test_operator_edits_promo_manual_tags_notes(client, db: Session, world) -> None:
    t, ch, s, calls, _other, _foreign = world
    url = f"/api/v1/clients/{t.client.id}/calls/{calls['unmatched'].id}"
    resp = client.patch(
        url, json={"tags": ["lead", " lead", "vip"], "notes": "asked for a quote"}, headers=_auth(t)
    )
    assert resp.status_code == 200 and resp.get_json()["tags"] == ["lead", "vip"]
    for bad in ({"tags": "lead"}, {"tags": [""]}, {"status": "answered"}, {"notes": 5}):
        assert client.patch(url, json=bad, headers=_auth(t)).status_code == 400
    assert client.patch(url, data="nope", headers=_auth(t)).status_code == 400

    missing = client.post(f"{url}/promo-code", json={"code": "ZZ99"}, headers=_auth(t))
    assert missing.status_code == 422 and missing.get_json()["error"] == "unknown_promo_code"
    promo = client.post(f"{url}/promo-code", json={"code": "ab12"}, headers=_auth(t)).get_json()
    assert promo["attribution"]["method"] == "promo" and promo["session"]["id"] == s.public_id
    assert promo["channel"]["id"] == ch["ads"].id

    other_channel = client.post(f"{url}/channel", json={"channel_id": 999999}, headers=_auth(t))
    assert other_channel.status_code == 422
    manual = client.post(
        f"{url}/channel", json={"channel_id": ch["seo"].id, "reason": "saw a billboard"}, headers=_auth(t)
    ).get_json()
    assert manual["attribution"]["method"] == "manual" and manual["channel"]["name"] == "SEO"
    assert [(x["from"]["method"], x["to"]["method"], x["by"]) for x in manual["history"]] == [
        ("unmatched", "promo", t.admin.email),
        ("promo", "manual", t.admin.email),
    ]
    assert manual["history"][0]["to"]["session_id"] == s.public_id

    viewer = make_user(db, t, "viewer@acme.example", Role.VIEWER, t.client)
    from tracking.accounts import issue_api_token

    token = issue_api_token(db, viewer)
    db.commit()
    before = db.scalar(select(func.count()).select_from(AttributionChange))
    denied = client.post(
        f"{url}/channel", json={"channel_id": ch["ads"].id}, headers={"Authorization": f"Bearer {token}"}
    )
    assert denied.status_code == 403
    assert db.scalar(select(func.count()).select_from(AttributionChange)) == before


def test_telephony_integrations_api(client, db: Session) -> None:
    t = make_tenant(db)
    other = make_tenant(db, "Other")
    url = f"/api/v1/clients/{t.client.id}/telephony-integrations"
    created = client.post(
        url,
        json={"provider": "twilio", "name": "Main", "secrets": {"auth_token": "tok-123"}},
        headers=_auth(t),
    )
    assert created.status_code == 201
    data = created.get_json()
    key = data["webhook_urls"]["voice"].split("/")[-2]
    assert data["webhook_urls"]["voice"] == f"http://hub.test/hooks/v1/twilio/{key}/voice"
    assert data["webhook_urls"]["status_callback"].endswith("/status")
    assert "tok-123" not in created.get_data(as_text=True)
    row = db.scalar(select(TelephonyIntegration).where(TelephonyIntegration.integration_key == key))
    assert "tok-123" not in row.secrets_encrypted
    assert decrypt_json(TEST_ENCRYPTION_KEY, row.secrets_encrypted) == {"auth_token": "tok-123"}

    gen = client.post(url, json={"provider": "generic"}, headers=_auth(t)).get_json()
    assert len(gen["generated_secrets"]["secret"]) > 30
    listed = client.get(url, headers=_auth(t)).get_data(as_text=True)
    assert gen["generated_secrets"]["secret"] not in listed and "tok-123" not in listed

    zd = client.post(
        url,
        json={
            "provider": "zadarma",
            "secrets": {"api_secret": "x"},
            "settings": {"timezone": "Europe/Moscow"},
        },
        headers=_auth(t),
    )
    assert zd.status_code == 201 and zd.get_json()["webhook_urls"]["notify"].startswith(
        "http://hub.test/hooks/v1/zadarma/"
    )
    count = db.scalar(select(func.count()).select_from(TelephonyIntegration))
    for bad in (
        {"provider": "skype"},
        {"provider": "mango", "secrets": {"api_key": "k"}},
        {"provider": "twilio", "secrets": {"auth_token": "t", "password": "p"}},
        {"provider": "zadarma", "secrets": {"api_secret": "x"}, "settings": {"timezone": "Mars/Base"}},
    ):
        assert client.post(url, json=bad, headers=_auth(t)).status_code == 400, bad
    foreign = client.post(
        f"/api/v1/clients/{other.client.id}/telephony-integrations",
        json={"provider": "generic"},
        headers=_auth(t),
    )
    assert foreign.status_code == 404
    assert db.scalar(select(func.count()).select_from(TelephonyIntegration)) == count
    spec = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"get", "post"} <= set(spec["/clients/{client_id}/telephony-integrations"])
    assert {"get", "patch"} <= set(spec["/clients/{client_id}/calls/{call_id}"])
