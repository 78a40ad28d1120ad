"""Outgoing webhooks: made through the API, signed, retried, refused for private addresses, in OpenAPI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from connectors.webhook import signing, urls
from jobs.deliver import Worker
from tests import factories as h
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.outcomes.test_target_calls import _auth, _call
from tracking import hooks
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import Connection, Delivery, DeliveryStatus


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.release.set()
    server.stop()


def _make(client, t, url: str, events: list[str]) -> dict:
    resp = client.post(
        f"/api/v1/clients/{t.client.id}/webhooks", json={"url": url, "events": events}, headers=_auth(t)
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _deal(client_id: int, deal_id: int) -> dict:
    """A won deal's snapshot as the deal pull queues it (without a call)."""
    return {
        "deal_id": deal_id,
        "client_id": client_id,
        "key": f"otkuda-deal-{deal_id}",
        "external_id": f"crm-{deal_id}",
        "amount": "12500.00",
        "currency": "RUB",
        "won_at": "2026-11-20T09:00:00+00:00",
        "caller": None,
        "call": None,
        "timezone": "Europe/Moscow",
    }


def test_signature_matches_the_documented_recipe() -> None:
    body = b'{"id":"otkuda-call-1"}'
    header = signing.sign("whsec_x", body, 1764500000)
    import hashlib
    import hmac

    expected = hmac.new(b"whsec_x", b"1764500000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1764500000,v1={expected}"
    assert signing.verify("whsec_x", body, header, now=1764500100)
    assert not signing.verify("whsec_y", body, header, now=1764500100)
    assert not signing.verify("whsec_x", body + b" ", header, now=1764500100)
    assert not signing.verify("whsec_x", body, header, now=1764500000 + 301)  # too old: a replay


def test_private_and_odd_urls_are_refused_unless_allowed() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://0.0.0.0/",
    ):
        with pytest.raises(urls.UnsafeURL):
            urls.check(url)
    for url in ("ftp://example.com/x", "http://user:pw@8.8.8.8/", "https:///nohost"):
        with pytest.raises(urls.UnsafeURL):
            urls.check(url, allow_private=True)
    assert urls.check("http://8.8.8.8/hook") == "http://8.8.8.8/hook"
    assert urls.check("http://127.0.0.1:9/x", allow_private=True)


