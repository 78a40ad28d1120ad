"""The snippet's hot path: visits, heartbeats and releases in as few database round trips as they allow.

Each request makes one read first — the site's ``config_version`` by key together with the visitor's
latest session (or the session by public id) and that session's live hold — and takes everything else it
reads from the per-process setup cache (:mod:`tracking.visit_config`). The writes follow as one statement
on PostgreSQL (data-modifying CTEs: a new session, its number taken with ``FOR UPDATE SKIP LOCKED``, the
number's history and any fallback event, all atomic) and as one short ``BEGIN IMMEDIATE`` transaction on
SQLite, which has no round trips to save but one write lock to hold briefly.

Round trips on PostgreSQL: a new visit 2 (3 when the visitor's live session could not be extended), a
repeat visit, heartbeat or release 2. Connections run in autocommit mode, so no ``BEGIN`` is sent, and
writes turn ``synchronous_commit`` off for their own transaction (``set_config(..., true)``, the same as
``SET LOCAL``): a crash may lose the last moments of page views, never a call (docs/decisions.md).

The rarer turns — a session shown its pool's fallback number asking for a pool number, a new ad click while
a session is live, promo codes, a client whose default channel does not exist yet, and a new session that
finds no free number of its own channel (it may reclaim a quiet hold, borrow another channel's number or
fall back: :func:`tracking.allocation.allocate`) — are answered by the full implementation in
:mod:`tracking.visits` (the functions here return None for them, having written nothing). So the hot path
takes exactly the number the full implementation would take first, and the allocation order stays in one
place.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased

from tracking import abuse, allocation
from tracking.db import UTCDateTime
from tracking.models import FallbackEvent, NumberAssignment, Site, TrackingNumber, VisitSession
from tracking.models.numbers import NumberStatus
from tracking.visit_config import ConfigCache, NumberConfig, PoolConfig, SiteConfig, cache_for
from tracking.visits import (
    _CLICK_KEYS,
    _UTM_KEYS,
    UnknownSession,
    UnknownSite,
    VisitInput,
    _continues_source,
    _is_lock_timeout,
    _new_ad_click,
    new_session_columns,
    visit_source,
)

MARKS = (*_UTM_KEYS, *_CLICK_KEYS)
# Writes go to the tables, not the mapped classes: the ORM's bulk machinery costs more than the statement.
_SESSIONS = cast(Table, VisitSession.__table__)
_ASSIGNMENTS = cast(Table, NumberAssignment.__table__)
_FALLBACKS = cast(Table, FallbackEvent.__table__)


@dataclass
class SessionView:
    """The columns of a visit session the endpoints answer with (names follow :class:`VisitSession`)."""

    id: int
    public_id: str
    visitor_id: str
    channel_id: int | None
    started_at: dt.datetime
    last_seen_at: dt.datetime
    hold_until: dt.datetime | None
    number_id: int | None
    promo_code: str | None
    referrer: str | None
    left_at: dt.datetime | None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    gclid: str | None = None
    gbraid: str | None = None
    wbraid: str | None = None
    yclid: str | None = None


@dataclass
class NumberView:
    id: int
    e164: str
    pool_id: int | None
    channel_id: int | None
    status: str | None = None
    held_by_session_id: int | None = None
    held_until: dt.datetime | None = None


@dataclass
class Answer:
    """What :class:`tracking.visits.VisitResult` holds, without ORM objects."""

    site: SiteConfig
    session: SessionView
    number: NumberView | None
    hold_until: dt.datetime | None
    live: bool
    heartbeat_seconds: int
    renumbered: bool = False


@dataclass
class Lookup:
    """The first read of a request: the site's setup (None: no such key) and the session it is about."""

    site: SiteConfig | None
    session: SessionView | None = None
    assignment: tuple[int, int, int, dt.datetime] | None = None  # id, pool id, number id, started_at
    number: NumberView | None = None  # the live hold's number, else the session's own


