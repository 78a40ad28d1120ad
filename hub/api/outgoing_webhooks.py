"""Outgoing webhooks of a client: URLs that receive signed JSON events (docs/outgoing-webhooks.md)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal, get_args

from flask import current_app, jsonify
from pydantic import AfterValidator, ConfigDict, Field

from connectors.webhook import urls
from connectors.webhook.signing import SIGNATURE_HEADER
from hub.api import bp
from hub.api.common import commit, paginate, parse
from hub.api.crud import describe
from hub.api.openapi import register_webhook, schema
from hub.auth import api_auth_required, client_or_404
from hub.destinations import box, destination_or_404, new, of_client_query
from hub.extensions import db
from hub.schemas import In, Out, StrictBool
from jobs.outbox import EVENT_FOR_KIND
from jobs.runtime import setting
from tracking.calls import SESSION_FIELDS
from tracking.models import Connection, ConnectionStatus

CONNECTOR = "webhook"
EVENTS = tuple(EVENT_FOR_KIND.values())

Event = Literal["call.finalised", "call.attributed", "deal.won"]
assert set(EVENTS) == set(get_args(Event)), "the webhook events and the outbox's kinds disagree"


def _url(value: str) -> str:
    allow = urls.allowed_private(setting(current_app.config, "WEBHOOK_ALLOW_PRIVATE"))
    try:
        return urls.check(value, allow_private=allow)
    except urls.UnsafeURL as exc:
        raise ValueError(str(exc)) from None


def _events(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("must be a non-empty list of " + ", ".join(EVENTS))
    return list(dict.fromkeys(value))


Url = Annotated[
    str,
    Field(strict=True, min_length=1, max_length=2000, description="public http(s) address"),
    AfterValidator(_url),
]
Events = Annotated[list[Event], AfterValidator(_events)]


class OutgoingWebhookOut(Out):
    id: int
    client_id: int
    name: str | None
    url: str | None
    events: list[Event]
    enabled: bool
    secret: str | None = Field(
        description="the signing secret: returned only when made or rotated (null otherwise)"
    )


class OutgoingWebhookCreate(In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(strict=True, max_length=200)] | None = None
    url: Url
    events: Events


class OutgoingWebhookChange(In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, Field(strict=True, max_length=200)] | None = None
    url: Url | None = None
    events: Events | None = None
    enabled: StrictBool | None = None
    rotate_secret: StrictBool | None = Field(None, description="true issues a new signing secret")


def webhook_json(conn: Connection, secret: str | None = None) -> dict[str, Any]:
    return OutgoingWebhookOut.build(
        id=conn.id,
        client_id=conn.client_id,
        name=conn.name,
        url=(conn.account or {}).get("url"),
        events=list((conn.settings or {}).get("events", [])),
        enabled=conn.status != ConnectionStatus.DISABLED,
        secret=secret,
    )


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@bp.get("/clients/<int:client_id>/webhooks")
@api_auth_required
def list_webhooks(client_id: int) -> Any:
    client = client_or_404(client_id)
    return paginate(of_client_query(client, CONNECTOR), webhook_json)


@bp.post("/clients/<int:client_id>/webhooks")
@api_auth_required
def create_webhook(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    change = parse(OutgoingWebhookCreate)
    secret = _new_secret()
    conn = new(
        client,
        CONNECTOR,
        name=change.name or change.url,
        account={"url": change.url},
        settings={"events": change.events},
        secret=secret,
    )
    commit()
    return jsonify(webhook_json(conn, secret)), 201


@bp.get("/webhooks/<int:webhook_id>")
@api_auth_required
def get_webhook(webhook_id: int) -> Any:
    conn, _ = destination_or_404(webhook_id, CONNECTOR)
    return jsonify(webhook_json(conn))


@bp.patch("/webhooks/<int:webhook_id>")
@api_auth_required
def update_webhook(webhook_id: int) -> Any:
    conn, _ = destination_or_404(webhook_id, CONNECTOR, edit=True)
    change = parse(OutgoingWebhookChange)
    if change.url is not None:
        conn.account = {**(conn.account or {}), "url": change.url}
    if change.events is not None:
        conn.settings = {**(conn.settings or {}), "events": change.events}
    if change.name is not None:
        conn.name = change.name
    if change.enabled is not None:
        conn.status = ConnectionStatus.ACTIVE if change.enabled else ConnectionStatus.DISABLED
    secret = _new_secret() if change.rotate_secret else None
    if secret is not None:
        conn.access_token_enc = box().seal(secret)
    commit()
    return jsonify(webhook_json(conn, secret))


@bp.delete("/webhooks/<int:webhook_id>")
@api_auth_required
def delete_webhook(webhook_id: int) -> Any:
    conn, _ = destination_or_404(webhook_id, CONNECTOR, edit=True)
    db().delete(conn)
    commit()
    return "", 204


describe("webhook", OutgoingWebhookOut, OutgoingWebhookCreate, OutgoingWebhookChange, delete=True)

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
