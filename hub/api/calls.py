"""Calls (list, filter, one call with its session and candidates, CSV, operator edits) and the telephony
integrations that report them."""

from __future__ import annotations

import datetime as dt
import json
import secrets as secrets_mod
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, current_app, jsonify, request
from sqlalchemy import Select, String, cast, func, select
from sqlalchemy.orm import Session

from hub import exports
from hub.api import bp
from hub.api.common import id_arg, int_arg, plausible_date
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404, current_user, may_see_secret_urls
from hub.extensions import db
from tracking import attribution
from tracking.calls import SESSION_FIELDS
from tracking.crypto import encrypt_json
from tracking.models import (
    AttributionChange,
    Call,
    CallCandidate,
    CallStatus,
    Channel,
    Client,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)
from tracking.telephony import PROVIDERS

MAX_PER_PAGE = 200
CSV_LIMIT = 100_000


def _error(status: int, error: str, message: str) -> Any:
    resp = jsonify(error=error, message=message)
    resp.status_code = status
    return resp


class BadRequest(Exception):
    def __init__(self, message: str, error: str = "bad_request", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.error, self.status = message, error, status


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> Any:
    db().rollback()
    return _error(exc.status, exc.error, exc.message)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def session_json(session: VisitSession | None, channels: dict[int, Channel]) -> dict[str, Any] | None:
    if session is None:
        return None
    out: dict[str, Any] = {
        "id": session.public_id,
        "started_at": _iso(session.started_at),
        "last_seen_at": _iso(session.last_seen_at),
        "left_at": _iso(session.left_at),
        "visitor_id": session.visitor_id,
        "channel": _channel_json(channels.get(session.channel_id) if session.channel_id else None),
        "promo_code": session.promo_code,
    }
    out.update({name: getattr(session, name) for name in SESSION_FIELDS})
    return out


def _channel_json(channel: Channel | None) -> dict[str, Any] | None:
    return {"id": channel.id, "name": channel.name} if channel else None


def call_json(
    call: Call, numbers: dict[int, str], channels: dict[int, Channel], sessions: dict[int, VisitSession]
) -> dict[str, Any]:
    session = sessions.get(call.session_id) if call.session_id else None
    return {
        "id": call.id,
        "provider": call.provider,
        "provider_call_id": call.provider_call_id,
        "tracking_number": numbers.get(call.tracking_number_id) if call.tracking_number_id else None,
        "called_number": call.called_number,
        "caller": call.caller,
        "called_at": _iso(call.called_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds,
        "status": call.status.value,
        "abandoned": call.abandoned,
        "first_time": call.first_time,
        "forwarded_to": call.forwarded_to,
        "recording_url": call.recording_url,
        "recording_ref": call.recording_ref,
        "tags": list(call.tags or []),
        "notes": call.notes,
        "channel": _channel_json(channels.get(call.channel_id) if call.channel_id else None),
        "attribution": {
            "method": call.attribution_method.value,
            "session_id": session.public_id if session else None,
            "session_confidence": call.session_confidence,
            "channel_confidence": call.channel_confidence,
            "candidates_count": call.candidates_count,
            "promo_code": call.promo_code,
        },
        "final": call.finalised_at is not None,
    }


def lookups(session: Session, client: Client, calls: list[Call]) -> tuple[dict, dict, dict]:
    number_ids = {c.tracking_number_id for c in calls if c.tracking_number_id}
    session_ids = {c.session_id for c in calls if c.session_id}
    numbers = dict(
        session.execute(
            select(TrackingNumber.id, TrackingNumber.e164).where(TrackingNumber.id.in_(number_ids))
        ).all()
    )
    sessions = {
        s.id: s for s in session.scalars(select(VisitSession).where(VisitSession.id.in_(session_ids)))
    }
    channels = {c.id: c for c in session.scalars(select(Channel).where(Channel.client_id == client.id))}
    return numbers, channels, sessions


def _bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"{name} must be true or false")


def _time_arg(name: str, client: Client, end_of_day: bool) -> dt.datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = plausible_date(dt.date.fromisoformat(raw), name)
            local = dt.datetime.combine(day + dt.timedelta(days=1) if end_of_day else day, dt.time())
            return local.replace(tzinfo=ZoneInfo(client.timezone)).astimezone(dt.UTC)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 time with zone") from None
    if value.tzinfo is None:
        raise BadRequest(f"{name} must carry a time zone")
    return plausible_date(value, name).astimezone(dt.UTC)


def filtered_calls(client: Client) -> Select[tuple[Call]]:
    query = select(Call).where(Call.client_id == client.id)
    start, end = _time_arg("from", client, False), _time_arg("to", client, True)
    if start:
        query = query.where(Call.called_at >= start)
    if end:
        query = query.where(Call.called_at < end)
    channel = request.args.get("channel_id")
    if channel:
        if (channel_id := id_arg(channel)) is None:
            raise BadRequest("channel_id must be an integer")
        query = query.where(Call.channel_id == channel_id)
    status = request.args.get("status")
    if status:
        try:
            query = query.where(Call.status == CallStatus(status))
        except ValueError:
            raise BadRequest("status must be one of " + ", ".join(s.value for s in CallStatus)) from None
    first_time = _bool_arg("first_time")
    if first_time is not None:
        query = query.where(Call.first_time.is_(first_time))
    attributed = _bool_arg("attributed")
    if attributed is not None:
        query = query.where(Call.channel_id.is_not(None) if attributed else Call.channel_id.is_(None))
    caller = "".join(ch for ch in request.args.get("caller", "") if ch.isdigit())
    if caller:
        # The last digits are what people remember and type; stored numbers are E.164.
        query = query.where(Call.caller.like(f"%{caller[-10:]}%"))
    tag = request.args.get("tag", "").strip()
    if tag:
        query = query.where(func.lower(cast(Call.tags, String)).like(f"%{json.dumps(tag.lower())[1:-1]}%"))
    return query


@bp.get("/clients/<int:client_id>/calls")
@api_auth_required
def list_calls(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = filtered_calls(client)
    page = int_arg("page", 1, 1, 10**6)
    per_page = int_arg("per_page", 50, 1, MAX_PER_PAGE)
    total = db().scalar(select(func.count()).select_from(query.subquery()))
    calls = (
        db()
        .scalars(
            query.order_by(Call.called_at.desc(), Call.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        .all()
    )
    numbers, channels, sessions = lookups(db(), client, list(calls))
    return jsonify(
        items=[call_json(c, numbers, channels, sessions) for c in calls],
        page=page,
        per_page=per_page,
        total=total,
    )


CSV_COLUMNS = [
    "id",
    "called_at",
    "caller",
    "tracking_number",
    "status",
    "abandoned",
    "first_time",
    "wait_seconds",
    "talk_seconds",
    "channel",
    "method",
    "session_confidence",
    "channel_confidence",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "landing_url",
    "tags",
    "notes",
    "recording_url",
]


def export_rows(client: Client) -> Iterator[list[Any]]:
    """The calls matching the request's filters as flat rows under ``CSV_COLUMNS`` (oldest first)."""
    calls = list(db().scalars(filtered_calls(client).order_by(Call.called_at, Call.id).limit(CSV_LIMIT)))
    numbers, channels, sessions = lookups(db(), client, calls)
    for call in calls:
        data = call_json(call, numbers, channels, sessions)
        session = sessions.get(call.session_id) if call.session_id else None
        yield [
            data["id"],
            data["called_at"],
            data["caller"],
            data["tracking_number"] or data["called_number"],
            data["status"],
            data["abandoned"],
            data["first_time"],
            data["wait_seconds"],
            data["talk_seconds"],
            data["channel"]["name"] if data["channel"] else None,
            data["attribution"]["method"],
            data["attribution"]["session_confidence"],
            data["attribution"]["channel_confidence"],
            *(
                getattr(session, f) if session else None
                for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "landing_url")
            ),
            ";".join(data["tags"]),
            data["notes"],
            data["recording_url"],
        ]


@bp.get("/clients/<int:client_id>/calls.csv", defaults={"fmt": "csv"})
@bp.get("/clients/<int:client_id>/calls.xlsx", defaults={"fmt": "xlsx"})
@api_auth_required
def export_calls(client_id: int, fmt: str) -> Any:
    client = client_or_404(client_id)
    return exports.download(f"calls-{client.id}", fmt, CSV_COLUMNS, export_rows(client), "Calls")


def call_or_404(client: Client, call_id: int) -> Call:
    call = db().scalar(select(Call).where(Call.id == call_id, Call.client_id == client.id))
    if call is None:
        abort(404)
    return call


def call_detail(client: Client, call: Call) -> dict[str, Any]:
    candidates = (
        db()
        .scalars(
            select(CallCandidate).where(CallCandidate.call_id == call.id).order_by(CallCandidate.score.desc())
        )
        .all()
    )
    history = (
        db()
        .scalars(
            select(AttributionChange)
            .where(AttributionChange.call_id == call.id)
            .order_by(AttributionChange.id)
        )
        .all()
    )
    session_ids = {c.session_id for c in candidates} | ({call.session_id} if call.session_id else set())
    session_ids |= {x for h in history for x in (h.old_session_id, h.new_session_id) if x}
    numbers, channels, _ = lookups(db(), client, [call])
    sessions = {s.id: s for s in db().scalars(select(VisitSession).where(VisitSession.id.in_(session_ids)))}
    data = call_json(call, numbers, channels, sessions)
    data["session"] = session_json(sessions.get(call.session_id) if call.session_id else None, channels)
    data["candidates"] = [
        {
            "score": c.score,
            "reasons": c.reasons,
            "session": session_json(sessions.get(c.session_id), channels),
        }
        for c in candidates
    ]
    public = {s.id: s.public_id for s in sessions.values()}
    data["history"] = [
        {
            "at": _iso(h.changed_at),
            "by": h.actor,
            "reason": h.reason,
            "from": {
                "method": h.old_method,
                "channel_id": h.old_channel_id,
                "session_id": public.get(h.old_session_id),
            },
            "to": {
                "method": h.new_method,
                "channel_id": h.new_channel_id,
                "session_id": public.get(h.new_session_id),
            },
        }
        for h in history
    ]
    return data


@bp.get("/clients/<int:client_id>/calls/<int:call_id>")
@api_auth_required
def get_call(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(call_detail(client, call_or_404(client, call_id)))


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("a JSON object body is required")
    return body


def apply_tags_notes(call: Call, tags: Any = None, notes: Any = None) -> None:
    """An operator's tags and notes on a call (None keeps one as it is); BadRequest says what is wrong."""
    if tags is not None:
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and 0 < len(t.strip()) <= 50 for t in tags
        ):
            raise BadRequest("tags must be a list of non-empty strings of up to 50 characters")
        call.tags = list(dict.fromkeys(t.strip() for t in tags))
    if notes is not None:
        if not isinstance(notes, str) or len(notes) > 10_000:
            raise BadRequest("notes must be a string of up to 10000 characters")
        call.notes = notes


@bp.patch("/clients/<int:client_id>/calls/<int:call_id>")
@api_auth_required
def update_call(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    body = _json_body()
    unknown = set(body) - {"tags", "notes"}
    if unknown:
        raise BadRequest("only tags and notes can be changed here; unknown: " + ", ".join(sorted(unknown)))
    apply_tags_notes(call, body.get("tags"), body.get("notes"))
    db().commit()
    return jsonify(call_detail(client, call))


@bp.post("/clients/<int:client_id>/calls/<int:call_id>/promo-code")
@api_auth_required
def set_promo_code(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    code = _json_body().get("code")
    if not isinstance(code, str) or not code.strip() or len(code) > 32:
        raise BadRequest("code must be a non-empty string")
    try:
        attribution.set_promo_code(db(), call, code, current_user())
    except attribution.UnknownPromoCode as exc:
        raise BadRequest(str(exc), "unknown_promo_code", 422) from None
    db().commit()
    return jsonify(call_detail(client, call))


@bp.post("/clients/<int:client_id>/calls/<int:call_id>/channel")
@api_auth_required
def set_channel(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    body = _json_body()
    channel_id = body.get("channel_id")
    if not isinstance(channel_id, int) or isinstance(channel_id, bool):
        raise BadRequest("channel_id must be an integer")
    if (
        db().scalar(select(Channel.id).where(Channel.id == channel_id, Channel.client_id == client.id))
        is None
    ):
        raise BadRequest("no such channel for this client", "unknown_channel", 422)
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise BadRequest("reason must be a string of up to 200 characters")
    attribution.set_manual_channel(db(), call, channel_id, current_user(), reason)
    db().commit()
    return jsonify(call_detail(client, call))


# --- Telephony integrations --------------------------------------------------------------------------

REQUIRED_SECRETS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token",),
    "zadarma": ("api_secret",),
    "novofon": ("api_secret",),
    "mango": ("api_key", "api_salt"),
    "generic": (),  # generated when not given, and shown once
}
ALLOWED_SECRETS: dict[str, tuple[str, ...]] = {
    "twilio": ("auth_token", "shared_key_secret"),
    "zadarma": ("api_secret",),
    "novofon": ("api_secret",),
    "mango": ("api_key", "api_salt"),
    "generic": ("secret",),
}


def webhook_urls(integ: TelephonyIntegration) -> dict[str, str]:
    base = f"{current_app.config['BASE_URL']}/hooks/v1/{integ.provider}/{integ.integration_key}"
    if integ.provider == "twilio":
        return {"voice": f"{base}/voice", "status_callback": f"{base}/status"}
    if integ.provider == "mango":
        # Mango appends events/call, events/summary and ping to the base URL it is given.
        return {"base": base}
    return {"notify": base}


def integration_json(integ: TelephonyIntegration) -> dict[str, Any]:
    out = {
        "id": integ.id,
        "provider": integ.provider,
        "name": integ.name,
        "active": integ.active,
        "settings": integ.settings,
        "created_at": _iso(integ.created_at),
    }
    if may_see_secret_urls(current_user()):
        out["webhook_urls"] = webhook_urls(integ)
    return out


@bp.get("/clients/<int:client_id>/telephony-integrations")
@api_auth_required
def list_integrations(client_id: int) -> Any:
    client = client_or_404(client_id)
    rows = db().scalars(
        select(TelephonyIntegration)
        .where(TelephonyIntegration.client_id == client.id)
        .order_by(TelephonyIntegration.id)
    )
    return jsonify(items=[integration_json(i) for i in rows])


@bp.post("/clients/<int:client_id>/telephony-integrations")
@api_auth_required
def create_integration(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    body = _json_body()
    provider = body.get("provider")
    if provider not in PROVIDERS:
        raise BadRequest("provider must be one of " + ", ".join(PROVIDERS))
    given = body.get("secrets") or {}
    if not isinstance(given, dict) or not all(isinstance(v, str) and v for v in given.values()):
        raise BadRequest("secrets must be an object of non-empty strings")
    extra = set(given) - set(ALLOWED_SECRETS[provider])
    missing = [name for name in REQUIRED_SECRETS[provider] if not given.get(name)]
    if extra or missing:
        raise BadRequest(
            f"{provider} takes secrets {', '.join(ALLOWED_SECRETS[provider])}"
            + (f"; missing {', '.join(missing)}" if missing else "")
        )
    settings = body.get("settings") or {}
    if not isinstance(settings, dict) or set(settings) - {"timezone"}:
        raise BadRequest("settings may only contain timezone")
    if "timezone" in settings:
        try:
            ZoneInfo(str(settings["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise BadRequest("unknown timezone") from None
    name = body.get("name", provider)
    if not isinstance(name, str) or len(name) > 200:
        raise BadRequest("name must be a string of up to 200 characters")
    shown_once: dict[str, str] = {}
    if provider == "generic" and not given.get("secret"):
        given = {"secret": secrets_mod.token_urlsafe(32)}
        shown_once = dict(given)
    integ = TelephonyIntegration(
        client_id=client.id,
        provider=provider,
        name=name,
        integration_key=secrets_mod.token_urlsafe(24),
        secrets_encrypted=encrypt_json(current_app.config["ENCRYPTION_KEY"], given),
        settings=settings,
    )
    db().add(integ)
    db().commit()
    out = integration_json(integ)
    if shown_once:
        out["generated_secrets"] = shown_once
    resp = jsonify(out)
    resp.status_code = 201
    return resp


# --- OpenAPI ------------------------------------------------------------------------------------------

_CID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_CALL_ID = {"name": "call_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_ERR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_NOT_FOUND = {"$ref": "#/components/responses/NotFound"}

SESSION = schema(
    "VisitSession",
    {
        "type": ["object", "null"],
        "properties": {
            "id": {"type": "string"},
            "started_at": {"type": "string", "format": "date-time"},
            "last_seen_at": {"type": "string", "format": "date-time"},
            **{name: {"type": ["string", "null"]} for name in SESSION_FIELDS},
        },
    },
)
CALL = schema(
    "Call",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "caller": {"type": ["string", "null"], "description": "E.164; null when withheld"},
            "tracking_number": {"type": ["string", "null"]},
            "called_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": [s.value for s in CallStatus]},
            "abandoned": {"type": "boolean"},
            "first_time": {"type": "boolean"},
            "wait_seconds": {"type": "integer"},
            "talk_seconds": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "notes": {"type": "string"},
            "channel": {"type": ["object", "null"]},
            "attribution": {
                "type": "object",
                "properties": {
                    "method": {"type": "string"},
                    "session_confidence": {"type": ["number", "null"]},
                    "channel_confidence": {"type": ["number", "null"]},
                    "candidates_count": {"type": "integer"},
                },
            },
        },
    },
)
CALL_DETAIL = schema(
    "CallDetail",
    {
        "allOf": [
            CALL,
            {
                "type": "object",
                "properties": {
                    "session": SESSION,
                    "candidates": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"score": {"type": "number"}, "session": SESSION},
                        },
                    },
                    "history": {"type": "array", "items": {"type": "object"}},
                },
            },
        ]
    },
)
_FILTERS = [
    _CID,
    {
        "name": "from",
        "in": "query",
        "schema": {"type": "string"},
        "description": "date (client's zone) or time",
    },
    {
        "name": "to",
        "in": "query",
        "schema": {"type": "string"},
        "description": "inclusive date, or exclusive time",
    },
    {"name": "channel_id", "in": "query", "schema": {"type": "integer"}},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": [s.value for s in CallStatus]}},
    {"name": "first_time", "in": "query", "schema": {"type": "boolean"}},
    {"name": "attributed", "in": "query", "schema": {"type": "boolean"}, "description": "has a channel"},
    {
        "name": "caller",
        "in": "query",
        "schema": {"type": "string"},
        "description": "digits of the caller's number",
    },
    {"name": "tag", "in": "query", "schema": {"type": "string"}, "description": "calls carrying this tag"},
]
register(
    "/clients/{client_id}/calls",
    "get",
    {
        "summary": "Calls of a client, newest first, filtered and paginated",
        "parameters": [
            *_FILTERS,
            {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            {"name": "per_page", "in": "query", "schema": {"type": "integer", "maximum": MAX_PER_PAGE}},
        ],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "items": {"type": "array", "items": CALL},
                                "page": {"type": "integer"},
                                "per_page": {"type": "integer"},
                                "total": {"type": "integer"},
                            },
                        }
                    }
                },
            },
            "400": {"description": "Bad filter", **_ERR},
            "404": _NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/calls.csv",
    "get",
    {
        "summary": "Calls as a flat CSV (same filters; UTF-8 with a byte-order mark)",
        "parameters": _FILTERS,
        "responses": {"200": {"description": "CSV", "content": {"text/csv": {}}}, "404": _NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/calls.xlsx",
    "get",
    {
        "summary": "Calls as an XLSX workbook (same filters and columns as the CSV)",
        "parameters": _FILTERS,
        "responses": {"200": {"description": "XLSX", "content": {exports.XLSX: {}}}, "404": _NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/calls/{call_id}",
    "get",
    {
        "summary": "One call with its session, candidate sessions and attribution history",
        "parameters": [_CID, _CALL_ID],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": CALL_DETAIL}}},
            "404": _NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/calls/{call_id}",
    "patch",
    {
        "summary": "Set a call's tags and operator notes",
        "parameters": [_CID, _CALL_ID],
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "notes": {"type": "string"},
                        },
                    }
                }
            }
        },
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": CALL_DETAIL}}},
            "400": {"description": "Bad input", **_ERR},
            "404": _NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/calls/{call_id}/promo-code",
    "post",
    {
        "summary": "Re-attribute a call to the session that showed this promo code",
        "parameters": [_CID, _CALL_ID],
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {"code": {"type": "string"}}}}
            }
        },
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": CALL_DETAIL}}},
            "422": {"description": "No session showed this code", **_ERR},
            "404": _NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/calls/{call_id}/channel",
    "post",
    {
        "summary": "Set the call's channel by hand (the caller's answer to 'how did you hear about us?')",
        "parameters": [_CID, _CALL_ID],
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"channel_id": {"type": "integer"}, "reason": {"type": "string"}},
                        "required": ["channel_id"],
                    }
                }
            }
        },
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": CALL_DETAIL}}},
            "422": {"description": "Unknown channel", **_ERR},
            "404": _NOT_FOUND,
        },
    },
)
INTEGRATION = schema(
    "TelephonyIntegration",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "provider": {"type": "string", "enum": list(PROVIDERS)},
            "name": {"type": "string"},
            "webhook_urls": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "They carry the integration key: only for roles that may edit the client",
            },
            "generated_secrets": {
                "type": "object",
                "description": "Only at creation, when the hub made the secret",
            },
        },
    },
)
register(
    "/clients/{client_id}/telephony-integrations",
    "get",
    {
        "summary": "Telephony integrations of a client (secrets are never returned)",
        "parameters": [_CID],
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": INTEGRATION}},
                        }
                    }
                },
            },
            "404": _NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/telephony-integrations",
    "post",
    {
        "summary": "Connect a telephony account; answers with the webhook URLs to configure at the provider",
        "parameters": [_CID],
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["provider"],
                        "properties": {
                            "provider": {"type": "string", "enum": list(PROVIDERS)},
                            "name": {"type": "string"},
                            "secrets": {
                                "type": "object",
                                "description": "twilio: auth_token[, shared_key_secret]; zadarma/novofon: "
                                "api_secret; mango: api_key, api_salt; generic: secret (generated if absent)",
                                "writeOnly": True,
                            },
                            "settings": {"type": "object", "properties": {"timezone": {"type": "string"}}},
                        },
                    }
                }
            }
        },
        "responses": {
            "201": {"description": "Created", "content": {"application/json": {"schema": INTEGRATION}}},
            "400": {"description": "Bad input", **_ERR},
            "404": _NOT_FOUND,
        },
    },
)