def connect(engine: Engine) -> Connection:
    """A connection for the hot path: autocommit, so a read sends no BEGIN and a write commits itself."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def lookup(
    conn: Connection,
    site_key: str,
    *,
    visitor_id: str | None = None,
    public_id: str | None = None,
    cache: ConfigCache | None = None,
) -> Lookup:
    """One statement: the site by key with its config version, and the visitor's latest session (or the
    session ``public_id``) with its open assignment and number."""
    if not site_key or len(site_key) > 64:
        return Lookup(None)
    if visitor_id is not None:
        params = {"site_key": site_key, "visitor_id": visitor_id}
        row = conn.execute(_lookup_statement("visitor"), params).first()
    elif public_id is not None:
        params = {"site_key": site_key, "public_id": public_id}
        row = conn.execute(_lookup_statement("session"), params).first()
    else:
        row = conn.execute(_lookup_statement("site"), {"site_key": site_key}).first()
    if row is None:
        return Lookup(None)
    cfg = (cache or cache_for(conn.engine)).get(conn, site_key, row.site_id, row.config_version)
    if cfg is None:
        return Lookup(None)
    return _lookup_of(cfg, row)


_LOOKUPS: dict[str, Any] = {}


def _lookup_statement(by: str) -> Any:
    """The first read, built once per kind (building it per request would cost more than running it)."""
    stmt = _LOOKUPS.get(by)
    if stmt is not None:
        return stmt
    v = aliased(VisitSession, name="vs")
    a = aliased(NumberAssignment, name="na")
    n = aliased(TrackingNumber, name="tn")
    latest = aliased(VisitSession, name="latest")
    open_a = aliased(NumberAssignment, name="open_a")
    if by == "visitor":
        on: Any = v.id == (
            select(latest.id)
            .where(latest.site_id == Site.id, latest.visitor_id == bindparam("visitor_id"))
            .order_by(latest.last_seen_at.desc(), latest.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    elif by == "session":
        on = and_(v.public_id == bindparam("public_id"), v.site_id == Site.id)
    else:
        on = false()
    a_on = a.id == (
        select(open_a.id)
        .where(open_a.session_id == v.id, open_a.ended_at.is_(None))
        .order_by(open_a.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            Site.id.label("site_id"),
            Site.config_version,
            v.id,
            v.public_id,
            v.visitor_id,
            v.channel_id,
            v.started_at,
            v.last_seen_at,
            v.hold_until,
            v.number_id,
            v.promo_code,
            v.referrer,
            v.left_at,
            *(getattr(v, k) for k in MARKS),
            a.id.label("a_id"),
            a.pool_id.label("a_pool_id"),
            a.number_id.label("a_number_id"),
            a.started_at.label("a_started_at"),
            n.id.label("n_id"),
            n.e164.label("n_e164"),
            n.pool_id.label("n_pool_id"),
            n.channel_id.label("n_channel_id"),
            n.status.label("n_status"),
            n.held_by_session_id.label("n_held_by"),
            n.held_until.label("n_held_until"),
        )
        .select_from(Site)
        .outerjoin(v, on)
        .outerjoin(a, a_on)
        .outerjoin(n, n.id == func.coalesce(a.number_id, v.number_id))
        .where(Site.site_key == bindparam("site_key"))
    )
    _LOOKUPS[by] = stmt
    return stmt


def _lookup_of(cfg: SiteConfig, row: Any) -> Lookup:
    m = row._mapping
    if m["id"] is None:
        return Lookup(cfg)
    session = SessionView(
        id=m["id"],
        public_id=m["public_id"],
        visitor_id=m["visitor_id"],
        channel_id=m["channel_id"],
        started_at=m["started_at"],
        last_seen_at=m["last_seen_at"],
        hold_until=m["hold_until"],
        number_id=m["number_id"],
        promo_code=m["promo_code"],
        referrer=m["referrer"],
        left_at=m["left_at"],
        **{k: m[k] for k in MARKS},
    )
    assignment = (
        (m["a_id"], m["a_pool_id"], m["a_number_id"], m["a_started_at"]) if m["a_id"] is not None else None
    )
    number = None
    if m["n_id"] is not None:
        number = NumberView(
            m["n_id"],
            m["n_e164"],
            m["n_pool_id"],
            m["n_channel_id"],
            str(m["n_status"]),
            m["n_held_by"],
            m["n_held_until"],
        )
    return Lookup(cfg, session, assignment, number)


@dataclass
class _State:
    live: bool
    pool: PoolConfig | None = None  # the pool of the session's open hold
    assignment: tuple[int, int, int, dt.datetime] | None = None
    shown: NumberView | None = None  # the static or fallback number of a session without a pool hold


def _state(found: Lookup, now: dt.datetime) -> _State:
    """As :func:`tracking.visits._state`, from what the first read returned."""
    session = found.session
    assert session is not None and found.site is not None
    if session.hold_until is None or session.hold_until < now:
        return _State(False)
    if found.assignment is None:
        shown = found.number if session.number_id is not None else None
        return _State(shown is None or shown.status == NumberStatus.ACTIVE, None, None, shown)
    pool = found.site.pools.get(found.assignment[1])
    number = found.number
    live = (
        number is not None
        and number.status == NumberStatus.ACTIVE
        and number.held_by_session_id == session.id
        and number.held_until is not None
        and number.held_until >= now
    )
    return _State(live, pool, found.assignment)


def _is_fallback(number: NumberView | None) -> bool:
    return number is not None and number.pool_id is None and number.channel_id is None


def _with_async_commit(stmt: Any) -> Any:
    """A PostgreSQL write as ``WITH w AS (<stmt>) SELECT …, set_config('synchronous_commit', 'off', true)``:
    the statement's own transaction commits without waiting for the WAL flush."""
    w = stmt.cte("w")
    return select(select(w.c[0]).scalar_subquery(), func.set_config("synchronous_commit", "off", True))


