"""CallPayload / DealPayload → one Measurement Protocol request body, or the reason there is none.

Field names and limits are the Measurement Protocol's, from Google's developer guides:
- body ``client_id``, ``timestamp_micros``, ``events[].name``, ``events[].params``; events may be
  backdated up to 72 hours — "Send Measurement Protocol events to Google Analytics",
  developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events
- limits (25 events per request, 25 params per event, names of at most 40 characters that start with a
  letter and hold only letters, digits and underscores, string values of at most 100 characters, reserved
  names and prefixes) — same guide, "Limitations", and the protocol reference
  developers.google.com/analytics/devguides/collection/protocol/ga4/reference
- ``purchase`` with ``transaction_id``, ``value``, ``currency`` — the recommended-events reference,
  developers.google.com/analytics/devguides/collection/ga4/reference/events#purchase
- campaign params ``source``, ``medium``, ``campaign``, ``term``, ``content`` as in the guide's
  ``campaign_details`` example.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import DeliveryItem, ItemKind

MAX_PARAMS = 25
MAX_NAME = 40
MAX_VALUE = 100
BACKDATE_LIMIT = dt.timedelta(hours=72)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
# Event names reserved for automatic collection (reference, "Reserved event names").
RESERVED_EVENTS = frozenset(
    {
        "ad_activeview",
        "ad_click",
        "ad_exposure",
        "ad_query",
        "ad_reward",
        "adunit_exposure",
        "app_background",
        "app_clear_data",
        "app_exception",
        "app_remove",
        "app_store_refund",
        "app_store_subscription_cancel",
        "app_store_subscription_convert",
        "app_store_subscription_renew",
        "app_update",
        "app_upgrade",
        "dynamic_link_app_open",
        "dynamic_link_app_update",
        "dynamic_link_first_open",
        "error",
        "first_open",
        "first_visit",
        "in_app_purchase",
        "notification_dismiss",
        "notification_foreground",
        "notification_open",
        "notification_receive",
        "os_update",
        "session_start",
        "session_start_with_rollout",
        "user_engagement",
    }
)
DEFAULT_CALL_EVENT = "otkuda_call"
DEFAULT_DEAL_EVENT = "purchase"


@dataclass(frozen=True)
class Planned:
    body: dict[str, Any] | None
    skip: str | None = None  # why nothing is sent
    invalid: str | None = None  # why it can never be sent as configured


def check_name(name: str, what: str) -> str | None:
    if not NAME.match(name) or len(name) > MAX_NAME:
        return (
            f"{what} {name!r} must start with a letter, hold letters, digits and _, and be ≤ {MAX_NAME} long"
        )
    if name.startswith(RESERVED_PREFIXES):
        return f"{what} {name!r} uses a reserved prefix"
    if what == "event name" and name in RESERVED_EVENTS:
        return f"event name {name!r} is reserved"
    return None


def _micros(value: dt.datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def _when(raw: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(raw) if raw else None


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values and cut strings to the documented length (GA would truncate them anyway)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        out[key] = value[:MAX_VALUE] if isinstance(value, str) else value
    return out


def _session_params(session: dict[str, Any] | None) -> dict[str, Any]:
    s = session or {}
    return {
        "source": s.get("utm_source"),
        "medium": s.get("utm_medium"),
        "campaign": s.get("utm_campaign"),
        "term": s.get("utm_term"),
        "content": s.get("utm_content"),
    }


def plan(item: DeliveryItem, settings: dict[str, Any], now: dt.datetime) -> Planned:
    if item.kind == ItemKind.CALL:
        return _call(item.payload, settings, now)
    if item.kind == ItemKind.DEAL_WON:
        return _deal(item, settings, now)
    return Planned(None, skip=f"GA4 takes calls and won deals, not {item.kind}")


def _call(p: dict[str, Any], settings: dict[str, Any], now: dt.datetime) -> Planned:
    session = p.get("session") or {}
    client_id = session.get("ga_client_id")
    if not client_id:
        return Planned(None, skip="no GA client id: the visit behind the call had no _ga cookie")
    called = _when(p.get("called_at"))
    if called is None or now - called > BACKDATE_LIMIT:
        return Planned(None, skip="the call is older than the 72 hours GA4 accepts for backdated events")
    # Names are checked when they are configured; the validation server has the last word at send time.
    name = str(settings.get("call_event") or DEFAULT_CALL_EVENT)
    params = _clean(
        {
            "call_id": str(p.get("call_id")),
            "call_status": p.get("status"),
            "talk_seconds": int(p.get("talk_seconds") or 0),
            "first_time_caller": 1 if p.get("first_time") else 0,
            "target_call": 1 if p.get("is_target") else 0,
            "channel": p.get("channel"),
            **_session_params(session),
            "engagement_time_msec": 1,
        }
    )
    body = {
        "client_id": client_id,
        "timestamp_micros": _micros(called),
        "events": [{"name": name, "params": params}],
    }
    return Planned(body)


def _deal(item: DeliveryItem, settings: dict[str, Any], now: dt.datetime) -> Planned:
    p = item.payload
    call = p.get("call") or {}
    client_id = (call.get("session") or {}).get("ga_client_id")
    if not client_id:
        return Planned(None, skip="no GA client id: the deal's call came from a visit without a _ga cookie")
    try:
        value = float(Decimal(str(p.get("amount") or "0")))
    except InvalidOperation:
        return Planned(None, invalid=f"the deal's amount {p.get('amount')!r} is not a number")
    name = str(settings.get("deal_event") or DEFAULT_DEAL_EVENT)
    params = _clean(
        {
            "transaction_id": item.key,  # GA4 drops a second purchase with the same transaction id
            "value": value,
            "currency": p.get("currency"),
            "call_id": str(call.get("call_id")) if call.get("call_id") else None,
            **_session_params(call.get("session")),
            "engagement_time_msec": 1,
        }
    )
    body: dict[str, Any] = {"client_id": client_id, "events": [{"name": name, "params": params}]}
    won = _when(p.get("won_at"))
    # A deal won more than 72 hours ago is still revenue of that visitor: it is sent as of now.
    if won is not None and now - won <= BACKDATE_LIMIT:
        body["timestamp_micros"] = _micros(won)
    return Planned(body)
