"""Zadarma (and Novofon v1, which speaks the same protocol): NOTIFY_* webhooks.

Each event is signed over a few of its fields; the ``Signature`` header is base64 of the *hex* digest of
HMAC-SHA1 (PHP's ``hash_hmac`` returns hex), as the protocol notes describe.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tracking.telephony.base import (
    EVENT_MAX_AHEAD,
    CallOutcome,
    EventKind,
    PayloadInvalid,
    ProviderEvent,
    SignatureInvalid,
    from_unix,
    parse_int,
    require,
    to_e164,
)

SIGNATURE_HEADER = "Signature"

# The signature covers only caller, called number and call_start (not the call id, duration or outcome),
# so a captured request stays valid for ever. Events whose call_start is further than this from our clock
# are refused: a replay is useful for at most MAX_AGE. Calls longer than that lose their NOTIFY_END.
MAX_AGE = dt.timedelta(hours=6)
# A reported duration may exceed the time since call_start by no more than this (clock drift).
DURATION_SLACK = dt.timedelta(minutes=5)

# The fields each event's signature covers, concatenated in this order.
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    "NOTIFY_START": ("caller_id", "called_did", "call_start"),
    "NOTIFY_INTERNAL": ("caller_id", "called_did", "call_start"),
    "NOTIFY_ANSWER": ("caller_id", "destination", "call_start"),
    "NOTIFY_END": ("caller_id", "called_did", "call_start"),
    "NOTIFY_OUT_START": ("internal", "destination", "call_start"),
    "NOTIFY_OUT_END": ("internal", "destination", "call_start"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}

# The disposition values are UNCONFIRMED in the protocol notes; anything not listed counts as failed.
_DISPOSITION = {
    "answered": CallOutcome.ANSWERED,
    "busy": CallOutcome.BUSY,
    "cancel": CallOutcome.MISSED,
    "no answer": CallOutcome.MISSED,
    "noanswer": CallOutcome.MISSED,
    "no-answer": CallOutcome.MISSED,
}


def signature(secret: str, fields: Mapping[str, str]) -> str:
    event = fields.get("event", "")
    names = SIGNED_FIELDS.get(event)
    if names is None:
        raise PayloadInvalid(f"unknown event {event!r}")
    text = "".join(fields.get(name, "") for name in names)
    hex_digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()
    return base64.b64encode(hex_digest.encode()).decode()


def verify(secret: str, fields: Mapping[str, str], headers: Mapping[str, str]) -> None:
    given = headers.get(SIGNATURE_HEADER, "")
    if not given:
        raise SignatureInvalid("missing Signature header")
    if not hmac.compare_digest(signature(secret, fields).encode(), given.strip().encode()):
        raise SignatureInvalid("Signature does not match")


def _call_start(raw: str, tz: ZoneInfo, received_at: dt.datetime) -> dt.datetime:
    # "YYYY-MM-DD HH:MM:SS" in the account's time zone (UNCONFIRMED: the zone is not documented, so it is a
    # per-integration setting); a unix timestamp is accepted too.
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        start = from_unix(raw, "call_start")
        if start is None:
            raise PayloadInvalid("call_start is not a time")
    else:
        try:
            local = dt.datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise PayloadInvalid("call_start is not 'YYYY-MM-DD HH:MM:SS'") from None
        start = local.replace(tzinfo=tz).astimezone(dt.UTC)
    if start < received_at - MAX_AGE:
        raise PayloadInvalid(
            f"call_start is more than {MAX_AGE} ago: refused as a possible replay (check the time zone)"
        )
    if start > received_at + EVENT_MAX_AHEAD:
        raise PayloadInvalid("call_start is in the future: check the integration's time zone")
    return start


def parse(
    fields: Mapping[str, str], received_at: dt.datetime, provider: str = "zadarma", tz: str = "UTC"
) -> ProviderEvent | None:
    """The normalised event, or None for events that are not about incoming calls (outgoing, IVR, SMS)."""
    event = require(fields, "event")
    zone = ZoneInfo(tz)
    if event in ("NOTIFY_OUT_START", "NOTIFY_OUT_END", "NOTIFY_INTERNAL", "NOTIFY_IVR"):
        return None
    call_id = require(fields, "pbx_call_id")
    if event == "NOTIFY_START":
        start = _call_start(require(fields, "call_start"), zone, received_at)
        return ProviderEvent(
            provider=provider,
            provider_call_id=call_id,
            kind=EventKind.START,
            occurred_at=start,
            started_at=start,
            caller=to_e164(fields.get("caller_id")),
            called=to_e164(require(fields, "called_did")),
        )
    if event == "NOTIFY_ANSWER":
        # No answer time is sent: the moment we receive it is the best estimate.
        return ProviderEvent(
            provider=provider,
            provider_call_id=call_id,
            kind=EventKind.ANSWER,
            occurred_at=received_at,
            answered_at=received_at,
            received_times=True,
            started_at=_call_start(require(fields, "call_start"), zone, received_at),
            caller=to_e164(fields.get("caller_id")),
            forwarded_to=fields.get("destination") or None,
        )
    if event == "NOTIFY_END":
        start = _call_start(require(fields, "call_start"), zone, received_at)
        disposition = (fields.get("disposition") or "").strip().lower()
        outcome = _DISPOSITION.get(disposition, CallOutcome.FAILED if disposition else CallOutcome.MISSED)
        # Unsigned: bounded by the time the call can have lasted.
        elapsed = (received_at - start + DURATION_SLACK).total_seconds()
        duration = parse_int(fields.get("duration"), "duration", maximum=max(0, int(elapsed))) or 0
        recorded = fields.get("is_recorded") == "1" and fields.get("call_id_with_rec")
        return ProviderEvent(
            provider=provider,
            provider_call_id=call_id,
            kind=EventKind.END,
            occurred_at=received_at,
            ended_at=received_at,
            received_times=True,
            started_at=start,
            caller=to_e164(fields.get("caller_id")),
            called=to_e164(require(fields, "called_did")),
            talk_seconds=duration if outcome == CallOutcome.ANSWERED else 0,
            outcome=outcome,
            recording_ref=fields["call_id_with_rec"] if recorded else None,
        )
    if event == "NOTIFY_RECORD":
        return ProviderEvent(
            provider=provider,
            provider_call_id=call_id,
            kind=EventKind.RECORD,
            occurred_at=received_at,
            received_times=True,
            recording_ref=require(fields, "call_id_with_rec"),
        )
    raise PayloadInvalid(f"unknown event {event!r}")


# --- what an integration declares ---------------------------------------------------------------------


class Secrets(BaseModel):
    """Kept encrypted; never returned."""

    model_config = ConfigDict(extra="forbid")

    api_secret: str = Field(min_length=1, description="The API secret: checks the Signature header")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(
        None,
        description="Zone of call_start (an IANA name; UTC when absent)",
        json_schema_extra={"format": "tz"},
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


# The URL to enter as the notification address, /hooks/v1/<zadarma|novofon>/<integration key>.
WEBHOOKS = {"notify": ""}

# What to do in the provider's own cabinet; {name} is the webhook URL of that name.
SETUP_STEPS = (
    "In your personal account open Settings → Integrations and API → the notifications (API) section.",
    "Paste the notification link for PBX calls: {notify}",
    "Turn on the call start, answer, end and recording notifications (NOTIFY_START, NOTIFY_ANSWER,"
    " NOTIFY_END, NOTIFY_RECORD); the provider checks the link with a zd_echo request first.",
    "Copy the API secret from the API keys section into the field below.",
)