def _touch(
    conn: Connection, found: Lookup, state: _State, now: dt.datetime, *, leaving: bool
) -> dt.datetime | None:
    """Move a live session's hold after activity (or the leave beacon). The new end, or None when the
    session is no longer live (as :func:`tracking.visits._touch`)."""
    session = found.session
    assert session is not None
    if not state.live:
        return None
    left = now if leaving else None
    postgres = _postgres(conn)
    if state.assignment is None:
        extra = 0 if leaving else allocation.STATIC_SESSION_SECONDS
        until = max(session.hold_until or now, now + dt.timedelta(seconds=extra))
        params = {"p_session_id": session.id, "p_until": until, "p_now": now, "p_left": left}
        conn.execute(_touch_statements(postgres)["static"], params)
        return until
    pool = state.pool
    if pool is None:
        return None
    a_id, _pool_id, number_id, started_at = state.assignment
    seconds = pool.grace_seconds if leaving else pool.hold_seconds
    until = min(now + dt.timedelta(seconds=seconds), started_at + dt.timedelta(seconds=pool.max_hold_seconds))
    if until < now:
        return None
    params = {
        "p_number_id": number_id,
        "p_session_id": session.id,
        "p_assignment_id": a_id,
        "p_until": until,
        "p_now": now,
        "p_left": left,
    }
    stmts = _touch_statements(postgres)
    if postgres:
        if conn.execute(stmts["pool"], params).scalar() is None:
            return None
        return until
    with _sqlite_write(conn):
        if conn.execute(stmts["move"], params).scalar() is None:
            return None
        conn.execute(stmts["history"], params)
        conn.execute(stmts["own"], params)
    return until


_TOUCHES: dict[bool, dict[str, Any]] = {}


def _touch_statements(postgres: bool) -> dict[str, Any]:
    """The statements that move a hold, built once with bound parameters (building them per request cost
    more Python than the rest of a heartbeat)."""
    stmts = _TOUCHES.get(postgres)
    if stmts is not None:
        return stmts
    at = UTCDateTime()
    now, until, left = (
        bindparam("p_now", type_=at),
        bindparam("p_until", type_=at),
        bindparam("p_left", type_=at),
    )
    session_id: Any = bindparam("p_session_id")
    static: Any = (
        update(_SESSIONS)
        .where(VisitSession.id == session_id)
        .values(hold_until=until, last_seen_at=now, left_at=left)
        .returning(VisitSession.id)
    )
    move = (
        update(TrackingNumber)
        .where(
            TrackingNumber.id == bindparam("p_number_id"),
            TrackingNumber.held_by_session_id == session_id,
            TrackingNumber.held_until >= now,
        )
        .values(held_until=until)
        .returning(TrackingNumber.id)
    )
    history = (
        update(_ASSIGNMENTS)
        .where(NumberAssignment.id == bindparam("p_assignment_id"))
        .values(hold_until=until)
    )
    own = (
        update(_SESSIONS)
        .where(VisitSession.id == session_id)
        .values(hold_until=until, last_seen_at=now, left_at=left)
    )
    if postgres:
        moved = move.cte("moved")
        held = exists(select(moved.c.id))
        stmts = {
            "static": _with_async_commit(static),
            "pool": select(
                select(moved.c.id).scalar_subquery(), func.set_config("synchronous_commit", "off", True)
            ).add_cte(
                history.where(held).returning(NumberAssignment.id).cte("history"),
                own.where(held).returning(VisitSession.id).cte("own"),
            ),
        }
    else:
        stmts = {"static": static, "move": move, "history": history, "own": own}
    _TOUCHES[postgres] = stmts
    return stmts