def test_api_makes_webhooks_with_a_secret_shown_once_and_sealed(app, client, db, receiver) -> None:
    t = make_tenant(db)
    base = f"/api/v1/clients/{t.client.id}/webhooks"
    refused = client.post(
        base, json={"url": receiver.url + "/hook", "events": ["call.finalised"]}, headers=_auth(t)
    )
    assert refused.status_code == 400 and refused.get_json()["field"] == "url"
    assert "non-public" in refused.get_json()["message"]
    app.config["WEBHOOK_ALLOW_PRIVATE"] = "1"
    assert (
        client.post(base, json={"url": receiver.url, "events": ["call.nope"]}, headers=_auth(t)).status_code
        == 400
    )
    assert client.post(base, json={"url": receiver.url}, headers=_auth(t)).status_code == 400
    assert db.scalar(select(Connection.id)) is None  # nothing was made by the refused requests

    made = _make(client, t, receiver.url + "/hook", ["call.finalised", "deal.won"])
    assert made["secret"].startswith("whsec_")
    listed = client.get(base, headers=_auth(t)).get_json()["items"]
    assert listed == [{**made, "secret": None}]  # every field present; the secret only when made
    conn = db.get(Connection, made["id"])
    assert made["secret"] not in (conn.access_token_enc or "")
    assert SecretBox(TEST_ENCRYPTION_KEY).open(conn.access_token_enc) == made["secret"]

    rotated = client.patch(
        f"/api/v1/webhooks/{made['id']}", json={"rotate_secret": True}, headers=_auth(t)
    ).get_json()
    assert rotated["secret"] != made["secret"]
    other = make_tenant(db, "Other")
    assert (
        client.patch(
            f"/api/v1/webhooks/{made['id']}", json={"enabled": False}, headers=_auth(other)
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/clients/{t.client.id}/webhooks", headers=_auth(other)).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=_auth(t)).status_code == 204


def test_events_arrive_signed_once_each_and_failures_are_retried(app, client, db, rt, receiver) -> None:
    t = make_tenant(db)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = "1"
    made = _make(client, t, receiver.url + "/hook", ["call.finalised", "call.attributed", "deal.won"])
    only_deals = _make(client, t, receiver.url + "/deals", ["deal.won"])
    receiver.secrets = {"/hook": made["secret"], "/deals": only_deals["secret"]}
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    ch = h.make_channel(db, t.site, "Billboard")
    call = _call(db, integ, "c1", at=dt.datetime(2026, 11, 20, 7, 0, tzinfo=dt.UTC), talk=50)

    receiver.answers = [(503, {"Retry-After": "120"})]
    stats = Worker(rt).run_once()
    assert stats.retry == 1
    row = db.scalars(select(Delivery).where(Delivery.connection_id == made["id"])).one()
    db.refresh(row)
    assert row.status == DeliveryStatus.RETRY and "HTTP 503" in row.last_error
    assert row.next_attempt_at >= utcnow() + dt.timedelta(seconds=110)  # Retry-After honoured
    db.execute(update(Delivery).values(next_attempt_at=utcnow()))
    db.commit()
    Worker(rt).run_once()
    db.refresh(row)
    assert row.status == DeliveryStatus.DONE and row.external_id == "HTTP 200"

    # An operator re-attributes the call: a call.attributed event, with what it was before.
    resp = client.post(
        f"/api/v1/clients/{t.client.id}/calls/{call.id}/channel", json={"channel_id": ch.id}, headers=_auth(t)
    )
    assert resp.status_code == 200
    payload = _deal(t.client.id, 7)
    hooks.deal_won.fire(db, hooks.DealWon(t.client.id, 7, "otkuda-deal-7", payload))
    db.commit()
    Worker(rt).run_once()

    good = [r for r in receiver.requests if r["verified"]]
    assert len(good) == len(receiver.requests) == 5  # 503, then call, attribution, deal twice (2 URLs)
    events = sorted((json.loads(r["body"])["event"], r["headers"]["Otkuda-Event-Id"]) for r in good[1:])
    attribution_id = events[0][1]
    assert attribution_id.startswith("otkuda-attribution-")
    assert events == [
        ("call.attributed", attribution_id),
        ("call.finalised", f"otkuda-call-{call.id}"),
        ("deal.won", "otkuda-deal-7"),
        ("deal.won", "otkuda-deal-7"),
    ]
    attributed = next(
        json.loads(r["body"]) for r in good if json.loads(r["body"])["event"] == "call.attributed"
    )
    assert (
        attributed["data"]["channel"] == "Billboard"
        and attributed["data"]["previous"]["method"] == "unmatched"
    )
    assert attributed["id"].startswith("otkuda-attribution-")
    first = json.loads(good[1]["body"])
    assert first["data"]["call_id"] == call.id and first["data"]["talk_seconds"] == 50
    # Each event's data is the queued snapshot, field for field: the event models drop and add nothing.
    queued = {
        d.key: d.payload for d in db.scalars(select(Delivery).where(Delivery.connection_id == made["id"]))
    }
    assert all(json.loads(r["body"])["data"] == queued[json.loads(r["body"])["id"]] for r in good[1:])
    deliveries = db.scalars(select(Delivery).where(Delivery.connection_id == only_deals["id"])).all()
    assert [d.key for d in deliveries] == ["otkuda-deal-7"]  # subscribed to deal.won only
    # A re-fired event is not sent again.
    hooks.deal_won.fire(db, hooks.DealWon(t.client.id, 7, "otkuda-deal-7", payload))
    db.commit()
    Worker(rt).run_once()
    assert len(receiver.requests) == 5


def test_a_snapshot_that_does_not_fit_its_event_is_dead_not_sent(app, client, db, rt, receiver) -> None:
    t = make_tenant(db)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = "1"
    made = _make(client, t, receiver.url + "/hook", ["deal.won"])
    receiver.secret = made["secret"]
    payload = {k: v for k, v in _deal(t.client.id, 3).items() if k != "won_at"}
    hooks.deal_won.fire(db, hooks.DealWon(t.client.id, 3, "otkuda-deal-3", payload))
    db.commit()
    Worker(rt).run_once()
    row = db.scalars(select(Delivery)).one()
    assert row.status == DeliveryStatus.DEAD and "data.won_at" in row.last_error, row.last_error
    assert receiver.requests == []


def test_gone_is_dead_and_a_private_url_is_refused_at_send_time(
    app, client, db, rt, rt_config, receiver
) -> None:
    t = make_tenant(db)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = "1"
    made = _make(client, t, receiver.url + "/hook", ["deal.won"])
    receiver.secret = made["secret"]
    receiver.answers = [(410, {})]
    payload = _deal(t.client.id, 1)
    hooks.deal_won.fire(db, hooks.DealWon(t.client.id, 1, "otkuda-deal-1", payload))
    db.commit()
    Worker(rt).run_once()
    row = db.scalars(select(Delivery)).one()
    assert row.status == DeliveryStatus.DEAD and "HTTP 410" in row.last_error

    # Production (no flag): the URL saved earlier now points inside the network and is not called.
    rt.config = {k: v for k, v in rt_config.items() if k != "WEBHOOK_ALLOW_PRIVATE"}
    hooks.deal_won.fire(db, hooks.DealWon(t.client.id, 2, "otkuda-deal-2", _deal(t.client.id, 2)))
    db.commit()
    before = len(receiver.requests)
    Worker(rt).run_once()
    row2 = db.scalars(select(Delivery).where(Delivery.key == "otkuda-deal-2")).one()
    assert row2.status == DeliveryStatus.DEAD and "non-public address" in row2.last_error
    assert len(receiver.requests) == before


def test_openapi_documents_each_event(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert set(doc["webhooks"]) == {"call.finalised", "call.attributed", "deal.won"}
    body = doc["webhooks"]["deal.won"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert ref["properties"]["event"]["const"] == "deal.won"
    assert ref["properties"]["data"] == {"$ref": "#/components/schemas/WebhookDeal"}
    headers = {p["name"] for p in doc["webhooks"]["call.finalised"]["post"]["parameters"]}
    assert headers == {"Otkuda-Event", "Otkuda-Event-Id", "Otkuda-Signature"}
    assert (
        "/clients/{client_id}/webhooks" in doc["paths"]
        and "/clients/{client_id}/target-rules" in doc["paths"]
    )


def test_form_made_destinations_are_not_offered_for_oauth(app, client, db) -> None:
    from tests.factories import web_login

    t = make_tenant(db)
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/connections").data.decode()
    for title in ("Outgoing webhook", "Telegram notifications", "E-mail notifications", "Google Analytics 4"):
        assert f"Connect {title}" not in page
    for connector in ("webhook", "telegram", "email", "ga4"):
        assert client.get(f"/clients/{t.client.id}/connections/connect/{connector}").status_code == 404


def test_the_documented_python_verifier_accepts_our_signatures() -> None:
    """The docs' example is code people copy: it must agree with what the hub sends."""
    import re
    import time
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "outgoing-webhooks.md").read_text()
    code = re.search(r"Python:\n\n```python\n(.*?)```", doc, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "outgoing-webhooks.md", "exec"), scope)  # noqa: S102  (our own documentation)
    body = b'{"id":"otkuda-call-7","event":"call.finalised","data":{}}'
    now = int(time.time())
    header = signing.sign("whsec_doc", body, now)
    assert scope["verify"]("whsec_doc", body, header)
    assert not scope["verify"]("whsec_other", body, header)
    assert not scope["verify"]("whsec_doc", body, signing.sign("whsec_doc", body, now - 3600))
