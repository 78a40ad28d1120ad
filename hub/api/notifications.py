"""Notification channels through the API: e-mail subscriptions, Telegram chats, test messages."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from hub import notification_channels as channels
from hub.api import bp
from hub.api.common import INVALID, NOT_FOUND, Invalid, body, field, id_param, ok
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404, current_user
from hub.extensions import db
from jobs import notify
from tracking.models import ConnectionStatus

CHANNEL = schema(
    "NotificationChannel",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "client_id": {"type": "integer", "readOnly": True},
            "kind": {"type": "string", "enum": list(channels.KINDS)},
            "address": {"type": "string", "readOnly": True, "description": "e-mail address or chat id"},
            "chat_id": {"type": "string", "writeOnly": True, "description": "Telegram only"},
            "user_id": {"type": ["integer", "null"], "readOnly": True},
            "events": {"type": "array", "items": {"type": "string", "enum": list(notify.EVENTS)}},
            "enabled": {"type": "boolean"},
        },
    },
)


def _user():  # type: ignore[no-untyped-def]
    user = current_user()
    assert user is not None
    return user


def _events(data: dict[str, Any], *, required: bool) -> list[str] | None:
    value = field(data, "events", list, required=required)
    if value is None:
        return None
    try:
        return channels.check_events(value)
    except channels.ChannelError as exc:
        raise Invalid(exc.field, exc.message) from None


@bp.get("/clients/<int:client_id>/notification-channels")
@api_auth_required
def list_notification_channels(client_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(items=[channels.channel_json(c) for c in channels.visible(client, _user())])


@bp.post("/clients/<int:client_id>/notification-channels")
@api_auth_required
def create_notification_channel(client_id: int) -> Any:
    client = client_or_404(client_id)  # before reading the body: a foreign id answers 404, not 400
    data = body()
    kind = field(data, "kind", str, required=True)
    if kind not in channels.KINDS:
        raise Invalid("kind", "must be email or telegram")
    events = _events(data, required=True)
    assert events is not None
    if kind == "email":
        # Anyone who sees the client may subscribe themselves.
        conn = channels.subscribe_email(client, _user(), events)
    else:
        client = client_or_404(client_id, edit=True)
        try:
            conn = channels.add_telegram(client, field(data, "chat_id", str, required=True), events)
        except channels.ChannelError as exc:
            raise Invalid(exc.field, exc.message) from None
    db().commit()
    return jsonify(channels.channel_json(conn)), 201


@bp.patch("/notification-channels/<int:notification_channel_id>")
@api_auth_required
def update_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=True)
    data = body()
    events, enabled = _events(data, required=False), field(data, "enabled", bool)
    if events is not None:
        conn.settings = {**(conn.settings or {}), "events": events}
    if enabled is not None:
        conn.status = ConnectionStatus.ACTIVE if enabled else ConnectionStatus.DISABLED
    db().commit()
    return jsonify(channels.channel_json(conn))


@bp.delete("/notification-channels/<int:notification_channel_id>")
@api_auth_required
def delete_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=True)
    db().delete(conn)
    db().commit()
    return "", 204


@bp.post("/notification-channels/<int:notification_channel_id>/test")
@api_auth_required
def test_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=True)
    delivery = notify.send_test(db(), conn)
    db().commit()
    if delivery is None:
        raise Invalid("channel", "is disabled: enable it before sending a test")
    return jsonify(delivery_id=delivery.id, status=delivery.status.value), 202


_ID = [id_param("notification_channel_id")]
register(
    "/clients/{client_id}/notification-channels",
    "get",
    {
        "summary": "Notification channels: the client's Telegram chats and e-mail subscriptions",
        "parameters": [id_param("client_id")],
        "responses": {
            "200": ok({"type": "object", "properties": {"items": {"type": "array", "items": CHANNEL}}}),
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/notification-channels",
    "post",
    {
        "summary": "Subscribe yourself by e-mail, or link a Telegram chat (editors)",
        "parameters": [id_param("client_id")],
        "requestBody": {"content": {"application/json": {"schema": CHANNEL}}},
        "responses": {"201": ok(CHANNEL), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/notification-channels/{notification_channel_id}",
    "patch",
    {
        "summary": "Change the events of a channel, or turn it off",
        "parameters": _ID,
        "requestBody": {"content": {"application/json": {"schema": CHANNEL}}},
        "responses": {"200": ok(CHANNEL), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/notification-channels/{notification_channel_id}",
    "delete",
    {"summary": "Remove a channel", "parameters": _ID, "responses": {"204": {"description": "Removed"}}},
)
register(
    "/notification-channels/{notification_channel_id}/test",
    "post",
    {
        "summary": "Queue a test message to this channel (sent by the scheduler's delivery job)",
        "parameters": _ID,
        "responses": {
            "202": ok(
                {
                    "type": "object",
                    "properties": {"delivery_id": {"type": "integer"}, "status": {"type": "string"}},
                }
            ),
            "400": INVALID,
            "404": NOT_FOUND,
        },
    },
)
