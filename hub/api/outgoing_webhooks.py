"""Outgoing webhooks of a client: URLs that receive signed JSON events (docs/outgoing-webhooks.md)."""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, jsonify

from connectors.webhook import urls
from connectors.webhook.signing import SIGNATURE_HEADER
from hub.api import bp
from hub.api.common import INVALID, NOT_FOUND, Invalid, body, field, id_param, ok
from hub.api.openapi import register, register_webhook, schema
from hub.auth import api_auth_required, client_or_404
from hub.destinations import box, destination_or_404, new, of_client
from hub.extensions import db
from jobs.outbox import EVENT_FOR_KIND
from jobs.runtime import setting
from tracking.calls import SESSION_FIELDS
from tracking.models import Connection, ConnectionStatus

CONNECTOR = "webhook"
EVENTS = tuple(EVENT_FOR_KIND.values())

WEBHOOK = schema(
    "OutgoingWebhook",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "client_id": {"type": "integer", "readOnly": True},
            "name": {"type": "string"},
            "url": {"type": "string", "format": "uri", "description": "public http(s) address"},
            "events": {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}},
            "enabled": {"type": "boolean"},
            "secret": {
                "type": "string",
                "readOnly": True,
                "description": "the signing secret: returned only when made or rotated",
            },
        },
    },
)


def webhook_json(conn: Connection, secret: str | None = None) -> dict[str, Any]:
    out = {
        "id": conn.id,
        "client_id": conn.client_id,
        "name": conn.name,
        "url": (conn.account or {}).get("url"),
        "events": list((conn.settings or {}).get("events", [])),
        "enabled": conn.status != ConnectionStatus.DISABLED,
    }
    if secret is not None:
        out["secret"] = secret
    return out


def _url(data: dict[str, Any]) -> str | None:
    value = field(data, "url", str)
    if value is None:
        return None
    allow = urls.allowed_private(setting(current_app.config, "WEBHOOK_ALLOW_PRIVATE"))
    try:
        return urls.check(value, allow_private=allow)
    except urls.UnsafeURL as exc:
        raise Invalid("url", str(exc)) from None


