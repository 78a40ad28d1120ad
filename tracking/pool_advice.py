"""Pool sizing from a client's observed traffic: fit the simulator to it and find the smallest pool that
reaches a target attribution accuracy; compare with the rule of thumb."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracking.db import utcnow
from tracking.models import AttributionMethod, Call, Pool, VisitSession
from tracking.poolsim import Advice, PoolConfig, Result, Traffic, advise, rule_of_thumb, simulate

# Fewer observed calls than this and the call timing falls back to the simulator's defaults.
MIN_CALLS_FOR_DELAYS = 20
SAMPLE = 5000
SIMULATED_CALLS = 1000


@dataclass
class Report:
    traffic: Traffic
    observed_sessions: int
    observed_calls: int
    visitors_last_3_days: int
    hold_seconds: int
    grace_seconds: int
    current_size: int | None
    advice: list[Advice]
    rule_of_thumb_size: int
    rule_of_thumb: Result
    current: Result | None


def observed_traffic(
    db: Session, client_id: int, days: int = 14, now: dt.datetime | None = None
) -> tuple[Traffic, int, int]:
    """The client's traffic over the last ``days`` as simulator input, with the session and call counts."""
    now = now or utcnow()
    since = now - dt.timedelta(days=days)
    rows = db.execute(
        select(
            VisitSession.started_at,
            VisitSession.last_seen_at,
            VisitSession.left_at,
            VisitSession.visitor_id,
            VisitSession.channel_id,
            VisitSession.device,
        )
        .where(VisitSession.client_id == client_id, VisitSession.started_at >= since)
        .order_by(VisitSession.started_at)
    ).all()
    traffic = Traffic()
    if not rows:
        return traffic, 0, 0
    span_days = max(1.0, min(days, (now - rows[0].started_at).total_seconds() / 86400))
    traffic.sessions_per_day = len(rows) / span_days
    hours = Counter(r.started_at.hour for r in rows)
    traffic.hourly_shape = tuple(hours.get(h, 0) + 0.01 for h in range(24))
    channels = Counter(str(r.channel_id) for r in rows)
    traffic.channel_mix = {k: v / len(rows) for k, v in channels.items()}
    seen: set[str] = set()
    returning = 0
    for r in rows:
        returning += r.visitor_id in seen
        seen.add(r.visitor_id)
    traffic.returning_share = returning / len(rows)
    traffic.beacon_share = sum(r.left_at is not None for r in rows) / len(rows)
    traffic.mobile_share = sum(r.device == "mobile" for r in rows) / len(rows)
    step = max(1, len(rows) // SAMPLE)
    traffic.session_lengths = [
        max(5.0, (r.last_seen_at - r.started_at).total_seconds()) for r in rows[::step]
    ]

    pool_methods = [
        AttributionMethod.DYNAMIC,
        AttributionMethod.DYNAMIC_UNIDENTIFIED,
        AttributionMethod.OVERFLOW,
        AttributionMethod.PROMO,
    ]
    calls = db.scalar(
        select(func.count())
        .select_from(Call)
        .where(
            Call.client_id == client_id, Call.called_at >= since, Call.attribution_method.in_(pool_methods)
        )
    )
    if calls:
        traffic.call_rate = min(1.0, calls / len(rows))
    # Delays only from calls we are confident about (or that a promo code tied to its session).
    delays = db.execute(
        select(Call.called_at, VisitSession.last_seen_at)
        .join(VisitSession, VisitSession.id == Call.session_id)
        .where(
            Call.client_id == client_id,
            Call.called_at >= since,
            (Call.attribution_method == AttributionMethod.PROMO)
            | ((Call.attribution_method == AttributionMethod.DYNAMIC) & (Call.session_confidence >= 0.8)),
        )
        .limit(SAMPLE)
    ).all()
    if len(delays) >= MIN_CALLS_FOR_DELAYS:
        traffic.call_delays = [(called - seen_at).total_seconds() for called, seen_at in delays if called]
    return traffic, len(rows), int(calls or 0)


def pool_advice(
    db: Session,
    client_id: int,
    targets: tuple[float, ...] = (0.95, 0.99),
    days: int = 14,
    max_size: int = 400,
    now: dt.datetime | None = None,
) -> Report:
    now = now or utcnow()
    traffic, n_sessions, n_calls = observed_traffic(db, client_id, days, now)
    pool = db.scalar(select(Pool).where(Pool.client_id == client_id, Pool.active.is_(True)).order_by(Pool.id))
    hold, grace = (pool.hold_seconds, pool.grace_seconds) if pool else (900, 300)
    current_size = len(pool.numbers) if pool else None
    visitors_3d = db.scalar(
        select(func.count(func.distinct(VisitSession.visitor_id))).where(
            VisitSession.client_id == client_id, VisitSession.started_at >= now - dt.timedelta(days=3)
        )
    )
    # Simulate long enough for about a thousand calls, so the accuracies are not noise.
    expected_calls_per_day = max(1e-6, traffic.sessions_per_day * traffic.call_rate)
    sim_days = max(2, min(14, math.ceil(SIMULATED_CALLS / expected_calls_per_day)))
    advice, _ = advise(traffic, targets, hold, grace, max_size=max_size, days=sim_days)
    thumb = rule_of_thumb(int(visitors_3d or 0))
    thumb_result = simulate(traffic, PoolConfig(thumb, hold, grace), days=sim_days)
    current = (
        simulate(traffic, PoolConfig(current_size, hold, grace), days=sim_days) if current_size else None
    )
    return Report(
        traffic=traffic,
        observed_sessions=n_sessions,
        observed_calls=n_calls,
        visitors_last_3_days=int(visitors_3d or 0),
        hold_seconds=hold,
        grace_seconds=grace,
        current_size=current_size,
        advice=advice,
        rule_of_thumb_size=thumb,
        rule_of_thumb=thumb_result,
        current=current,
    )
