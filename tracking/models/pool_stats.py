"""Hourly snapshots of how busy each number pool is, kept for sizing pools."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracking.db import Base, UTCDateTime, utcnow


class PoolStat(Base):
    __tablename__ = "pool_stats"
    __table_args__ = (UniqueConstraint("pool_id", "hour"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("pools.id", ondelete="CASCADE"))
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # start of the hour, UTC
    numbers: Mapped[int] = mapped_column(default=0)  # active numbers in the pool
    held: Mapped[int] = mapped_column(default=0)  # numbers held at the snapshot
    peak_held: Mapped[int] = mapped_column(default=0)  # most numbers held at once during the hour
    sessions: Mapped[int] = mapped_column(default=0)  # holds started during the hour
    fallbacks: Mapped[int] = mapped_column(default=0)  # sessions that got the fallback number
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
