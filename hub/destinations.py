"""Destinations made with a form rather than an OAuth consent page: webhooks, notification channels, GA4.

Each is a ``Connection`` of the client feeding one connector, so its deliveries go through the outbox
like any other (retries, the deliveries page, sync history); its secret is sealed like a token.
"""

from __future__ import annotations

from flask import abort, current_app
from sqlalchemy import Select, select

from hub.auth import client_or_404
from hub.extensions import db
from tracking.crypto import SecretBox
from tracking.models import Client, Connection, ConnectionStatus


def box() -> SecretBox:
    return SecretBox(current_app.config["ENCRYPTION_KEY"])


def of_client_query(client: Client, connector: str) -> Select[Connection]:
    """The client's destinations of one kind, oldest first (their provider is the connector's name)."""
    return (
        select(Connection)
        .where(Connection.client_id == client.id, Connection.provider == connector)
        .order_by(Connection.id)
    )


def of_client(client: Client, connector: str) -> list[Connection]:
    return [c for c in db().scalars(of_client_query(client, connector)) if connector in (c.connectors or [])]


def destination_or_404(
    connection_id: int, connector: str, *, edit: bool = False
) -> tuple[Connection, Client]:
    """A destination of this kind whose client the caller may see (edit); 404 for anything else."""
    conn = db().get(Connection, connection_id)
    if conn is None or conn.client_id is None or conn.provider != connector:
        abort(404)
    client = client_or_404(conn.client_id, edit=edit)
    return conn, client


def new(
    client: Client, connector: str, *, name: str, account: dict, settings: dict, secret: str | None
) -> Connection:
    conn = Connection(
        agency_id=client.agency_id,
        client_id=client.id,
        provider=connector,
        name=name,
        connectors=[connector],
        account=account,
        settings=settings,
        scopes=[],
        access_token_enc=box().seal(secret) if secret is not None else None,
        status=ConnectionStatus.ACTIVE,
    )
    db().add(conn)
    return conn