class _sqlite_write:
    """One short write transaction on SQLite, taking the write lock at its start (``BEGIN IMMEDIATE``) so
    two writers never deadlock upgrading a read lock."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        # The lock is taken here or not at all, so waiting longer than busy_timeout is a retry of this alone.
        for attempt in range(8):
            try:
                self.conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            except OperationalError as exc:
                if not _is_lock_timeout(exc) or attempt == 7:
                    raise
                time.sleep(random.uniform(0.01, 0.05) * (2**attempt))

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.conn.exec_driver_sql("ROLLBACK" if exc_type is not None else "COMMIT")


def _hb(pool: PoolConfig | None) -> int:
    return allocation.heartbeat_seconds(pool.hold_seconds if pool else allocation.STATIC_SESSION_SECONDS)


def _number(n: NumberConfig | None) -> NumberView | None:
    return NumberView(n.id, n.e164, n.pool_id, n.channel_id, n.status) if n is not None else None


def visit(
    conn: Connection,
    found: Lookup,
    data: VisitInput,
    now: dt.datetime,
    requester: abuse.Requester | None = None,
) -> Answer | None:
    """:func:`tracking.visits.visit` after :func:`lookup` by ``visitor_id``; None when the full
    implementation must answer."""
    site = found.site
    assert site is not None
    strong = requester is None or abuse.continues_sessions(data.visitor_id)
    previous = found.session if strong else None
    if previous is not None:
        state = _state(found, now)
        if state.live:
            if _new_ad_click(previous, data):
                return None
            if state.assignment is None and _is_fallback(state.shown):
                return None
            until = _touch(conn, found, state, now, leaving=False)
            if until is not None:
                previous.hold_until, previous.last_seen_at, previous.left_at = until, now, None
                number = found.number if previous.number_id is not None else None
                return Answer(site, previous, number, until, True, _hb(state.pool))
    continues = previous is not None and _continues_source(site, previous, data, now)
    return _start(conn, site, data, now, requester, previous if continues else None)


def _start(
    conn: Connection,
    site: SiteConfig,
    data: VisitInput,
    now: dt.datetime,
    requester: abuse.Requester | None,
    inherit: SessionView | None,
) -> Answer | None:
    if site.promo_codes_enabled:
        return None
    marks = {k: data.mark(k) for k in MARKS}
    referrer = data.referrer
    if inherit is not None:
        marks = {k: getattr(inherit, k) for k in MARKS}
        referrer = inherit.referrer
    if inherit is not None and inherit.channel_id is not None:
        channel_id: int | None = inherit.channel_id
    else:
        channel_id = site.resolve_channel(visit_source(data, marks, referrer))
    if channel_id is None:
        return None  # the client's default channel is created on first need, by the full implementation
    values = new_session_columns(site.client_id, site.id, data, channel_id, referrer, marks, now, requester)
    # An archived client's sites hand out no number, static or pooled (as tracking.allocation.allocate).
    static = None if site.archived else site.static_numbers.get(channel_id)
    pool = site.pool_for(channel_id) if static is None and not site.archived else None
    if pool is None:
        until = now + dt.timedelta(seconds=allocation.STATIC_SESSION_SECONDS)
        row = {**values, "number_id": static.id if static else None, "hold_until": until}
        stmt = _static_start_statement(_postgres(conn), tuple(sorted(row)))
        sid = conn.execute(stmt, {f"v_{c}": v for c, v in row.items()}).scalar_one()
        return Answer(
            site,
            _view(sid, values, static.id if static else None, until),
            _number(static),
            until,
            True,
            _hb(None),
        )
    fallback = pool.fallback_number if pool.fallback_number and pool.fallback_number.active else None
    if _postgres(conn):
        taken, reason, sid = _allocate_pg(conn, pool, values, channel_id, now, requester, fallback)
    else:
        refusal = abuse.refusal_expression(pool.id, site.id, data.visitor_id, now, requester)
        try:
            taken, reason, sid = _allocate_sqlite(conn, pool, values, channel_id, now, refusal, fallback)
        except _NoFreeNumber:
            return None
    if taken is None and reason is None:
        return None  # nothing was written: the full implementation reclaims, borrows or falls back
    if taken is not None:
        number: NumberView | None = NumberView(taken[0], taken[1], pool.id, None, NumberStatus.ACTIVE)
        until = allocation.new_hold_until(pool, now)
    else:
        number = _number(fallback)
        until = now + dt.timedelta(seconds=pool.hold_seconds)
    view = _view(sid, values, number.id if number else None, until)
    return Answer(site, view, number, until, True, _hb(pool))


_STATIC_STARTS: dict[tuple[bool, tuple[str, ...]], Any] = {}


def _static_start_statement(postgres: bool, columns: tuple[str, ...]) -> Any:
    """The insert of a session shown a static number (or none), built once per column list."""
    stmt = _STATIC_STARTS.get((postgres, columns))
    if stmt is None:
        # Parameter names must not be column names: SQLAlchemy would take those as values to SET.
        binds = {c: bindparam(f"v_{c}", type_=_SESSIONS.c[c].type) for c in columns}
        stmt = insert(_SESSIONS).values(binds).returning(VisitSession.id)
        stmt = _STATIC_STARTS[(postgres, columns)] = _with_async_commit(stmt) if postgres else stmt
    return stmt


def _view(sid: int, values: dict[str, Any], number_id: int | None, until: dt.datetime) -> SessionView:
    return SessionView(
        id=sid,
        public_id=values["public_id"],
        visitor_id=values["visitor_id"],
        channel_id=values["channel_id"],
        started_at=values["started_at"],
        last_seen_at=values["last_seen_at"],
        hold_until=until,
        number_id=number_id,
        promo_code=None,
        referrer=values["referrer"],
        left_at=None,
        **{k: values[k] for k in MARKS},
    )


def _at(value: dt.datetime) -> Any:
    return literal(value, UTCDateTime())


@dataclass(frozen=True)
class _PoolShape:
    """What of a pool changes the allocation statement's text (the rest are bound parameters)."""

    id: Any
    channel_coherent: bool
    fallback_number_id: Any
    hold_seconds: int = 0
    max_hold_seconds: int = 0


