"""GA4: the connector against a local Measurement Protocol fake that refuses what Google refuses."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from connectors.ga4.client import Ga4Client
from jobs.deliver import Worker
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tests.fakes.ga4 import FakeGa4
from tests.outcomes.test_target_calls import _auth
from tracking import hooks
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import Connection, Delivery, DeliveryStatus

SECRET = "mp-secret-123"


@pytest.fixture
def ga() -> FakeGa4:
    fake = FakeGa4().start()
    fake.streams["G-TEST12345"] = SECRET
    yield fake
    fake.stop()


@pytest.fixture
def ga_rt(rt, ga):
    rt.config = {**rt.config, "GA4_API_BASE": ga.url}
    return rt


def _call(call_id: int, client_id: int, *, ga_id: str | None, age: dt.timedelta) -> dict:
    return {
        "call_id": call_id,
        "client_id": client_id,
        "key": f"otkuda-call-{call_id}",
        "caller": "+79990000001",
        "called_at": (utcnow() - age).isoformat(),
        "status": "answered",
        "talk_seconds": 75,
        "first_time": True,
        "is_target": True,
        "channel": "Yandex Direct",
        "session": {
            "ga_client_id": ga_id,
            "utm_source": "yandex",
            "utm_medium": "cpc",
            "utm_campaign": "x" * 150,
        },
    }


def _fire_call(db, t, payload) -> None:
    hooks.call_finalised.fire(
        db, hooks.CallFinalised(t.client.id, payload["call_id"], payload["key"], payload)
    )
    db.commit()


def test_validation_server_answers_in_the_documented_shape(ga) -> None:
    client = Ga4Client(ga.url, "G-TEST12345", SECRET)
    assert client.validate({"client_id": "1.2", "events": [{"name": "ok_event", "params": {}}]}) == []
    messages = client.validate({"events": [{"name": "_bad", "params": {f"p{i}": 1 for i in range(26)}}]})
    codes = {m["validationCode"] for m in messages}
    assert codes == {"VALUE_REQUIRED", "NAME_INVALID", "EXCEEDED_MAX_ENTITIES"}
    assert all(set(m) == {"fieldPath", "description", "validationCode"} for m in messages)
    client.collect({"events": []})  # refused events still get 2xx from /mp/collect: dropped silently
    assert ga.collected == [] and len(ga.dropped) == 1


def test_api_keeps_the_secret_sealed_and_checks_the_fields(app, client, db) -> None:
    t = make_tenant(db)
    base = f"/api/v1/clients/{t.client.id}/ga4-connections"
    assert (
        client.post(base, json={"measurement_id": "UA-1", "api_secret": "s"}, headers=_auth(t)).status_code
        == 400
    )
    bad_event = client.post(
        base,
        json={"measurement_id": "G-TEST12345", "api_secret": "s", "call_event": "ga_call"},
        headers=_auth(t),
    )
    assert bad_event.status_code == 400 and bad_event.get_json()["field"] == "call_event"
    assert client.post(base, json={"measurement_id": "G-TEST12345"}, headers=_auth(t)).status_code == 400
    assert db.scalar(select(Connection.id)) is None
    made = client.post(base, json={"measurement_id": "G-TEST12345", "api_secret": SECRET}, headers=_auth(t))
    assert made.status_code == 201 and "api_secret" not in made.get_json()
    conn = db.get(Connection, made.get_json()["id"])
    assert (
        SECRET not in conn.access_token_enc
        and SecretBox(TEST_ENCRYPTION_KEY).open(conn.access_token_enc) == SECRET
    )
    other = make_tenant(db, "Other")
    assert (
        client.patch(
            f"/api/v1/ga4-connections/{conn.id}", json={"name": "x"}, headers=_auth(other)
        ).status_code
        == 404
    )


def test_calls_and_won_deals_become_events_keyed_by_the_ga_client_id(app, client, db, ga_rt, ga) -> None:
    t = make_tenant(db)
    made = client.post(
        f"/api/v1/clients/{t.client.id}/ga4-connections",
        json={"measurement_id": "G-TEST12345", "api_secret": SECRET},
        headers=_auth(t),
    ).get_json()
    _fire_call(db, t, _call(1, t.client.id, ga_id="1234567.1700000000", age=dt.timedelta(hours=1)))
    _fire_call(db, t, _call(2, t.client.id, ga_id=None, age=dt.timedelta(hours=1)))
    _fire_call(db, t, _call(3, t.client.id, ga_id="99.1", age=dt.timedelta(hours=80)))
    deal = {
        "deal_id": 5,
        "client_id": t.client.id,
        "key": "otkuda-deal-5",
        "amount": "12500.00",
        "currency": "RUB",
        "won_at": (utcnow() - dt.timedelta(hours=2)).isoformat(),
        "call": _call(1, t.client.id, ga_id="1234567.1700000000", age=dt.timedelta(hours=3)),
    }
    hooks.deal_won.fire(db, hooks.DealWon(t.client.id, 5, "otkuda-deal-5", deal))
    db.commit()

    Worker(ga_rt).run_once()
    rows = {d.key: d for d in db.scalars(select(Delivery).where(Delivery.connection_id == made["id"]))}
    assert rows["otkuda-call-1"].status == DeliveryStatus.DONE
    assert (
        rows["otkuda-call-2"].status == DeliveryStatus.SKIPPED
        and "no GA client id" in rows["otkuda-call-2"].last_error
    )
    assert (
        rows["otkuda-call-3"].status == DeliveryStatus.SKIPPED
        and "72 hours" in rows["otkuda-call-3"].last_error
    )
    assert rows["otkuda-deal-5"].status == DeliveryStatus.DONE
    assert ga.validated == 2  # each sent event was checked first
    bodies = {c["body"]["events"][0]["name"]: c["body"] for c in ga.collected}
    assert set(bodies) == {"otkuda_call", "purchase"} and not ga.dropped
    call_event = bodies["otkuda_call"]
    assert call_event["client_id"] == "1234567.1700000000"
    params = call_event["events"][0]["params"]
    assert (params["source"], params["medium"], params["talk_seconds"], params["target_call"]) == (
        "yandex",
        "cpc",
        75,
        1,
    )
    assert len(params["campaign"]) == 100  # cut to the documented limit rather than refused
    assert "caller" not in params and "+7999" not in str(call_event)  # no phone numbers go to Google
    purchase = bodies["purchase"]["events"][0]["params"]
    assert (purchase["transaction_id"], purchase["value"], purchase["currency"]) == (
        "otkuda-deal-5",
        12500.0,
        "RUB",
    )


def test_validation_messages_make_the_item_dead_and_outages_retry(db, ga_rt, ga) -> None:
    t = make_tenant(db)
    conn = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="ga4",
        connectors=["ga4"],
        account={"measurement_id": "G-TEST12345"},
        settings={"call_event": "session_start"},  # reserved: set behind the API's back
        access_token_enc=SecretBox(TEST_ENCRYPTION_KEY).seal(SECRET),
    )
    db.add(conn)
    db.commit()
    _fire_call(db, t, _call(1, t.client.id, ga_id="1.2", age=dt.timedelta(minutes=5)))
    Worker(ga_rt).run_once()
    row = db.scalars(select(Delivery)).one()
    assert row.status == DeliveryStatus.DEAD and "NAME_RESERVED" in row.last_error
    assert ga.collected == []

    conn.settings = {}
    db.commit()
    ga.fail_next = [(503, {"Retry-After": "60"})]
    _fire_call(db, t, _call(2, t.client.id, ga_id="1.2", age=dt.timedelta(minutes=5)))
    Worker(ga_rt).run_once()
    row2 = db.scalars(select(Delivery).where(Delivery.key == "otkuda-call-2")).one()
    assert row2.status == DeliveryStatus.RETRY and "503" in row2.last_error
    assert row2.next_attempt_at >= utcnow() + dt.timedelta(seconds=55)
