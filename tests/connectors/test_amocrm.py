"""amoCRM end to end against the local fake account: connect, push through the real pipeline, dedupe,
crash and re-send, limits and refusals, and deals coming back by pull and by webhook."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.amocrm.provider import PROVIDER, BadAccountHost, account_from_callback
from hub.crm_webhooks import webhook_path
from jobs import outbox
from jobs.deliver import deliver_once
from jobs.providers import account_url, resolve
from jobs.pulls import pull_deals
from jobs.runtime import Runtime
from tests.browser import serve
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import Tenant, csrf, make_tenant, web_login
from tests.fakes.amocrm import FakeAmo
from tests.fakes.oauth import AMOCRM
from tracking import calls, hooks
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import (
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

CALLER = "+79161234567"


@pytest.fixture
def amo() -> Iterator[FakeAmo]:
    fake = FakeAmo().start()
    yield fake
    fake.stop()


@pytest.fixture
def hooked() -> Iterator[None]:
    outbox.install()
    yield
    outbox.uninstall()


def config(amo: FakeAmo) -> dict[str, str]:
    return {
        "OTKUDA_AMOCRM_CLIENT_ID": AMOCRM.client_id,
        "OTKUDA_AMOCRM_CLIENT_SECRET": AMOCRM.client_secret,
        "OTKUDA_AMOCRM_AUTHORIZE_URL": amo.url + "/oauth",
        "OTKUDA_AMOCRM_TOKEN_URL": amo.url + "/oauth2/access_token",
        "OTKUDA_AMOCRM_API_BASE": amo.url,
    }


def runtime(database_url: str, engine, amo: FakeAmo) -> Runtime:
    return Runtime.from_config(
        {
            "DATABASE_URL": database_url,
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": "http://hub.test",
            "DELIVERY_BACKOFF_BASE": 0,
            **config(amo),
        },
        engine=engine,
    )


def connect(db: Session, t: Tenant, amo: FakeAmo, **settings) -> Connection:
    pair = amo.oauth.issue_pair()
    box = SecretBox(TEST_ENCRYPTION_KEY)
    conn = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="amocrm",
        name="amoCRM",
        connectors=["amocrm"],
        account={"host": "acme.amocrm.ru", "subdomain": "acme"},
        settings=settings,
        scopes=[],
        access_token_enc=box.seal(pair["access_token"]),
        refresh_token_enc=box.seal(pair["refresh_token"]),
        expires_at=utcnow() + dt.timedelta(hours=20),
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.commit()
    return conn


def finalise_call(db: Session, t: Tenant, caller: str | None = CALLER, n: int = 1) -> Call:
    """A finalised call from a Yandex Direct visit, queued in the outbox as the ingestion would."""
    channel = db.scalar(
        select(Channel).where(Channel.client_id == t.client.id, Channel.name == "Yandex Direct")
    )
    if channel is None:
        channel = Channel(client_id=t.client.id, name="Yandex Direct", rules=[{"has_yclid": True}])
        db.add(channel)
        db.flush()
    visit = VisitSession(
        public_id=f"s-{n}-{time.time_ns()}",
        client_id=t.client.id,
        site_id=t.site.id,
        visitor_id=f"v{n}",
        channel_id=channel.id,
        utm_source="yandex",
        utm_medium="cpc",
        utm_campaign="70001",
        yclid="777",
        ym_client_id="1700000000123456789",
        landing_url="https://acme.example/sofas",
    )
    db.add(visit)
    db.flush()
    call = Call(
        client_id=t.client.id,
        provider="generic",
        provider_call_id=f"pbx-{n}-{time.time_ns()}",
        caller=caller,
        called_number="+74950000001",
        called_at=utcnow() - dt.timedelta(minutes=5),
        talk_seconds=95,
        status=CallStatus.ANSWERED,
        recording_url="https://pbx.example/rec/1.mp3",
        session_id=visit.id,
        channel_id=channel.id,
    )
    db.add(call)
    db.flush()
    payload = calls.call_payload(db, call)
    hooks.call_finalised.fire(db, hooks.CallFinalised(t.client.id, call.id, payload["key"], payload))
    db.commit()
    return call


def deliveries(db: Session, kind: str = "call") -> list[Delivery]:
    db.expire_all()
    return list(db.scalars(select(Delivery).where(Delivery.kind == kind).order_by(Delivery.id)))


# --- connect ---


def test_account_host_comes_from_the_referer_and_must_be_an_account() -> None:
    assert account_from_callback({"referer": "acme.amocrm.ru"}, {}) == {
        "host": "acme.amocrm.ru",
        "subdomain": "acme",
        "platform": "amocrm",
    }
    kommo = account_from_callback({"referer": "shop.kommo.com"}, {})
    assert (kommo["subdomain"], kommo["platform"]) == ("shop", "kommo")
    for bad in ("evil.example", "acme.amocrm.ru.evil.example", "", "acme.amocrm.ru/../x"):
        with pytest.raises(BadAccountHost):
            account_from_callback({"referer": bad}, {})
    # Without a configured override the token URL and API base are the account's own host.
    amo_provider = resolve({}, PROVIDER)
    assert account_url(amo_provider, "https://{host}/oauth2/access_token", {"host": "shop.kommo.com"}) == (
        "https://shop.kommo.com/oauth2/access_token"
    )


def test_connect_flow_stores_the_account_and_encrypted_tokens(app, client, db, amo) -> None:
    app.config.update({k.removeprefix("OTKUDA_"): v for k, v in config(amo).items()})
    t = make_tenant(db)
    web_login(client, t.admin.email)
    go = client.get(f"/clients/{t.client.id}/connections/connect/amocrm")
    assert go.status_code == 302
    sent = urlsplit(go.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(sent.query).items()}
    assert sent.path == "/oauth" and query["client_id"] == AMOCRM.client_id and query["mode"] == "popup"

    # A forged referer is refused before any code is spent, and nothing is stored.
    amo.oauth.add_code("code-1")
    bad = client.get(
        "/oauth/callback", query_string={"code": "code-1", "state": query["state"], "referer": "evil.example"}
    )
    assert bad.status_code == 400 and amo.oauth.token_requests == []
    assert db.scalars(select(Connection)).all() == []

    client.get(f"/clients/{t.client.id}/connections/connect/amocrm")
    state = parse_qs(
        urlsplit(client.get(f"/clients/{t.client.id}/connections/connect/amocrm").headers["Location"]).query
    )["state"][0]
    done = client.get(
        "/oauth/callback", query_string={"code": "code-1", "state": state, "referer": "acme.amocrm.ru"}
    )
    assert done.status_code == 302
    [exchange] = amo.oauth.token_requests
    assert (
        exchange["grant_type"] == "authorization_code" and exchange["client_secret"] == AMOCRM.client_secret
    )
    conn = db.scalars(select(Connection)).one()
    assert conn.account == {"host": "acme.amocrm.ru", "subdomain": "acme", "platform": "amocrm"}
    assert conn.status == ConnectionStatus.ACTIVE and conn.connectors == ["amocrm"]
    token = SecretBox(TEST_ENCRYPTION_KEY).open(conn.access_token_enc)
    assert token in amo.oauth.tokens and token not in conn.access_token_enc
    # The deal webhook is registered in the account at connect time: nobody has to paste a URL.
    destination = app.config["BASE_URL"].rstrip("/") + webhook_path(app.config["SECRET_KEY"], conn.id)
    assert list(amo.webhooks) == [destination]
    assert set(amo.webhooks[destination]["settings"]) == {"add_lead", "update_lead", "status_lead"}
    assert conn.settings["deal_webhook"] == {
        "id": str(amo.webhooks[destination]["id"]),
        "destination": destination,
    }
    page = client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
    assert "webhook registered in amoCRM" in page and destination not in page

    # Another agency's client, or a connection that is not this client's, cannot be switched off.
    other = make_tenant(db, "Other")
    token = {"csrf_token": csrf(client)}
    assert (
        client.post(f"/clients/{other.client.id}/connections/{conn.id}/disconnect", data=token).status_code
        == 404
    )
    assert (
        client.post(f"/clients/{t.client.id}/connections/{conn.id + 1}/disconnect", data=token).status_code
        == 404
    )
    assert len(amo.webhooks) == 1

    # Switching the connection off removes the webhook in amoCRM.
    off = client.post(
        f"/clients/{t.client.id}/connections/{conn.id}/disconnect", data={"csrf_token": csrf(client)}
    )
    assert off.status_code == 302 and amo.webhooks == {}
    db.expire_all()
    assert db.get(Connection, conn.id).status == ConnectionStatus.DISABLED
    assert db.get(Connection, conn.id).settings["deal_webhook"] is None


def test_a_failed_webhook_registration_leaves_the_address_to_paste(app, client, db, amo) -> None:
    app.config.update({k.removeprefix("OTKUDA_"): v for k, v in config(amo).items()})
    t = make_tenant(db)
    web_login(client, t.admin.email)
    go = client.get(f"/clients/{t.client.id}/connections/connect/amocrm")
    state = parse_qs(urlsplit(go.headers["Location"]).query)["state"][0]
    amo.oauth.add_code("code-2")
    amo.fail_next.append((500, "/api/v4/webhooks"))
    done = client.get(
        "/oauth/callback", query_string={"code": "code-2", "state": state, "referer": "acme.amocrm.ru"}
    )
    assert done.status_code == 302
    conn = db.scalars(select(Connection)).one()
    assert conn.status == ConnectionStatus.ACTIVE and amo.webhooks == {}
    page = client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
    assert webhook_path(app.config["SECRET_KEY"], conn.id) in page and "add it there by hand" in page


def test_kommo_and_amocrm_accounts_get_their_own_consent_page(app, client, db) -> None:
    app.config.update({"AMOCRM_CLIENT_ID": AMOCRM.client_id, "AMOCRM_CLIENT_SECRET": AMOCRM.client_secret})
    t = make_tenant(db)
    web_login(client, t.admin.email)
    base = f"/clients/{t.client.id}/connections/connect/amocrm"
    hosts = {}
    for platform in ("amocrm", "kommo"):
        go = client.get(base, query_string={"platform": platform})
        assert go.status_code == 302
        sent = urlsplit(go.headers["Location"])
        hosts[platform] = f"{sent.scheme}://{sent.netloc}{sent.path}"
        assert parse_qs(sent.query)["client_id"] == [AMOCRM.client_id]
    assert hosts == {"amocrm": "https://www.amocrm.ru/oauth", "kommo": "https://www.kommo.com/oauth"}
    assert client.get(base, query_string={"platform": "bitrix"}).status_code == 404
    page = client.get(f"/clients/{t.client.id}/connections").get_data(as_text=True)
    assert "Connect amoCRM" in page and "Connect Kommo" in page and "platform=kommo" in page


# --- push ---


def test_call_becomes_an_incoming_sip_lead_with_contact_fields_tags_and_note(
    db, engine, database_url, amo, hooked
) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    call = finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DONE, d.last_error
    [lead] = amo.leads.values()
    assert d.external_id == str(lead.id) and lead.unsorted_uid == f"otkuda-call-{call.id}"
    assert set(lead.tags) == {"Yandex Direct", "first-time caller"}
    fields = {f.get("field_code"): f["values"][0]["value"] for f in lead.custom_fields}
    # The account's tracking fields are filled without any field map: click id and Metrika ClientID too.
    assert fields == {
        "UTM_SOURCE": "yandex",
        "UTM_MEDIUM": "cpc",
        "UTM_CAMPAIGN": "70001",
        "YCLID": "777",
        "_YM_UID": "1700000000123456789",
    }
    [contact] = amo.contacts.values()
    assert (
        contact["custom_fields_values"][0]["values"][0]["value"] == CALLER
        and lead.contact_id == contact["id"]
    )
    [note] = amo.notes
    assert note["params"]["uniq"] == f"otkuda-call-{call.id}" and note["params"]["link"].endswith("1.mp3")


def test_repeat_caller_with_an_open_deal_gets_a_note_not_a_new_deal(
    db, engine, database_url, amo, hooked
) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    contact = amo.add_contact("8 (916) 123-45-67")
    closed = amo.add_lead(contact, status_id=143)
    open_ = amo.add_lead(contact)
    call = finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DONE and d.external_id == str(open_)
    assert set(amo.leads) == {closed, open_} and len(amo.contacts) == 1
    [note] = amo.notes
    assert (note["entity_id"], note["note_type"], note["params"]["uniq"]) == (
        open_,
        "call_in",
        f"otkuda-call-{call.id}",
    )
    assert note["params"]["call_status"] == 4 and note["params"]["duration"] == 95


def test_without_dedupe_the_contact_is_reused_for_a_new_deal(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(
        db, t, amo, mode="lead", pipeline_id=5, status_id=7, dedupe_open_deals=False, field_map={"yclid": 555}
    )
    contact = amo.add_contact("+7 916 123 45 67")
    amo.add_lead(contact)
    finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    new = amo.leads[int(d.external_id)]
    assert (new.pipeline_id, new.status_id, new.contact_id) == (5, 7, contact) and len(amo.contacts) == 1
    assert {"field_id": 555, "values": [{"value": "777"}]} in new.custom_fields
    assert [n["entity_id"] for n in amo.notes] == [new.id]


def test_a_crash_after_sending_never_makes_a_second_lead(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    finalise_call(db, t)
    rt = runtime(database_url, engine, amo)
    amo.lose_answer_of_next_create = True  # the lead is made, the answer never arrives
    stats = deliver_once(rt)
    assert stats.in_doubt == 1 and len(amo.leads) == 1
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.IN_FLIGHT
    deliver_once(rt)  # looks the item up by its key instead of sending it again
    [d] = deliveries(db)
    [lead] = amo.leads.values()
    assert d.status == DeliveryStatus.DONE and d.external_id == str(lead.id)
    deliver_once(rt)
    assert len(amo.leads) == 1


def test_429_backs_off_then_delivers_once(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    finalise_call(db, t)
    rt = runtime(database_url, engine, amo)
    amo.fail_next.append((429, "/api/v4/contacts"))
    deliver_once(rt)
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.RETRY and "429" in d.last_error and amo.leads == {}
    time.sleep(1.1)  # the back-off amoCRM asked for
    deliver_once(rt)
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DONE and len(amo.leads) == 1


def test_burst_of_calls_stays_under_seven_requests_a_second(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    for n in range(4):
        finalise_call(db, t, caller=f"+7916000000{n}", n=n)
    deliver_once(runtime(database_url, engine, amo))
    assert [d.status for d in deliveries(db)] == [DeliveryStatus.DONE] * 4
    assert len(amo.leads) == 4 and len(amo.requests) >= 5  # four look-ups and one batch at least


def test_expired_token_is_refreshed_and_the_old_refresh_token_dies(
    db, engine, database_url, amo, hooked
) -> None:
    t = make_tenant(db)
    conn = connect(db, t, amo)
    old = SecretBox(TEST_ENCRYPTION_KEY).open(conn.access_token_enc)
    amo.oauth.tokens.expire(old)
    finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DONE, d.last_error
    assert [r["grant_type"] for r in amo.oauth.token_requests] == ["refresh_token"]
    db.expire_all()
    assert SecretBox(TEST_ENCRYPTION_KEY).open(db.get(Connection, conn.id).access_token_enc) != old


def test_tracking_fields_the_account_lacks_are_not_sent(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    del amo.lead_fields["YCLID"], amo.lead_fields["_YM_UID"]  # an account without these fields
    finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DONE
    [lead] = amo.leads.values()
    codes = {f.get("field_code") for f in lead.custom_fields}
    assert codes == {"UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN"}


def test_a_refused_field_list_still_sends_the_lead(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(db, t, amo, field_map={"utm_source": "UTM_SOURCE"})
    amo.fail_next.append((403, "/api/v4/leads/custom_fields"))  # this user may not read the field list
    finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DONE
    [lead] = amo.leads.values()
    assert {f.get("field_code") for f in lead.custom_fields} == {"UTM_SOURCE"}  # the mapped field only


def test_validation_error_is_dead_with_amocrms_reason(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    connect(db, t, amo, field_map={"utm_source": 999})
    finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [d] = deliveries(db)
    assert d.status == DeliveryStatus.DEAD
    assert "custom_fields_values.0.field_id" in d.last_error and "not a valid choice" in d.last_error
    assert amo.leads == {}


@pytest.mark.parametrize("refusal", ["blocked", "ip", "ip-problem"])
def test_a_blocked_account_backs_off_and_keeps_the_connection(
    db, engine, database_url, amo, hooked, refusal
) -> None:
    t = make_tenant(db)
    conn = connect(db, t, amo)
    for n in range(3):
        finalise_call(db, t, caller=f"+7916000001{n}", n=n)
    amo.refusal = refusal
    rt = runtime(database_url, engine, amo)
    deliver_once(rt)
    deliver_once(rt)
    db.expire_all()
    assert db.get(Connection, conn.id).status == ConnectionStatus.ACTIVE  # temporary: nobody must reconnect
    assert len(amo.requests) == 1  # one refusal, then silence until the back-off is over
    rows = deliveries(db)
    assert {d.status for d in rows} == {DeliveryStatus.RETRY}  # nothing lost, nothing dead
    assert all("403" in d.last_error for d in rows)
    waits = [(d.next_attempt_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)) for d in rows]
    assert all(w > dt.timedelta(minutes=10) for w in waits)

    amo.refusal = None  # the block is lifted (or the address whitelisted)
    for d in rows:
        d.next_attempt_at = utcnow()
    db.commit()
    deliver_once(rt)
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.DONE}


def test_an_integration_switched_off_parks_the_connection(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    conn = connect(db, t, amo)
    for n in range(3):
        finalise_call(db, t, caller=f"+7916000001{n}", n=n)
    amo.refusal = "removed"
    rt = runtime(database_url, engine, amo)
    deliver_once(rt)
    deliver_once(rt)
    db.expire_all()
    assert db.get(Connection, conn.id).status == ConnectionStatus.NEEDS_REAUTH
    assert "403" in db.get(Connection, conn.id).status_reason
    assert len(amo.requests) == 1
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.PENDING}  # waiting for re-authorisation


def test_an_integration_removed_from_the_account_parks_the_connection_by_its_refused_grant(
    db, engine, database_url, amo, hooked
) -> None:
    # Removing the integration revokes its tokens: the API answers 401 and the refresh invalid_grant — a
    # structured signal, no words read.
    t = make_tenant(db)
    conn = connect(db, t, amo)
    finalise_call(db, t)
    amo.oauth.revoke_all()
    deliver_once(runtime(database_url, engine, amo))
    db.expire_all()
    assert db.get(Connection, conn.id).status == ConnectionStatus.NEEDS_REAUTH
    assert [r["grant_type"] for r in amo.oauth.token_requests] == ["refresh_token"]
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.PENDING} and amo.leads == {}


def test_one_refused_record_does_not_stop_the_connection(db, engine, database_url, amo, hooked) -> None:
    t = make_tenant(db)
    conn = connect(db, t, amo)
    known = amo.add_contact("+79160000010")
    amo.add_lead(known)
    finalise_call(db, t, caller="+79160000010", n=0)  # goes as a note on the open deal: refused
    finalise_call(db, t, caller="+79160000011", n=1)  # a new incoming lead
    amo.fail_next.append((403, "/api/v4/leads/notes"))
    deliver_once(runtime(database_url, engine, amo))
    db.expire_all()
    assert db.get(Connection, conn.id).status == ConnectionStatus.ACTIVE
    by_caller = {d.payload["caller"]: d for d in deliveries(db)}
    assert by_caller["+79160000010"].status == DeliveryStatus.DEAD
    assert "403" in by_caller["+79160000010"].last_error
    assert by_caller["+79160000011"].status == DeliveryStatus.DONE


# --- deals back ---


def _metrika_connection(db: Session, t: Tenant) -> Connection:
    conn = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="yandex",
        name="Metrika",
        connectors=["metrika"],
        account={"counter_id": "5551"},
        settings={},
        scopes=[],
        status=ConnectionStatus.ACTIVE,
    )
    db.add(conn)
    db.commit()
    return conn


def test_won_deal_is_pulled_with_revenue_and_queued_for_ad_platforms_once(
    db, engine, database_url, amo, hooked
) -> None:
    t = make_tenant(db)
    connect(db, t, amo)
    metrika = _metrika_connection(db, t)
    call = finalise_call(db, t)
    rt = runtime(database_url, engine, amo)
    deliver_once(rt)
    lead_id = int(deliveries(db)[0].external_id)
    amo.move(lead_id, 142, price=90000)
    amo.add_lead(None, status_id=143)  # someone else's lost deal
    pull_deals(rt, since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    db.expire_all()
    deal = db.scalars(select(Deal).where(Deal.external_id == str(lead_id))).one()
    assert (deal.status, deal.amount, deal.call_id, deal.session_id) == (
        DealStatus.WON,
        Decimal("90000.00"),
        call.id,
        call.session_id,
    )
    assert deal.won_at is not None
    lost = db.scalars(select(Deal).where(Deal.external_id != str(lead_id))).one()
    assert lost.status == DealStatus.LOST and lost.call_id is None
    won = deliveries(db, "deal_won")
    assert [(d.connection_id, d.payload["amount"], d.payload["call"]["call_id"]) for d in won] == [
        (metrika.id, "90000.00", call.id)
    ]
    pull_deals(rt, since=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    assert len(deliveries(db, "deal_won")) == 1


def test_status_webhook_on_the_secret_url_stores_the_won_deal(
    app, db, engine, database_url, amo, hooked
) -> None:
    t = make_tenant(db)
    conn = connect(db, t, amo)
    _metrika_connection(db, t)
    call = finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    lead_id = int(deliveries(db)[0].external_id)
    amo.move(lead_id, 142, price=45500)
    path = webhook_path(app.config["SECRET_KEY"], conn.id)
    with serve(app) as hub:
        assert amo.fire_status_webhook(hub + path[:-1] + "x", lead_id).status_code == 404
        assert (
            amo.fire_status_webhook(
                hub + f"/hooks/v1/amocrm/{conn.id + 1}/{path.rsplit('/', 1)[1]}", lead_id
            ).status_code
            == 404
        )
        malformed = amo.fire_status_webhook(hub + path, lead_id, **{"leads[status][0][id]": "abc"})
        assert malformed.status_code == 400
        db.expire_all()
        assert db.scalars(select(Deal)).all() == []
        ok = amo.fire_status_webhook(hub + path, lead_id)
        assert ok.status_code == 200 and ok.json() == {"deals": 1}
    db.expire_all()
    deal = db.scalars(select(Deal)).one()
    assert (deal.status, deal.amount, deal.call_id) == (DealStatus.WON, Decimal("45500.00"), call.id)
    assert len(deliveries(db, "deal_won")) == 1


def test_settings_form_is_checked_then_used_by_the_push(
    client, db, engine, database_url, amo, hooked
) -> None:
    t = make_tenant(db)
    conn = connect(db, t, amo)
    web_login(client, t.admin.email)
    token = csrf(client)
    url = f"/clients/{t.client.id}/connections/{conn.id}/amocrm-settings"
    form = {
        "csrf_token": token,
        "mode": "lead",
        "pipeline_id": "42",
        "status_id": "43",
        "responsible_user_id": "",
        "tags": "otkuda, calls",
        "field.gclid": "GCLID",
        "field.yclid": "555",
        "field.utm_source": "",
    }
    for bad, word in (
        ({"mode": "fax"}, "mode"),
        ({"field.yclid": "x y"}, "field.yclid"),
        ({"pipeline_id": ""}, "pipeline"),
    ):
        resp = client.post(url, data={**form, **bad})
        assert resp.status_code == 302 and word in resp.headers["Location"]
        db.expire_all()
        assert db.get(Connection, conn.id).settings == {}
    assert client.post(url, data=form).status_code == 302
    db.expire_all()
    saved = db.get(Connection, conn.id).settings
    assert saved["mode"] == "lead" and (saved["pipeline_id"], saved["status_id"]) == (42, 43)
    assert saved["field_map"] == {"gclid": "GCLID", "yclid": 555} and saved["dedupe_open_deals"] is False
    assert saved["tags"] == ["otkuda", "calls"]
    finalise_call(db, t)
    deliver_once(runtime(database_url, engine, amo))
    [lead] = amo.leads.values()
    assert (lead.pipeline_id, lead.status_id) == (42, 43) and {"otkuda", "calls"} <= set(lead.tags)
    assert {"field_id": 555, "values": [{"value": "777"}]} in lead.custom_fields
    rival = make_tenant(db, "Rival")
    client.post("/logout")
    web_login(client, rival.admin.email)
    assert client.post(url, data={**form, "csrf_token": csrf(client)}).status_code == 404


# --- the fake refuses what amoCRM refuses ---


def test_the_fake_account_refuses_what_amocrm_refuses(amo) -> None:
    amo.per_second = 1000  # the refusals under test, not the rate limit
    token = amo.oauth.issue_pair()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    def get(path: str, **params: str) -> requests.Response:
        return requests.get(amo.url + path, params=params, headers=auth, timeout=10)

    def post(path: str, body: object, **headers: str) -> requests.Response:
        return requests.post(amo.url + path, json=body, headers={**auth, **headers}, timeout=10)

    missing = get("/api/v4/deals")
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    assert missing.json()["title"] == "Not Found" and missing.json()["status"] == 404
    assert get("/api/v4/leads", limit="250").status_code == 204
    for refused in (
        get("/api/v4/leads", limit="251"),
        get("/api/v4/leads", **{"with": "contacts,tasks"}),
        get("/api/v4/leads", **{"filter[colour]": "red"}),
        get("/api/v4/leads/notes", **{"filter[category][]": "sip"}),
        get(f"/api/v4/contacts/{amo.add_contact('+79160000000')}", **{"with": "contacts"}),
        get("/api/v4/contacts", since="1"),
    ):
        assert refused.status_code == 400, refused.request.url
        assert refused.json()["title"] == "Bad Request"
    form = requests.post(amo.url + "/api/v4/leads/complex", data={"name": "x"}, headers=auth, timeout=10)
    assert form.status_code == 400
    extra = post("/api/v4/leads/complex", [{"name": "x", "colour": "red", "request_id": "k1"}])
    assert extra.status_code == 400
    [entry] = extra.json()["validation-errors"]
    assert entry["request_id"] == "k1" and entry["errors"][0]["path"] == "colour"
    sip = {"source_uid": "u1", "source_name": "s", "request_id": "k2"}
    sip["metadata"] = {"uniq": "u1", "phone": "1", "service_code": "x", "caller": "+7"}
    bad_meta = post("/api/v4/leads/unsorted/sip", [sip])
    assert bad_meta.status_code == 400
    assert bad_meta.json()["validation-errors"][0]["errors"][0]["path"] == "metadata.caller"
    no_uid = post("/api/v4/leads/unsorted/sip", [{"source_name": "s", "metadata": {}, "request_id": "k3"}])
    assert no_uid.status_code == 400
    assert (
        post("/api/v4/webhooks", {"destination": "https://h/x", "settings": ["add_lead"], "x": 1}).status_code
        == 400
    )
    assert amo.leads == {} and amo.webhooks == {}

    # Over the rate: 429 with an HTML body (as the library expects), and repeated, a blocked account.
    amo.per_second, amo.block_after = 0, 2
    over = get("/api/v4/leads")
    assert over.status_code == 429 and over.headers["Content-Type"] == "text/html"
    assert get("/api/v4/leads").status_code == 429
    blocked = get("/api/v4/leads")
    assert blocked.status_code == 403 and not blocked.headers["Content-Type"].startswith("application/")
