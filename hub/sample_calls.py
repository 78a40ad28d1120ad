"""A test call for any telephony integration: the requests its provider would send for one short incoming
call, signed exactly as that provider signs them, posted through the hub's own webhook routes.

So "send a test call" proves what a real call would: the webhook URL, the stored secret, the signature
check, parsing, ingestion and attribution. Nothing here writes a call itself."""

from __future__ import annotations

import json
import secrets as secrets_mod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from hub.extensions import db
from tracking.crypto import decrypt_json
from tracking.db import utcnow
from tracking.errors import Refused
from tracking.models import Call, TelephonyIntegration, TrackingNumber
from tracking.models.numbers import NumberStatus
from tracking.telephony import generic, mango, zadarma

# Test calls come from +7 999 000-xx-xx. Zadarma signs only caller, number and start second, so two test
# calls in one second from one caller would be one call replayed: each test call has its own caller.
TEST_CALLER_PREFIX = "+7999000"


def _test_caller() -> str:
    return TEST_CALLER_PREFIX + f"{secrets_mod.randbelow(10_000):04d}"


@dataclass(frozen=True)
class Post:
    """One webhook request: its path under the integration's URL, body and headers."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


FORM = "application/x-www-form-urlencoded"


def _generic(secrets: dict[str, Any], call_id: str, called: str, caller: str) -> list[Post]:
    now = utcnow()
    # Both at "now": a call said to start earlier could predate the visit that is being tested.
    events = [
        {
            "event": "start",
            "call_id": call_id,
            "at": now.isoformat(),
            "caller": caller,
            "called": called,
        },
        {"event": "end", "call_id": call_id, "at": now.isoformat(), "status": "answered"},
    ]
    stamp = str(int(now.timestamp()))
    posts = []
    for event in events:
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            generic.TIMESTAMP_HEADER: stamp,
            generic.SIGNATURE_HEADER: generic.sign(secrets.get("secret", ""), stamp, body),
        }
        posts.append(Post("", body, headers))
    return posts


def _twilio(secrets: dict[str, Any], call_id: str, called: str, caller: str, base: str) -> list[Post]:
    common = {"CallSid": call_id, "From": caller, "To": called, "Direction": "inbound"}
    # Twilio signs the full URL it posts to and the form parameters with the account's Auth Token.
    validator = RequestValidator(secrets.get("auth_token", ""))
    posts = []
    for path, params in (
        ("/voice", {**common, "CallStatus": "ringing"}),
        ("/status", {**common, "CallStatus": "completed", "CallDuration": "0"}),
    ):
        signature = validator.compute_signature(base + path, params)
        headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
        posts.append(Post(path, urlencode(params).encode(), headers))
    return posts


def _zadarma(secrets: dict[str, Any], call_id: str, called: str, caller: str, tz: str) -> list[Post]:
    # call_start is the PBX's local time, in the zone the integration is set to.
    start = utcnow().astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
    common = {"pbx_call_id": call_id, "caller_id": caller.lstrip("+"), "call_start": start}
    events = [
        {**common, "event": "NOTIFY_START", "called_did": called.lstrip("+")},
        {
            **common,
            "event": "NOTIFY_END",
            "called_did": called.lstrip("+"),
            "duration": "0",
            "disposition": "no answer",
            "status_code": "16",
        },
    ]
    posts = []
    for fields in events:
        headers = {
            "Content-Type": FORM,
            "Signature": zadarma.signature(secrets.get("api_secret", ""), fields),
        }
        posts.append(Post("", urlencode(fields).encode(), headers))
    return posts


def _mango(secrets: dict[str, Any], call_id: str, called: str, caller: str) -> list[Post]:
    now = int(utcnow().timestamp())
    line = called.lstrip("+")
    appeared = {
        "entry_id": call_id,
        "call_id": call_id + "-1",
        "timestamp": now,
        "seq": 1,
        "call_state": "Appeared",
        "from": {"number": caller.lstrip("+")},
        "to": {"number": line, "line_number": line},
    }
    summary = {
        "entry_id": call_id,
        "call_direction": 1,
        "from": {"number": caller.lstrip("+")},
        "to": {"number": line},
        "line_number": line,
        "create_time": now,
        "end_time": now,
        "talk_time": 0,
        "entry_result": 0,
    }
    posts = []
    for path, payload in (("/events/call", appeared), ("/events/summary", summary)):
        text = json.dumps(payload)
        api_key = secrets.get("api_key", "")
        form = {
            "vpbx_api_key": api_key,
            "sign": mango.sign(api_key, text, secrets.get("api_salt", "")),
            "json": text,
        }
        posts.append(Post(path, urlencode(form).encode(), {"Content-Type": FORM}))
    return posts


def dialled_number(integ: TelephonyIntegration, number_id: int | None = None) -> TrackingNumber:
    """The active tracking number of the integration's client a test call dials."""
    query = select(TrackingNumber).where(
        TrackingNumber.client_id == integ.client_id, TrackingNumber.status == NumberStatus.ACTIVE
    )
    if number_id is not None:
        query = query.where(TrackingNumber.id == number_id)
    number = db().scalar(query.order_by(TrackingNumber.id).limit(1))
    if number is None:
        raise Refused("number_id", "add an active tracking number first: the test call dials one")
    return number


def requests_for(integ: TelephonyIntegration, called: str) -> tuple[str, str, list[Post]]:
    """The webhook URL path of ``integ``, the provider's id of one test call to ``called`` and its signed
    requests."""
    secrets = decrypt_json(current_app.config["ENCRYPTION_KEY"], integ.secrets_encrypted)
    path = f"/hooks/v1/{integ.provider}/{integ.integration_key}"
    base = current_app.config["BASE_URL"] + path
    # Twilio's call ids are "CA" and 32 hex digits; the others take any text.
    call_id = (
        ("CA" + secrets_mod.token_hex(16))
        if integ.provider == "twilio"
        else "test-" + secrets_mod.token_hex(6)
    )
    caller = _test_caller()
    if integ.provider == generic.PROVIDER:
        posts = _generic(secrets, call_id, called, caller)
    elif integ.provider == "twilio":
        posts = _twilio(secrets, call_id, called, caller, base)
    elif integ.provider in ("zadarma", "novofon"):
        posts = _zadarma(secrets, call_id, called, caller, (integ.settings or {}).get("timezone") or "UTC")
    elif integ.provider == mango.PROVIDER:
        posts = _mango(secrets, call_id, called, caller)
    else:
        raise Refused("integration", f"no test call is known for {integ.provider}")
    return path, call_id, posts


def send_test_call(integ: TelephonyIntegration, number_id: int | None = None) -> Call:
    """Post a test call's requests through the webhook routes, as the provider would; the call they made.

    Each request runs in its own application context, with its own database session, exactly as a request
    from the provider would."""
    if not integ.active:
        raise Refused("integration", "the integration is paused: resume it first")
    number = dialled_number(integ, number_id)
    path, call_id, posts = requests_for(integ, number.e164)
    integration_id = integ.id
    db().commit()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for post in posts:
        with app.app_context():
            resp = app.test_client().post(path + post.path, data=post.body, headers=post.headers)
        if resp.status_code != 200:
            answer = resp.get_json(silent=True) or {}
            raise Refused(
                "integration", f"the webhook answered {resp.status_code}: {answer.get('message', '')}"
            )
    db().expire_all()
    call = db().scalar(
        select(Call).where(Call.integration_id == integration_id, Call.provider_call_id == call_id)
    )
    if call is None:
        raise Refused("integration", "the webhook accepted the test call but recorded none")
    return call
