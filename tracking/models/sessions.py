"""Visitor sessions, the history of which number each one held, and pool exhaustion events."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tracking.db import Base, UTCDateTime, utcnow
from tracking.models.numbers import Channel, TrackingNumber


class VisitSession(Base):
    __tablename__ = "visit_sessions"
    __table_args__ = (
        Index("ix_visit_sessions_site_visitor", "site_id", "visitor_id", "last_seen_at"),
        Index("ix_visit_sessions_client_started", "client_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the snippet and API show instead of the integer id.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    # First-party cookie value set by the snippet.
    visitor_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the visitor left (release beacon); the hold then runs on for the pool's grace period.
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    landing_url: Mapped[str | None] = mapped_column(Text)
    referrer: Mapped[str | None] = mapped_column(Text)
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    gclid: Mapped[str | None] = mapped_column(String(255))
    gbraid: Mapped[str | None] = mapped_column(String(255))
    wbraid: Mapped[str | None] = mapped_column(String(255))
    yclid: Mapped[str | None] = mapped_column(String(255))
    ym_client_id: Mapped[str | None] = mapped_column(String(64))
    ga_client_id: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(16))  # desktop / mobile / tablet
    screen: Mapped[str | None] = mapped_column(String(32))
    # A keyed hash of the client address the session came from (never the address itself): how many pool
    # numbers one source may hold at once is bounded by it (tracking.abuse).
    source_key: Mapped[str | None] = mapped_column(String(32))

    # The number shown to this session (pool, static or fallback) and until when it is reserved.
    number_id: Mapped[int | None] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="SET NULL"))
    hold_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    promo_code: Mapped[str | None] = mapped_column(String(16), index=True)

    channel: Mapped[Channel | None] = relationship()
    number: Mapped[TrackingNumber | None] = relationship(foreign_keys=[number_id])


class NumberAssignment(Base):
    """One hold of a pool number by a session: calls are matched against these, so they are never deleted."""

    __tablename__ = "number_assignments"
    __table_args__ = (Index("ix_number_assignments_number_period", "number_id", "started_at", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number_id: Mapped[int] = mapped_column(ForeignKey("tracking_numbers.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("visit_sessions.id", ondelete="CASCADE"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The latest known end of the hold; moves forward with activity while the hold is live.
    hold_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # When the hold actually ended (released early, expired and reclaimed, or replaced). Null while live.
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    number: Mapped[TrackingNumber] = relationship()
    session: Mapped[VisitSession] = relationship()


class FallbackEvent(Base):
    """A session that got the pool's fallback number: every number was held, or its source held too many."""

    __tablename__ = "fallback_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("visit_sessions.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Null: every number was held. Otherwise why this session was refused a pool number (tracking.abuse).
    reason: Mapped[str | None] = mapped_column(String(32))
