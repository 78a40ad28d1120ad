"""Notification channels through the API: e-mail subscriptions, Telegram chats, test messages."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import jsonify
from pydantic import AfterValidator, ConfigDict, Field

from hub import notification_channels as channels
from hub.api import bp
from hub.api.common import INVALID, NOT_FOUND, commit, id_param, ok, page_args, parse
from hub.api.crud import describe
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404, current_user
from hub.extensions import db
from hub.schemas import In, Out, StrictBool
from jobs import notify
from tracking.errors import Refused
from tracking.models import Connection, ConnectionStatus, User

Events = Annotated[list[str], AfterValidator(channels.check_events)]
EVENTS_DOC = "any of " + ", ".join(notify.EVENTS)


class NotificationChannelOut(Out):
    id: int
    client_id: int
    kind: Literal["email", "telegram"]
    address: str | None = Field(description="e-mail address or chat id")
    user_id: int | None = Field(description="whose e-mail subscription this is (null for a chat)")
    events: list[str] = Field(description=EVENTS_DOC)
    enabled: bool


class NotificationChannelCreate(In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["email", "telegram"] = Field(
        description="email subscribes the caller; telegram links a chat to the client (editors)"
    )
    chat_id: Annotated[str, Field(strict=True, max_length=40)] | None = Field(
        None, description="Telegram only"
    )
    events: Events = Field(description=EVENTS_DOC)


class NotificationChannelChange(In):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    events: Events | None = Field(None, description=EVENTS_DOC)
    enabled: StrictBool | None = None


class TestQueued(Out):
    delivery_id: int
    status: str


def _out(conn: Connection) -> dict[str, Any]:
    return NotificationChannelOut.build(**channels.channel_json(conn))


def _user() -> User:
    user = current_user()
    assert user is not None  # api_auth_required
    return user


@bp.get("/clients/<int:client_id>/notification-channels")
@api_auth_required
def list_notification_channels(client_id: int) -> Any:
    client = client_or_404(client_id)
    # Who sees which e-mail channel is decided per row (one's own, or all for editors), so paging is here.
    rows = channels.visible(client, _user())
    number, per_page = page_args()
    shown = rows[(number - 1) * per_page : number * per_page]
    return jsonify(items=[_out(c) for c in shown], page=number, per_page=per_page, total=len(rows))


@bp.post("/clients/<int:client_id>/notification-channels")
@api_auth_required
def create_notification_channel(client_id: int) -> Any:
    client = client_or_404(client_id)  # before reading the body: a foreign id answers 404, not 400
    change = parse(NotificationChannelCreate)
    if change.kind == "email":
        # Anyone who sees the client may subscribe themselves.
        conn = channels.subscribe_email(client, _user(), change.events)
    else:
        client = client_or_404(client_id, edit=True)
        if not change.chat_id:
            raise Refused("chat_id", "is required")
        conn = channels.add_telegram(client, change.chat_id, change.events)
    commit()
    return jsonify(_out(conn)), 201


@bp.get("/notification-channels/<int:notification_channel_id>")
@api_auth_required
def get_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=False)
    return jsonify(_out(conn))


@bp.patch("/notification-channels/<int:notification_channel_id>")
@api_auth_required
def update_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=True)
    change = parse(NotificationChannelChange)
    if change.events is not None:
        conn.settings = {**(conn.settings or {}), "events": change.events}
    if change.enabled is not None:
        conn.status = ConnectionStatus.ACTIVE if change.enabled else ConnectionStatus.DISABLED
    commit()
    return jsonify(_out(conn))


@bp.delete("/notification-channels/<int:notification_channel_id>")
@api_auth_required
def delete_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=True)
    db().delete(conn)
    commit()
    return "", 204


@bp.post("/notification-channels/<int:notification_channel_id>/test")
@api_auth_required
def test_notification_channel(notification_channel_id: int) -> Any:
    conn, _ = channels.channel_or_404(notification_channel_id, _user(), change=True)
    delivery = notify.send_test(db(), conn)
    if delivery is None:
        raise Refused("channel", "is disabled: enable it before sending a test")
    commit()
    return jsonify(TestQueued.build(delivery_id=delivery.id, status=delivery.status.value)), 202


describe(
    "notification_channel",
    NotificationChannelOut,
    NotificationChannelCreate,
    NotificationChannelChange,
    delete=True,
    plural="notification-channels",
)
register(
    "/notification-channels/{notification_channel_id}/test",
    "post",
    {
        "summary": "Queue a test message to this channel (sent by `otkuda worker`)",
        "parameters": [id_param("notification_channel_id")],
        "responses": {"202": ok(TestQueued, "Queued"), "400": INVALID, "404": NOT_FOUND},
    },
)
