"""Hourly pool statistics: how many numbers a pool has, how many were held (now and at peak), how many
sessions took one, and how many got the fallback number because none was free."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select

from jobs.runtime import Runtime
from tracking.db import utcnow
from tracking.models import FallbackEvent, NumberAssignment, Pool, PoolStat, TrackingNumber
from tracking.models.numbers import NumberStatus


def hour_start(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _peak(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    events = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def compute_pool_stats(rt: Runtime, now: dt.datetime | None = None) -> int:
    """Write (or rewrite) the stats of the previous and the current hour for every active pool."""
    now = now or utcnow()
    written = 0
    with rt.sessions() as db:
        pools = db.scalars(select(Pool).where(Pool.active.is_(True))).all()
        for pool in pools:
            for start in (hour_start(now) - dt.timedelta(hours=1), hour_start(now)):
                end = min(start + dt.timedelta(hours=1), now)
                holds = db.execute(
                    select(
                        NumberAssignment.started_at, NumberAssignment.ended_at, NumberAssignment.hold_until
                    ).where(
                        NumberAssignment.pool_id == pool.id,
                        NumberAssignment.started_at < end,
                        or_(NumberAssignment.ended_at.is_(None), NumberAssignment.ended_at > start),
                    )
                ).all()
                intervals = []
                for s, ended, until in holds:
                    stop = min(ended or until, end)
                    if stop > max(s, start):
                        intervals.append((max(s, start), stop))
                held_now = sum(1 for _s, e in intervals if e >= end)  # still held when the window closes
                row = db.scalar(select(PoolStat).where(PoolStat.pool_id == pool.id, PoolStat.hour == start))
                if row is None:
                    row = PoolStat(pool_id=pool.id, hour=start)
                    db.add(row)
                row.numbers = (
                    db.scalar(
                        select(func.count(TrackingNumber.id)).where(
                            TrackingNumber.pool_id == pool.id, TrackingNumber.status == NumberStatus.ACTIVE
                        )
                    )
                    or 0
                )
                row.held = held_now
                row.peak_held = _peak(intervals)
                row.sessions = sum(1 for s, _e, _u in holds if start <= s < end)
                row.fallbacks = (
                    db.scalar(
                        select(func.count(FallbackEvent.id)).where(
                            FallbackEvent.pool_id == pool.id,
                            FallbackEvent.at >= start,
                            FallbackEvent.at < end,
                            # Only exhaustion sizes a pool; a source refused for holding too much does not.
                            FallbackEvent.reason.is_(None),
                        )
                    )
                    or 0
                )
                row.computed_at = now
                written += 1
        db.commit()
    return written
