"""What the hub shows of the delivery pipeline: a client's connections, deliveries and job history."""

from __future__ import annotations

from sqlalchemy import Select, and_, or_, select

from tracking.models import Connection, ConnectionClient, Delivery, DeliveryStatus, SyncRun

# "failing" = tried and failed, will be tried again (or in doubt: sent, outcome unknown, being looked up);
# "dead" = given up, waits for a person.
DELIVERY_FILTERS: dict[str, tuple[DeliveryStatus, ...]] = {
    "failing": (DeliveryStatus.RETRY,),
    "problems": (DeliveryStatus.RETRY, DeliveryStatus.DEAD),
    **{s.value: (s,) for s in DeliveryStatus},
}


def client_connections(client_id: int) -> Select[Connection]:
    shared = select(ConnectionClient.connection_id).where(ConnectionClient.client_id == client_id)
    return (
        select(Connection)
        .where(or_(Connection.client_id == client_id, Connection.id.in_(shared)))
        .order_by(Connection.id)
    )


def client_deliveries(client_id: int, status: str | None = None, limit: int | None = 200) -> Select[Delivery]:
    """Newest first. ``status`` is a key of DELIVERY_FILTERS (the caller validates it)."""
    query = select(Delivery).where(Delivery.client_id == client_id)
    if status in ("failing", "problems"):
        in_doubt = and_(Delivery.status == DeliveryStatus.IN_FLIGHT, Delivery.claimed_by.is_(None))
        query = query.where(or_(Delivery.status.in_(DELIVERY_FILTERS[status]), in_doubt))
    elif status:
        query = query.where(Delivery.status.in_(DELIVERY_FILTERS[status]))
    return query.order_by(Delivery.id.desc()).limit(limit)


def client_sync_runs(client_id: int, limit: int | None = 200) -> Select[SyncRun]:
    """Runs for the client's connections (own and shared), newest first."""
    ids = client_connections(client_id).with_only_columns(Connection.id).order_by(None)
    return select(SyncRun).where(SyncRun.connection_id.in_(ids)).order_by(SyncRun.id.desc()).limit(limit)
