"""The Twilio voice webhook connects the caller while the database is down or too slow, from the outage
snapshot the hub keeps beside it, and the call is recorded once the database is back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from twilio.request_validator import RequestValidator

from hub import create_app
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tracking.db import make_engine
from tracking.models import Call, CallStatus
from tracking.telephony import outage

BASE = "http://hub.test"
TOKEN = "tw-outage-token"
NUMBER, FORWARD, DEFAULT = "+74951110000", "+74957770000", "+74950000009"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable(database_url: str, tmp_path: Path) -> str:
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'otkuda.db'}"  # cannot be opened
    return f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/otkuda"


@pytest.fixture
def apps() -> Iterator[list[Flask]]:
    made: list[Flask] = []
    yield made
    for app in made:
        app.extensions["otkuda.engine"].dispose()


def _app(database_url: str, instance: Path, **extra: str) -> Flask:
    return create_app(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_DIR": str(instance),
            "SECRET_KEY": "test-secret",
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "BASE_URL": BASE,
            "TESTING": True,
            **extra,
        }
    )


def _post(client, path: str, params: dict[str, str], token: str = TOKEN):
    sig = RequestValidator(token).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def _setup(app: Flask, db) -> tuple[str, object]:
    """A Twilio integration and a number, made through the API as an agency would."""
    t = make_tenant(db)
    auth = {"Authorization": f"Bearer {t.token}"}
    c = app.test_client()
    made = c.post(
        f"/api/v1/clients/{t.client.id}/telephony-integrations",
        json={"provider": "twilio", "secrets": {"auth_token": TOKEN}},
        headers=auth,
    )
    assert made.status_code == 201
    key = made.get_json()["webhook_urls"]["voice"].split("/")[-2]
    number = c.post(
        f"/api/v1/clients/{t.client.id}/numbers", json={"e164": NUMBER, "forward_to": FORWARD}, headers=auth
    )
    assert number.status_code == 201, number.get_json()
    return key, t


CALL = {"AccountSid": "AC" + "0" * 32, "CallSid": "CA-outage-1", "From": "+79001234567", "To": NUMBER}


def test_caller_is_connected_while_the_database_is_down_and_recorded_after(
    database_url, db, tmp_path, apps
) -> None:
    instance = tmp_path / "instance"
    up = _app(database_url, instance)
    down_app = _app(_unreachable(database_url, tmp_path), instance, TWILIO_FALLBACK_DIAL=DEFAULT)
    apps.extend([up, down_app])
    key, _t = _setup(up, db)
    assert key in outage.read_snapshot(instance)  # written when the integration and number were saved

    down = down_app.test_client()
    voice = _post(down, f"/hooks/v1/twilio/{key}/voice", {**CALL, "CallStatus": "ringing"})
    assert voice.status_code == 200 and voice.mimetype == "application/xml"
    xml = voice.get_data(as_text=True)
    assert f"{FORWARD}</Number>" in xml and f"{BASE}/hooks/v1/twilio/{key}/status" in xml

    # A number the snapshot does not know goes to the configured default; a forged request gets nothing.
    other = _post(
        down, f"/hooks/v1/twilio/{key}/voice", {**CALL, "CallSid": "CA-outage-2", "To": "+74951119999"}
    )
    assert f"{DEFAULT}</Number>" in other.get_data(as_text=True)
    forged = _post(down, f"/hooks/v1/twilio/{key}/voice", {**CALL, "CallSid": "CA-forged"}, token="wrong")
    assert forged.status_code == 403
    assert _post(down, "/hooks/v1/twilio/unknown-key/voice", CALL).get_data(as_text=True).count(DEFAULT) == 1
    assert len(list((instance / outage.SPOOL).glob("*.json"))) == 2
    assert db.scalar(select(func.count()).select_from(Call)) == 0

    # The database is back: Twilio's status callback arrives and both spooled starts are ingested.
    done = _post(
        up.test_client(),
        f"/hooks/v1/twilio/{key}/status",
        {**CALL, "CallStatus": "completed", "CallDuration": "0"},
    )
    assert done.status_code == 200
    db.expire_all()
    calls = {c.provider_call_id: c for c in db.scalars(select(Call))}
    assert set(calls) == {"CA-outage-1", "CA-outage-2"}
    first = calls["CA-outage-1"]
    assert (first.caller, first.called_number, first.status) == ("+79001234567", NUMBER, CallStatus.MISSED)
    assert first.called_at is not None and first.finalised_at is not None
    assert list((instance / outage.SPOOL).glob("*.json")) == []


def test_without_snapshot_or_default_the_answer_is_503(database_url, db, tmp_path, apps) -> None:
    apps.append(_app(_unreachable(database_url, tmp_path), tmp_path / "empty"))
    down = apps[0].test_client()
    resp = _post(down, "/hooks/v1/twilio/some-key/voice", CALL)
    assert resp.status_code == 503 and resp.get_json()["error"] == "database_unavailable"


def test_a_slow_database_does_not_hold_the_caller(database_url, db, tmp_path, apps) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite readers are not blocked by a writer (WAL); the PostgreSQL lock shows slowness")
    instance = tmp_path / "instance"
    up = _app(database_url, instance)
    apps.append(up)
    key, _t = _setup(up, db)
    engine = make_engine(database_url)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE telephony_integrations IN ACCESS EXCLUSIVE MODE"))
            locked.set()
            release.wait(30)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        voice = _post(up.test_client(), f"/hooks/v1/twilio/{key}/voice", {**CALL, "CallStatus": "ringing"})
        assert voice.status_code == 200 and f"{FORWARD}</Number>" in voice.get_data(as_text=True)
    finally:
        release.set()
        holder.join()
        engine.dispose()
    assert len(list((instance / outage.SPOOL).glob("*.json"))) == 1
