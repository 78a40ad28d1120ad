"""Which number a visitor session is shown, and for how long it is reserved for that session.

The live hold is kept on the number row (``held_by_session_id``, ``held_until``): a number is free when
nobody holds it or its hold has run out (``held_until < now``), so an expired hold needs no sweeper job —
the next allocation reclaims it and closes the old holder's row in ``number_assignments``.

A free number is taken with a single ``UPDATE … WHERE id = (SELECT … LIMIT 1 [FOR UPDATE SKIP LOCKED])
RETURNING id``. On PostgreSQL the sub-select skips rows another transaction is taking and the outer
``WHERE`` re-checks freeness on the newest row version; on SQLite the statement runs under the database's
single write lock, which serialises allocations (callers retry when the lock wait times out, see
:func:`tracking.visits.run_with_retry`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, Update, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from tracking import abuse
from tracking.db import is_postgres
from tracking.models import (
    Channel,
    Client,
    FallbackEvent,
    NumberAssignment,
    Pool,
    PoolChannel,
    Site,
    TrackingNumber,
    VisitSession,
)
from tracking.models.numbers import NumberStatus
from tracking.romi import norm

# Sessions shown a static number (or none) have no pool to take hold times from.
STATIC_SESSION_SECONDS = 30 * 60


class Kind:
    POOL = "pool"
    STATIC = "static"
    FALLBACK = "fallback"
    NONE = "none"  # no pool or static number applies: the page keeps its own numbers


@dataclass
class Allocation:
    kind: str
    number: TrackingNumber | None
    hold_until: dt.datetime
    pool: Pool | None = None


def static_number_for(db: Session, channel_id: int) -> TrackingNumber | None:
    return db.scalar(
        select(TrackingNumber)
        .where(
            TrackingNumber.channel_id == channel_id,
            TrackingNumber.pool_id.is_(None),
            TrackingNumber.status == NumberStatus.ACTIVE,
        )
        .order_by(TrackingNumber.id)
        .limit(1)
    )


def pool_for(db: Session, site_id: int, channel_id: int) -> Pool | None:
    """The site's pool for a channel: one that names the channel, else one that serves every channel."""
    pools = db.scalars(
        select(Pool).where(Pool.site_id == site_id, Pool.active.is_(True)).order_by(Pool.id)
    ).all()
    if not pools:
        return None
    served: dict[int, set[int]] = {p.id: set() for p in pools}
    for pool_id, ch_id in db.execute(
        select(PoolChannel.pool_id, PoolChannel.channel_id).where(PoolChannel.pool_id.in_(served))
    ):
        served[pool_id].add(ch_id)
    for pool in pools:
        if channel_id in served[pool.id]:
            return pool
    for pool in pools:
        if not served[pool.id]:
            return pool
    return None


