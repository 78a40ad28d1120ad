"""Telephony webhooks end to end over HTTP, signed exactly as each provider signs them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from tests import factories as h
from tests.factories import make_tenant
from tracking import hooks
from tracking.models import AttributionMethod, Call, CallStatus, StoredCallEvent
from tracking.telephony import generic, mango, zadarma

BASE = "http://hub.test"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def finalised():
    seen: list[hooks.CallFinalised] = []

    def listener(_db: Session, event: hooks.CallFinalised) -> None:
        seen.append(event)

    hooks.call_finalised.connect(listener)
    yield seen
    hooks.call_finalised.disconnect(listener)


def _counts(db: Session) -> tuple[int, int]:
    db.rollback()
    return (
        db.scalar(select(func.count()).select_from(Call)),
        db.scalar(select(func.count()).select_from(StoredCallEvent)),
    )


def _twilio_post(client, path: str, params: dict[str, str], token: str = "tw-token"):  # noqa: S107
    sig = RequestValidator(token).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def test_twilio_lifecycle(client, db: Session, finalised, caplog) -> None:
    t = make_tenant(db)
    ch = h.make_channel(db, t.site, "Radio")
    h.make_static(db, ch, e164="+74951110000", forward_to="+74957770000")
    integ = h.make_integration(db, t, "twilio", {"auth_token": "tw-token"})
    base = f"/hooks/v1/twilio/{integ.integration_key}"
    common = {
        "AccountSid": "AC" + "0" * 32,
        "From": "+79001234567",
        "To": "+74951110000",
        "Direction": "inbound",
    }

    caplog.set_level(logging.WARNING)
    bad = client.post(
        f"{base}/voice", data={**common, "CallSid": "CA1"}, headers={"X-Twilio-Signature": "nope"}
    )
    assert bad.status_code == 403 and bad.get_json()["error"] == "invalid_signature"
    assert _counts(db) == (0, 0)
    assert "tw-token" not in caplog.text and integ.integration_key not in caplog.text

    voice = _twilio_post(client, f"{base}/voice", {**common, "CallSid": "CA1", "CallStatus": "ringing"})
    assert voice.status_code == 200 and voice.mimetype == "application/xml"
    xml = voice.get_data(as_text=True)
    assert "<Number" in xml and "+74957770000</Number>" in xml and 'record="record-from-answer-dual"' in xml
    assert f"{BASE}{base}/status" in xml

    child = {"CallSid": "CA2", "ParentCallSid": "CA1", "From": "+79001234567", "To": "+74957770000"}
    assert _twilio_post(client, f"{base}/status", {**child, "CallStatus": "ringing"}).status_code == 200
    assert _twilio_post(client, f"{base}/status", {**child, "CallStatus": "in-progress"}).status_code == 200
    rec = {"CallSid": "CA1", "RecordingUrl": "https://api.twilio.com/rec/RE1", "RecordingSid": "RE1"}
    assert _twilio_post(client, f"{base}/status", rec).status_code == 200  # recording before the end
    dial = {**common, "CallSid": "CA1", "DialCallStatus": "completed", "DialCallDuration": "42"}
    assert _twilio_post(client, f"{base}/status", dial).status_code == 200
    done = {**common, "CallSid": "CA1", "CallStatus": "completed", "CallDuration": "50"}
    resp = _twilio_post(client, f"{base}/status", done)
    assert resp.status_code == 200
    assert _twilio_post(client, f"{base}/status", done).status_code == 200  # Twilio retried

    call = db.scalars(select(Call)).one()
    assert (call.status, call.talk_seconds, call.caller, call.forwarded_to) == (
        CallStatus.ANSWERED,
        42,
        "+79001234567",
        "+74957770000",
    )
    assert call.recording_url == "https://api.twilio.com/rec/RE1" and call.channel_id == ch.id
    assert call.finalised_at is not None and [e.call_id for e in finalised] == [call.id]


def test_twilio_dial_action_with_recording_keeps_the_dialled_outcome(client, db: Session, finalised) -> None:
    # With recording on, one <Dial action> request carries the recording and DialCallStatus/Duration.
    t = make_tenant(db)
    h.static_number(db, t, "+74951110001", h.channel(db, t, "Radio"), forward_to="+74957770001")
    integ = h.integration(db, t, "twilio", {"auth_token": "tw-token"})
    base = f"/hooks/v1/twilio/{integ.integration_key}"
    common = {"AccountSid": "AC" + "0" * 32, "From": "+79001234567", "To": "+74951110001"}
    voice = _twilio_post(client, f"{base}/voice", {**common, "CallSid": "CA5", "CallStatus": "ringing"})
    assert voice.status_code == 200
    action = {**common, "CallSid": "CA5", "CallStatus": "in-progress", "DialCallSid": "CA6"}
    action |= {"DialCallStatus": "completed", "DialCallDuration": "42", "RecordingSid": "RE5"}
    action |= {"RecordingUrl": "https://api.twilio.com/rec/RE5", "RecordingDuration": "40"}
    assert _twilio_post(client, f"{base}/status", action).status_code == 200
    done = {**common, "CallSid": "CA5", "CallStatus": "completed", "CallDuration": "50"}
    assert _twilio_post(client, f"{base}/status", done).status_code == 200
    call = db.scalars(select(Call)).one()
    assert (call.status, call.talk_seconds) == (CallStatus.ANSWERED, 42)
    assert call.recording_url == "https://api.twilio.com/rec/RE5" and len(finalised) == 1


def test_twilio_unanswered_and_unknown_number(client, db: Session, finalised) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "twilio", {"auth_token": "tw-token"})
    base = f"/hooks/v1/twilio/{integ.integration_key}"
    params = {"CallSid": "CA9", "From": "anonymous", "To": "+74959999999", "CallStatus": "ringing"}
    voice = _twilio_post(client, f"{base}/voice", params)
    assert voice.status_code == 200 and "<Dial" not in voice.get_data(as_text=True)
    _twilio_post(client, f"{base}/status", {**params, "CallStatus": "no-answer"})
    call = db.scalars(select(Call)).one()
    assert call.attribution_method == AttributionMethod.UNMATCHED and call.caller is None
    assert call.status == CallStatus.MISSED and len(finalised) == 1


def _zd(fields: dict[str, str], secret: str = "zd-secret") -> dict[str, str]:  # noqa: S107
    return {"Signature": zadarma.signature(secret, fields), "Content-Type": FORM}


def test_zadarma_and_novofon(client, db: Session, finalised) -> None:
    t = make_tenant(db)
    h.make_static(db, h.make_channel(db, t.site, "Print"), e164="+74951110000")
    integ = h.make_integration(db, t, "zadarma", {"api_secret": "zd-secret"}, timezone="Europe/Moscow")
    url = f"/hooks/v1/zadarma/{integ.integration_key}"
    echo = client.get(f"{url}?zd_echo=abc123")
    assert echo.status_code == 200 and echo.get_data(as_text=True) == "abc123"
    # The integration is a Zadarma one: the Novofon URL with its key is unknown.
    assert client.get(f"/hooks/v1/novofon/{integ.integration_key}?zd_echo=x").status_code == 404
    assert client.get("/hooks/v1/zadarma/not-a-key?zd_echo=x").status_code == 404

    began = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=2)
    local = began.astimezone(ZoneInfo("Europe/Moscow")).strftime("%Y-%m-%d %H:%M:%S")
    base = {"pbx_call_id": "in_77", "caller_id": "79001234567", "call_start": local}
    start = {**base, "event": "NOTIFY_START", "called_did": "74951110000"}
    answer = {**base, "event": "NOTIFY_ANSWER", "destination": "101", "internal": "101"}
    end = {
        **base,
        "event": "NOTIFY_END",
        "called_did": "74951110000",
        "internal": "101",
        "duration": "35",
        "disposition": "answered",
        "status_code": "16",
        "is_recorded": "1",
        "call_id_with_rec": "1763640000.77",
    }
    record = {"event": "NOTIFY_RECORD", "pbx_call_id": "in_77", "call_id_with_rec": "1763640000.77"}
    tampered = client.post(url, data=urlencode({**start, "called_did": "74951110001"}), headers=_zd(start))
    assert tampered.status_code == 403 and _counts(db) == (0, 0)
    for fields in (end, record, start, answer, end):
        resp = client.post(url, data=urlencode(fields), headers=_zd(fields))
        assert resp.status_code == 200, resp.get_json()
    call = db.scalars(select(Call)).one()
    assert call.called_at == began
    assert (call.status, call.talk_seconds, call.recording_ref) == (CallStatus.ANSWERED, 35, "1763640000.77")
    assert call.attribution_method == AttributionMethod.STATIC and len(finalised) == 1

    novo = h.make_integration(db, t, "novofon", {"api_secret": "nf-secret"})
    fields = {**start, "pbx_call_id": "nf_1"}
    resp = client.post(
        f"/hooks/v1/novofon/{novo.integration_key}", data=urlencode(fields), headers=_zd(fields, "nf-secret")
    )
    assert resp.status_code == 200
    assert db.scalars(select(Call).where(Call.provider == "novofon")).one().provider_call_id == "nf_1"
    malformed = {
        "event": "NOTIFY_START",
        "pbx_call_id": "x",
        "caller_id": "1",
        "called_did": "2",
        "call_start": "?",
    }
    assert client.post(url, data=urlencode(malformed), headers=_zd(malformed)).status_code == 400


def _mango(payload: dict) -> dict[str, str]:
    text = json.dumps(payload)
    return {"vpbx_api_key": "mg-key", "sign": mango.sign("mg-key", text, "mg-salt"), "json": text}


def test_mango_events_and_summary(client, db: Session, finalised) -> None:
    t = make_tenant(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    seo = h.make_channel(db, t.site, "SEO")
    now = int(time.time())
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    s = h.make_visit(db, t, seo, started=at - dt.timedelta(minutes=3), last_seen=at, utm_source="google")
    h.make_hold(db, s, p.numbers[1], at - dt.timedelta(minutes=3), at + dt.timedelta(minutes=12))
    integ = h.make_integration(db, t, "mango", {"api_key": "mg-key", "api_salt": "mg-salt"})
    base = f"/hooks/v1/mango/{integ.integration_key}"
    assert client.post(f"{base}/ping").status_code == 200
    appeared = {
        "entry_id": "E1",
        "call_id": "L1",
        "timestamp": now,
        "seq": 1,
        "call_state": "Appeared",
        "from": {"number": "79001234567"},
        "to": {"number": p.numbers[1].e164.lstrip("+"), "line_number": p.numbers[1].e164.lstrip("+")},
    }
    forged = {**_mango(appeared), "sign": "0" * 64}
    assert client.post(f"{base}/events/call", data=forged).status_code == 403
    assert _counts(db) == (0, 0)
    assert client.post(f"{base}/events/call", data=_mango(appeared)).status_code == 200
    connected = {
        **appeared,
        "seq": 2,
        "call_state": "Connected",
        "timestamp": now + 5,
        "to": {"extension": "101"},
    }
    assert client.post(f"{base}/events/call", data=_mango(connected)).status_code == 200
    gone = {**connected, "seq": 3, "call_state": "Disconnected", "timestamp": now + 65}
    assert client.post(f"{base}/events/call", data=_mango(gone)).status_code == 200
    summary = {
        "entry_id": "E1",
        "call_direction": 1,
        "from": {"number": "79001234567"},
        "to": {"extension": "101"},
        "line_number": p.numbers[1].e164.lstrip("+"),
        "create_time": now,
        "forward_time": now + 1,
        "talk_time": now + 5,
        "end_time": now + 65,
        "entry_result": 1,
    }
    assert client.post(f"{base}/events/summary", data=_mango(summary)).status_code == 200
    call = db.scalars(select(Call)).one()
    assert (call.status, call.wait_seconds, call.talk_seconds) == (CallStatus.ANSWERED, 5, 60)
    assert call.attribution_method == AttributionMethod.DYNAMIC and call.session_id == s.id
    assert len(finalised) == 1 and finalised[0].payload["session"]["utm_source"] == "google"
    assert client.post(f"{base}/events/call", data={"vpbx_api_key": "mg-key"}).status_code == 403


def test_mango_outgoing_call_leaves_no_call(client, db: Session, finalised) -> None:
    t = make_tenant(db)
    p = h.make_pool_setup(db, t.site, "+749522300", 1)
    integ = h.make_integration(db, t, "mango", {"api_key": "mg-key", "api_salt": "mg-salt"})
    base = f"/hooks/v1/mango/{integ.integration_key}"
    now = int(time.time())
    line = p.numbers[0].e164.lstrip("+")
    # An employee's outgoing call (VPBX API v1.10's example): its legs start nothing.
    leg = {"entry_id": "OUT", "call_id": "L1", "timestamp": now, "seq": 1, "location": "abonent"}
    leg |= {"call_state": "Appeared", "from": {"extension": "1234"}, "to": {"number": "12345678"}}
    assert client.post(f"{base}/events/call", data=_mango(leg)).status_code == 200
    assert db.scalars(select(Call)).all() == []
    # A leg that looked incoming (a callback through the line) started a call; the summary says outbound.
    callback = {**leg, "entry_id": "CB", "from": {"number": "79001234567"}}
    callback |= {"to": {"number": line, "line_number": line}}
    assert client.post(f"{base}/events/call", data=_mango(callback)).status_code == 200
    assert len(db.scalars(select(Call)).all()) == 1
    summary = {"entry_id": "CB", "call_direction": 2, "from": {"number": "79001234567"}, "line_number": line}
    summary |= {"create_time": now, "talk_time": now + 3, "end_time": now + 30, "entry_result": 1}
    assert client.post(f"{base}/events/summary", data=_mango(summary)).status_code == 200
    db.expire_all()
    assert db.scalars(select(Call)).all() == [] and finalised == []


def test_mango_call_that_ended_in_the_ivr_is_missed(client, db: Session, finalised) -> None:
    # VPBX API v1.10's example: the caller left in the IVR menu; entry_result 1, talk_time 0.
    t = make_tenant(db)
    p = h.pool(db, t, "+749522400", 1)
    integ = h.integration(db, t, "mango", {"api_key": "mg-key", "api_salt": "mg-salt"})
    base = f"/hooks/v1/mango/{integ.integration_key}"
    now = int(time.time())
    line = p.numbers[0].e164.lstrip("+")
    leg = {"entry_id": "IVR", "call_id": "L1", "timestamp": now, "seq": 1, "call_state": "Appeared"}
    leg |= {"from": {"number": "79001234567"}, "to": {"number": line, "line_number": line}}
    assert client.post(f"{base}/events/call", data=_mango(leg)).status_code == 200
    menu = {**leg, "seq": 2, "call_state": "Connected", "location": "ivr", "timestamp": now + 1}
    assert client.post(f"{base}/events/call", data=_mango(menu)).status_code == 200
    summary = {"entry_id": "IVR", "call_direction": 1, "from": {"number": "79001234567"}, "line_number": line}
    summary |= {"to": {"number": line}, "create_time": now, "forward_time": 0, "talk_time": 0}
    summary |= {"end_time": now + 40, "entry_result": 1, "disconnect_reason": 1110}
    assert client.post(f"{base}/events/summary", data=_mango(summary)).status_code == 200
    call = db.scalars(select(Call)).one()
    assert (call.status, call.talk_seconds, call.answered_at) == (CallStatus.MISSED, 0, None)
    assert len(finalised) == 1


def _generic(client, key: str, payload: dict | bytes, secret: str = "gen-secret", ts: int | None = None):  # noqa: S107
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    headers = {
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign(secret, stamp, body),
        "Content-Type": "application/json",
    }
    return client.post(f"/hooks/v1/generic/{key}", data=body, headers=headers)


def test_generic_pbx_webhook(client, db: Session, finalised, caplog) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "gen-secret"})
    key = integ.integration_key
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = {
        "event": "start",
        "call_id": "pbx-1",
        "caller": "+79001234567",
        "called": "+74958880000",
        "at": now.isoformat(),
    }
    caplog.set_level(logging.WARNING)
    assert _generic(client, key, start, secret="wrong").status_code == 403
    stale = _generic(client, key, start, ts=int(time.time()) - 600)
    assert stale.status_code == 403 and "stale" in stale.get_json()["message"]
    assert _generic(client, "nope", start).status_code == 404
    assert _generic(client, key, b"{not json").status_code == 400
    assert _generic(client, key, {**start, "event": "transfer"}).status_code == 400
    assert _counts(db) == (0, 0)
    assert "gen-secret" not in caplog.text

    end = {
        "event": "end",
        "call_id": "pbx-1",
        "at": (now + dt.timedelta(seconds=12)).isoformat(),
        "status": "missed",
    }
    assert _generic(client, key, end).status_code == 200
    assert _generic(client, key, start).status_code == 200
    assert _generic(client, key, start).status_code == 200
    call = db.scalars(select(Call)).one()
    # A number we do not know: stored as unmatched, not dropped.
    assert call.attribution_method == AttributionMethod.UNMATCHED and call.called_number == "+74958880000"
    assert (call.status, call.wait_seconds, call.abandoned) == (CallStatus.MISSED, 12, True)
    assert _counts(db) == (1, 2) and len(finalised) == 1


def test_inactive_integration_and_oversized_body(client, db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "gen-secret"})
    big = {"event": "start", "call_id": "x", "called": "+74951110000", "at": 1, "pad": "x" * 70000}
    assert _generic(client, integ.integration_key, big).status_code == 413
    integ.active = False
    db.commit()
    start = {"event": "start", "call_id": "x", "called": "+74951110000", "at": int(time.time())}
    assert _generic(client, integ.integration_key, start).status_code == 404
    assert _counts(db) == (0, 0)
