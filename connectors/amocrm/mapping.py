"""Our call records as amoCRM shapes: the contact, the lead with its fields and tags, the call note, the
incoming (unsorted) SIP lead; and amoCRM leads back as our DealUpdate."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from typing import Any

from connectors.base import DealUpdate, bounded_amount

WON, LOST = 142, 143  # amoCRM's system statuses in every pipeline
# Tracking-data fields every amoCRM account has; other fields need an id or code in ``field_map``.
# Every amoCRM account has lead fields of type ``tracking_data`` under fixed codes (the official library
# models the type, CustomFieldModel::TYPE_TRACKING_DATA; the codes are the account's own). They are filled
# by default, so a deal shows its click ids and Metrika ClientID without a field map — but only the codes the
# account's field list actually has (GET /api/v4/leads/custom_fields), since an unknown code refuses the lead.
DEFAULT_FIELD_MAP = {
    "utm_source": "UTM_SOURCE",
    "utm_medium": "UTM_MEDIUM",
    "utm_campaign": "UTM_CAMPAIGN",
    "utm_content": "UTM_CONTENT",
    "utm_term": "UTM_TERM",
    "gclid": "GCLID",
    "yclid": "YCLID",
    "ym_client_id": "_YM_UID",  # Metrika's ClientID is the _ym_uid cookie
    "ga_client_id": "GCLIENTID",
    "referrer": "REFERRER",
}
SESSION_FIELDS: tuple[str, ...] = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "yclid",
    "ym_client_id",
    "ga_client_id",
    "referrer",
    "landing_url",
)
# amoCRM's call_status codes: 4 conversation, 6 not reached, 7 busy, 8 undefined.
CALL_STATUS = {"answered": 4, "missed": 6, "busy": 7, "failed": 8}
FIRST_TIME_TAG = "first-time caller"


def unix(iso: str | None) -> int | None:
    if not iso:
        return None
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def digits(phone: str | None) -> str:
    return "".join(ch for ch in phone or "" if ch.isdigit())


def same_phone(a: str | None, b: str | None) -> bool:
    """Equal by the last ten digits: CRMs keep "8 (916) ..." and "+7 916 ..." for the same number."""
    da, db = digits(a), digits(b)
    return len(da) >= 7 and da[-10:] == db[-10:]


def contact_phones(contact: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for field in contact.get("custom_fields_values") or []:
        if field.get("field_code") == "PHONE":
            out.extend(str(v.get("value", "")) for v in field.get("values") or [])
    return out


def new_contact(caller: str) -> dict[str, Any]:
    return {
        "name": caller,
        "custom_fields_values": [
            {"field_code": "PHONE", "values": [{"enum_code": "WORK", "value": caller}]},
        ],
    }


def _field_ref(ref: Any) -> dict[str, Any]:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return {"field_id": int(ref)}
    return {"field_code": str(ref)}


def custom_fields(
    payload: Mapping[str, Any], field_map: Mapping[str, Any], codes: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Our session fields (and the channel) into the custom fields the connection maps them to, and into the
    account's tracking fields (``codes``: the field codes it has) for those the map does not name."""
    session = payload.get("session") or {}
    values = {name: session.get(name) for name in SESSION_FIELDS}
    values["channel"] = payload.get("channel")
    defaults = {name: code for name, code in DEFAULT_FIELD_MAP.items() if code in codes}
    out = []
    for name, ref in {**defaults, **field_map}.items():
        value = values.get(name)
        if ref in (None, "") or value in (None, ""):
            continue
        out.append({**_field_ref(ref), "values": [{"value": str(value)[:256]}]})
    return out


def tags(payload: Mapping[str, Any], extra: list[str]) -> list[dict[str, str]]:
    names = [payload.get("channel") or "", FIRST_TIME_TAG if payload.get("first_time") else "", *extra]
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return [{"name": n} for n in seen]


def lead_name(payload: Mapping[str, Any]) -> str:
    who = payload.get("caller") or "a hidden number"
    channel = payload.get("channel") or "unknown source"
    return f"Call from {who} ({channel})"


def call_note(
    payload: Mapping[str, Any], key: str, lead_id: int, settings: Mapping[str, Any]
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "uniq": key,
        "duration": int(payload.get("talk_seconds") or 0),
        "source": str(settings.get("source_name") or "Otkuda"),
        "phone": payload.get("caller") or "",
        "call_status": CALL_STATUS.get(str(payload.get("status")), 8),
        "call_result": str(payload.get("status") or ""),
    }
    if payload.get("recording_url"):
        params["link"] = payload["recording_url"]
    return {"entity_id": lead_id, "note_type": "call_in", "params": params, "request_id": key}


