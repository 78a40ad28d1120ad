"""Deals pulled from the CRM, linked to the call (and session) that brought them."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import Enum, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracking.db import Base, UTCDateTime, utcnow


class DealStatus(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[DealStatus] = mapped_column(
        Enum(DealStatus, native_enum=False, length=8), default=DealStatus.OPEN
    )
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    name: Mapped[str] = mapped_column(String(255), default="")
    pipeline_id: Mapped[str] = mapped_column(String(32), default="")
    status_id: Mapped[str] = mapped_column(String(32), default="")
    # The call that brought the deal; a deleted call leaves the deal (and its revenue) standing.
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("visit_sessions.id", ondelete="SET NULL"))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    won_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the CRM last changed it (drives "changed since" pulls), and when we first saw it.
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
