"""Serving delivery destinations: hold one, claim due outbox rows, push them, record each outcome.

A worker first holds the destination (``claim_destinations``: a ``delivery_destinations`` row taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under the write lock on SQLite), so one worker at a time sends to
it. A claim is one short transaction that takes a slot of the destination's rate limit, marks a batch
``in_flight`` with a claim id, so two workers never hold the same item, and opens the batch's history row.
The batch is then sent outside any transaction, and the outcome of each item is written only if the claim
is still ours, in one transaction with the end of the history row.

An item is *in doubt* when it may have been sent but its outcome was never recorded: the process died
mid-batch (its claim is stale, or its destination's hold lapsed and another worker took it up), or the
request failed in a way that does not say whether it arrived. Such items are never re-sent blindly: the
connector's ``find_delivered`` is asked first, and only the items it does not find are queued again.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import requests
from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection as DbConnection
from sqlalchemy.orm import Session

from connectors.base import (
    AuthRevoked,
    Connector,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    ItemKind,
    RateLimit,
    TokenExpired,
)
from connectors.http import SessionShelf
from jobs.contexts import make_connector
from jobs.history import RunTally, close_run, open_run, recorded
from jobs.ratelimit import admit
from jobs.runtime import Runtime
from jobs.tokens import RefreshFailed, TokenSource
from tracking.db import is_postgres, rowcount, utcnow
from tracking.models import (
    Connection,
    ConnectionStatus,
    Delivery,
    DeliveryDestination,
    DeliveryStatus,
    SyncRun,
)

log = logging.getLogger(__name__)

DUE = (DeliveryStatus.PENDING, DeliveryStatus.RETRY)
IN_DOUBT_NOT_RESENT = (
    "interrupted while sending; it may have arrived, so it was not sent again (retry it if it did not)"
)
MAX_ERROR = 2000


@dataclass(frozen=True)
class DeliverSettings:
    batch_size: int = 50
    max_attempts: int = 10
    backoff_base: float = 30.0  # seconds before the first retry; doubles each attempt
    backoff_cap: float = 6 * 3600.0
    stale_after: dt.timedelta = dt.timedelta(minutes=10)  # a claim older than this belongs to a dead worker
    max_batches_per_run: int = 20  # per destination, so one busy account cannot starve the others
    hold: dt.timedelta = dt.timedelta(seconds=60)  # a worker's hold on a destination, renewed while it works
    max_pacing: float = 1.0  # a rate-limit wait up to this is waited out; a longer one frees the thread

    @classmethod
    def from_runtime(cls, rt: Runtime) -> DeliverSettings:
        return cls(
            batch_size=int(rt.setting("DELIVERY_BATCH_SIZE")),
            max_attempts=int(rt.setting("DELIVERY_MAX_ATTEMPTS")),
            backoff_base=float(rt.setting("DELIVERY_BACKOFF_BASE")),
            backoff_cap=float(rt.setting("DELIVERY_BACKOFF_CAP")),
            stale_after=dt.timedelta(seconds=float(rt.setting("DELIVERY_STALE_AFTER"))),
            hold=dt.timedelta(seconds=float(rt.setting("DELIVERY_HOLD_SECONDS"))),
            max_pacing=float(rt.setting("DELIVERY_MAX_PACING_SECONDS")),
        )


@dataclass
class DeliverStats:
    claimed: int = 0
    done: int = 0
    retry: int = 0
    dead: int = 0
    skipped: int = 0
    in_doubt: int = 0  # left in doubt (outcome unknown) for the next run to resolve
    found: int = 0  # in-doubt items find_delivered reported as arrived
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int, settings: DeliverSettings, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempts + 1``: exponential with jitter, never under Retry-After."""
    ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** max(0, attempts - 1))
    # Jitter in [ceiling/2, ceiling]: spreads retries of a failed batch without ever retrying too early.
    delay = ceiling * (0.5 + random.random() / 2)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay


