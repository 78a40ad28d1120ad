"""Bounds on what one source can take from a pool, so a bot cannot hold every number of a site.

A pool number is reserved for a visitor session while the page is open. Without a bound, a script that
posts visits with fresh visitor ids from one address would hold the whole pool and push every real
visitor onto the fallback number, which attributes by guesswork. So a new session gets the fallback
number instead of a pool number when its source already holds ``holds_per_source`` live numbers of that
pool, or its visitor ``holds_per_visitor``; the refusal is a ``fallback_events`` row with the reason.

The counts are read, not locked: concurrent first visits from one source can overshoot the cap by the
number of requests in flight, which the per-address rate limit keeps small.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, null, select
from sqlalchemy.orm import Session

from tracking.models import Pool, TrackingNumber, VisitSession
from tracking.models.numbers import NumberStatus

SOURCE_CAP = "source_cap"
VISITOR_CAP = "visitor_cap"
# Visitor ids shorter than this are not trusted as the bearer of a session (see tracking.visits): a
# 128-bit random id is 32 hex digits; anything shorter may be guessed.
STRONG_VISITOR_ID = 32


@dataclass(frozen=True)
class Requester:
    """Where a visit came from, as the hub saw it, and how much of a pool it may hold (0: no cap)."""

    key: str | None  # a keyed hash of the client address, never the address
    holds_per_source: int = 3
    holds_per_visitor: int = 1


def hold_refusal(
    db: Session, pool: Pool, session: VisitSession, now: dt.datetime, requester: Requester | None
) -> str | None:
    """Why ``session`` may not take a number of ``pool`` (a fallback reason), or None when it may."""
    if requester is None:
        return None
    live = (
        select(func.count())
        .select_from(TrackingNumber)
        .join(VisitSession, VisitSession.id == TrackingNumber.held_by_session_id)
        .where(
            TrackingNumber.pool_id == pool.id,
            TrackingNumber.status == NumberStatus.ACTIVE,
            TrackingNumber.held_until >= now,
            VisitSession.id != session.id,
        )
    )
    if requester.holds_per_visitor > 0:
        by_visitor = _visitor_holds(pool.id, pool.site_id, session.visitor_id, now)
        held = db.scalar(by_visitor.where(VisitSession.id != session.id)) or 0
        if held >= requester.holds_per_visitor:
            return VISITOR_CAP
    if requester.key and requester.holds_per_source > 0:
        held = db.scalar(live.where(VisitSession.source_key == requester.key)) or 0
        if held >= requester.holds_per_source:
            return SOURCE_CAP
    return None


def _visitor_holds(pool_id: Any, site_id: Any, visitor_id: Any, now: Any) -> Any:
    """How many live numbers of the pool the visitor holds, counted from the visitor's own sessions on the
    pool's site (index ``ix_visit_sessions_site_visitor``; a session holding a number shows it as its
    ``number_id``), not by walking every number of the pool: that cost grew with the pool and was most of
    the database's work for a new visit."""
    return (
        select(func.count())
        .select_from(VisitSession)
        .join(
            TrackingNumber,
            and_(
                TrackingNumber.id == VisitSession.number_id,
                TrackingNumber.held_by_session_id == VisitSession.id,
            ),
        )
        .where(
            VisitSession.site_id == site_id,
            VisitSession.visitor_id == visitor_id,
            TrackingNumber.pool_id == pool_id,
            TrackingNumber.status == NumberStatus.ACTIVE,
            TrackingNumber.held_until >= now,
        )
    )


def continues_sessions(visitor_id: str) -> bool:
    """Whether a visit with this visitor id may continue (and be shown) an earlier session of it."""
    return len(visitor_id) >= STRONG_VISITOR_ID


def refusal_expression(
    pool_id: Any,
    site_id: Any,
    visitor_id: Any,
    now: Any,
    requester: Requester | None,
    source_key: Any = None,
) -> Any:
    """:func:`hold_refusal` as one SQL expression (NULL when the session may take a number), for the hot path
    that decides and takes in one statement. None when no cap applies. The values may be bound parameters
    (``source_key`` then stands for ``requester.key``)."""
    if requester is None:
        return None
    live = (
        select(func.count())
        .select_from(TrackingNumber)
        .join(VisitSession, VisitSession.id == TrackingNumber.held_by_session_id)
        .where(
            TrackingNumber.pool_id == pool_id,
            TrackingNumber.status == NumberStatus.ACTIVE,
            TrackingNumber.held_until >= now,
        )
    )
    whens = []
    if requester.holds_per_visitor > 0:
        by_visitor = _visitor_holds(pool_id, site_id, visitor_id, now).scalar_subquery()
        whens.append((by_visitor >= requester.holds_per_visitor, VISITOR_CAP))
    if requester.key and requester.holds_per_source > 0:
        key = requester.key if source_key is None else source_key
        by_source = live.where(VisitSession.source_key == key).scalar_subquery()
        whens.append((by_source >= requester.holds_per_source, SOURCE_CAP))
    return case(*whens, else_=null()) if whens else None
