"""The ROMI roll-up: a day's visits, calls and deals per leaf of the report, kept beside the rows they sum.

Triggers on sessions, calls and deals (migration 0008) note in ``romi_dirty`` what changed, in the same
transaction as the change; ``tracking.romi_rollup`` rebuilds the days those notes name before a report
reads the roll-up, so the roll-up is never behind what the report could see.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracking.db import Base, UTCDateTime


class RomiLeaf(Base):
    """One leaf of the ROMI tree as stored: channel (or a row of its own) and the session's raw tags.

    The tags stay raw so renaming a campaign, mapping a utm_campaign or a new spend row's names change
    how leaves are labelled and matched at read time without rebuilding any day.
    """

    __tablename__ = "romi_leaves"
    __table_args__ = (
        UniqueConstraint(
            "client_id",
            "channel_id",
            "source",
            "utm_campaign",
            "utm_content",
            "utm_term",
            name="uq_romi_leaves",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    channel_id: Mapped[int] = mapped_column(Integer, default=0)  # 0: none
    source: Mapped[str] = mapped_column(String(32), default="")  # "" or a special row's key
    utm_campaign: Mapped[str] = mapped_column(String(255), default="")
    utm_content: Mapped[str] = mapped_column(String(255), default="")
    utm_term: Mapped[str] = mapped_column(String(255), default="")


class _Figures:
    """The additive figures of a leaf, as both grains store them."""

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    model: Mapped[str] = mapped_column(String(16), default="")
    leaf_id: Mapped[int] = mapped_column(ForeignKey("romi_leaves.id", ondelete="CASCADE"))
    visits: Mapped[int] = mapped_column(default=0)
    calls: Mapped[int] = mapped_column(default=0)
    first_time_calls: Mapped[int] = mapped_column(default=0)
    answered: Mapped[int] = mapped_column(default=0)
    missed: Mapped[int] = mapped_column(default=0)
    deals: Mapped[int] = mapped_column(default=0)
    won: Mapped[int] = mapped_column(default=0)
    revenue: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))


class RomiDaily(_Figures, Base):
    """Sums of one leaf on one local day of the client; model "" for visits and deals without a call."""

    __tablename__ = "romi_daily"
    __table_args__ = (Index("ix_romi_daily_client_model_day", "client_id", "model", "day"),)


class RomiMonthly(_Figures, Base):
    """The same sums per local calendar month (``day`` is its first day): a year reads twelve, not 365."""

    __tablename__ = "romi_monthly"
    __table_args__ = (Index("ix_romi_monthly_client_model_day", "client_id", "model", "day"),)


class RomiDailyCaller(Base):
    """Who called under a leaf on a day: unique callers of a period are a union, never a sum of days."""

    __tablename__ = "romi_daily_callers"
    __table_args__ = (Index("ix_romi_daily_callers_client_model_day", "client_id", "model", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    model: Mapped[str] = mapped_column(String(16))
    leaf_id: Mapped[int] = mapped_column(ForeignKey("romi_leaves.id", ondelete="CASCADE"))
    caller: Mapped[str] = mapped_column(String(32))


class RomiDirty(Base):
    """A change the roll-up has not taken in yet, written by triggers in the changing transaction.

    ``at`` is the instant whose local day is stale. A session's note also names its visitor: the credit
    of that visitor's later calls may move to it under the first-touch and last-non-direct models.
    No foreign key: a client's deletion cascades to rows whose triggers still write here.
    """

    __tablename__ = "romi_dirty"
    __table_args__ = (Index("ix_romi_dirty_client", "client_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    site_id: Mapped[int | None] = mapped_column(Integer)
    visitor_id: Mapped[str | None] = mapped_column(String(64))


class RomiRollupState(Base):
    """Per client, what the stored days were computed under; any difference means a full rebuild."""

    __tablename__ = "romi_rollup_state"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(255), default="")
    built_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
