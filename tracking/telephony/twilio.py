"""Twilio Programmable Voice: the voice webhook, status callbacks and the TwiML answer.

The parent call (caller → our Twilio number) is answered by Twilio itself when our TwiML runs, so its
"in-progress" says nothing about a person. A person answering shows as the *child* leg that ``<Dial>``
creates (``ParentCallSid`` set) reaching "in-progress"/"answered", or as the ``<Dial action>`` callback's
``DialCallStatus=completed``. Both are folded into the parent call, whose ``CallSid`` is the call's id.
"""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel, ConfigDict, Field
from twilio.request_validator import RequestValidator, get_signature_algorithm

from tracking.telephony.base import (
    MAX_CALL_SECONDS,
    CallOutcome,
    EventKind,
    PayloadInvalid,
    ProviderEvent,
    SignatureInvalid,
    parse_int,
    require,
    to_e164,
)

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"

_XML = '<?xml version="1.0" encoding="UTF-8"?>'

_FINAL_STATUS = {
    "completed": None,  # decided by whether a person answered
    "busy": CallOutcome.BUSY,
    "failed": CallOutcome.FAILED,
    "no-answer": CallOutcome.MISSED,
    "canceled": CallOutcome.MISSED,
}


def verify(secrets: Mapping[str, str], urls: list[str], params: Any, headers: Mapping[str, str]) -> None:
    """Check ``X-Twilio-Signature`` against every URL the request may have been sent to.

    ``urls`` lists the public URL (behind a proxy) and the URL as this server saw it. With the signature
    settings header Twilio signs with a SharedKey secret (HMAC-SHA256); without it, with the Auth Token.
    """
    signature = headers.get(SIGNATURE_HEADER, "")
    if not signature:
        raise SignatureInvalid("missing X-Twilio-Signature")
    settings = headers.get(SETTINGS_HEADER, "")
    algorithm = get_signature_algorithm(settings)
    token = secrets.get("shared_key_secret") if settings else secrets.get("auth_token")
    if not token:
        raise SignatureInvalid("no secret configured for this signature scheme")
    validator = RequestValidator(token)
    if not any(validator.validate(url, params, signature, algorithm) for url in urls):
        raise SignatureInvalid("X-Twilio-Signature does not match")


def _timestamp(params: Mapping[str, str], received_at: dt.datetime) -> dt.datetime:
    raw = params.get("Timestamp")
    if raw:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            raise PayloadInvalid("Timestamp is not an RFC 2822 date") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    return received_at


def parse_voice(params: Mapping[str, str], received_at: dt.datetime) -> ProviderEvent:
    """The voice webhook: a call has reached one of our numbers."""
    return ProviderEvent(
        provider=PROVIDER,
        provider_call_id=require(params, "CallSid"),
        kind=EventKind.START,
        occurred_at=_timestamp(params, received_at),
        started_at=_timestamp(params, received_at),
        caller=to_e164(params.get("From")),
        called=to_e164(require(params, "To")),
    )