_ALLOCATIONS: dict[tuple[Any, ...], Any] = {}


def _allocation_statement(
    coherent: bool, excludes_fallback: bool, requester: abuse.Requester | None, columns: tuple[str, ...]
) -> Any:
    """The one-statement allocation for this shape of pool and requester, built once: building and keying
    it per request cost more than PostgreSQL takes to run it."""
    caps = None
    if requester is not None:
        caps = (requester.holds_per_visitor, requester.holds_per_source if requester.key else 0)
    # The campaign switch changes the statement's text too (it is read when the statement is built).
    shape = (coherent, allocation.CAMPAIGN_COHERENT, excludes_fallback, caps, columns)
    stmt = _ALLOCATIONS.get(shape)
    if stmt is not None:
        return stmt
    at = UTCDateTime()
    now, hold_until = bindparam("p_now", type_=at), bindparam("p_hold_until", type_=at)
    pool_id: Any = bindparam("p_pool_id")
    pool = _PoolShape(pool_id, coherent, bindparam("p_fallback_excl") if excludes_fallback else None)
    sid = select(func.nextval(func.pg_get_serial_sequence("visit_sessions", "id")).label("id")).cte("sid")
    sid_v = select(sid.c.id).scalar_subquery()
    ctes = []
    reason_v: Any = null()
    bound_requester = (
        abuse.Requester(
            key="bound" if caps and caps[1] else None, holds_per_visitor=caps[0], holds_per_source=caps[1]
        )
        if caps is not None
        else None
    )
    refusal = abuse.refusal_expression(
        pool_id,
        bindparam("p_site_id"),
        bindparam("p_visitor_id"),
        now,
        bound_requester,
        source_key=bindparam("p_source_key"),
    )
    if refusal is not None:
        why = select(refusal.label("reason")).cte("why")
        reason_v = select(why.c.reason).scalar_subquery()
    channel_id: Any = bindparam("p_channel_id")
    idle_since = bindparam("p_idle_since", type_=at)
    campaign = bindparam("p_campaign", type_=TrackingNumber.__table__.c.home_campaign.type)
    candidate = allocation.free_number_candidate(
        pool,
        channel_id,
        now,
        postgres=True,
        borrow=False,
        idle_since=idle_since,
        campaign=campaign,
        campaign_since=bindparam("p_campaign_since", type_=at),
    )
    if refusal is not None:
        candidate = candidate.where(reason_v.is_(None))
    took = (
        allocation.take_statement(
            pool,
            sid_v,
            channel_id,
            now,
            candidate,
            hold_until=hold_until,
            idle_since=idle_since,
            campaign=campaign,
        )
        .returning(TrackingNumber.id, TrackingNumber.e164)
        .cte("took")
    )
    took_id = select(took.c.id).scalar_subquery()
    # No free number of the channel and no refusal: write nothing, the full implementation answers.
    answered: Any = exists(select(took.c.id))
    if refusal is not None:
        answered = or_(answered, reason_v.is_not(None))
    ctes.append(
        update(_ASSIGNMENTS)
        .where(NumberAssignment.number_id.in_(select(took.c.id)), NumberAssignment.ended_at.is_(None))
        .values(ended_at=NumberAssignment.hold_until)
        .returning(NumberAssignment.id)
        .cte("closed")
    )
    ctes.append(
        insert(_ASSIGNMENTS)
        .from_select(
            ["number_id", "session_id", "pool_id", "started_at", "hold_until"],
            select(took.c.id, sid_v, pool_id, now, hold_until),
        )
        .returning(NumberAssignment.id)
        .cte("opened")
    )
    if refusal is not None:
        ctes.append(
            insert(_FALLBACKS)
            .from_select(
                ["pool_id", "session_id", "at", "reason"],
                select(pool_id, sid_v, now, reason_v).where(
                    ~exists(select(took.c.id)), reason_v.is_not(None)
                ),
            )
            .returning(FallbackEvent.id)
            .cte("fell_back")
        )
    started: dict[str, Any] = dict(
        id=sid_v,
        number_id=func.coalesce(took_id, bindparam("p_fallback_id", type_=_SESSIONS.c.number_id.type)),
        hold_until=func.coalesce(
            select(hold_until).where(exists(select(took.c.id))).scalar_subquery(),
            bindparam("p_fallback_until", type_=at),
        ),
        **{c: bindparam(f"v_{c}", type_=_SESSIONS.c[c].type) for c in columns},
    )
    ctes.append(
        insert(_SESSIONS)
        .from_select(
            list(started),
            select(*(type_coerce(v, _SESSIONS.c[k].type).label(k) for k, v in started.items())).where(
                answered
            ),
        )
        .returning(VisitSession.id)
        .cte("started")
    )
    stmt = select(
        sid_v.label("sid"),
        took_id.label("number_id"),
        select(took.c.e164).scalar_subquery().label("e164"),
        reason_v.label("reason"),
        func.set_config("synchronous_commit", "off", True),
    ).add_cte(*ctes)
    _ALLOCATIONS[shape] = stmt
    return stmt


