"""What the hub shows of the delivery pipeline: a client's connections, deliveries and job history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, or_, select

from tracking.models import Connection, ConnectionClient, Delivery, DeliveryStatus, SyncRun

# "failing" = tried and failed, will be tried again (or in doubt: sent, outcome unknown, being looked up);
# "dead" = given up, waits for a person.
DELIVERY_FILTERS: dict[str, tuple[DeliveryStatus, ...]] = {
    "failing": (DeliveryStatus.RETRY,),
    "problems": (DeliveryStatus.RETRY, DeliveryStatus.DEAD),
    **{s.value: (s,) for s in DeliveryStatus},
}


def client_connections(client_id: int) -> Select[tuple[Connection]]:
    shared = select(ConnectionClient.connection_id).where(ConnectionClient.client_id == client_id)
    return (
        select(Connection)
        .where(or_(Connection.client_id == client_id, Connection.id.in_(shared)))
        .order_by(Connection.id)
    )


def client_deliveries(client_id: int, status: str | None = None, limit: int = 200) -> Select[tuple[Delivery]]:
    """Newest first. ``status`` is a key of DELIVERY_FILTERS (the caller validates it)."""
    query = select(Delivery).where(Delivery.client_id == client_id)
    if status in ("failing", "problems"):
        in_doubt = and_(Delivery.status == DeliveryStatus.IN_FLIGHT, Delivery.claimed_by.is_(None))
        query = query.where(or_(Delivery.status.in_(DELIVERY_FILTERS[status]), in_doubt))
    elif status:
        query = query.where(Delivery.status.in_(DELIVERY_FILTERS[status]))
    return query.order_by(Delivery.id.desc()).limit(limit)


def client_sync_runs(client_id: int, limit: int = 200) -> Select[tuple[SyncRun]]:
    """Runs for the client's connections (own and shared), newest first."""
    ids = client_connections(client_id).with_only_columns(Connection.id).order_by(None)
    return select(SyncRun).where(SyncRun.connection_id.in_(ids)).order_by(SyncRun.id.desc()).limit(limit)


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def connection_json(conn: Connection) -> dict[str, Any]:
    # Tokens are never part of this: only whether the connection holds one.
    return {
        "id": conn.id,
        "provider": conn.provider,
        "name": conn.name,
        "connectors": list(conn.connectors or []),
        "account": dict(conn.account or {}),
        "scopes": list(conn.scopes or []),
        "shared": conn.client_id is None,
        "status": conn.status.value,
        "status_reason": conn.status_reason,
        "needs_reauth": conn.status.value == "needs_reauth",
        "has_token": conn.access_token_enc is not None,
        "expires_at": iso(conn.expires_at),
        "last_sync_at": iso(conn.last_sync_at),
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "connection_id": d.connection_id,
        "connector": d.connector,
        "kind": d.kind,
        "key": d.key,
        "status": d.status.value,
        "in_doubt": d.status == DeliveryStatus.IN_FLIGHT and d.claimed_by is None,
        "attempts": d.attempts,
        "next_attempt_at": iso(d.next_attempt_at),
        "external_id": d.external_id,
        "last_error": d.last_error,
        "created_at": iso(d.created_at),
        "done_at": iso(d.done_at),
    }


def sync_run_json(r: SyncRun) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "connector": r.connector,
        "connection_id": r.connection_id,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "items": r.items,
        "errors": r.errors,
        "error_text": r.error_text,
    }
