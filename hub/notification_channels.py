"""Notification channels of a client, shared by the API and the settings page.

An e-mail channel belongs to one person (their address, their choice of events); a Telegram chat belongs
to the client. Both are connections of the ``email`` / ``telegram`` connectors, so each notification is
an outbox row (one per event and channel) and shows on the Deliveries page.
"""

from __future__ import annotations

import re
from typing import Any

from flask import abort

from hub.destinations import destination_or_404, new, of_client
from hub.extensions import db
from jobs.notify import EVENTS
from tracking.accounts import can_edit
from tracking.errors import Refused
from tracking.models import Client, Connection, ConnectionStatus, User

KINDS = ("email", "telegram")
CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")


def check_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(e, str) and e in EVENTS for e in value):
        raise Refused("events", "must be a list of " + ", ".join(EVENTS))
    return list(dict.fromkeys(value))


def channel_json(conn: Connection) -> dict[str, Any]:
    kind = conn.provider
    account = conn.account or {}
    return {
        "id": conn.id,
        "client_id": conn.client_id,
        "kind": kind,
        "address": account.get("to") if kind == "email" else account.get("chat_id"),
        "user_id": (conn.settings or {}).get("user_id"),
        "events": list((conn.settings or {}).get("events", [])),
        "enabled": conn.status != ConnectionStatus.DISABLED,
    }


def visible(client: Client, user: User) -> list[Connection]:
    """Telegram chats of the client, and e-mail channels: all for editors, one's own for viewers."""
    out = list(of_client(client, "telegram"))
    for conn in of_client(client, "email"):
        if can_edit(user) or (conn.settings or {}).get("user_id") == user.id:
            out.append(conn)
    return sorted(out, key=lambda c: c.id)


def own_email(client: Client, user: User) -> Connection | None:
    return next((c for c in of_client(client, "email") if (c.settings or {}).get("user_id") == user.id), None)


def subscribe_email(client: Client, user: User, events: list[str]) -> Connection:
    """The person's own e-mail subscription for this client (one per person and client)."""
    conn = own_email(client, user)
    if conn is None:
        conn = new(
            client,
            "email",
            name=user.email,
            account={"to": user.email},
            settings={"events": events, "user_id": user.id},
            secret=None,
        )
    else:
        conn.settings = {**(conn.settings or {}), "events": events}
        conn.account = {"to": user.email}
    return conn


def add_telegram(client: Client, chat_id: str, events: list[str]) -> Connection:
    chat_id = chat_id.strip()
    if not CHAT_ID.match(chat_id):
        raise Refused("chat_id", "must be a numeric chat id (groups start with -) or @channelname")
    for conn in of_client(client, "telegram"):
        if (conn.account or {}).get("chat_id") == chat_id:
            conn.settings = {**(conn.settings or {}), "events": events}
            return conn
    return new(
        client,
        "telegram",
        name=f"Telegram {chat_id}",
        account={"chat_id": chat_id},
        settings={"events": events},
        secret=None,
    )


def channel_or_404(connection_id: int, user: User, *, change: bool) -> tuple[Connection, Client]:
    """A channel the person may see; changing a Telegram chat or another's e-mail needs an editor."""
    conn = db().get(Connection, connection_id)
    if conn is None or conn.provider not in KINDS:
        abort(404)
    conn, client = destination_or_404(connection_id, conn.provider)
    own = conn.provider == "email" and (conn.settings or {}).get("user_id") == user.id
    if not own and not can_edit(user):
        if conn.provider == "email":
            abort(404)  # another person's address is not shown to a viewer
        if change:
            abort(403)
    return conn, client