def _claim_id(worker: str) -> str:
    return f"{worker[:40]}:{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class Claimed:
    """What a worker needs of a claimed outbox row, as the claim's UPDATE returned it."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int  # counting the attempt this claim makes


def _item(d: Claimed) -> DeliveryItem:
    return DeliveryItem(id=d.id, kind=ItemKind(d.kind), key=d.key, payload=d.payload, attempts=d.attempts)


# The hot path's statements are built once, with their varying values as bound parameters: building a
# statement and its cache key anew for every batch cost more CPU than running it. They are written against
# the tables (not the mapped classes), which spares the ORM's handling of statements that load no objects.
_D = cast(Table, Delivery.__table__)
_DD = cast(Table, DeliveryDestination.__table__)
_C = cast(Table, Connection.__table__)
_AT_DESTINATION = and_(_D.c.connection_id == bindparam("p_cid"), _D.c.connector == bindparam("p_connector"))
_DUE_NOW = and_(_D.c.status.in_(DUE), _D.c.next_attempt_at <= bindparam("p_now"))
# What a claim may take, by purpose; each needs p_cid, p_connector and p_now (in_doubt also p_stale).
_CLAIMABLE: dict[str, ColumnElement[bool]] = {
    # Due items; a connection disabled or waiting for re-authorisation meanwhile keeps its items.
    "send": and_(
        _DUE_NOW,
        _AT_DESTINATION,
        exists().where(_C.c.id == bindparam("p_cid"), _C.c.status == ConnectionStatus.ACTIVE),
    ),
    "due": and_(_DUE_NOW, _AT_DESTINATION),
    "in_doubt": and_(
        _D.c.status == DeliveryStatus.IN_FLIGHT,
        _D.c.next_attempt_at <= bindparam("p_now"),
        or_(_D.c.claimed_by.is_(None), _D.c.claimed_at < bindparam("p_stale")),
        _AT_DESTINATION,
    ),
}
_RETURNED = (_D.c.id, _D.c.kind, _D.c.key, _D.c.payload, _D.c.attempts)


@functools.cache
def _claim_statements(purpose: str, count_attempt: bool, postgres: bool) -> tuple[Select[Any] | None, Any]:
    condition = _CLAIMABLE[purpose]
    values: dict[str, Any] = {
        "status": DeliveryStatus.IN_FLIGHT,
        "claimed_by": bindparam("p_claim"),
        "claimed_at": bindparam("p_claimed"),
    }
    if count_attempt:
        values["attempts"] = _D.c.attempts + 1
    ids = select(_D.c.id).where(condition).order_by(_D.c.id).limit(bindparam("p_n"))
    if postgres:
        # Lock first, then update by id: a LIMIT … SKIP LOCKED subquery inside the UPDATE may be run more
        # than once by the planner and claim more rows than asked for.
        choose: Select[Any] | None = ids.with_for_update(skip_locked=True)
        target = _D.c.id.in_(bindparam("p_ids", expanding=True))
    else:
        # SQLite: one UPDATE runs under the database write lock, so the choice and the claim are atomic.
        choose = None
        target = _D.c.id.in_(ids.scalar_subquery())
    # The condition is checked again on the rows the UPDATE writes, so a row another worker claimed in
    # between is left alone.
    return choose, update(_D).where(target, condition).values(values).returning(*_RETURNED)


def _claim(
    db: DbConnection, purpose: str, params: dict[str, Any], claim_id: str, limit: int, *, count_attempt: bool
) -> tuple[list[Claimed], bool]:
    """Mark up to ``limit`` rows of the destination in ``params`` that ``purpose`` may take (``_CLAIMABLE``)
    as claimed by ``claim_id``, in ``db``'s transaction (the caller commits): the rows, and whether more
    could have been taken."""
    choose, claim = _claim_statements(purpose, count_attempt, is_postgres(db))
    params = {**params, "p_claim": claim_id, "p_claimed": utcnow()}
    if choose is not None:
        # One row more than the batch is locked, only to learn whether another batch follows without a
        # claim that finds nothing.
        chosen = list(db.scalars(choose, {**params, "p_n": limit + 1}))
        if not chosen:
            return [], False
        rows = db.execute(claim, {**params, "p_ids": chosen[:limit]}).all()
        more = len(chosen) > limit
    else:
        rows = db.execute(claim, {**params, "p_n": limit}).all()
        more = len(rows) == limit  # a full batch may have more behind it
    claimed = sorted((Claimed(r[0], r[1], r[2], r[3], r[4]) for r in rows), key=lambda c: c.id)
    return claimed, more


@dataclass(frozen=True)
class Held:
    """A destination a worker holds, under the token of that hold."""

    id: int
    connection_id: int
    connector: str
    token: str


@functools.cache
def _destination_statements(postgres: bool) -> tuple[Any, Select[Any] | None, Any]:
    """(register the destinations with open items, choose free ones with work, hold them) for a dialect."""
    dialect = postgresql if postgres else sqlite
    open_items = _D.c.status.in_((*DUE, DeliveryStatus.IN_FLIGHT))
    register = (
        dialect.insert(_DD)
        .from_select(
            ["connection_id", "connector"],
            select(_D.c.connection_id, _D.c.connector).where(open_items).distinct(),
        )
        .on_conflict_do_nothing(index_elements=["connection_id", "connector"])
    )
    has_work = exists().where(
        _D.c.connection_id == _DD.c.connection_id,
        _D.c.connector == _DD.c.connector,
        # An item in flight at a destination nobody holds was left by a worker that is gone.
        or_(_DUE_NOW, _D.c.status == DeliveryStatus.IN_FLIGHT),
    )
    free = or_(_DD.c.held_until.is_(None), _DD.c.held_until < bindparam("p_now"))
    ids = (
        select(_DD.c.id)
        .join(_C, _C.c.id == _DD.c.connection_id)
        .where(
            free,
            or_(_DD.c.ready_at.is_(None), _DD.c.ready_at <= bindparam("p_now")),
            _C.c.status == ConnectionStatus.ACTIVE,
            has_work,
        )
        .order_by(_DD.c.held_until.is_not(None), _DD.c.held_until, _DD.c.id)
        .limit(bindparam("p_n"))
    )
    choose: Select[Any] | None = None
    if postgres:
        choose = ids.with_for_update(of=_DD, skip_locked=True)
        target = _DD.c.id.in_(bindparam("p_ids", expanding=True))
    else:
        target = _DD.c.id.in_(ids.scalar_subquery())
    hold = (
        update(_DD)
        .where(target, free)
        .values(held_by=bindparam("p_token"), held_until=bindparam("p_until"))
        .returning(_DD.c.id, _DD.c.connection_id, _DD.c.connector)
    )
    return register, choose, hold


def claim_destinations(rt: Runtime, worker: str, limit: int, hold: dt.timedelta) -> list[Held]:
    """Hold up to ``limit`` destinations that have work, nobody holds, and whose rate limit lets a request go.

    PostgreSQL locks the chosen rows with ``FOR UPDATE SKIP LOCKED``, so workers claiming at once each get
    other destinations; SQLite runs the claiming UPDATE under its single write lock. The least recently
    served destinations come first, so none waits behind a busy one.
    """
    now = utcnow()
    token = _claim_id(worker)
    params: dict[str, Any] = {"p_now": now, "p_n": limit, "p_token": token, "p_until": now + hold}
    with rt.engine.connect() as db:
        register, choose, take = _destination_statements(is_postgres(db))
        db.execute(register)
        if choose is not None:
            chosen = list(db.scalars(choose, params))
            if not chosen:
                db.commit()
                return []
            params["p_ids"] = chosen
        rows = db.execute(take, params).all()
        db.commit()
    return sorted((Held(r[0], r[1], r[2], token) for r in rows), key=lambda h: h.id)


def renew_holds(rt: Runtime, tokens: Sequence[str], hold: dt.timedelta) -> None:
    """Keep the destinations a live worker is still serving."""
    if not tokens:
        return
    with rt.engine.connect() as db:
        db.execute(
            update(DeliveryDestination)
            .where(DeliveryDestination.held_by.in_(list(tokens)))
            .values(held_until=utcnow() + hold)
        )
        db.commit()


_RELEASE = (
    update(_DD)
    .where(_DD.c.id == bindparam("p_id"), _DD.c.held_by == bindparam("p_token"))
    .values(held_by=None, held_until=bindparam("p_at"))
)


def release(rt: Runtime, held: Held) -> None:
    with rt.engine.connect() as db:
        # held_until becomes the time it was last served: its place in line
        db.execute(_RELEASE, {"p_id": held.id, "p_token": held.token, "p_at": utcnow()})
        db.commit()


_DESTINATION_STATE = select(_DD.c.held_by, _DD.c.ready_at).where(_DD.c.id == bindparam("p_id"))
_DESTINATION_READY = update(_DD).where(_DD.c.id == bindparam("p_id")).values(ready_at=bindparam("p_ready"))


@dataclass(frozen=True)
class _Claim:
    rows: list[Claimed]
    more: bool  # more items were due than this batch took
    run_id: int | None  # the history row the claim opened, if it was asked to


NOTHING = _Claim([], False, None)


def _claim_paced(
    rt: Runtime,
    held: Held,
    limit: RateLimit,
    settings: DeliverSettings,
    purpose: str,
    params: dict[str, Any],
    claim_id: str,
    *,
    count_attempt: bool,
    batch_size: int,
    job: str | None = None,
) -> _Claim:
    """Claim a batch at the held destination with one request's worth of its rate limit, in one commit;
    with ``job``, the batch's history row is opened in the same commit.

    Empty when there is nothing to claim, the destination is no longer held, or the rate limit asks for
    a wait longer than ``settings.max_pacing`` (``ready_at`` then keeps every worker off it until then).
    A claim that finds nothing writes nothing: no request goes, so no slot of the rate limit is used.
    """
    while True:
        with rt.engine.connect() as db:
            row = db.execute(_DESTINATION_STATE, {"p_id": held.id}).first()
            if row is None or row.held_by != held.token:
                return NOTHING  # no longer ours: whoever holds it now sends
            wait, ready = admit(row.ready_at, utcnow(), limit)
            if not wait:
                rows, more = _claim(db, purpose, params, claim_id, batch_size, count_attempt=count_attempt)
                if not rows:
                    db.rollback()
                    return NOTHING
                db.execute(_DESTINATION_READY, {"p_id": held.id, "p_ready": ready})
                run_id = None
                if job is not None:
                    run_id = open_run(db, job, connector=held.connector, connection_id=held.connection_id)
                db.commit()
                return _Claim(rows, more, run_id)
        if wait > settings.max_pacing:
            return NOTHING
        time.sleep(wait)


def _defer(rt: Runtime, held: Held, until: dt.datetime) -> None:
    with rt.engine.connect() as db:
        db.execute(
            update(DeliveryDestination)
            .where(DeliveryDestination.id == held.id, DeliveryDestination.held_by == held.token)
            .values(ready_at=until)
        )
        db.commit()


_ORPHANS_IN_DOUBT = (
    update(_D)
    .where(_AT_DESTINATION, _D.c.status == DeliveryStatus.IN_FLIGHT, _D.c.claimed_by.is_not(None))
    .values(claimed_by=None, next_attempt_at=bindparam("p_now"))
)
_ANY_IN_DOUBT = select(_D.c.id).where(_CLAIMABLE["in_doubt"]).limit(1)


def _orphans_in_doubt(db: Session, held: Held, settings: DeliverSettings) -> bool:
    """Turn items in flight at a destination just taken over into items in doubt (their worker is gone),
    in ``db``'s transaction (the caller commits); whether any item there is in doubt now."""
    now = utcnow()
    params = {"p_cid": held.connection_id, "p_connector": held.connector, "p_now": now}
    db.execute(_ORPHANS_IN_DOUBT, params)
    found = db.scalar(_ANY_IN_DOUBT, {**params, "p_stale": now - settings.stale_after})
    return found is not None