def _allocate_pg(
    conn: Connection,
    pool: PoolConfig,
    values: dict[str, Any],
    channel_id: int,
    now: dt.datetime,
    requester: abuse.Requester | None,
    fallback: NumberConfig | None,
) -> tuple[tuple[int, str] | None, str | None, int]:
    """A new session with a number of ``pool`` (or its fallback) in one statement: the session id drawn
    first, the cap checked, a free number taken, the number's history closed and opened (or a fallback
    event written), the session inserted. Foreign keys are checked at the end of the statement."""
    columns = tuple(sorted(values))
    stmt = _allocation_statement(
        pool.channel_coherent, pool.fallback_number_id is not None, requester, columns
    )
    params: dict[str, Any] = {f"v_{c}": values[c] for c in columns}
    # Parameter names must not be column names: SQLAlchemy would take those as values to SET.
    params.update(
        p_now=now,
        p_hold_until=allocation.new_hold_until(pool, now),
        p_idle_since=now - allocation.HOME_IDLE,
        p_campaign_since=now - allocation.CAMPAIGN_REST,
        p_pool_id=pool.id,
        p_channel_id=channel_id,
        p_campaign=allocation.campaign_key(values["utm_campaign"]),
        p_fallback_excl=pool.fallback_number_id,
        p_fallback_id=fallback.id if fallback else None,
        p_fallback_until=now + dt.timedelta(seconds=pool.hold_seconds),
        p_visitor_id=values["visitor_id"],
        p_site_id=values["site_id"],
        p_source_key=requester.key if requester else None,
    )
    row = conn.execute(stmt, params).one()
    taken = (row.number_id, row.e164) if row.number_id is not None else None
    return taken, row.reason, row.sid


