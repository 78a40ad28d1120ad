"""Notifications by e-mail and Telegram: planned once per event, sent through local SMTP and Bot API fakes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from jobs import notify
from jobs.deliver import Worker
from tests import factories as h
from tests.factories import csrf, make_tenant, make_user, web_login
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.outcomes.test_target_calls import _auth, _call
from tracking.db import utcnow
from tracking.models import (
    Connection,
    ConnectionStatus,
    Delivery,
    DeliveryStatus,
    Pool,
    PoolStat,
    Role,
    TargetRule,
)

BOT = "123456:TEST-token"
CHAT = "-1001234567890"


@pytest.fixture
def smtp():
    fake = FakeSmtp().start()
    yield fake
    fake.stop()


@pytest.fixture
def tg():
    fake = FakeTelegram(BOT).start()
    fake.chats[CHAT] = "supergroup"
    yield fake
    fake.release.set()
    fake.stop()


@pytest.fixture
def nrt(rt, smtp, tg):
    rt.config = {**rt.config, **smtp.config(), "TELEGRAM_BOT_TOKEN": BOT, "TELEGRAM_API_BASE": tg.url}
    return rt


def _subscribe(client, t, events: list[str], chat: str = CHAT) -> tuple[dict, dict]:
    base = f"/api/v1/clients/{t.client.id}/notification-channels"
    mail = client.post(base, json={"kind": "email", "events": events}, headers=_auth(t))
    chat_resp = client.post(
        base, json={"kind": "telegram", "chat_id": chat, "events": events}, headers=_auth(t)
    )
    assert mail.status_code == 201 and chat_resp.status_code == 201, (mail.get_json(), chat_resp.get_json())
    return mail.get_json(), chat_resp.get_json()


def _missed(db, t, call_id: str = "m1", caller: str = "+79001234567"):
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    ch = h.make_channel(db, t.site, "Yandex Direct")
    h.make_static(db, ch, e164="+74950001111")
    return _call(db, integ, call_id, at=utcnow() - dt.timedelta(minutes=3), talk=0, caller=caller)


def test_a_missed_call_reaches_each_subscribed_channel_once(app, client, db, nrt, smtp, tg) -> None:
    t = make_tenant(db)
    _subscribe(client, t, ["missed_call"])
    # A second person who only wants digests gets nothing for the missed call.
    other = make_user(db, t, "sales@acme.example", Role.MANAGER)
    from tracking.accounts import issue_api_token

    token = issue_api_token(db, other, "t")
    db.commit()
    resp = client.post(
        f"/api/v1/clients/{t.client.id}/notification-channels",
        json={"kind": "email", "events": ["daily_digest"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 201
    call = _missed(db, t)

    planned = db.scalars(select(Delivery).where(Delivery.kind == "notification")).all()
    assert sorted((d.connector, d.key) for d in planned) == [
        ("email", f"notify-missed-{call.id}"),
        ("telegram", f"notify-missed-{call.id}"),
    ]
    Worker(nrt).run_once()
    Worker(nrt).run_once()  # nothing left to send: still one each
    assert len(smtp.messages) == 1 and len(tg.messages) == 1
    mail = smtp.messages[0]
    assert mail["To"] == t.admin.email and mail["Subject"] == "Missed call from +79001234567"
    body = mail.get_content()
    for expected in (
        "+79001234567",
        "+74950001111",
        "Yandex Direct",
        f"http://hub.test/clients/{t.client.id}/calls/{call.id}",
    ):
        assert expected in body
    local = call.called_at.astimezone(ZoneInfo("Europe/Moscow"))
    assert f"Time: {local:%Y-%m-%d %H:%M} (Europe/Moscow)" in body
    assert mail["Message-ID"].startswith(f"<notify-missed-{call.id}.")
    text = tg.messages[0]["text"]
    assert "Missed call from +79001234567" in text and f"/calls/{call.id}" in text
    assert tg.messages[0]["chat"]["id"] == int(CHAT)
    db.expire_all()
    rows = {d.connector: d for d in db.scalars(select(Delivery).where(Delivery.kind == "notification"))}
    assert rows["telegram"].status == DeliveryStatus.DONE and rows["telegram"].external_id == "1"
    assert rows["email"].status == DeliveryStatus.DONE


def test_target_calls_are_announced_and_an_answered_call_is_not_missed(app, client, db, nrt, tg) -> None:
    t = make_tenant(db)
    _subscribe(client, t, ["missed_call", "target_call"])
    db.add(TargetRule(client_id=t.client.id, name="Quality lead", min_talk_seconds=30))
    db.commit()
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    call = _call(db, integ, "good", at=utcnow() - dt.timedelta(minutes=5), talk=95)
    keys = {d.key for d in db.scalars(select(Delivery).where(Delivery.kind == "notification"))}
    assert keys == {f"notify-target-{call.id}"}
    Worker(nrt).run_once()
    assert len(tg.messages) == 1 and "Target rules met: Quality lead" in tg.messages[0]["text"]


def test_telegram_and_smtp_refusals_map_to_retry_and_dead(app, client, db, nrt, smtp, tg) -> None:
    t = make_tenant(db)
    mail, chat = _subscribe(client, t, ["missed_call"])
    smtp.temporary_failures = 1
    tg.flood = [7]
    call = _missed(db, t)
    Worker(nrt).run_once()
    rows = {d.connector: d for d in db.scalars(select(Delivery))}
    assert rows["telegram"].status == DeliveryStatus.RETRY and "retry after 7" in rows["telegram"].last_error
    assert rows["telegram"].next_attempt_at >= utcnow() + dt.timedelta(seconds=6)
    assert rows["email"].status == DeliveryStatus.RETRY and "SMTP 451" in rows["email"].last_error
    assert smtp.messages == [] and tg.messages == []

    # The bot is thrown out of the chat and the mailbox goes away: both are dead, with the reason.
    tg.blocked.add(CHAT)
    smtp.mailboxes = {"someone@else.example"}
    db.execute(Delivery.__table__.update().values(next_attempt_at=utcnow()))
    db.commit()
    Worker(nrt).run_once()
    db.expire_all()
    rows = {d.connector: d for d in db.scalars(select(Delivery))}
    assert rows["telegram"].status == DeliveryStatus.DEAD and "bot was blocked" in rows["telegram"].last_error
    assert rows["email"].status == DeliveryStatus.DEAD and "550" in rows["email"].last_error
    assert call.id


def test_scheduled_notifications_are_planned_once_per_event(app, client, db, nrt, tg) -> None:
    t = make_tenant(db)
    events = ["daily_digest", "pool_exhausted", "reauth_needed", "deliveries_dead"]
    _subscribe(client, t, events)
    now = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)  # 12:30 in Moscow: yesterday's digest is due
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    db.add(TargetRule(client_id=t.client.id, name="Lead", min_talk_seconds=30))
    db.commit()
    _call(db, integ, "a", at=dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC), talk=60, caller="+79000000001")
    _call(db, integ, "b", at=dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC), talk=0, caller="+79000000002")
    _call(db, integ, "c", at=dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC), talk=60, caller="+79000000003")
    pool = Pool(client_id=t.client.id, site_id=t.site.id, name="Main")
    db.add(pool)
    db.flush()
    hour = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)
    db.add(PoolStat(pool_id=pool.id, hour=hour, numbers=5, held=5, peak_held=5, sessions=60, fallbacks=40))
    crm = Connection(
        agency_id=t.agency.id,
        client_id=t.client.id,
        provider="amocrm",
        name="Sales CRM",
        connectors=["amocrm"],
        status=ConnectionStatus.NEEDS_REAUTH,
        status_reason="invalid_grant",
    )
    db.add(crm)
    db.flush()
    db.add(
        Delivery(
            client_id=t.client.id,
            connection_id=crm.id,
            connector="amocrm",
            kind="call",
            key="otkuda-call-x",
            status=DeliveryStatus.DEAD,
            updated_at=now - dt.timedelta(hours=1),
        )
    )
    db.commit()

    assert notify.scan(nrt, now) == 8  # four events × (e-mail + Telegram)
    assert notify.scan(nrt, now) == 0  # a second scan (or a restarted scheduler) adds nothing
    rows = db.scalars(
        select(Delivery).where(Delivery.kind == "notification", Delivery.connector == "telegram")
    ).all()
    by_event = {d.payload["event"]: d.payload for d in rows}
    assert set(by_event) == set(events)
    digest = by_event["daily_digest"]
    assert digest["subject"] == "Calls on 2026-11-20: 2 (1 target, 1 missed)"
    assert (
        "Pool 'Main'" in by_event["pool_exhausted"]["subject"]
        and "40%" in by_event["pool_exhausted"]["subject"]
    )
    assert "Sales CRM" in by_event["reauth_needed"]["subject"]
    assert by_event["deliveries_dead"]["subject"] == "1 deliveries gave up today"
    # Before 08:00 local time no digest is due yet.
    assert notify.scan(nrt, dt.datetime(2026, 11, 22, 4, 0, tzinfo=dt.UTC)) == 0


def test_api_rules_and_the_test_button(app, client, db, nrt, tg, smtp) -> None:
    t = make_tenant(db)
    viewer = make_user(db, t, "viewer@acme.example", Role.VIEWER, client=t.client)
    from tracking.accounts import issue_api_token

    vtoken = {"Authorization": f"Bearer {issue_api_token(db, viewer, 'v')}"}
    db.commit()
    base = f"/api/v1/clients/{t.client.id}/notification-channels"
    assert (
        client.post(
            base, json={"kind": "telegram", "chat_id": CHAT, "events": []}, headers=vtoken
        ).status_code
        == 403
    )
    assert client.post(base, json={"kind": "email", "events": ["nope"]}, headers=vtoken).status_code == 400
    mine = client.post(base, json={"kind": "email", "events": ["missed_call"]}, headers=vtoken)
    assert mine.status_code == 201 and mine.get_json()["address"] == "viewer@acme.example"
    bad_chat = client.post(base, json={"kind": "telegram", "chat_id": "12ab", "events": []}, headers=_auth(t))
    assert bad_chat.status_code == 400 and bad_chat.get_json()["field"] == "chat_id"
    _, chat = _subscribe(client, t, ["missed_call"])
    # The viewer sees the chat and its own address, not the admin's.
    seen = {c["address"] for c in client.get(base, headers=vtoken).get_json()["items"]}
    assert seen == {CHAT, "viewer@acme.example"}
    assert client.post(f"/api/v1/notification-channels/{chat['id']}/test", headers=vtoken).status_code == 403
    other = make_tenant(db, "Other")
    assert (
        client.post(f"/api/v1/notification-channels/{chat['id']}/test", headers=_auth(other)).status_code
        == 404
    )

    resp = client.post(f"/api/v1/notification-channels/{chat['id']}/test", headers=_auth(t))
    assert resp.status_code == 202
    Worker(nrt).run_once()
    assert [m["text"].splitlines()[0] for m in tg.messages] == ["Otkuda: test notification"]
    assert smtp.messages == []  # only the channel asked for


def test_settings_page_links_a_chat_and_sends_a_test(app, client, db, nrt, tg) -> None:
    t = make_tenant(db)
    web_login(client, t.admin.email)
    page = client.get(f"/clients/{t.client.id}/notifications")
    assert page.status_code == 200
    html = page.data.decode()
    assert "E-mail to me" in html and f'href="/clients/{t.client.id}/notifications"' in html
    token = csrf(client)
    resp = client.post(
        f"/clients/{t.client.id}/notifications/telegram",
        data={"csrf_token": token, "chat_id": CHAT, "events": ["missed_call", "daily_digest"]},
    )
    assert resp.status_code == 302
    conn = db.scalars(select(Connection).where(Connection.provider == "telegram")).one()
    assert conn.account == {"chat_id": CHAT} and conn.settings["events"] == ["missed_call", "daily_digest"]
    assert (
        client.post(
            f"/clients/{t.client.id}/notifications/email",
            data={"csrf_token": token, "events": ["target_call"]},
        ).status_code
        == 302
    )
    client.post(f"/clients/{t.client.id}/notifications/{conn.id}/test", data={"csrf_token": token})
    Worker(nrt).run_once()
    assert len(tg.messages) == 1
    # Without the form token nothing changes.
    assert client.post(f"/clients/{t.client.id}/notifications/{conn.id}/delete", data={}).status_code == 400
    assert db.get(Connection, conn.id) is not None