@functools.cache
def _write_statement(columns: tuple[str, ...]) -> Any:
    """The UPDATE of an item still claimed by ``p_claim`` that sets ``columns`` (from ``v_<column>``)."""
    return (
        update(_D)
        .where(
            _D.c.id == bindparam("p_id"),
            _D.c.claimed_by == bindparam("p_claim"),
            _D.c.status == DeliveryStatus.IN_FLIGHT,
        )
        .values({c: bindparam(f"v_{c}") for c in columns})
    )


_LAST_SYNC = update(_C).where(_C.c.id == bindparam("p_id")).values(last_sync_at=bindparam("p_at"))


class _Batch:
    """A claimed batch. With ``run_id`` (its history row, opened with the claim), the commit that writes
    the outcome or gives the batch back also finishes the history row."""

    def __init__(
        self,
        rt: Runtime,
        settings: DeliverSettings,
        claim_id: str,
        rows: list[Claimed],
        run_id: int | None = None,
    ) -> None:
        self.rt = rt
        self.settings = settings
        self.claim_id = claim_id
        self.rows = {r.id: r for r in rows}
        self.run_id = run_id

    def _commit(self, db: DbConnection, tally: RunTally | None) -> None:
        if self.run_id is not None and tally is not None:
            close_run(db, self.run_id, tally)
            db.commit()
            self.run_id = None
        else:
            db.commit()

    def finish_run(self, tally: RunTally) -> None:
        """Finish the history row if no outcome commit did (the run failed before it could)."""
        if self.run_id is None:
            return
        with self.rt.engine.connect() as db:
            close_run(db, self.run_id, tally)
            db.commit()
        self.run_id = None

    def _write(self, db: DbConnection, delivery_id: int, **values: object) -> bool:
        params = {f"v_{k}": v for k, v in values.items()}
        res = db.execute(
            _write_statement(tuple(sorted(values))), {"p_id": delivery_id, "p_claim": self.claim_id, **params}
        )
        return bool(rowcount(res))

    def record(
        self,
        results: Sequence[DeliveryResult],
        stats: DeliverStats,
        tally: RunTally,
        connection_id: int | None = None,
    ) -> None:
        now = utcnow()
        seen: set[int] = set()
        with self.rt.engine.connect() as db:
            if connection_id is not None:  # the destination answered: note it in the same commit
                db.execute(_LAST_SYNC, {"p_id": connection_id, "p_at": now})
            for r in results:
                row = self.rows.get(r.id)
                if row is None or r.id in seen:
                    continue
                seen.add(r.id)
                error = (r.error or "")[:MAX_ERROR] or None
                if r.outcome == DeliveryOutcome.DONE:
                    ok = self._write(
                        db,
                        r.id,
                        status=DeliveryStatus.DONE,
                        external_id=r.external_id,
                        done_at=now,
                        last_error=None,
                        claimed_by=None,
                    )
                    stats.done += ok
                    tally.items += ok
                elif r.outcome == DeliveryOutcome.SKIPPED:
                    stats.skipped += self._write(
                        db,
                        r.id,
                        status=DeliveryStatus.SKIPPED,
                        last_error=error,
                        done_at=now,
                        claimed_by=None,
                    )
                elif r.outcome == DeliveryOutcome.DEAD or row.attempts >= self.settings.max_attempts:
                    if r.outcome != DeliveryOutcome.DEAD:
                        error = f"gave up after {row.attempts} attempts: {error or 'no reason given'}"
                    stats.dead += self._write(
                        db, r.id, status=DeliveryStatus.DEAD, last_error=error, claimed_by=None
                    )
                    tally.error(f"{row.key}: {error}")
                else:
                    delay = backoff(row.attempts, self.settings, r.retry_after)
                    stats.retry += self._write(
                        db,
                        r.id,
                        status=DeliveryStatus.RETRY,
                        last_error=error,
                        claimed_by=None,
                        next_attempt_at=now + dt.timedelta(seconds=delay),
                    )
                    tally.error(f"{row.key}: {error}")
            # No word on an item: it may or may not have arrived, so it stays in doubt.
            missing = [i for i in self.rows if i not in seen]
            for i in missing:
                stats.in_doubt += self._write(
                    db, i, claimed_by=None, last_error="no result from the connector; outcome in doubt"
                )
            self._commit(db, tally)

    def release(
        self,
        stats: DeliverStats,
        *,
        error: str,
        in_doubt: bool,
        refund: bool = False,
        tally: RunTally | None = None,
    ) -> None:
        """Give the whole batch back: queued again (nothing was sent) or in doubt (it may have been)."""
        now = utcnow()
        with self.rt.engine.connect() as db:
            for row in self.rows.values():
                values: dict[str, object] = {"claimed_by": None, "last_error": error[:MAX_ERROR]}
                if refund:
                    values["attempts"] = max(0, row.attempts - 1)
                    values["status"] = DeliveryStatus.PENDING
                else:
                    delay = backoff(row.attempts, self.settings)
                    values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
                    if not in_doubt:
                        values["status"] = DeliveryStatus.RETRY
                if self._write(db, row.id, **values):
                    if in_doubt:
                        stats.in_doubt += 1
                    elif not refund:
                        stats.retry += 1
            self._commit(db, tally)