class _NoFreeNumber(Exception):
    """No free number of the session's channel: the hot path leaves the visit to the full implementation."""


def _allocate_sqlite(
    conn: Connection,
    pool: PoolConfig,
    values: dict[str, Any],
    channel_id: int,
    now: dt.datetime,
    refusal: Any,
    fallback: NumberConfig | None,
) -> tuple[tuple[int, str] | None, str | None, int]:
    """What :func:`_allocate_pg` does, as a short transaction under SQLite's write lock."""
    with _sqlite_write(conn):
        sid = conn.execute(insert(_SESSIONS).values(**values).returning(VisitSession.id)).scalar_one()
        reason = conn.execute(select(refusal)).scalar() if refusal is not None else None
        taken = None
        if reason is None:
            campaign = allocation.campaign_key(values["utm_campaign"])
            candidate = allocation.free_number_candidate(
                pool, channel_id, now, postgres=False, borrow=False, campaign=campaign
            )
            row = conn.execute(
                allocation.take_statement(pool, sid, channel_id, now, candidate, campaign=campaign).returning(
                    TrackingNumber.id, TrackingNumber.e164
                )
            ).first()
            taken = (row.id, row.e164) if row is not None else None
            if taken is None:
                raise _NoFreeNumber  # rolls the session back: the full implementation answers
        if taken is not None:
            hold_until = allocation.new_hold_until(pool, now)
            conn.execute(
                update(_ASSIGNMENTS)
                .where(NumberAssignment.number_id == taken[0], NumberAssignment.ended_at.is_(None))
                .values(ended_at=NumberAssignment.hold_until)
            )
            conn.execute(
                insert(_ASSIGNMENTS).values(
                    number_id=taken[0], session_id=sid, pool_id=pool.id, started_at=now, hold_until=hold_until
                )
            )
            number_id: int | None = taken[0]
        else:
            conn.execute(insert(_FALLBACKS).values(pool_id=pool.id, session_id=sid, at=now, reason=reason))
            hold_until = now + dt.timedelta(seconds=pool.hold_seconds)
            number_id = fallback.id if fallback else None
        conn.execute(
            update(_SESSIONS).where(VisitSession.id == sid).values(number_id=number_id, hold_until=hold_until)
        )
    return taken, reason, sid


def keep(conn: Connection, found: Lookup, now: dt.datetime, *, leaving: bool) -> Answer | None:
    """:func:`tracking.visits.heartbeat` / ``release`` after :func:`lookup` by ``public_id``; None when the
    full implementation must answer."""
    site, session = found.site, found.session
    assert site is not None
    if session is None:
        raise UnknownSession("unknown session")
    state = _state(found, now)
    if not leaving and state.live and state.assignment is None and _is_fallback(state.shown):
        return None
    until = _touch(conn, found, state, now, leaving=leaving)
    if until is not None:
        session.hold_until, session.last_seen_at = until, now
        session.left_at = now if leaving else None
    number = found.number if session.number_id is not None else None
    pool = state.pool if state.assignment is not None else None
    hb = allocation.heartbeat_seconds(pool.hold_seconds) if pool else _hb(None)
    return Answer(site, session, number, session.hold_until, until is not None, hb)


def find_site(conn: Connection, site_key: str) -> SiteConfig:
    found = lookup(conn, site_key)
    if found.site is None:
        raise UnknownSite("unknown site key")
    return found.site
