"""The generic PBX webhook (Asterisk, FreePBX, any cloud PBX), documented in docs/generic-pbx-webhook.md.

JSON body, signed with HMAC-SHA256 over ``<timestamp>.<body>``; a timestamp more than five minutes from our
clock is refused so a captured request cannot be replayed later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tracking.telephony.base import (
    MAX_CALL_SECONDS,
    CallOutcome,
    EventKind,
    PayloadInvalid,
    ProviderEvent,
    SignatureInvalid,
    check_time,
    from_unix,
    parse_int,
    require,
    to_e164,
)

PROVIDER = "generic"
TIMESTAMP_HEADER = "X-Otkuda-Timestamp"
SIGNATURE_HEADER = "X-Otkuda-Signature"
MAX_SKEW = dt.timedelta(minutes=5)
_KINDS = {"start": EventKind.START, "answer": EventKind.ANSWER, "end": EventKind.END}
_KINDS["recording"] = EventKind.RECORD


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: dt.datetime) -> None:
    timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not timestamp or not given:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    try:
        sent = from_unix(timestamp, TIMESTAMP_HEADER) if timestamp.isascii() and timestamp.isdigit() else None
    except PayloadInvalid:
        sent = None
    if sent is None:
        raise SignatureInvalid(f"{TIMESTAMP_HEADER} must be unix seconds")
    if abs(now - sent) > MAX_SKEW:
        raise SignatureInvalid("timestamp is stale")
    if not given.startswith("sha256="):
        given = "sha256=" + given
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), given.lower().encode()):
        raise SignatureInvalid("signature does not match")


def _time(data: Mapping[str, Any], name: str) -> dt.datetime | None:
    value = data.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_unix(value, name)
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PayloadInvalid(f"{name} must be ISO 8601 or unix seconds") from None
    if parsed.tzinfo is None:
        raise PayloadInvalid(f"{name} must carry a time zone")
    return check_time(parsed.astimezone(dt.UTC), name)


def parse(body: bytes) -> ProviderEvent:
    try:
        data = json.loads(body)
    except ValueError:
        raise PayloadInvalid("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise PayloadInvalid("body must be a JSON object")
    kind = _KINDS.get(str(data.get("event", "")))
    if kind is None:
        raise PayloadInvalid("event must be one of start, answer, end, recording")
    at = _time(data, "at")
    if at is None:
        raise PayloadInvalid("at is required")
    outcome = None
    if kind == EventKind.END:
        raw = data.get("status")
        try:
            outcome = CallOutcome(raw) if raw else None
        except ValueError:
            raise PayloadInvalid("status must be answered, missed, busy or failed") from None
    if kind == EventKind.RECORD and not data.get("recording_url"):
        raise PayloadInvalid("recording_url is required for a recording event")
    called = data.get("called")
    if kind == EventKind.START and not called:
        raise PayloadInvalid("called is required for a start event")
    return ProviderEvent(
        provider=PROVIDER,
        provider_call_id=require(data, "call_id")[:128],
        kind=kind,
        occurred_at=at,
        caller=to_e164(str(data["caller"])) if data.get("caller") is not None else None,
        called=to_e164(str(called)) if called else None,
        started_at=_time(data, "started_at") or (at if kind == EventKind.START else None),
        answered_at=_time(data, "answered_at") or (at if kind == EventKind.ANSWER else None),
        ended_at=at if kind == EventKind.END else None,
        talk_seconds=parse_int(data.get("talk_seconds"), "talk_seconds", maximum=MAX_CALL_SECONDS),
        outcome=outcome,
        forwarded_to=str(data["forwarded_to"])[:64] if data.get("forwarded_to") else None,
        recording_url=str(data["recording_url"]) if data.get("recording_url") else None,
    )


# --- what an integration declares ---------------------------------------------------------------------


class Secrets(BaseModel):
    """Kept encrypted; never returned."""

    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(
        None, min_length=1, description="Signs X-Otkuda-Signature; generated (and shown once) when absent"
    )


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The secret the hub makes (and shows once) when none is given.
GENERATED_FIELD = "secret"
WEBHOOKS = {"notify": ""}

# What to do in the PBX; {name} is the webhook URL of that name.
SETUP_STEPS = (
    "Make the PBX POST each call event (start, answer, end, recording) as JSON to: {notify}",
    "Sign each request: X-Otkuda-Timestamp (unix seconds) and X-Otkuda-Signature, sha256= and the hex"
    ' HMAC-SHA256 of "<timestamp>.<body>" under the secret shown once below (see the generic PBX webhook'
    " document).",
)
