"""What the client page shows: sites, channels, numbers, pools with their utilisation, recent activity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracking.models import (
    Call,
    Channel,
    Client,
    FallbackEvent,
    Pool,
    TrackingNumber,
    VisitSession,
)
from tracking.models.numbers import NumberStatus


@dataclass(frozen=True)
class PoolUse:
    pool: Pool
    active: int  # numbers that can be handed out
    held: int  # numbers held by a live session now
    fallbacks_24h: int
    sessions_24h: int

    @property
    def utilisation(self) -> float:
        return self.held / self.active if self.active else 0.0

    @property
    def fallback_rate(self) -> float:
        return self.fallbacks_24h / self.sessions_24h if self.sessions_24h else 0.0


def pool_usage(db: Session, pool: Pool, now: dt.datetime) -> PoolUse:
    numbers = [n for n in pool.numbers if n.status == NumberStatus.ACTIVE]
    held = sum(1 for n in numbers if n.held_by_session_id is not None and n.held_until and n.held_until > now)
    day_ago = now - dt.timedelta(hours=24)
    fallbacks = db.scalar(
        select(func.count()).where(
            FallbackEvent.pool_id == pool.id, FallbackEvent.at >= day_ago, FallbackEvent.reason.is_(None)
        )
    )
    sessions = db.scalar(
        select(func.count()).where(VisitSession.site_id == pool.site_id, VisitSession.started_at >= day_ago)
    )
    return PoolUse(pool, len(numbers), held, int(fallbacks or 0), int(sessions or 0))


def client_overview(db: Session, client: Client, now: dt.datetime) -> dict[str, Any]:
    channels = db.scalars(
        select(Channel).where(Channel.client_id == client.id).order_by(Channel.position, Channel.id)
    ).all()
    numbers = db.scalars(
        select(TrackingNumber).where(TrackingNumber.client_id == client.id).order_by(TrackingNumber.e164)
    ).all()
    pools = db.scalars(select(Pool).where(Pool.client_id == client.id).order_by(Pool.id)).all()
    sessions = db.scalars(
        select(VisitSession)
        .where(VisitSession.client_id == client.id)
        .order_by(VisitSession.started_at.desc(), VisitSession.id.desc())
        .limit(20)
    ).all()
    calls = db.scalars(
        select(Call)
        .where(Call.client_id == client.id)
        .order_by(Call.called_at.desc(), Call.id.desc())
        .limit(20)
    ).all()
    return {
        "channels": channels,
        "channel_names": {c.id: c.name for c in channels},
        "numbers": numbers,
        "pools": [pool_usage(db, p, now) for p in pools],
        "sessions": sessions,
        "calls": calls,
    }
