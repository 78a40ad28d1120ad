"""Advertising spend: pulled from ad platforms, entered by hand, and how utm_campaign maps to campaigns."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracking.db import Base, UTCDateTime, utcnow


class PlatformSpend(Base):
    """Spend for one day and campaign (ad group and keyword when known). A re-pull replaces the row."""

    __tablename__ = "spend_rows"
    __table_args__ = (
        # Named by hand: the generated name would pass PostgreSQL's 63-character limit.
        UniqueConstraint(
            "connection_id",
            "platform",
            "day",
            "campaign_id",
            "ad_group_id",
            "keyword_id",
            name="uq_spend_rows_grain",
        ),
        Index("ix_spend_rows_client_day", "client_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))  # the connector name: yandex_direct, google_ads
    day: Mapped[dt.date] = mapped_column(Date)
    campaign_id: Mapped[str] = mapped_column(String(64))
    campaign_name: Mapped[str] = mapped_column(String(255), default="")
    ad_group_id: Mapped[str] = mapped_column(String(64), default="")
    ad_group_name: Mapped[str] = mapped_column(String(255), default="")
    keyword_id: Mapped[str] = mapped_column(String(64), default="")
    keyword: Mapped[str] = mapped_column(String(255), default="")
    impressions: Mapped[int] = mapped_column(default=0)
    clicks: Mapped[int] = mapped_column(default=0)
    cost: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    pulled_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ManualSpend(Base):
    """Spend typed in by a person for a channel without an API (billboards, print, radio)."""

    __tablename__ = "manual_spend"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="SET NULL"))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignMapping(Base):
    """Which platform campaign a ``utm_campaign`` value stands for, when the tag is not the id itself."""

    __tablename__ = "campaign_mappings"
    __table_args__ = (UniqueConstraint("client_id", "platform", "utm_campaign"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    utm_campaign: Mapped[str] = mapped_column(String(255))
    campaign_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
