"""One visitor's whole journey through the product, with nothing in between mocked.

The snippet's visit endpoint hands out a pool number; a signed PBX webhook reports a call to it; the call is
matched to the visit and queued in the outbox; the delivery worker sends it to the fake Metrika over HTTP;
the CRM then reports the deal won, and the won deal travels the same road as an offline conversion.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors import registry
from connectors.base import AccountContext, DealUpdate, DeliveryItem, ItemKind
from jobs import outbox
from jobs.deliver import deliver_once
from jobs.pulls import upsert_deal
from jobs.runtime import Runtime
from tests import factories as h
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_pool, make_tenant
from tests.fakes.yandex_server import FakeYandex, running_yandex
from tracking import calls, hooks
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import (
    AttributionMethod,
    Call,
    CallStatus,
    Channel,
    Connection,
    ConnectionStatus,
    Deal,
    DealStatus,
    Delivery,
    DeliveryStatus,
    VisitSession,
)
from tracking.telephony import generic

COUNTER = "5551"
VISITOR = "1700000000123456789"
TOKEN = "yandex-access"
ORIGIN = "https://acme.example"


@pytest.fixture
def yandex() -> Iterator[FakeYandex]:
    with running_yandex() as fake:
        fake.tokens.add(TOKEN, "shop")
        fake.metrika.counters[COUNTER] = {"shop"}
        fake.metrika.visitors.add(VISITOR)
        fake.metrika.goals.add("deal_won")
        fake.metrika.polls_to_process = 0
        yield fake


def _webhook(client, key: str, payload: dict) -> int:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    headers = {
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign("pbx-secret", stamp, body),
        "Content-Type": "application/json",
    }
    return client.post(f"/hooks/v1/generic/{key}", data=body, headers=headers).status_code


def test_visit_call_metrika_then_won_deal(client, db: Session, engine, database_url, yandex) -> None:
    tenant = make_tenant(db)
    tenant.site.domains = ["acme.example"]
    db.commit()
    make_pool(db, tenant.site, 2)
    integ = h.make_integration(db, tenant, "generic", {"secret": "pbx-secret"})
    box = SecretBox(TEST_ENCRYPTION_KEY)
    conn = Connection(
        agency_id=tenant.agency.id,
        client_id=tenant.client.id,
        provider="yandex",
        name="Yandex",
        connectors=["metrika"],
        account={"counter_id": COUNTER},
        settings={"status_poll_interval": 0, "deal_goal": "deal_won"},
        scopes=["metrika:offline_data"],
        access_token_enc=box.seal(TOKEN),
        refresh_token_enc=box.seal("unused-refresh"),
        expires_at=utcnow() + dt.timedelta(hours=1),
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.commit()

    # 1. The snippet reports a visit from a Yandex Direct click.
    landing = "https://acme.example/sofas?utm_source=yandex&utm_medium=cpc&utm_campaign=70001&yclid=777"
    visit = client.post(
        f"/t/v1/{tenant.site.site_key}/visit",
        data=json.dumps({"visitor_id": "visitor-0001", "url": landing, "ym_uid": VISITOR}),
        headers={"Origin": ORIGIN},
        content_type="text/plain",
    )
    assert visit.status_code == 200, visit.get_json()
    number = visit.get_json()["number"]["e164"]
    session_id = visit.get_json()["session_id"]

    # 2. The PBX reports a call to the number the visitor was shown.
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    common = {"call_id": "pbx-42", "caller": "+79001234567", "called": number}
    assert (
        _webhook(client, integ.integration_key, {**common, "event": "start", "at": start.isoformat()}) == 200
    )
    end_at = (start + dt.timedelta(seconds=95)).isoformat()
    ended = {**common, "event": "end", "at": end_at, "status": "answered", "talk_seconds": 80}
    assert _webhook(client, integ.integration_key, ended) == 200

    db.expire_all()
    call = db.scalars(select(Call)).one()
    session = db.scalars(select(VisitSession)).one()
    assert call.attribution_method == AttributionMethod.DYNAMIC
    assert call.session_id == session.id and session.public_id == session_id
    queued = db.scalars(select(Delivery).where(Delivery.connector == "metrika")).one()
    assert queued.status == DeliveryStatus.PENDING and queued.key == f"otkuda-call-{call.id}"

    # 3. The worker delivers it to Metrika over HTTP.
    rt = Runtime.from_config(
        {
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": "http://hub.test",
            "OTKUDA_YANDEX_API_BASE": yandex.base_url,
            "OTKUDA_YANDEX_TOKEN_URL": yandex.base_url + "/token",
        },
        engine=engine,
    )
    deliver_once(rt)
    db.expire_all()
    assert db.get(Delivery, queued.id).status == DeliveryStatus.DONE
    [row] = yandex.metrika.rows(COUNTER, "CALLS")
    assert row["ClientId"] == VISITOR and row["PhoneNumber"].lstrip("+") == number.lstrip("+")
    assert row["CallMissed"] == "0" and row["Tag"]
    assert row["URL"].startswith("https://acme.example/sofas")

    # 4. The CRM reports the deal won: it is linked to the call and goes to Metrika as a conversion.
    update = DealUpdate(
        external_id="deal-9",
        status="won",
        amount=Decimal("125000"),
        currency="RUB",
        updated_at=utcnow(),
        call_keys=(f"otkuda-call-{call.id}",),
    )
    upsert_deal(db, conn, tenant.client.id, update)
    db.commit()
    deal = db.scalars(select(Deal)).one()
    assert (deal.status, deal.call_id, deal.amount) == (DealStatus.WON, call.id, Decimal("125000.00"))
    deliver_once(rt)
    db.expire_all()
    won = db.scalars(select(Delivery).where(Delivery.key == f"otkuda-deal-{deal.id}")).one()
    assert won.status == DeliveryStatus.DONE, won.last_error
    [conversion] = yandex.metrika.rows(COUNTER, "BASIC")
    assert conversion["ClientId"] == VISITOR and conversion["Target"] == "deal_won"
    assert Decimal(conversion["Price"]) == Decimal("125000") and conversion["Currency"] == "RUB"

    # A second worker pass and a repeated webhook change nothing: each thing is delivered once.
    assert _webhook(client, integ.integration_key, ended) == 200
    deliver_once(rt)
    assert len(yandex.metrika.rows(COUNTER, "CALLS")) == 1
    assert len(yandex.metrika.rows(COUNTER, "BASIC")) == 1


def test_a_worker_that_died_after_metrika_stored_the_calls_sends_them_once(
    db: Session, engine, database_url, yandex
) -> None:
    """The worker uploaded the file and died before recording the answer: the next worker finds the call by
    its key through ``calls_uploadings`` and records it delivered, with no second upload."""

    outbox.install()
    try:
        tenant = make_tenant(db)
        conn = Connection(
            agency_id=tenant.agency.id,
            client_id=tenant.client.id,
            provider="yandex",
            name="Yandex",
            connectors=["metrika"],
            account={"counter_id": COUNTER},
            settings={},
            scopes=["metrika:offline_data"],
            access_token_enc=SecretBox(TEST_ENCRYPTION_KEY).seal(TOKEN),
            refresh_token_enc=SecretBox(TEST_ENCRYPTION_KEY).seal("unused-refresh"),
            expires_at=utcnow() + dt.timedelta(hours=1),
            status=ConnectionStatus.ACTIVE,
        )
        channel = Channel(client_id=tenant.client.id, name="Yandex Direct", rules=[{"has_yclid": True}])
        db.add_all([conn, channel])
        db.flush()
        visit = VisitSession(
            public_id=f"s-{time.time_ns()}",
            client_id=tenant.client.id,
            site_id=tenant.site.id,
            visitor_id="v1",
            channel_id=channel.id,
            ym_client_id=VISITOR,
            landing_url="https://acme.example/sofas",
        )
        db.add(visit)
        db.flush()
        call = Call(
            client_id=tenant.client.id,
            provider="generic",
            provider_call_id=f"pbx-{time.time_ns()}",
            caller="+79001234567",
            called_number="+74950000001",
            called_at=utcnow() - dt.timedelta(minutes=5),
            talk_seconds=60,
            status=CallStatus.ANSWERED,
            session_id=visit.id,
            channel_id=channel.id,
        )
        db.add(call)
        db.flush()
        payload = calls.call_payload(db, call)
        hooks.call_finalised.fire(db, hooks.CallFinalised(tenant.client.id, call.id, payload["key"], payload))
        db.commit()
    finally:
        outbox.uninstall()
    rt = Runtime.from_config(
        {
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": "http://hub.test",
            "OTKUDA_YANDEX_API_BASE": yandex.base_url,
            "OTKUDA_YANDEX_TOKEN_URL": yandex.base_url + "/token",
        },
        engine=engine,
    )
    delivery = db.scalars(select(Delivery).where(Delivery.connector == "metrika")).one()
    # What the dead worker did: it claimed the delivery and Metrika stored the file; its answer was never
    # recorded, and its claim has gone stale.
    ctx = AccountContext(
        connection_id=conn.id,
        provider="yandex",
        api_base=yandex.base_url,
        account={"counter_id": COUNTER},
        settings={},
        access_token=lambda: TOKEN,
    )
    item = DeliveryItem(delivery.id, ItemKind.CALL, delivery.key, delivery.payload, attempts=1)
    [sent] = registry.load("metrika").make_connector(ctx).push([item])
    assert len(yandex.metrika.uploads) == 1
    delivery.status = DeliveryStatus.IN_FLIGHT
    delivery.attempts = 1
    delivery.claimed_by = "dead-worker:0"
    delivery.claimed_at = utcnow() - dt.timedelta(hours=1)
    db.commit()

    stats = deliver_once(rt)
    db.expire_all()
    done = db.get(Delivery, delivery.id)
    assert done.status == DeliveryStatus.DONE and done.external_id == sent.external_id
    assert stats.found == 1 and len(yandex.metrika.uploads) == 1
    assert len(yandex.metrika.rows(COUNTER, "CALLS")) == 1
    deliver_once(rt)
    assert len(yandex.metrika.uploads) == 1
