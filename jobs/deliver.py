"""Serving delivery destinations: hold one, claim due outbox rows, push them, record each outcome.

A worker first holds the destination (``claim_destinations``: a ``delivery_destinations`` row taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, under the write lock on SQLite), so one worker at a time sends to
it. A claim is one short transaction that takes a slot of the destination's rate limit and marks a batch
``in_flight`` with a claim id, so two workers never hold the same item. The batch is then sent outside any
transaction, and the outcome of each item is written only if the claim is still ours.

An item is *in doubt* when it may have been sent but its outcome was never recorded: the process died
mid-batch (its claim is stale, or its destination's hold lapsed and another worker took it up), or the
request failed in a way that does not say whether it arrived. Such items are never re-sent blindly: the
connector's ``find_delivered`` is asked first, and only the items it does not find are queued again.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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
from jobs.contexts import make_connector
from jobs.history import RunTally, recorded
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


def _item(d: Delivery) -> DeliveryItem:
    return DeliveryItem(id=d.id, kind=ItemKind(d.kind), key=d.key, payload=d.payload, attempts=d.attempts)


def _claim(
    db: Session, condition: ColumnElement[bool], claim_id: str, limit: int, *, count_attempt: bool
) -> list[Delivery]:
    """Mark up to ``limit`` rows matching ``condition`` as claimed by ``claim_id``, commit, return them."""
    now = utcnow()
    values: dict[str, object] = {
        "status": DeliveryStatus.IN_FLIGHT,
        "claimed_by": claim_id,
        "claimed_at": now,
    }
    if count_attempt:
        values["attempts"] = Delivery.attempts + 1
    ids = select(Delivery.id).where(condition).order_by(Delivery.id).limit(limit)
    if is_postgres(db):
        # Lock first, then update by id: a LIMIT … SKIP LOCKED subquery inside the UPDATE may be run more
        # than once by the planner and claim more rows than asked for.
        chosen = list(db.scalars(ids.with_for_update(skip_locked=True)))
        target = Delivery.id.in_(chosen)
    else:
        # SQLite: one UPDATE runs under the database write lock, so the choice and the claim are atomic.
        target = Delivery.id.in_(ids.scalar_subquery())
    # The condition is checked again on the rows the UPDATE writes, so a row another worker claimed in
    # between is left alone.
    db.execute(
        update(Delivery)
        .where(target, condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    return list(
        db.scalars(
            select(Delivery)
            .where(Delivery.claimed_by == claim_id, Delivery.status == DeliveryStatus.IN_FLIGHT)
            .order_by(Delivery.id)
        )
    )


def _due(now: dt.datetime) -> ColumnElement[bool]:
    return and_(Delivery.status.in_(DUE), Delivery.next_attempt_at <= now)


def _in_doubt(now: dt.datetime, settings: DeliverSettings) -> ColumnElement[bool]:
    return and_(
        Delivery.status == DeliveryStatus.IN_FLIGHT,
        Delivery.next_attempt_at <= now,
        or_(Delivery.claimed_by.is_(None), Delivery.claimed_at < now - settings.stale_after),
    )


@dataclass(frozen=True)
class Held:
    """A destination a worker holds, under the token of that hold."""

    id: int
    connection_id: int
    connector: str
    token: str


def claim_destinations(rt: Runtime, worker: str, limit: int, hold: dt.timedelta) -> list[Held]:
    """Hold up to ``limit`` destinations that have work, nobody holds, and whose rate limit lets a request go.

    PostgreSQL locks the chosen rows with ``FOR UPDATE SKIP LOCKED``, so workers claiming at once each get
    other destinations; SQLite runs the claiming UPDATE under its single write lock. The least recently
    served destinations come first, so none waits behind a busy one.
    """
    now = utcnow()
    token = _claim_id(worker)
    dd = DeliveryDestination
    with rt.sessions() as db:
        dialect = postgresql if is_postgres(db) else sqlite
        open_items = Delivery.status.in_((*DUE, DeliveryStatus.IN_FLIGHT))
        db.execute(
            dialect.insert(dd)
            .from_select(
                ["connection_id", "connector"],
                select(Delivery.connection_id, Delivery.connector).where(open_items).distinct(),
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "connector"])
        )
        has_work = exists().where(
            Delivery.connection_id == dd.connection_id,
            Delivery.connector == dd.connector,
            # An item in flight at a destination nobody holds was left by a worker that is gone.
            or_(_due(now), Delivery.status == DeliveryStatus.IN_FLIGHT),
        )
        free = or_(dd.held_until.is_(None), dd.held_until < now)
        ids = (
            select(dd.id)
            .join(Connection, Connection.id == dd.connection_id)
            .where(
                free,
                or_(dd.ready_at.is_(None), dd.ready_at <= now),
                Connection.status == ConnectionStatus.ACTIVE,
                has_work,
            )
            .order_by(dd.held_until.is_not(None), dd.held_until, dd.id)
            .limit(limit)
        )
        if is_postgres(db):
            target = dd.id.in_(list(db.scalars(ids.with_for_update(of=dd, skip_locked=True))))
        else:
            target = dd.id.in_(ids.scalar_subquery())
        db.execute(
            update(dd)
            .where(target, free)
            .values(held_by=token, held_until=now + hold)
            .execution_options(synchronize_session=False)
        )
        db.commit()
        rows = db.execute(select(dd.id, dd.connection_id, dd.connector).where(dd.held_by == token)).all()
    return [Held(r[0], r[1], r[2], token) for r in rows]


def renew_holds(rt: Runtime, tokens: Sequence[str], hold: dt.timedelta) -> None:
    """Keep the destinations a live worker is still serving."""
    if not tokens:
        return
    with rt.sessions() as db:
        db.execute(
            update(DeliveryDestination)
            .where(DeliveryDestination.held_by.in_(list(tokens)))
            .values(held_until=utcnow() + hold)
        )
        db.commit()


def release(rt: Runtime, held: Held) -> None:
    with rt.sessions() as db:
        db.execute(
            update(DeliveryDestination)
            .where(DeliveryDestination.id == held.id, DeliveryDestination.held_by == held.token)
            .values(held_by=None, held_until=utcnow())  # the time it was last served: its place in line
        )
        db.commit()


def _claim_paced(
    rt: Runtime,
    held: Held,
    limit: RateLimit,
    settings: DeliverSettings,
    condition: ColumnElement[bool],
    claim_id: str,
    *,
    count_attempt: bool,
    batch_size: int,
) -> list[Delivery]:
    """Claim a batch at the held destination with one request's worth of its rate limit, in one commit.

    Empty when there is nothing to claim, the destination is no longer held, or the rate limit asks for
    a wait longer than ``settings.max_pacing`` (``ready_at`` then keeps every worker off it until then).
    """
    while True:
        with rt.sessions() as db:
            row = db.get(DeliveryDestination, held.id)
            if row is None or row.held_by != held.token:
                return []  # no longer ours: whoever holds it now sends
            wait, ready = admit(row.ready_at, utcnow(), limit)
            if not wait:
                row.ready_at = ready
                db.flush()
                return _claim(db, condition, claim_id, batch_size, count_attempt=count_attempt)
        if wait > settings.max_pacing:
            return []
        time.sleep(wait)


def _defer(rt: Runtime, held: Held, until: dt.datetime) -> None:
    with rt.sessions() as db:
        db.execute(
            update(DeliveryDestination)
            .where(DeliveryDestination.id == held.id, DeliveryDestination.held_by == held.token)
            .values(ready_at=until)
        )
        db.commit()


def _orphans_in_doubt(rt: Runtime, held: Held, settings: DeliverSettings) -> bool:
    """Turn items in flight at a destination just taken over into items in doubt (their worker is gone);
    whether any item there is in doubt now."""
    at_destination = (Delivery.connection_id == held.connection_id, Delivery.connector == held.connector)
    with rt.sessions() as db:
        db.execute(
            update(Delivery)
            .where(
                *at_destination,
                Delivery.status == DeliveryStatus.IN_FLIGHT,
                Delivery.claimed_by.is_not(None),
            )
            .values(claimed_by=None, next_attempt_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        found = db.scalar(select(Delivery.id).where(*at_destination, _in_doubt(utcnow(), settings)).limit(1))
        db.commit()
    return found is not None


class _Batch:
    def __init__(self, rt: Runtime, settings: DeliverSettings, claim_id: str, rows: list[Delivery]) -> None:
        self.rt = rt
        self.settings = settings
        self.claim_id = claim_id
        self.rows = {r.id: r for r in rows}

    def _write(self, db: Session, delivery_id: int, **values: object) -> bool:
        res = db.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.claimed_by == self.claim_id,
                Delivery.status == DeliveryStatus.IN_FLIGHT,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
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
        with self.rt.sessions() as db:
            if connection_id is not None:  # the destination answered: note it in the same commit
                db.execute(update(Connection).where(Connection.id == connection_id).values(last_sync_at=now))
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
            db.commit()

    def release(self, stats: DeliverStats, *, error: str, in_doubt: bool, refund: bool = False) -> None:
        """Give the whole batch back: queued again (nothing was sent) or in doubt (it may have been)."""
        now = utcnow()
        with self.rt.sessions() as db:
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
            db.commit()


def mark_needs_reauth(rt: Runtime, connection_id: int, reason: str) -> None:
    with rt.sessions() as db:
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

    def _connector(self, connection_id: int, connector: str) -> tuple[Connector, object]:
        with self.rt.sessions() as db:
            conn = db.get(Connection, connection_id)
            if conn is None:
                raise LookupError(f"connection {connection_id} is gone")
            impl, ctx = make_connector(self.rt, db, conn, connector)
        return impl, ctx.access_token

    def _fail_due(self, held: Held, error: str, stats: DeliverStats) -> None:
        connection_id, connector = held.connection_id, held.connector
        claim_id = _claim_id(self.name)
        cond = and_(_due(utcnow()), Delivery.connection_id == connection_id, Delivery.connector == connector)
        with self.rt.sessions() as db:
            rows = _claim(db, cond, claim_id, self.settings.batch_size, count_attempt=True)
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
        with self.rt.sessions() as db:
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
        try:
            in_doubt = _orphans_in_doubt(self.rt, held, self.settings)
            try:
                impl, token = self._connector(held.connection_id, held.connector)
            except Exception as exc:
                # The connector cannot be built here (not installed, misconfigured): the due items fail
                # visibly with the reason, back off, and end up dead for a person to retry once it is fixed.
                self._fail_due(held, f"connector unavailable: {type(exc).__name__}: {exc}", stats)
                return
            if in_doubt:
                self._resolve(held, impl, token, stats)
            self._send(held, impl, token, stats)
        finally:
            release(self.rt, held)

    def _resolve(self, held: Held, impl: Connector, token: object, stats: DeliverStats) -> None:
        connection_id, connector = held.connection_id, held.connector
        cond = and_(
            _in_doubt(utcnow(), self.settings),
            Delivery.connection_id == connection_id,
            Delivery.connector == connector,
        )
        claim_id = _claim_id(self.name)
        limit = impl.rate_limit()
        rows = _claim_paced(
            self.rt,
            held,
            limit,
            self.settings,
            cond,
            claim_id,
            count_attempt=False,
            batch_size=self._batch_size(impl),
        )
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
            with self.rt.sessions() as db:
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
            cond = and_(
                _due(utcnow()),
                Delivery.connection_id == connection_id,
                Delivery.connector == connector,
                # A connection disabled or waiting for re-authorisation meanwhile keeps its items.
                exists().where(Connection.id == connection_id, Connection.status == ConnectionStatus.ACTIVE),
            )
            claim_id = _claim_id(self.name)
            rows = _claim_paced(
                self.rt,
                held,
                limit,
                self.settings,
                cond,
                claim_id,
                count_attempt=True,
                batch_size=self._batch_size(impl),
            )
            if not rows:
                return
            stats.claimed += len(rows)
            batch = _Batch(self.rt, self.settings, claim_id, rows)
            with recorded(self.rt, "deliver", connector=connector, connection_id=connection_id) as tally:
                items = [_item(r) for r in rows]
                try:
                    results = with_token_retry(lambda items=items: impl.push(items), token)
                except AuthRevoked as exc:
                    mark_needs_reauth(self.rt, connection_id, f"authorisation revoked: {exc}")
                    batch.release(
                        stats, error=f"waiting for re-authorisation: {exc}", in_doubt=False, refund=True
                    )
                    tally.error(str(exc))
                    return
                except (TokenExpired, RefreshFailed) as exc:
                    batch.release(stats, error=f"token: {exc or type(exc).__name__}", in_doubt=False)
                    tally.error(str(exc) or type(exc).__name__)
                    return
                except Exception as exc:
                    # The request may have reached the platform: treat the batch as in doubt.
                    log.warning("push to %s@%s failed: %s", connector, connection_id, type(exc).__name__)
                    batch.release(stats, error=f"{type(exc).__name__}: {exc}", in_doubt=True)
                    tally.error(f"{type(exc).__name__}: {exc}")
                    return
                batch.record(results, stats, tally, connection_id)


def deliver_once(rt: Runtime, name: str = "worker", settings: DeliverSettings | None = None) -> DeliverStats:
    return Worker(rt, name, settings).run_once()