def mark_needs_reauth(rt: Runtime, connection_id: int, reason: str) -> None:
    with rt.engine.connect() as db:
        db.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(status=ConnectionStatus.NEEDS_REAUTH, status_reason=reason[:500])
        )
        db.commit()


def with_token_retry(call, ctx_token: object):
    """Run ``call``; on TokenExpired refresh the connection once and run it again."""
    try:
        return call()
    except TokenExpired:
        if not isinstance(ctx_token, TokenSource):
            raise
        ctx_token.refresh_after_rejection()
        return call()


class Worker:
    """Serves destinations: resolves the items in doubt, then sends the due ones, batch by batch."""

    def __init__(self, rt: Runtime, name: str = "worker", settings: DeliverSettings | None = None) -> None:
        self.rt = rt
        self.name = name
        self.settings = settings or DeliverSettings.from_runtime(rt)
        # HTTP sessions kept per destination between serves, so its API connection (and TLS session)
        # stays open instead of being made again for every destination served.
        self.http = SessionShelf()

    def _connector(self, db: Session, held: Held, http: requests.Session) -> tuple[Connector, object]:
        conn = db.get(Connection, held.connection_id)
        if conn is None:
            raise LookupError(f"connection {held.connection_id} is gone")
        impl, ctx = make_connector(self.rt, db, conn, held.connector, http=http)
        return impl, ctx.access_token

    def _fail_due(self, held: Held, error: str, stats: DeliverStats) -> None:
        connection_id, connector = held.connection_id, held.connector
        claim_id = _claim_id(self.name)
        params = {"p_cid": connection_id, "p_connector": connector, "p_now": utcnow()}
        with self.rt.engine.connect() as db:
            rows, _ = _claim(db, "due", params, claim_id, self.settings.batch_size, count_attempt=True)
            db.commit()
        if not rows:
            return
        with recorded(self.rt, "deliver", connector=connector, connection_id=connection_id) as tally:
            batch = _Batch(self.rt, self.settings, claim_id, rows)
            batch.record(
                [DeliveryResult(r.id, DeliveryOutcome.RETRY, error=error) for r in rows], stats, tally
            )
        stats.errors.append(f"{connector}@{connection_id}: {error}")

    def _requests_today(self, connection_id: int, connector: str) -> int:
        """Requests made to this destination since midnight UTC: each batch and look-up is one run."""
        midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        with self.rt.engine.connect() as db:
            return int(
                db.scalar(
                    select(func.count(SyncRun.id)).where(
                        SyncRun.connection_id == connection_id,
                        SyncRun.connector == connector,
                        SyncRun.job.in_(("deliver", "resolve")),
                        SyncRun.started_at >= midnight,
                    )
                )
                or 0
            )

    def _batch_size(self, impl: Connector) -> int:
        """A connector may send fewer per batch (``max_batch``), e.g. one request per event."""
        return max(
            1, min(self.settings.batch_size, int(getattr(impl, "max_batch", self.settings.batch_size)))
        )

    def run_once(self) -> DeliverStats:
        """Serve every destination with work, one after another (one pass; the worker process runs many)."""
        stats = DeliverStats()
        for held in claim_destinations(self.rt, self.name, 10_000, self.settings.hold):
            self.serve(held, stats)
        return stats

    def serve(self, held: Held, stats: DeliverStats) -> None:
        """Work one held destination, then let it go."""
        key = (held.connection_id, held.connector)
        http = self.http.take(key)
        served = False
        try:
            unavailable = None
            with self.rt.sessions() as db:  # one transaction: the orphans and the connection's row
                in_doubt = _orphans_in_doubt(db, held, self.settings)
                try:
                    impl, token = self._connector(db, held, http)
                except Exception as exc:
                    unavailable = f"connector unavailable: {type(exc).__name__}: {exc}"
                db.commit()
            if unavailable is not None:
                # The connector cannot be built here (not installed, misconfigured): the due items fail
                # visibly with the reason, back off, and end up dead for a person to retry once it is fixed.
                self._fail_due(held, unavailable, stats)
                return
            if in_doubt:
                self._resolve(held, impl, token, stats)
            self._send(held, impl, token, stats)
            served = True
        finally:
            release(self.rt, held)
            # A serve that broke off may leave the session mid-request: only a clean one is kept.
            self.http.give_back(key, http, keep=served)

    def _resolve(self, held: Held, impl: Connector, token: object, stats: DeliverStats) -> None:
        connection_id, connector = held.connection_id, held.connector
        now = utcnow()
        params = {
            "p_cid": connection_id,
            "p_connector": connector,
            "p_now": now,
            "p_stale": now - self.settings.stale_after,
        }
        claim_id = _claim_id(self.name)
        limit = impl.rate_limit()
        rows = _claim_paced(
            self.rt,
            held,
            limit,
            self.settings,
            "in_doubt",
            params,
            claim_id,
            count_attempt=False,
            batch_size=self._batch_size(impl),
        ).rows
        if not rows:
            return
        batch = _Batch(self.rt, self.settings, claim_id, rows)
        with recorded(self.rt, "resolve", connector=connector, connection_id=connection_id) as tally:
            try:
                items = [_item(r) for r in rows]
                found = with_token_retry(lambda: impl.find_delivered(items), token)
            except AuthRevoked as exc:
                mark_needs_reauth(self.rt, connection_id, f"authorisation revoked: {exc}")
                batch.release(stats, error=f"in doubt; authorisation revoked: {exc}", in_doubt=True)
                tally.error(str(exc))
                return
            except Exception as exc:
                batch.release(
                    stats, error=f"in doubt; lookup failed: {type(exc).__name__}: {exc}", in_doubt=True
                )
                tally.error(f"{type(exc).__name__}: {exc}")
                return
            now = utcnow()
            with self.rt.engine.connect() as db:
                for row in rows:
                    if row.id in found:
                        if batch._write(
                            db,
                            row.id,
                            status=DeliveryStatus.DONE,
                            external_id=str(found[row.id]),
                            done_at=now,
                            last_error=None,
                            claimed_by=None,
                        ):
                            stats.found += 1
                            stats.done += 1
                            tally.items += 1
                    elif not getattr(impl, "resend_in_doubt", True):
                        # A message to a person (Telegram, e-mail) cannot be looked up once sent: rather
                        # than risk a second copy, it stops here, visibly, for a person to retry.
                        batch._write(
                            db,
                            row.id,
                            status=DeliveryStatus.SKIPPED,
                            done_at=now,
                            claimed_by=None,
                            last_error=IN_DOUBT_NOT_RESENT,
                        )
                        stats.skipped += 1
                    else:
                        # It did not arrive: safe to send again, at once.
                        batch._write(
                            db, row.id, status=DeliveryStatus.RETRY, next_attempt_at=now, claimed_by=None
                        )
                db.commit()

    def _send(self, held: Held, impl: Connector, token: object, stats: DeliverStats) -> None:
        connection_id, connector = held.connection_id, held.connector
        limit = impl.rate_limit()
        for _ in range(self.settings.max_batches_per_run):
            if limit.daily is not None and self._requests_today(connection_id, connector) >= limit.daily:
                # The platform's daily quota is spent: the items wait for tomorrow without losing attempts,
                # and no worker picks the destination up again before then.
                stats.errors.append(f"{connector}@{connection_id}: daily limit of {limit.daily} reached")
                tomorrow = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
                _defer(self.rt, held, tomorrow)
                return
            params = {"p_cid": connection_id, "p_connector": connector, "p_now": utcnow()}
            claim_id = _claim_id(self.name)
            claim = _claim_paced(
                self.rt,
                held,
                limit,
                self.settings,
                "send",
                params,
                claim_id,
                count_attempt=True,
                batch_size=self._batch_size(impl),
                job="deliver",
            )
            if not claim.rows:
                return
            stats.claimed += len(claim.rows)
            batch = _Batch(self.rt, self.settings, claim_id, claim.rows, claim.run_id)
            tally = RunTally()
            try:
                self._push(batch, impl, token, stats, tally, held)
            except Exception as exc:
                tally.error(f"{type(exc).__name__}: {exc}")
                raise
            finally:
                batch.finish_run(tally)
            if not claim.more:
                return

    def _push(
        self, batch: _Batch, impl: Connector, token: object, stats: DeliverStats, tally: RunTally, held: Held
    ) -> None:
        """Send one claimed batch and record its outcome, or give it back; the history row is finished in
        the same commit."""
        connection_id, connector = held.connection_id, held.connector
        items = [_item(r) for r in batch.rows.values()]
        try:
            results = with_token_retry(lambda: impl.push(items), token)
        except AuthRevoked as exc:
            mark_needs_reauth(self.rt, connection_id, f"authorisation revoked: {exc}")
            tally.error(str(exc))
            batch.release(
                stats, error=f"waiting for re-authorisation: {exc}", in_doubt=False, refund=True, tally=tally
            )
            return
        except (TokenExpired, RefreshFailed) as exc:
            tally.error(str(exc) or type(exc).__name__)
            batch.release(stats, error=f"token: {exc or type(exc).__name__}", in_doubt=False, tally=tally)
            return
        except Exception as exc:
            # The request may have reached the platform: treat the batch as in doubt.
            log.warning("push to %s@%s failed: %s", connector, connection_id, type(exc).__name__)
            tally.error(f"{type(exc).__name__}: {exc}")
            batch.release(stats, error=f"{type(exc).__name__}: {exc}", in_doubt=True, tally=tally)
            return
        batch.record(results, stats, tally, connection_id)


def deliver_once(rt: Runtime, name: str = "worker", settings: DeliverSettings | None = None) -> DeliverStats:
    return Worker(rt, name, settings).run_once()
