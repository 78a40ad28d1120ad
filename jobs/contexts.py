"""Build the AccountContext a connector gets for one connection, and the connector itself."""

from __future__ import annotations

import requests
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from connectors import registry
from connectors.base import AccountContext, Connector
from jobs import providers
from jobs.runtime import Runtime
from jobs.tokens import TokenSource
from tracking.models import Client, Connection, ConnectionClient, ConnectionStatus


def account_context(
    rt: Runtime, db: Session, conn: Connection, connector: str, *, http: requests.Session | None = None
) -> AccountContext:
    provider = providers.resolve(rt.config, providers.connector_provider(connector))
    client = db.get(Client, conn.client_id) if conn.client_id else None
    return AccountContext(
        connection_id=conn.id,
        provider=conn.provider,
        api_base=providers.account_url(provider, provider.api_base, conn.account or {}),
        account={k: str(v) for k, v in (conn.account or {}).items()},
        settings=dict(conn.settings or {}),
        access_token=TokenSource(rt, conn.id, conn),
        hub_base_url=str(rt.setting("BASE_URL")).rstrip("/"),
        timezone=client.timezone if client else "Europe/Moscow",
        currency=client.currency if client else "RUB",
        extra=dict(provider.extra),
        http=http,
    )


def make_connector(
    rt: Runtime, db: Session, conn: Connection, connector: str, *, http: requests.Session | None = None
) -> tuple[Connector, AccountContext]:
    ctx = account_context(rt, db, conn, connector, http=http)
    return registry.load(connector).make_connector(ctx), ctx


def connections_of_client(
    db: Session, client_id: int, *, statuses: tuple[ConnectionStatus, ...] | None = None
) -> list[Connection]:
    """The client's own connections and the agency connections shared with it (optionally by status)."""
    shared = select(ConnectionClient.connection_id).where(ConnectionClient.client_id == client_id)
    query = select(Connection).where(or_(Connection.client_id == client_id, Connection.id.in_(shared)))
    if statuses is not None:
        query = query.where(Connection.status.in_(statuses))
    return list(db.scalars(query.order_by(Connection.id)))


def clients_of_connection(db: Session, conn: Connection) -> list[int]:
    if conn.client_id is not None:
        return [conn.client_id]
    return list(
        db.scalars(
            select(ConnectionClient.client_id)
            .where(ConnectionClient.connection_id == conn.id)
            .order_by(ConnectionClient.client_id)
        )
    )
