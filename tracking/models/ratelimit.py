"""Rate-limit counters, kept in the database when no Redis is configured (see hub.ratelimit)."""

from __future__ import annotations

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from tracking.db import Base


class RateLimitCounter(Base):
    """One fixed window of one limit: how many hits, and when the window ends (Unix seconds)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column()
    expires_at: Mapped[float] = mapped_column(Float, index=True)