def _events(data: dict[str, Any], *, required: bool) -> list[str] | None:
    value = field(data, "events", list, required=required)
    if value is None:
        return None
    if not value or not all(isinstance(e, str) and e in EVENTS for e in value):
        raise Invalid("events", "must be a non-empty list of " + ", ".join(EVENTS))
    return list(dict.fromkeys(value))


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@bp.get("/clients/<int:client_id>/webhooks")
@api_auth_required
def list_webhooks(client_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(items=[webhook_json(c) for c in of_client(client, CONNECTOR)])


@bp.post("/clients/<int:client_id>/webhooks")
@api_auth_required
def create_webhook(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    data = body()
    unknown = set(data) - {"name", "url", "events"}
    if unknown:
        raise Invalid(sorted(unknown)[0], "is not a field of a webhook")
    url = _url(data)
    if url is None:
        raise Invalid("url", "is required")
    events = _events(data, required=True)
    secret = _new_secret()
    conn = new(
        client,
        CONNECTOR,
        name=field(data, "name", str) or url,
        account={"url": url},
        settings={"events": events},
        secret=secret,
    )
    db().commit()
    return jsonify(webhook_json(conn, secret)), 201


@bp.patch("/webhooks/<int:webhook_id>")
@api_auth_required
def update_webhook(webhook_id: int) -> Any:
    conn, _ = destination_or_404(webhook_id, CONNECTOR, edit=True)
    data = body()
    unknown = set(data) - {"name", "url", "events", "enabled", "rotate_secret"}
    if unknown:
        raise Invalid(sorted(unknown)[0], "is not a field of a webhook")
    url, events = _url(data), _events(data, required=False)
    name, enabled = field(data, "name", str), field(data, "enabled", bool)
    rotate = field(data, "rotate_secret", bool)
    if url is not None:
        conn.account = {**(conn.account or {}), "url": url}
    if events is not None:
        conn.settings = {**(conn.settings or {}), "events": events}
    if name is not None:
        conn.name = name
    if enabled is not None:
        conn.status = ConnectionStatus.ACTIVE if enabled else ConnectionStatus.DISABLED
    secret = _new_secret() if rotate else None
    if secret is not None:
        conn.access_token_enc = box().seal(secret)
    db().commit()
    return jsonify(webhook_json(conn, secret))


@bp.delete("/webhooks/<int:webhook_id>")
@api_auth_required
def delete_webhook(webhook_id: int) -> Any:
    conn, _ = destination_or_404(webhook_id, CONNECTOR, edit=True)
    db().delete(conn)
    db().commit()
    return "", 204


_WID = [id_param("webhook_id")]
register(
    "/clients/{client_id}/webhooks",
    "get",
    {
        "summary": "The client's outgoing webhooks",
        "parameters": [id_param("client_id")],
        "responses": {
            "200": ok({"type": "object", "properties": {"items": {"type": "array", "items": WEBHOOK}}}),
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/webhooks",
    "post",
    {
        "summary": "Add an outgoing webhook; the answer carries its signing secret, shown this once",
        "parameters": [id_param("client_id")],
        "requestBody": {"content": {"application/json": {"schema": WEBHOOK}}},
        "responses": {"201": ok(WEBHOOK), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/webhooks/{webhook_id}",
    "patch",
    {
        "summary": "Change an outgoing webhook (rotate_secret: true issues a new secret)",
        "parameters": _WID,
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            WEBHOOK,
                            {"type": "object", "properties": {"rotate_secret": {"type": "boolean"}}},
                        ]
                    }
                }
            }
        },
        "responses": {"200": ok(WEBHOOK), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/webhooks/{webhook_id}",
    "delete",
    {
        "summary": "Remove an outgoing webhook",
        "parameters": _WID,
        "responses": {"204": {"description": "Removed"}},
    },
)

# --- the events, as OpenAPI 3.1 webhooks ----------------------------------------------------------------

_SESSION = {
    "type": ["object", "null"],
    "properties": {name: {"type": ["string", "null"]} for name in SESSION_FIELDS},
}
CALL_PAYLOAD = schema(
    "WebhookCall",
    {
        "type": "object",
        "required": ["call_id", "client_id", "key", "called_at", "status"],
        "properties": {
            "call_id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "key": {"type": "string"},
            "caller": {"type": ["string", "null"], "description": "E.164; null when withheld"},
            "tracking_number": {"type": ["string", "null"]},
            "static": {"type": "boolean"},
            "called_at": {"type": "string", "format": "date-time"},
            "answered_at": {"type": ["string", "null"], "format": "date-time"},
            "ended_at": {"type": ["string", "null"], "format": "date-time"},
            "wait_seconds": {"type": "integer"},
            "talk_seconds": {"type": "integer"},
            "status": {"type": "string", "enum": ["answered", "missed", "busy", "failed"]},
            "abandoned": {"type": "boolean"},
            "first_time": {"type": "boolean"},
            "is_target": {"type": "boolean"},
            "target_rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
            },
            "recording_url": {"type": ["string", "null"]},
            "call_path": {"type": "string", "description": "the call's page, relative to the hub's address"},
            "channel": {"type": ["string", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "timezone": {"type": "string"},
            "currency": {"type": "string"},
            "session": _SESSION,
        },
    },
)
ATTRIBUTED_PAYLOAD = schema(
    "WebhookCallAttributed",
    {
        "allOf": [
            CALL_PAYLOAD,
            {
                "type": "object",
                "properties": {
                    "previous": {
                        "type": "object",
                        "properties": {
                            "method": {"type": ["string", "null"]},
                            "channel": {"type": ["string", "null"]},
                        },
                    },
                    "reason": {"type": "string"},
                },
            },
        ]
    },
)
DEAL_PAYLOAD = schema(
    "WebhookDeal",
    {
        "type": "object",
        "required": ["deal_id", "client_id", "key", "amount", "currency", "won_at"],
        "properties": {
            "deal_id": {"type": "integer"},
            "client_id": {"type": "integer"},
            "key": {"type": "string"},
            "external_id": {"type": "string", "description": "the CRM's id of the deal"},
            "amount": {"type": "string", "description": "decimal, e.g. '12500.00'"},
            "currency": {"type": "string"},
            "won_at": {"type": "string", "format": "date-time"},
            "caller": {"type": ["string", "null"]},
            "call": {"oneOf": [CALL_PAYLOAD, {"type": "null"}]},
            "timezone": {"type": "string"},
        },
    },
)
_HEADERS = {
    "Otkuda-Event": {"schema": {"type": "string", "enum": list(EVENTS)}, "required": True},
    "Otkuda-Event-Id": {
        "schema": {"type": "string"},
        "required": True,
        "description": "stable per event: the same id on every attempt; drop an id you have seen",
    },
    SIGNATURE_HEADER: {
        "schema": {"type": "string", "example": "t=1764500000,v1=5257a869e7ec…"},
        "required": True,
        "description": "t: unix time of sending; v1: hex HMAC-SHA256 of t + '.' + raw body",
    },
}
for _event, _data in (
    ("call.finalised", CALL_PAYLOAD),
    ("call.attributed", ATTRIBUTED_PAYLOAD),
    ("deal.won", DEAL_PAYLOAD),
):
    _body = schema(
        "WebhookEvent_" + _event.replace(".", "_"),
        {
            "type": "object",
            "required": ["id", "event", "data"],
            "properties": {"id": {"type": "string"}, "event": {"const": _event}, "data": _data},
        },
    )
    register_webhook(
        _event,
        {
            "summary": f"{_event}, POSTed to each webhook subscribed to it",
            "parameters": [{"name": k, "in": "header", **v} for k, v in _HEADERS.items()],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _body}}},
            "responses": {
                "200": {"description": "Any 2xx: received. 410 stops further sends; 429 and 5xx are retried."}
            },
        },
    )
