"""The ROMI report answered from a daily roll-up instead of a year of sessions and calls.

``romi_daily`` holds, per client, local day, model and leaf (channel or a row of its own, and the raw
campaign / ad group / keyword tags), the visits, calls, first-time / answered / missed calls, deals, won
deals and revenue; ``romi_daily_callers`` who called, since unique callers of a period are a union of days.
Spend is read from the spend rows as before: it is already one row per day.

The roll-up is exact, not eventually right: triggers (migration 0008) write a note in ``romi_dirty`` in the
same transaction as any change to a session, call or deal that can move a figure. Before a report reads the
roll-up, ``refresh`` turns the notes into local days and rebuilds those days with the row-level passes of
``tracking.romi``; the scheduler does the same ahead of time so a report rarely waits. A change of what
every day depends on (the client's time zone, which channels count as direct) rebuilds the client whole.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Date, and_, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from tracking.db import is_postgres, utcnow
from tracking.models import Call, Channel, Client, Deal, VisitSession
from tracking.models.romi import RomiDaily, RomiDailyCaller, RomiDirty, RomiLeaf, RomiMonthly, RomiRollupState
from tracking.romi import (
    LOOKBACK,
    Leaf,
    Metrics,
    Model,
    Report,
    _Context,
    assemble,
    call_facts,
    check_request,
    deal_facts,
    period_bounds,
    visit_facts,
)

# Days rebuilt at once beyond which the roll-up's statistics are renewed (see ``refresh``).
FRESH_STATISTICS_AFTER = 31
ANY_MODEL = ""  # the model of rows that no attribution model changes: visits, deals without a call
LEAF_COLUMNS = ("channel_id", "source", "utm_campaign", "utm_content", "utm_term")
FIGURES = (
    "visits",
    "calls",
    "first_time_calls",
    "target_calls",
    "answered",
    "missed",
    "deals",
    "won",
    "revenue",
)


def report(
    db: Session,
    client: Client,
    start: dt.date,
    end: dt.date,
    *,
    model: Model | str = Model.LAST_NON_DIRECT,
    replica: Session | None = None,
) -> Report:
    """The ROMI tree of ``client`` for the local days [start, end], from the roll-up and the spend rows.

    The stale days are rebuilt on the primary; the sums are read from ``replica`` if it has replayed
    that rebuild (its state row equals the primary's), else from the primary.
    """
    model = check_request(start, end, model)
    # Its own session: the refresh commits, and the reads must see what it wrote whatever the caller's
    # session has open.
    with sessionmaker(bind=db.get_bind(), expire_on_commit=False)() as primary:
        refresh(primary, client)
        if replica is not None and caught_up(primary, replica, client.id):
            return _read(replica, client, start, end, model)
        return _read(primary, client, start, end, model)


def caught_up(primary: Session, replica: Session, client_id: int) -> bool:
    """Whether the replica holds the client's roll-up as the primary last built it."""
    q = select(RomiRollupState.fingerprint, RomiRollupState.built_at).where(
        RomiRollupState.client_id == client_id
    )
    try:
        theirs = replica.execute(q).one_or_none()
    except Exception:
        replica.rollback()
        return False  # unreachable or not migrated yet: the primary answers
    return theirs is not None and tuple(theirs) == tuple(primary.execute(q).one())


def _read(own: Session, client: Client, start: dt.date, end: dt.date, model: Model) -> Report:
    leaves = {
        row.id: (row.channel_id, row.source, row.utm_campaign, row.utm_content, row.utm_term)
        for row in own.scalars(select(RomiLeaf).where(RomiLeaf.client_id == client.id))
    }
    metrics: dict[int, Metrics] = defaultdict(Metrics)
    for table, spans in _grains(start, end):
        sums = (
            select(table.leaf_id, *(func.sum(getattr(table, f)) for f in FIGURES))
            .where(
                table.client_id == client.id,
                table.model.in_((ANY_MODEL, model.value)),
                or_(*(and_(table.day >= a, table.day <= b) for a, b in spans)),
            )
            .group_by(table.leaf_id)
        )
        for leaf_id, *values in own.execute(sums):
            m = metrics[leaf_id]
            for name, value in zip(FIGURES, values, strict=True):
                setattr(
                    m,
                    name,
                    getattr(m, name) + (Decimal(value or 0) if name == "revenue" else int(value or 0)),
                )
    c = RomiDailyCaller
    callers = (
        select(c.leaf_id, c.caller)
        .where(c.client_id == client.id, c.model == model.value, c.day >= start, c.day <= end)
        .distinct()
    )
    for leaf_id, caller in own.connection().execute(callers):
        metrics[leaf_id].callers.add(caller)
    ctx = _Context(own, client, (start, end))
    return assemble(ctx, start, end, model, ((leaves[i], m) for i, m in metrics.items()))


def _grains(start: dt.date, end: dt.date) -> Iterator[tuple[type[RomiDaily] | type[RomiMonthly], list]]:
    """[start, end] as whole months read from the monthly sums and the days at either edge."""
    first = start if start.day == 1 else _next_month(start)  # the first whole month's first day
    after = _next_month(end) if _next_month(end) - dt.timedelta(days=1) == end else end.replace(day=1)
    last = (after - dt.timedelta(days=1)).replace(day=1)  # the last whole month's first day
    if first > last:
        yield RomiDaily, [(start, end)]
        return
    yield RomiMonthly, [(first, last)]
    edges = [(start, first - dt.timedelta(days=1)), (_next_month(last), end)]
    edges = [(a, b) for a, b in edges if a <= b]
    if edges:
        yield RomiDaily, edges


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def fingerprint(db: Session, client: Client) -> str:
    """What every stored day of the client was computed under."""
    direct = sorted(
        db.scalars(select(Channel.id).where(Channel.client_id == client.id, Channel.is_default.is_(True)))
    )
    return f"tz={client.timezone or 'UTC'};direct={','.join(map(str, direct))};lookback={LOOKBACK.days}"


def refresh(db: Session, client: Client) -> int:
    """Rebuild the client's stale days and commit; the number of days rebuilt."""
    fp = fingerprint(db, client)
    # The common case, nothing to do, in one round trip.
    stored, pending = db.execute(
        select(
            select(RomiRollupState.fingerprint)
            .where(RomiRollupState.client_id == client.id)
            .scalar_subquery(),
            select(func.max(RomiDirty.id)).where(RomiDirty.client_id == client.id).scalar_subquery(),
        )
    ).one()
    if stored == fp and pending is None:
        return 0
    _lock(db, client.id)  # one refresh per client at a time; the others wait, then find nothing to do
    state = db.get(RomiRollupState, client.id, populate_existing=True)
    assert state is not None
    upto = db.scalar(select(func.max(RomiDirty.id)).where(RomiDirty.client_id == client.id))
    if state.fingerprint != fp:
        for table in (RomiDaily, RomiMonthly, RomiDailyCaller):
            db.execute(delete(table).where(table.client_id == client.id))
        days = _all_days(db, client)
    else:
        days = _dirty_days(db, client, upto) if upto is not None else set()
    if upto is not None:
        db.execute(delete(RomiDirty).where(RomiDirty.client_id == client.id, RomiDirty.id <= upto))
    rebuild(db, client, days)
    if len(days) > FRESH_STATISTICS_AFTER and is_postgres(db):
        # A rebuild this large replaces much of the roll-up, and romi_dirty loses as many notes: with the
        # statistics of before, PostgreSQL plans the year's DISTINCT over the callers as a sort spilling to
        # disk (130 ms for 100k rows) instead of a hash (20 ms). Autovacuum would catch up within a minute
        # or so; the reports in between should not pay for it. ANALYZE samples, so its cost is bounded.
        for name in ("romi_daily", "romi_monthly", "romi_daily_callers", "romi_dirty"):
            db.execute(text(f"ANALYZE {name}"))
    state.fingerprint = fp
    state.built_at = utcnow()
    db.commit()
    return len(days)


def refresh_all(db: Session) -> int:
    """Refresh every client with notes waiting, or never built: the scheduler's job. Days rebuilt."""
    waiting = set(db.scalars(select(RomiDirty.client_id).distinct()))
    built = set(db.scalars(select(RomiRollupState.client_id)))
    clients = set(db.scalars(select(Client.id)))
    total = 0
    for client_id in sorted((waiting | (clients - built)) & clients):
        client = db.get(Client, client_id)
        if client is not None:
            total += refresh(db, client)
    db.execute(delete(RomiDirty).where(RomiDirty.client_id.not_in(clients)))  # notes of deleted clients
    db.commit()
    return total


def _lock(db: Session, client_id: int) -> None:
    dialect = postgresql if is_postgres(db) else sqlite
    db.execute(
        dialect.insert(RomiRollupState)
        .values(client_id=client_id, fingerprint="")
        .on_conflict_do_nothing(index_elements=["client_id"])
    )
    # A write to the row: PostgreSQL locks it until commit, SQLite holds its database write lock.
    db.execute(
        update(RomiRollupState)
        .where(RomiRollupState.client_id == client_id)
        .values(client_id=RomiRollupState.client_id)
        .execution_options(synchronize_session=False)
    )


def _local_day(client: Client) -> ZoneInfo:
    return ZoneInfo(client.timezone or "UTC")


def _all_days(db: Session, client: Client) -> set[dt.date]:
    tz = _local_day(client)
    bounds = [
        db.execute(select(func.min(col), func.max(col)).where(model.client_id == client.id)).one()
        for model, col in (
            (VisitSession, VisitSession.started_at),
            (Call, Call.called_at),
            (Deal, Deal.created_at),
        )
    ]
    instants = [t for pair in bounds for t in pair if t is not None]
    if not instants:
        return set()
    first, last = min(instants).astimezone(tz).date(), max(instants).astimezone(tz).date()
    return {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}


def _dirty_days(db: Session, client: Client, upto: int) -> set[dt.date]:
    tz = _local_day(client)
    notes = (RomiDirty.client_id == client.id, RomiDirty.id <= upto)
    days = {at.astimezone(tz).date() for at in db.scalars(select(RomiDirty.at).where(*notes).distinct())}
    first = db.scalar(select(func.min(RomiDirty.at)).where(*notes, RomiDirty.visitor_id.is_not(None)))
    if first is not None:
        # A visitor's changed session can take the credit of the calls of its own and of the visitor's
        # later sessions (first touch, last non-direct): their days are stale too. Over-marking costs a
        # rebuild, never a wrong figure.
        last = db.scalar(select(func.max(RomiDirty.at)).where(*notes, RomiDirty.visitor_id.is_not(None)))
        d, s = RomiDirty, VisitSession
        sessions = (
            select(s.id)
            .join(d, (d.site_id == s.site_id) & (d.visitor_id == s.visitor_id))
            .where(*notes, s.started_at >= d.at, s.started_at <= (last or d.at) + LOOKBACK)
        )
        later = select(Call.called_at).where(
            Call.client_id == client.id, Call.called_at.is_not(None), Call.session_id.in_(sessions)
        )
        days |= {at.astimezone(tz).date() for at in db.scalars(later.distinct()) if at is not None}
    return days


def _runs(days: set[dt.date]) -> Iterator[tuple[dt.date, dt.date]]:
    """Consecutive days as [first, last] runs, so a year rebuilds in a handful of passes."""
    ordered = sorted(days)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == dt.timedelta(days=1):
            j += 1
        yield ordered[i], ordered[j]
        i = j + 1


def rebuild(db: Session, client: Client, days: set[dt.date]) -> None:
    """Recompute the given local days of the client from its sessions, calls and deals."""
    if not days:
        return
    tz = _local_day(client)
    ctx = _Context(db, client)
    leaf_ids = {
        (row.channel_id, row.source, row.utm_campaign, row.utm_content, row.utm_term): row.id
        for row in db.scalars(select(RomiLeaf).where(RomiLeaf.client_id == client.id))
    }
    for first, last in _runs(days):
        for table in (RomiDaily, RomiDailyCaller):
            db.execute(
                delete(table).where(table.client_id == client.id, table.day >= first, table.day <= last)
            )
        rows: dict[tuple[dt.date, str, Leaf], Metrics] = defaultdict(Metrics)
        day = first
        while day <= last:
            lo, hi = period_bounds(client, day, day)
            for leaf, m in [
                *visit_facts(db, client.id, lo, hi).items(),
                *deal_facts(db, client.id, lo, hi).items(),
            ]:
                rows[(day, ANY_MODEL, leaf)].add(m)
            day += dt.timedelta(days=1)
        lo, hi = period_bounds(client, first, last)
        for model in Model:
            facts = call_facts(ctx, lo, hi, model, day_of=lambda t: t.astimezone(tz).date())
            for (on, leaf), m in facts.items():
                rows[(on, model.value, leaf)].add(m)  # type: ignore[index]
        _store(db, client.id, rows, leaf_ids)
    for month in sorted({day.replace(day=1) for day in days}):
        _sum_month(db, client.id, month)


def _sum_month(db: Session, client_id: int, month: dt.date) -> None:
    """The month's sums again from its days, so a rebuilt day's month agrees with it."""
    m, d = RomiMonthly, RomiDaily
    db.execute(delete(m).where(m.client_id == client_id, m.day == month))
    figures = [func.sum(getattr(d, f)) for f in FIGURES]
    rows = (
        select(d.client_id, literal(month, Date()), d.model, d.leaf_id, *figures)
        .where(d.client_id == client_id, d.day >= month, d.day < _next_month(month))
        .group_by(d.client_id, d.model, d.leaf_id)
    )
    db.execute(insert(m).from_select(["client_id", "day", "model", "leaf_id", *FIGURES], rows))


def _store(
    db: Session,
    client_id: int,
    rows: dict[tuple[dt.date, str, Leaf], Metrics],
    leaf_ids: dict[Leaf, int],
) -> None:
    new = sorted({leaf for (_d, _m, leaf) in rows} - set(leaf_ids))
    if new:
        db.execute(
            insert(RomiLeaf),
            [
                dict(
                    zip(LEAF_COLUMNS, leaf, strict=True),
                    client_id=client_id,
                )
                for leaf in new
            ],
        )
        for row in db.execute(
            select(
                RomiLeaf.id,
                RomiLeaf.channel_id,
                RomiLeaf.source,
                RomiLeaf.utm_campaign,
                RomiLeaf.utm_content,
                RomiLeaf.utm_term,
            ).where(RomiLeaf.client_id == client_id)
        ):
            leaf_ids[tuple(row[1:])] = row[0]  # type: ignore[index]
    daily, callers = [], []
    for (day, model, leaf), m in rows.items():
        base = (client_id, day, model, leaf_ids[leaf])
        daily.append((*base, *(getattr(m, f) for f in FIGURES)))
        callers += [(*base, caller) for caller in m.callers]
    head = ("client_id", "day", "model", "leaf_id")
    _bulk_insert(db, RomiDaily.__tablename__, (*head, *FIGURES), daily)
    _bulk_insert(db, RomiDailyCaller.__tablename__, (*head, "caller"), callers)


def _bulk_insert(
    db: Session, table: str, columns: tuple[str, ...], rows: Sequence[tuple[object, ...]]
) -> None:
    """Many rows into one of the roll-up's own tables, in the session's transaction.

    A year's rebuild writes hundreds of thousands of rows: COPY on PostgreSQL, the driver's executemany on
    SQLite, both far quicker than one INSERT a row.
    """
    if not rows:
        return
    conn = db.connection()
    if is_postgres(db):
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    plain = [tuple(str(v) if isinstance(v, Decimal | dt.date) else v for v in row) for row in rows]
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", plain)