def parse_status(params: Mapping[str, str], received_at: dt.datetime) -> ProviderEvent | None:
    """A status callback, a ``<Dial action>`` callback or a recording callback; None when it tells
    nothing about the call (e.g. the parent leg ringing, or the child leg ending)."""
    at = _timestamp(params, received_at)
    parent = params.get("ParentCallSid")
    call_sid = require(params, "CallSid")
    status = (params.get("CallStatus") or "").lower()

    recording_url = params.get("RecordingUrl") or None
    recording = {
        "recording_url": recording_url,
        "recording_ref": (params.get("RecordingSid") or None) if recording_url else None,
    }

    dial_status = (params.get("DialCallStatus") or "").lower()
    if dial_status:
        # The <Dial action> callback: the forwarded leg is over. With recording on it carries the
        # recording (RecordingUrl, RecordingSid) as well as DialCallStatus and DialCallDuration.
        if dial_status in ("completed", "answered"):
            return ProviderEvent(
                provider=PROVIDER,
                provider_call_id=call_sid,
                received_times=not params.get("Timestamp"),
                kind=EventKind.ANSWER,
                occurred_at=at,
                talk_seconds=parse_int(
                    params.get("DialCallDuration"), "DialCallDuration", maximum=MAX_CALL_SECONDS
                ),
                forwarded_to=params.get("DialCallTo") or None,
                recording_url=recording["recording_url"],
                recording_ref=recording["recording_ref"],
            )
        return ProviderEvent(
            provider=PROVIDER,
            provider_call_id=call_sid,
            received_times=not params.get("Timestamp"),
            kind=EventKind.END,
            occurred_at=at,
            ended_at=at,
            outcome=_FINAL_STATUS.get(dial_status, CallOutcome.FAILED),
            recording_url=recording["recording_url"],
            recording_ref=recording["recording_ref"],
        )

    if recording["recording_url"]:
        # The recording status callback.
        return ProviderEvent(
            provider=PROVIDER,
            provider_call_id=parent or call_sid,
            received_times=not params.get("Timestamp"),
            kind=EventKind.RECORD,
            occurred_at=at,
            recording_url=recording["recording_url"],
            recording_ref=recording["recording_ref"],
        )

    if parent:
        if status in ("in-progress", "answered"):
            return ProviderEvent(
                provider=PROVIDER,
                provider_call_id=parent,
                received_times=not params.get("Timestamp"),
                kind=EventKind.ANSWER,
                occurred_at=at,
                answered_at=at,
                forwarded_to=to_e164(params.get("To")),
            )
        return None

    if status in _FINAL_STATUS:
        return ProviderEvent(
            provider=PROVIDER,
            provider_call_id=call_sid,
            received_times=not params.get("Timestamp"),
            kind=EventKind.END,
            occurred_at=at,
            ended_at=at,
            caller=to_e164(params.get("From")),
            called=to_e164(params.get("To")),
            outcome=_FINAL_STATUS[status],
        )
    if status in ("queued", "ringing", "initiated", "in-progress"):
        return ProviderEvent(
            provider=PROVIDER,
            provider_call_id=call_sid,
            received_times=not params.get("Timestamp"),
            kind=EventKind.START,
            occurred_at=at,
            started_at=at if status != "in-progress" else None,
            caller=to_e164(params.get("From")),
            called=to_e164(params.get("To")),
        )
    raise PayloadInvalid(f"unknown CallStatus {status!r}")


def dial_twiml(forward_to: str | None, status_url: str, caller_id: str | None = None) -> str:
    """TwiML that forwards the call, records it from the answer on, and reports back to ``status_url``."""
    if not forward_to:
        # Nowhere to forward: the caller hears a short message instead of silence, and the call ends
        # (its completed callback still finalises it as missed).
        return _XML + "<Response><Say>Sorry, we cannot take your call.</Say></Response>"
    url = quoteattr(status_url)
    caller_attr = f" callerId={quoteattr(caller_id)}" if caller_id else ""
    return (
        _XML + "<Response>"
        f'<Dial action={url} method="POST" record="record-from-answer-dual"'
        f' recordingStatusCallback={url} recordingStatusCallbackMethod="POST"{caller_attr}>'
        f'<Number statusCallback={url} statusCallbackMethod="POST"'
        f' statusCallbackEvent="initiated ringing answered completed">{escape(forward_to)}</Number>'
        "</Dial></Response>"
    )


EMPTY_TWIML = _XML + "<Response/>"


# --- what an integration declares ---------------------------------------------------------------------


class Secrets(BaseModel):
    """Kept encrypted; never returned."""

    model_config = ConfigDict(extra="forbid")

    auth_token: str = Field(min_length=1, description="The account's Auth Token: checks X-Twilio-Signature")
    shared_key_secret: str | None = Field(
        None, min_length=1, description="A SharedKey secret, when webhooks are signed with one"
    )


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The URLs to enter at Twilio, under /hooks/v1/twilio/<integration key>.
WEBHOOKS = {"voice": "/voice", "status_callback": "/status"}

# What to do in the provider's own cabinet; {name} is the webhook URL of that name.
SETUP_STEPS = (
    "In the Twilio Console open Phone Numbers → Manage → Active numbers and pick each tracking number.",
    'Under Voice Configuration set "A call comes in" to Webhook, HTTP POST: {voice}',
    'Set "Call status changes" to: {status_callback}',
    "Copy the Auth Token from the Console's Account Info into the field below.",
)
