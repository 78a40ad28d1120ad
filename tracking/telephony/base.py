"""The normalised call event every provider adapter produces, and the errors adapters raise."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from tracking import phones


class SignatureInvalid(Exception):
    """The request is not signed with the integration's secret (or the signature is stale)."""


class PayloadInvalid(Exception):
    """The request is signed (or unsigned where that is allowed) but cannot be understood."""


class EventKind(enum.StrEnum):
    START = "start"  # the call reached the number
    ANSWER = "answer"  # someone picked up
    END = "end"  # the call is over; carries the outcome
    RECORD = "record"  # a recording is available


class CallOutcome(enum.StrEnum):
    """How a call ended, as the provider reports it on an ``END`` event."""

    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderEvent:
    """One thing a provider told us about one call. Unknown fields stay None: the call is recomputed from
    all of its events, so each event only has to carry what it knows. Stored as
    ``tracking.models.StoredCallEvent``."""

    provider: str
    provider_call_id: str
    kind: EventKind
    # When it happened by the provider's clock, or when we received it if the provider sends no time.
    occurred_at: dt.datetime
    caller: str | None = None
    called: str | None = None
    started_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    talk_seconds: int | None = None
    outcome: CallOutcome | None = None
    forwarded_to: str | None = None
    recording_url: str | None = None
    recording_ref: str | None = None
    # True when the times are our receipt time: a redelivery then differs only in them and must still be
    # recognised as the same event.
    received_times: bool = False

    def fingerprint(self) -> str:
        data = self.data()
        if self.received_times:
            for name in ("occurred_at", "started_at", "answered_at", "ended_at"):
                data.pop(name, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def data(self) -> dict[str, Any]:
        """JSON-able form, stored with the event and hashed to recognise redeliveries."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, dt.datetime):
                value = value.astimezone(dt.UTC).isoformat()
            elif isinstance(value, enum.Enum):
                value = value.value
            out[name] = value
        return out

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ProviderEvent:
        values = dict(data)
        for name in ("occurred_at", "started_at", "answered_at", "ended_at"):
            if values.get(name):
                values[name] = dt.datetime.fromisoformat(values[name])
        values["kind"] = EventKind(values["kind"])
        if values.get("outcome"):
            values["outcome"] = CallOutcome(values["outcome"])
        return cls(**values)


# What providers put in the caller field when the number is withheld.
_WITHHELD = {"", "anonymous", "unknown", "restricted", "private", "unavailable", "withheld", "+266696687"}


def to_e164(raw: str | None, region: str = "RU") -> str | None:
    """E.164 for a phone number as a provider wrote it; None for a withheld caller.

    Providers write numbers with or without "+", with a trunk prefix ("8 495 ...") or as SIP extensions;
    what cannot be read as a phone number is kept as given (digits and "+", trimmed) rather than lost.
    """
    if raw is None:
        return None
    text = raw.strip()
    if text.lower() in _WITHHELD:
        return None
    # A provider's digits without "+" may be national ("84951234567") or international ("74951234567").
    candidates = [text] if text.startswith(("+", "00")) else [text, "+" + text]
    for candidate in candidates:
        try:
            return phones.normalize(candidate, region)
        except phones.InvalidPhoneNumber:
            continue
    kept = "".join(ch for ch in text if ch.isdigit() or ch == "+")[:32]
    return kept or None


# Bounds on numbers from outside: no call we track lasts a day, and no event time is before 2000 or after
# 2100, so nonsense (1e12 seconds, 1e20, NaN, inf) is refused before it reaches the database or reports.
MAX_CALL_SECONDS = 86_400
_EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
# How far an event's times may be from our clock when it arrives: PBXes deliver late after an outage, but
# not weeks late. Ahead of our clock a time can only be by a wrong time zone on the provider's side (at
# most 14 hours, UTC+14) or drift; that is tolerated rather than losing the integration's calls.
EVENT_MAX_AGE = dt.timedelta(days=7)
EVENT_MAX_AHEAD = dt.timedelta(hours=14)


def parse_int(value: Any, field: str, *, maximum: int = 2**31 - 1) -> int | None:
    """A whole, finite number in [0, maximum], or None when absent; anything else is ``PayloadInvalid``."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise PayloadInvalid(f"{field} is not a number")
    try:
        number = value if isinstance(value, int) else float(str(value).strip())
    except (TypeError, ValueError):
        raise PayloadInvalid(f"{field} is not a number") from None
    if not math.isfinite(number) or not 0 <= number <= maximum:
        raise PayloadInvalid(f"{field} must be a number from 0 to {maximum}")
    return int(number)


def from_unix(value: Any, field: str) -> dt.datetime | None:
    seconds = parse_int(value, field, maximum=int(_LATEST.timestamp()))
    if not seconds:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def check_time(value: dt.datetime, field: str) -> dt.datetime:
    """A provider's time within the years we can store and report on."""
    if not _EARLIEST <= value < _LATEST:
        raise PayloadInvalid(f"{field} is not a plausible time")
    return value


def check_event(event: ProviderEvent, now: dt.datetime) -> None:
    """Refuse what no database or report should hold: times far from ``now`` (a wrong clock or zone, or a
    forged time), a talk time over a day, text with NUL characters (PostgreSQL cannot store them)."""
    for name, value in event.data().items():
        if isinstance(value, str) and "\x00" in value:
            raise PayloadInvalid(f"{name} contains a NUL character")
    if event.talk_seconds is not None and not 0 <= event.talk_seconds <= MAX_CALL_SECONDS:
        raise PayloadInvalid(f"talk_seconds must be from 0 to {MAX_CALL_SECONDS}")
    for name in ("occurred_at", "started_at", "answered_at", "ended_at"):
        value = getattr(event, name)
        if value is None:
            continue
        if value < now - EVENT_MAX_AGE:
            raise PayloadInvalid(f"{name} is more than {EVENT_MAX_AGE.days} days ago")
        if value > now + EVENT_MAX_AHEAD:
            raise PayloadInvalid(f"{name} is in the future")


def require(fields: Any, name: str) -> str:
    value = fields.get(name)
    if value is None or str(value).strip() == "":
        raise PayloadInvalid(f"{name} is required")
    return str(value).strip()