def _lead_body(
    payload: Mapping[str, Any], settings: Mapping[str, Any], codes: Collection[str]
) -> dict[str, Any]:
    lead: dict[str, Any] = {"name": lead_name(payload)}
    fields = custom_fields(payload, settings.get("field_map") or {}, codes)
    if fields:
        lead["custom_fields_values"] = fields
    lead["_embedded"] = {"tags": tags(payload, list(settings.get("tags") or []))}
    if settings.get("responsible_user_id"):
        lead["responsible_user_id"] = int(settings["responsible_user_id"])
    return lead


def unsorted_sip(
    payload: Mapping[str, Any],
    key: str,
    contact: dict[str, Any] | None,
    settings: Mapping[str, Any],
    codes: Collection[str] = (),
) -> dict[str, Any]:
    called_at = unix(payload.get("called_at"))
    metadata: dict[str, Any] = {
        "uniq": key,
        "from": payload.get("caller") or "",
        "phone": payload.get("tracking_number") or "",
        "called_at": called_at,
        "duration": int(payload.get("talk_seconds") or 0),
        "service_code": str(settings.get("service_code") or "otkuda"),
        "is_call_event_needed": True,
    }
    if payload.get("recording_url"):
        metadata["link"] = payload["recording_url"]
    item: dict[str, Any] = {
        "source_uid": key,
        "source_name": str(settings.get("source_name") or "Otkuda"),
        "created_at": called_at,
        "metadata": metadata,
        "_embedded": {
            "leads": [_lead_body(payload, settings, codes)],
            "contacts": [contact] if contact else [],
        },
        "request_id": key,
    }
    if settings.get("pipeline_id"):
        item["pipeline_id"] = int(settings["pipeline_id"])
    return item


def complex_lead(
    payload: Mapping[str, Any],
    key: str,
    contact: dict[str, Any] | None,
    settings: Mapping[str, Any],
    codes: Collection[str] = (),
) -> dict[str, Any]:
    lead = _lead_body(payload, settings, codes)
    for name in ("pipeline_id", "status_id"):
        if settings.get(name):
            lead[name] = int(settings[name])
    if contact:
        lead["_embedded"]["contacts"] = [contact]
    lead["request_id"] = key
    return lead


# Times amoCRM can mean: after 2000, before 2100. Others (1e20, NaN) are read as "not given".
_EARLIEST, _LATEST = 946_684_800, 4_102_444_800


def _when(value: Any) -> dt.datetime | None:
    try:
        seconds = float(value) if value not in (None, "", 0, "0") else 0.0
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or not _EARLIEST <= seconds < _LATEST:
        return None
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC)


def _plain(value: Any) -> Any:
    # Kept in a JSON column, where PostgreSQL refuses NaN and NUL: other values are kept as text.
    if value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ):
        return value
    return _text(value)[:64]


def _text(value: Any) -> str:
    return str(value if value is not None else "").replace("\x00", "")


def _status_id(value: Any) -> int:
    text = str(value or "0").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else 0


def deal_update(lead: Mapping[str, Any], currency: str) -> DealUpdate:
    """An amoCRM lead (API v4 or a webhook's flattened form) as our DealUpdate."""
    status_id = _status_id(lead.get("status_id"))
    status = "won" if status_id == WON else "lost" if status_id == LOST else "open"
    updated = _when(lead.get("updated_at") or lead.get("last_modified")) or dt.datetime.now(dt.UTC)
    closed = _when(lead.get("closed_at")) or (updated if status != "open" else None)
    # A price that is not an amount (NaN, inf, negative, absurd) is kept as unknown (zero) with the reason,
    # rather than failing the pull or breaking ROMI.
    amount, problem = bounded_amount(lead.get("price"))
    raw = {k: _plain(lead.get(k)) for k in ("id", "status_id", "pipeline_id", "price", "responsible_user_id")}
    if problem is not None:
        raw["amount_unknown"] = problem
    return DealUpdate(
        external_id=str(lead["id"]),
        status=status,
        amount=amount,
        currency=currency,
        updated_at=updated,
        name=_text(lead.get("name"))[:255],
        pipeline_id=_text(lead.get("pipeline_id"))[:32],
        status_id=str(status_id or ""),
        closed_at=closed,
        raw=raw,
    )
