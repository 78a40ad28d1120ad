"""Zadarma/Novofon sign only caller, called number and call_start: a captured request replayed later, or
with a made-up call id and duration, must not create or change calls."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_tenant
from tests.test_webhooks import _counts, _zd
from tracking.models import Call, CallStatus, StoredCallEvent

NUMBER = "+74951110000"


def _start_fields(began: dt.datetime, call_id: str = "in_1") -> dict[str, str]:
    return {
        "event": "NOTIFY_START",
        "pbx_call_id": call_id,
        "caller_id": "79001234567",
        "called_did": NUMBER[1:],
        "call_start": began.strftime("%Y-%m-%d %H:%M:%S"),  # the integration's zone is UTC
    }


def _end_fields(began: dt.datetime, call_id: str, duration: str) -> dict[str, str]:
    return {
        **_start_fields(began, call_id),
        "event": "NOTIFY_END",
        "duration": duration,
        "disposition": "answered",
        "is_recorded": "0",
    }


def _post(client, key: str, fields: dict[str, str]):
    return client.post(f"/hooks/v1/zadarma/{key}", data=urlencode(fields), headers=_zd(fields))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def test_an_old_captured_request_is_refused(client, db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "zadarma", {"api_secret": "zd-secret"})
    for began in (_now() - dt.timedelta(hours=7), _now() - dt.timedelta(days=400)):
        resp = _post(client, integ.integration_key, _start_fields(began))
        assert resp.status_code == 400 and "replay" in resp.get_json()["message"]
        end = _post(client, integ.integration_key, _end_fields(began, "in_1", "30"))
        assert end.status_code == 400
    assert _counts(db) == (0, 0)


def test_a_replay_under_a_new_call_id_is_the_same_call(client, db: Session) -> None:
    t = make_tenant(db)
    h.make_static(db, h.make_channel(db, t.site, "Print"), e164=NUMBER)
    integ = h.make_integration(db, t, "zadarma", {"api_secret": "zd-secret"})
    began = _now() - dt.timedelta(minutes=3)
    assert _post(client, integ.integration_key, _start_fields(began)).status_code == 200
    assert _post(client, integ.integration_key, _end_fields(began, "in_1", "30")).status_code == 200
    before = _counts(db)

    # The signature of the captured request still matches: only the call id and duration are new.
    for forged in (_start_fields(began, "in_666"), _end_fields(began, "in_666", "170")):
        assert _post(client, integ.integration_key, forged).status_code == 200  # a repeat, not an error
    assert _counts(db) == before == (1, 2)
    call = db.query(Call).one()
    assert (call.provider_call_id, call.talk_seconds, call.status) == ("in_1", 30, CallStatus.ANSWERED)
    assert {e.data["provider_call_id"] for e in db.query(StoredCallEvent)} == {"in_1"}

    # Another caller at the same moment is another call.
    other = {**_start_fields(began, "in_2"), "caller_id": "79007654321"}
    assert _post(client, integ.integration_key, other).status_code == 200
    assert _counts(db) == (2, 3)


def test_an_impossible_duration_is_refused(client, db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "zadarma", {"api_secret": "zd-secret"})
    began = _now() - dt.timedelta(minutes=3)
    for duration in ("1e12", "inf", "nan", "-5", "3600", "abc"):  # 3600 s: longer than the call has lasted
        resp = _post(client, integ.integration_key, _end_fields(began, "in_9", duration))
        assert resp.status_code == 400, duration
    assert _counts(db) == (0, 0)
