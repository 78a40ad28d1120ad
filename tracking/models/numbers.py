"""Channels, tracking numbers and the pools that dynamic numbers live in."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tracking.db import Base, UTCDateTime, utcnow


class Channel(Base):
    """An ad source of a client. ``rules`` is a list of condition sets; any one matching selects it.

    A condition set is a dict over ``utm_source``, ``utm_medium``, ``utm_campaign`` (exact, case-insensitive,
    or a prefix when it ends in ``*``), ``referrer_domain`` (the domain or any subdomain of it),
    ``has_gclid`` and ``has_yclid`` (booleans), ``landing_path`` (the landing page's path, exact or a prefix
    with ``*``, case-insensitive); all conditions of a set must hold.
    """

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Checked in ascending position; the first channel with a matching rule wins.
    position: Mapped[int] = mapped_column(default=100)
    rules: Mapped[list[Any]] = mapped_column(default=list)
    # Catches every visit no rule matched ("direct / unknown"). One per client.
    is_default: Mapped[bool] = mapped_column(default=False)
    # Offline channels (billboard, print) have no visits, only static numbers and hand-entered spend.
    offline: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class NumberStatus(enum.StrEnum):
    ACTIVE = "active"
    QUARANTINED = "quarantined"  # kept out of allocation, e.g. while calls meant for a past holder fade
    RETIRED = "retired"


class TrackingNumber(Base):
    __tablename__ = "tracking_numbers"
    __table_args__ = (
        Index("ix_tracking_numbers_pool_free", "pool_id", "status", "released_at"),
        # Unique per client: webhooks resolve a number within their integration's client, so a number
        # another tenant typed in neither blocks nor reveals anything.
        UniqueConstraint("client_id", "e164"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    e164: Mapped[str] = mapped_column(String(20), index=True)
    provider: Mapped[str] = mapped_column(String(32), default="generic")
    # The business line calls are forwarded to (E.164).
    forward_to: Mapped[str | None] = mapped_column(String(20))
    # Static numbers are bound to a channel; pool numbers to a pool. Exactly one of the two is set.
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id", ondelete="SET NULL"))
    status: Mapped[NumberStatus] = mapped_column(
        Enum(NumberStatus, native_enum=False, length=16), default=NumberStatus.ACTIVE
    )
    # Live hold, kept on the row itself so one UPDATE both checks and takes it (see tracking.allocation).
    held_by_session_id: Mapped[int | None] = mapped_column(
        ForeignKey("visit_sessions.id", ondelete="SET NULL", use_alter=True)
    )
    held_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the last hold ended; allocation prefers the number that has rested longest.
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Pool numbers: the channel of the last session that held it. Allocation keeps a number in its channel
    # (a late call to it then still lands in the right channel); borrowing moves it to the borrower's.
    home_channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    # Within its channel, the campaign (``allocation.campaign_key`` of utm_campaign) the number serves: a
    # session of that campaign takes it before the channel's other free numbers.
    home_campaign: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    channel: Mapped[Channel | None] = relationship(foreign_keys=[channel_id])
    pool: Mapped[Pool | None] = relationship(back_populates="numbers", foreign_keys=[pool_id])

    @property
    def is_static(self) -> bool:
        return self.pool_id is None


class Pool(Base):
    """A set of numbers shown one per visitor session on a site (dynamic call tracking)."""

    __tablename__ = "pools"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # A number stays with a session this long after the last sign of activity...
    hold_seconds: Mapped[int] = mapped_column(default=900)
    # ...plus this long after the visitor leaves the page (a caller often dials after closing the tab)...
    grace_seconds: Mapped[int] = mapped_column(default=300)
    # ...but never longer than this from the start of the hold.
    max_hold_seconds: Mapped[int] = mapped_column(default=4 * 3600)
    # Shown when every number is held; calls to it are attributed as "overflow".
    fallback_number_id: Mapped[int | None] = mapped_column(
        ForeignKey("tracking_numbers.id", ondelete="SET NULL", use_alter=True)
    )
    active: Mapped[bool] = mapped_column(default=True)
    # Keep numbers within their channel (see tracking.allocation.take_number); off = least recently used.
    channel_coherent: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    numbers: Mapped[list[TrackingNumber]] = relationship(
        back_populates="pool", foreign_keys="TrackingNumber.pool_id", order_by="TrackingNumber.id"
    )
    fallback_number: Mapped[TrackingNumber | None] = relationship(foreign_keys=[fallback_number_id])
    served_channels: Mapped[list[PoolChannel]] = relationship(cascade="all, delete-orphan")


class PoolChannel(Base):
    """The channels a pool serves. A pool with none serves every channel without a static number."""

    __tablename__ = "pool_channels"

    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
