"""Outgoing webhooks of a client: URLs that receive signed JSON events (docs/outgoing-webhooks.md)."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal, get_args

from flask import current_app
from pydantic import AfterValidator, ConfigDict, Field

from connectors.webhook import events, urls
from connectors.webhook.signing import SIGNATURE_HEADER
from hub.api.crud import destination_routes
from hub.api.openapi import component, register_webhook
from hub.destinations import box
from hub.schemas import In, Out, StrictBool
from jobs.runtime import setting
from tracking.models import Connection, ConnectionStatus

CONNECTOR = "webhook"
EVENTS = tuple(events.EVENTS)

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


def _apply(conn: Connection, change: OutgoingWebhookCreate | OutgoingWebhookChange) -> str | None:
    """Set a validated body; a new webhook, or one whose secret is rotated, answers its new secret."""
    values = {k: v for k, v in change.given().items() if v is not None}
    conn.name = values.get("name") or conn.name or values["url"]
    if "url" in values:
        conn.account = {**(conn.account or {}), "url": values["url"]}
    if "events" in values:
        conn.settings = {**(conn.settings or {}), "events": values["events"]}
    if "enabled" in values:
        conn.status = ConnectionStatus.ACTIVE if values["enabled"] else ConnectionStatus.DISABLED
    if conn.access_token_enc is not None and not values.get("rotate_secret"):
        return None
    secret = "whsec_" + secrets.token_urlsafe(32)
    conn.access_token_enc = box().seal(secret)
    return secret


destination_routes(
    CONNECTOR,
    "webhook",
    OutgoingWebhookOut,
    OutgoingWebhookCreate,
    OutgoingWebhookChange,
    to_json=webhook_json,
    apply=_apply,
)

# --- the events, as OpenAPI 3.1 webhooks ----------------------------------------------------------------

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
for _event, _model in events.EVENTS.items():
    _body = component(_model, name="WebhookEvent_" + _event.replace(".", "_"))
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
