"""Mango Office VPBX: ``events/call`` (per call-leg state) and ``events/summary`` (one per finished call).

Each request is a form with ``vpbx_api_key``, ``sign`` and ``json``; ``sign`` is the lowercase hex SHA-256
of ``vpbx_api_key + json + vpbx_api_salt`` over the json string exactly as received. ``entry_id`` is common
to every leg and the summary of one call, so it is the call's id.

``events/call`` comes for every leg of every call, an employee's outgoing and internal calls included, and
says nothing of direction (VPBX API v1.10, "Примеры поведения"): a call is started only by a leg that came
in on one of the account's lines (``to.line_number``) from outside (``from`` without ``extension``). The
summary's ``call_direction`` (1 inbound, 2 outbound, 0 internal) has the last word.
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
    CallOutcome,
    EventKind,
    PayloadInvalid,
    ProviderEvent,
    SignatureInvalid,
    from_unix,
    parse_int,
    to_e164,
)

PROVIDER = "mango"


def sign(api_key: str, json_text: str, salt: str) -> str:
    return hashlib.sha256((api_key + json_text + salt).encode()).hexdigest()


def verify(secrets: Mapping[str, str], form: Mapping[str, str]) -> None:
    api_key = secrets.get("api_key", "")
    given_key = form.get("vpbx_api_key", "")
    given_sign = (form.get("sign") or "").lower()
    if not given_key or not given_sign:
        raise SignatureInvalid("vpbx_api_key and sign are required")
    if not hmac.compare_digest(given_key.encode(), api_key.encode()):
        raise SignatureInvalid("vpbx_api_key is not this integration's")
    expected = sign(api_key, form.get("json", ""), secrets.get("api_salt", ""))
    if not hmac.compare_digest(expected.encode(), given_sign.encode()):
        raise SignatureInvalid("sign does not match")


def _load(form: Mapping[str, str]) -> dict[str, Any]:
    try:
        data = json.loads(form.get("json") or "")
    except ValueError:
        raise PayloadInvalid("json is not valid JSON") from None
    if not isinstance(data, dict):
        raise PayloadInvalid("json must be an object")
    if not data.get("entry_id"):
        raise PayloadInvalid("entry_id is required")
    return data


def _party(data: dict[str, Any], side: str) -> dict[str, Any]:
    value = data.get(side) or {}
    if not isinstance(value, dict):
        raise PayloadInvalid(f"{side} must be an object")
    return value


def _called(data: dict[str, Any]) -> str | None:
    # The dialled line is ``line_number`` (top level in summaries, under ``to`` in call events);
    # ``to.number`` is the extension or the forwarding target once the call is routed.
    to = _party(data, "to")
    return to_e164(data.get("line_number") or to.get("line_number") or to.get("number"))


INBOUND = 1  # summary call_direction: 1 inbound, 2 outbound, 0 internal (VPBX API v1.10)


def _from_outside(data: dict[str, Any]) -> bool:
    return not _party(data, "from").get("extension")


def _inbound_leg(data: dict[str, Any]) -> bool:
    return _from_outside(data) and bool(_party(data, "to").get("line_number"))


def parse_call(form: Mapping[str, str], received_at: dt.datetime) -> ProviderEvent | None:
    data = _load(form)
    state = str(data.get("call_state") or "")
    if state not in ("Appeared", "Connected", "Disconnected", "OnHold"):
        raise PayloadInvalid(f"unknown call_state {state!r}")
    at = from_unix(data.get("timestamp"), "timestamp") or received_at
    call_id = str(data["entry_id"])
    caller = to_e164(_party(data, "from").get("number"))
    if state == "Appeared" and _inbound_leg(data):
        return ProviderEvent(
            provider=PROVIDER,
            provider_call_id=call_id,
            kind=EventKind.START,
            occurred_at=at,
            started_at=at,
            caller=caller,
            called=_called(data),
        )
    to = _party(data, "to")
    # An employee (an extension) picked up a call from outside; the IVR "connecting" is not an answer.
    if state == "Connected" and _from_outside(data) and to.get("extension") and data.get("location") != "ivr":
        return ProviderEvent(
            provider=PROVIDER,
            provider_call_id=call_id,
            kind=EventKind.ANSWER,
            occurred_at=at,
            answered_at=at,
            caller=caller,
            forwarded_to=str(to["extension"]),
        )
    # Other legs (outgoing, internal, IVR) start nothing, and a leg ending is not the call ending (the call
    # may go on to another operator): the summary says when the whole call is over.
    return None


def _inbound_summary(data: dict[str, Any]) -> bool:
    direction = parse_int(data.get("call_direction"), "call_direction")
    if direction is not None:
        return direction == INBOUND
    return _from_outside(data) and bool(data.get("line_number"))


def not_inbound(form: Mapping[str, str]) -> str | None:
    """The call id of a summary that says the call was not an incoming one (outbound or internal).

    A call started from its legs on weaker evidence is settled by this: it was never an incoming call."""
    data = _load(form)
    return None if _inbound_summary(data) else str(data["entry_id"])


def parse_summary(form: Mapping[str, str], received_at: dt.datetime) -> ProviderEvent | None:
    data = _load(form)
    if not _inbound_summary(data):
        return None  # outbound and internal calls are not tracked (see not_inbound)
    created = from_unix(data.get("create_time"), "create_time")
    ended = from_unix(data.get("end_time"), "end_time") or received_at
    raw_talk = parse_int(data.get("talk_time"), "talk_time") or 0
    # talk_time is the unix time the conversation began, 0 when nobody talked. entry_result does not say
    # whether anyone answered: a call that ended in the IVR has entry_result 1 and talk_time 0 (VPBX API
    # v1.10's own example), so only talk_time counts. A small value is read as a duration in seconds.
    answered: dt.datetime | None
    if raw_talk > 10**9:
        answered = dt.datetime.fromtimestamp(raw_talk, dt.UTC)
        talk = max(0, int((ended - answered).total_seconds()))
    elif raw_talk > 0:
        answered, talk = ended - dt.timedelta(seconds=raw_talk), raw_talk
    else:
        answered, talk = None, 0
    outcome = CallOutcome.ANSWERED if answered is not None else CallOutcome.MISSED
    to = _party(data, "to")
    return ProviderEvent(
        provider=PROVIDER,
        provider_call_id=str(data["entry_id"]),
        kind=EventKind.END,
        occurred_at=ended,
        started_at=created,
        answered_at=answered,
        ended_at=ended,
        talk_seconds=talk,
        outcome=outcome,
        caller=to_e164(_party(data, "from").get("number")),
        called=_called(data),
        forwarded_to=str(to.get("extension") or "") or None if outcome == CallOutcome.ANSWERED else None,
    )


# --- what an integration declares ---------------------------------------------------------------------


class Secrets(BaseModel):
    """Kept encrypted; never returned."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(min_length=1, description="The VPBX's unique code (vpbx_api_key)")
    api_salt: str = Field(min_length=1, description="The VPBX's signing key")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Mango appends events/call, events/summary and ping to the one base URL it is given.
WEBHOOKS = {"base": ""}

# What to do in the provider's own cabinet; {name} is the webhook URL of that name.
SETUP_STEPS = (
    "In the VPBX account open Integrations → API connection.",
    "Enter this as the external system's address: {base}",
    "Copy the unique code (vpbx_api_key) and the signature key into the fields below.",
)