def heartbeat_seconds(hold_seconds: int) -> int:
    """How often the snippet says "still here" for a hold of ``hold_seconds``: three beats per hold."""
    return max(10, min(120, hold_seconds // 3))


class PoolLike(Protocol):
    """What allocation reads of a pool: the ORM row or the hot path's cached copy of it."""

    @property
    def id(self) -> int: ...
    @property
    def hold_seconds(self) -> int: ...
    @property
    def max_hold_seconds(self) -> int: ...
    @property
    def channel_coherent(self) -> bool: ...
    @property
    def fallback_number_id(self) -> int | None: ...


def _cap(pool: PoolLike, started_at: dt.datetime) -> dt.datetime:
    return started_at + dt.timedelta(seconds=pool.max_hold_seconds)


def _free(now: dt.datetime):
    return or_(TrackingNumber.held_by_session_id.is_(None), TrackingNumber.held_until < now)


# A number lent to another channel comes back to its home; one its channel left idle this long moves to the
# borrower for good (its channel's traffic has shrunk, the borrower's has grown).
HOME_IDLE = dt.timedelta(hours=2)


def _new_home(pool: PoolLike, channel_id: Any, now: Any, idle_since: Any = None):
    if not pool.channel_coherent:
        return channel_id
    rested_since = func.coalesce(TrackingNumber.held_until, TrackingNumber.released_at)
    return case(
        (TrackingNumber.home_channel_id.is_(None), channel_id),
        (rested_since < (now - HOME_IDLE if idle_since is None else idle_since), channel_id),
        else_=TrackingNumber.home_channel_id,
    )


# Within its channel a coherent pool gives a session a free number its campaign holds (see
# ``free_number_candidate``); off, the channel's longest-rested number. A switch for measuring the two.
CAMPAIGN_COHERENT = True
# Only a number that has rested this long counts as its campaign's: taking a number freed minutes ago over
# one rested for hours would leave a late caller of the last holder two plausible sessions.
CAMPAIGN_REST = dt.timedelta(minutes=15)


def campaign_key(utm_campaign: str | None) -> str | None:
    """The campaign a session's ``utm_campaign`` stands for when numbers are kept together: the spelling
    ROMI matches campaign mappings and names with (case and runs of spaces do not count)."""
    return norm(utm_campaign)[:255] or None


def _new_home_campaign(pool: PoolLike, channel_id: Any, campaign: Any, now: Any, idle_since: Any = None):
    """The number's campaign after a session of ``channel_id`` and ``campaign`` takes it: the session's
    when the number joins the session's channel (see ``_new_home``) or is its channel's and serves no
    campaign yet; otherwise it keeps serving its own (a lent number, or one another campaign of the
    channel had to take because its own were held)."""
    if not pool.channel_coherent:
        return campaign
    rested_since = func.coalesce(TrackingNumber.held_until, TrackingNumber.released_at)
    return case(
        (TrackingNumber.home_channel_id.is_(None), campaign),
        (rested_since < (now - HOME_IDLE if idle_since is None else idle_since), campaign),
        (
            and_(TrackingNumber.home_channel_id == channel_id, TrackingNumber.home_campaign.is_(None)),
            campaign,
        ),
        else_=TrackingNumber.home_campaign,
    )


def new_hold_until(pool: PoolLike, now: dt.datetime) -> dt.datetime:
    """When a hold taken now on a number of ``pool`` ends."""
    return min(now + dt.timedelta(seconds=pool.hold_seconds), _cap(pool, now))


def _may_join(channel_id: Any, now: Any, idle_since: Any = None):
    """A number that is the channel's, or would join it when taken (see ``_new_home``)."""
    rested_since = func.coalesce(TrackingNumber.held_until, TrackingNumber.released_at)
    return or_(
        TrackingNumber.home_channel_id.is_(None),
        TrackingNumber.home_channel_id == channel_id,
        rested_since < (now - HOME_IDLE if idle_since is None else idle_since),
    )


def free_number_candidate(
    pool: PoolLike,
    channel_id: Any,
    now: Any,
    *,
    postgres: bool,
    borrow: bool = True,
    idle_since: Any = None,
    campaign: Any = None,
    campaign_since: Any = None,
) -> Select:
    """The id of the free number of ``pool`` a session of ``channel_id`` (and ``campaign``, a
    :func:`campaign_key` or a parameter holding one) takes next (see :func:`take_number` for the order and
    ``borrow``); locked with ``SKIP LOCKED`` on PostgreSQL."""
    # A free number's last hold ended at its (past) held_until, or at released_at when the hold was cleared
    # early; never-used numbers (both NULL) go first.
    rested = func.coalesce(TrackingNumber.held_until, TrackingNumber.released_at).asc().nulls_first()
    order = [rested, TrackingNumber.id]
    if pool.channel_coherent and channel_id is not None:
        home = case(
            (TrackingNumber.home_channel_id.is_(None), 0),
            (TrackingNumber.home_channel_id == channel_id, 1),
            else_=2,
        )
        order.insert(0, home)
        if CAMPAIGN_COHERENT and campaign is not None:
            # After the channel, before the rest: NULL (a session with no campaign) matches nothing.
            since = now - CAMPAIGN_REST if campaign_since is None else campaign_since
            rested_before = func.coalesce(TrackingNumber.held_until, TrackingNumber.released_at) < since
            ours = and_(TrackingNumber.home_campaign == campaign, rested_before)
            order.insert(1, case((ours, 0), else_=1))
    candidate = (
        select(TrackingNumber.id)
        .where(
            TrackingNumber.pool_id == pool.id,
            TrackingNumber.status == NumberStatus.ACTIVE,
            _free(now),
        )
        .order_by(*order)
        .limit(1)
    )
    if pool.fallback_number_id is not None:
        candidate = candidate.where(TrackingNumber.id != pool.fallback_number_id)
    if not borrow and pool.channel_coherent and channel_id is not None:
        candidate = candidate.where(_may_join(channel_id, now, idle_since))
    if postgres:
        candidate = candidate.with_for_update(skip_locked=True)
    return candidate


def take_statement(
    pool: PoolLike,
    session_id: Any,
    channel_id: Any,
    now: Any,
    candidate: Select,
    *,
    hold_until: Any = None,
    idle_since: Any = None,
    campaign: Any = None,
) -> Update:
    """The UPDATE that holds the ``candidate`` number for ``session_id``, re-checking on the newest row
    version that it is still free. Every value may be an SQL expression (a bound parameter of a statement
    built once); ``hold_until`` and ``idle_since`` are then given as such too."""
    return (
        update(TrackingNumber)
        .where(TrackingNumber.id == candidate.scalar_subquery(), _free(now))
        .values(
            held_by_session_id=session_id,
            held_until=new_hold_until(pool, now) if hold_until is None else hold_until,
            home_channel_id=_new_home(pool, channel_id, now, idle_since),
            home_campaign=_new_home_campaign(pool, channel_id, campaign, now, idle_since),
            # SET expressions see the old row: remember when the previous hold ended.
            released_at=func.coalesce(TrackingNumber.held_until, TrackingNumber.released_at),
        )
    )


def take_number(
    db: Session, pool: Pool, session: VisitSession, now: dt.datetime, *, borrow: bool = True
) -> TrackingNumber | None:
    """Atomically hold a free number of the pool for ``session``; None when all are held.

    Longest-rested first. A channel-coherent pool first takes numbers nobody has held yet (they join the
    session's channel), then numbers of the session's channel, and only then borrows another channel's
    number (before falling back). A borrowed number stays its channel's unless that channel had left it
    idle for ``HOME_IDLE``: then it joins the borrower's. So a late caller who wrote a number down still
    lands in the number's channel, and each channel keeps about as many numbers as its traffic keeps busy.
    Within the session's channel a free number its campaign holds (``home_campaign``, given like the home
    channel) that has rested ``CAMPAIGN_REST`` goes before the channel's other numbers, so a late call to it
    names the right campaign even when the session is mistaken. ``borrow=False`` takes only a number that
    is or may become the session's channel's (see ``allocate``).
    """
    hold_until = new_hold_until(pool, now)
    campaign = campaign_key(session.utm_campaign)
    candidate = free_number_candidate(
        pool, session.channel_id, now, postgres=is_postgres(db), borrow=borrow, campaign=campaign
    )
    stmt = (
        take_statement(pool, session.id, session.channel_id, now, candidate, campaign=campaign)
        .returning(TrackingNumber)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    number = db.execute(stmt).scalar_one_or_none()
    if number is None:
        return None
    number_id = number.id
    # Close the previous holder's assignment at the moment its hold really ended.
    db.execute(
        update(NumberAssignment)
        .where(NumberAssignment.number_id == number_id, NumberAssignment.ended_at.is_(None))
        .values(ended_at=NumberAssignment.hold_until)
        .execution_options(synchronize_session=False)
    )
    db.add(
        NumberAssignment(
            number_id=number_id, session_id=session.id, pool_id=pool.id, started_at=now, hold_until=hold_until
        )
    )
    return number


# A holder not heard from for this many heartbeat periods (page hidden, or closed without a leave beacon) is
# probably gone; a holder whose leave beacon arrived is gone.
QUIET_BEATS = 2
RECLAIM_QUIET = True
# Before borrowing another channel's number, reclaim one of the session's own channel whose holder left
# (leave beacon) or has been quiet for the pool's grace period.
RECLAIM_OWN_BEFORE_BORROWING = True


def take_quiet_number(
    db: Session,
    pool: Pool,
    session: VisitSession,
    now: dt.datetime,
    *,
    quiet_seconds: int | None = None,
    own_channel: bool = False,
) -> TrackingNumber | None:
    """When every number is held: take one whose holder has left or gone quiet, rather than show the
    fallback number. None when every holder is still on its page.

    A hold outlives its page by the grace period (leave beacon) or the whole hold time (no beacon, hidden
    tab) so that a caller who dials a few minutes after leaving still finds only themselves on the number.
    When the pool is exhausted that reserve costs more than it protects: the fallback number tells sessions
    apart not at all, while the attribution model weighs a just-gone holder against the new one. The holder
    quiet the longest goes first (least likely to call now), a number of the session's own channel before
    another's in a channel-coherent pool; the number keeps its home channel.
    """
    if quiet_seconds is None:
        quiet_seconds = QUIET_BEATS * heartbeat_seconds(pool.hold_seconds) + 30
    quiet_since = now - dt.timedelta(seconds=quiet_seconds)
    holder = VisitSession
    gone = holder.last_seen_at < quiet_since
    if quiet_seconds <= pool.grace_seconds:
        gone = or_(holder.left_at.is_not(None), gone)
    order = [holder.last_seen_at.asc(), TrackingNumber.id]
    if pool.channel_coherent and session.channel_id is not None:
        order.insert(0, case((TrackingNumber.home_channel_id == session.channel_id, 0), else_=1))
    row = db.execute(
        select(TrackingNumber.id, holder.id)
        .join(holder, holder.id == TrackingNumber.held_by_session_id)
        .where(
            TrackingNumber.pool_id == pool.id,
            TrackingNumber.status == NumberStatus.ACTIVE,
            TrackingNumber.held_until >= now,
            holder.id != session.id,
            # Concurrent requests carry clocks a little apart: never reclaim a hold heard from "later".
            holder.last_seen_at <= now,
            gone,
            *([TrackingNumber.home_channel_id == session.channel_id] if own_channel else []),
        )
        .order_by(*order)
        .limit(1)
    ).first()
    if row is None:
        return None
    number_id, holder_id = row
    hold_until = min(now + dt.timedelta(seconds=pool.hold_seconds), _cap(pool, now))
    number = db.execute(
        update(TrackingNumber)
        .where(TrackingNumber.id == number_id, TrackingNumber.held_by_session_id == holder_id)
        .values(held_by_session_id=session.id, held_until=hold_until, released_at=now)
        .returning(TrackingNumber)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).scalar_one_or_none()
    if number is None:
        return None  # another allocation took it first
    db.execute(
        update(NumberAssignment)
        .where(NumberAssignment.number_id == number_id, NumberAssignment.ended_at.is_(None))
        .values(ended_at=now, hold_until=now)
        .execution_options(synchronize_session=False)
    )
    db.execute(
        update(VisitSession)
        .where(VisitSession.id == holder_id, VisitSession.hold_until > now)
        .values(hold_until=now)
        .execution_options(synchronize_session=False)
    )
    db.add(
        NumberAssignment(
            number_id=number_id, session_id=session.id, pool_id=pool.id, started_at=now, hold_until=hold_until
        )
    )
    return number


def _take(db: Session, pool: Pool, session: VisitSession, now: dt.datetime) -> TrackingNumber | None:
    """A free number of the session's channel, else one of its channel whose holder is long gone, else a
    borrowed one, else any whose holder has gone quiet; None: fallback.

    Reclaiming before borrowing keeps numbers inside their channel when the channel's share of the pool is
    used up (a late caller's number then still says the right channel); only holders quiet for longer than
    the leave beacon or a grace period's silence is reclaimed for that, and holders quiet for a couple of
    heartbeats only when the alternative is the fallback number.
    """
    coherent = pool.channel_coherent and session.channel_id is not None
    if not coherent or not RECLAIM_QUIET:
        number = take_number(db, pool, session, now)
        if number is None and RECLAIM_QUIET:
            number = take_quiet_number(db, pool, session, now)
        return number
    number = take_number(db, pool, session, now, borrow=False)
    if number is None and RECLAIM_OWN_BEFORE_BORROWING:
        quiet = pool.grace_seconds
        number = take_quiet_number(db, pool, session, now, quiet_seconds=quiet, own_channel=True)
    if number is None:
        number = take_number(db, pool, session, now)
    if number is None:
        number = take_quiet_number(db, pool, session, now)
    return number


def is_fallback(number: TrackingNumber) -> bool:
    """Fallback numbers belong to no pool and no channel (the pool points at them)."""
    return number.pool_id is None and number.channel_id is None


def take_fallback_upgrade(
    db: Session,
    fallback: TrackingNumber,
    session: VisitSession,
    now: dt.datetime,
    requester: abuse.Requester | None = None,
) -> TrackingNumber | None:
    """A pool number for a session that was shown ``fallback``, if its pool has one free now and the
    session's source and visitor are within their hold caps (the same caps as a first visit: otherwise a
    bot refused at its visits would take the pool through its heartbeats)."""
    pool = db.scalar(select(Pool).where(Pool.fallback_number_id == fallback.id, Pool.active.is_(True)))
    client = db.get(Client, pool.client_id) if pool is not None else None
    if pool is None or client is None or client.archived_at is not None:
        return None  # an archived client's visitors are handed no new number
    if requester is not None:
        # The session's own source counts, wherever this heartbeat came from.
        requester = abuse.Requester(
            session.source_key, requester.holds_per_source, requester.holds_per_visitor
        )
        if abuse.hold_refusal(db, pool, session, now, requester) is not None:
            return None
    return take_number(db, pool, session, now)


def _fallback(
    db: Session, pool: Pool, session: VisitSession, now: dt.datetime, reason: str | None = None
) -> Allocation:
    db.add(FallbackEvent(pool_id=pool.id, session_id=session.id, at=now, reason=reason))
    number = pool.fallback_number
    if number is not None and number.status != NumberStatus.ACTIVE:
        number = None
    hold_until = now + dt.timedelta(seconds=pool.hold_seconds)
    return Allocation(Kind.FALLBACK if number else Kind.NONE, number, hold_until, pool)


def allocate(
    db: Session,
    site: Site,
    channel: Channel,
    session: VisitSession,
    now: dt.datetime,
    requester: abuse.Requester | None = None,
) -> Allocation:
    """Choose the number for a new session: the channel's static number, else a pool number, else fallback.

    ``session`` must be flushed (it needs an id). The caller stores the result on the session.
    """
    if site.client.archived_at is not None:
        # An archived client hands out no tracking numbers: the page keeps the site's own numbers.
        return Allocation(Kind.NONE, None, now + dt.timedelta(seconds=STATIC_SESSION_SECONDS))
    static = static_number_for(db, channel.id)
    if static is not None:
        return Allocation(Kind.STATIC, static, now + dt.timedelta(seconds=STATIC_SESSION_SECONDS))
    pool = pool_for(db, site.id, channel.id)
    if pool is None:
        return Allocation(Kind.NONE, None, now + dt.timedelta(seconds=STATIC_SESSION_SECONDS))
    refused = abuse.hold_refusal(db, pool, session, now, requester)
    number = None if refused else _take(db, pool, session, now)
    if number is None:
        return _fallback(db, pool, session, now, refused)
    assert number.held_until is not None
    return Allocation(Kind.POOL, number, number.held_until, pool)


def live_assignment(db: Session, session: VisitSession) -> NumberAssignment | None:
    return db.scalar(
        select(NumberAssignment)
        .where(NumberAssignment.session_id == session.id, NumberAssignment.ended_at.is_(None))
        .order_by(NumberAssignment.id.desc())
        .limit(1)
    )


def _move_hold(
    db: Session,
    session: VisitSession,
    now: dt.datetime,
    assignment: NumberAssignment | None,
    *,
    seconds_of: str,
) -> dt.datetime | None:
    assignment = assignment or live_assignment(db, session)
    if assignment is None:
        return None
    pool = db.get(Pool, assignment.pool_id)
    assert pool is not None
    until = min(now + dt.timedelta(seconds=getattr(pool, seconds_of)), _cap(pool, assignment.started_at))
    if until < now:
        return None
    taken = db.execute(
        update(TrackingNumber)
        .where(
            TrackingNumber.id == assignment.number_id,
            TrackingNumber.held_by_session_id == session.id,
            TrackingNumber.held_until >= now,
        )
        .values(held_until=until)
        .returning(TrackingNumber.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if taken is None:
        return None
    assignment.hold_until = until
    return until


def extend_hold(
    db: Session, session: VisitSession, now: dt.datetime, assignment: NumberAssignment | None = None
) -> dt.datetime | None:
    """Activity: keep the session's pool number for ``hold_seconds`` more (never past the cap).

    Returns the new end, or None when the session no longer holds a number (expired, reclaimed, capped).
    """
    return _move_hold(db, session, now, assignment, seconds_of="hold_seconds")


def release_hold(
    db: Session, session: VisitSession, now: dt.datetime, assignment: NumberAssignment | None = None
) -> dt.datetime | None:
    """The visitor left: keep the number only for the pool's grace period (never past the cap)."""
    return _move_hold(db, session, now, assignment, seconds_of="grace_seconds")


def end_hold(db: Session, session: VisitSession, now: dt.datetime) -> None:
    """End the session's hold at once (it was superseded by a new session of the same visitor)."""
    assignment = live_assignment(db, session)
    if assignment is None:
        return
    freed = db.execute(
        update(TrackingNumber)
        .where(
            TrackingNumber.id == assignment.number_id,
            TrackingNumber.held_by_session_id == session.id,
            TrackingNumber.held_until >= now,
        )
        .values(held_by_session_id=None, held_until=None, released_at=now)
        .returning(TrackingNumber.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if freed is not None:
        assignment.hold_until = now
        assignment.ended_at = now
