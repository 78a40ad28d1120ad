"""Connections to external accounts, the delivery outbox, job history and the scheduler lease."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    Column,
    Enum,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tracking.db import Base, UTCDateTime, utcnow


class ConnectionStatus(enum.StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"  # the grant is gone (invalid_grant, revoked): a person must reconnect
    DISABLED = "disabled"


class Connection(Base):
    """An authorised external account (amoCRM, Yandex, Google Ads ...).

    It belongs to one client, or (``client_id`` null) to the agency, which shares it with the clients
    listed in ``connection_clients``. Tokens are stored encrypted (``tracking.crypto``).
    """

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))  # OAuth provider name: amocrm, yandex, google
    name: Mapped[str] = mapped_column(String(200), default="")
    # The connector names this connection feeds or is read by (e.g. ["metrika", "yandex_direct"]).
    connectors: Mapped[list[Any]] = mapped_column(default=list)
    # External account ids: subdomain, counter_id, client_login, customer_id, manager_id ...
    account: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[ConnectionStatus] = mapped_column(
        Enum(ConnectionStatus, native_enum=False, length=16), default=ConnectionStatus.ACTIVE
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    shared_with: Mapped[list[ConnectionClient]] = relationship(cascade="all, delete-orphan")


class ConnectionClient(Base):
    """A client that uses an agency-shared connection."""

    __tablename__ = "connection_clients"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"  # claimed by a worker; if the claim goes stale, the outcome is in doubt
    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"
    SKIPPED = "skipped"


class Delivery(Base):
    """One item of the outbox: one event for one destination (connection + connector)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("connection_id", "connector", "key"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_client_status", "client_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # connectors.base.ItemKind
    key: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    connection: Mapped[Connection] = relationship()


class DeliveryDestination(Base):
    """One destination (connection + connector) as the workers share it.

    A worker holds it (``held_by`` until ``held_until``, renewed while it works) so only one process pushes
    to a destination at a time, and ``ready_at`` is when the destination's rate limit lets the next
    request go, whichever worker sends it.
    """

    __tablename__ = "delivery_destinations"
    __table_args__ = (UniqueConstraint("connection_id", "connector"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(32))
    held_by: Mapped[str | None] = mapped_column(String(64))
    held_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SyncRun(Base):
    """One run of a job (deliver, pull spend, pull deals, refresh tokens, pool stats, backfill)."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_started", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(32))
    connector: Mapped[str | None] = mapped_column(String(32))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    items: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    error_text: Mapped[str | None] = mapped_column(Text)


class SchedulerLease(Base):
    """Who runs the scheduler. The holder renews ``expires_at``; others wait until it passes."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# APScheduler's job store (SQLAlchemyJobStore with tablename="scheduler_jobs"). Declared here, in its
# library's exact shape, so Alembic owns the table instead of the scheduler creating it on first start.
scheduler_jobs = Table(
    "scheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
