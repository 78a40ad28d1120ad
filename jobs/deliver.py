"""The delivery worker: claim due outbox rows per destination account, push them, record each outcome.

A claim is one short transaction that marks a batch ``in_flight`` with a claim id (row locks with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite runs the claiming UPDATE under its single write lock), so two
workers never hold the same item. The batch is then sent outside any transaction, and the outcome of
each item is written only if the claim is still ours.

An item is *in doubt* when it may have been sent but its outcome was never recorded: the process died
mid-batch (its claim is stale or was dropped at start-up), or the request failed in a way that does not
say whether it arrived. Such items are never re-sent blindly: the connector's ``find_delivered`` is asked
first, and only the items it does not find are queued again.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from connectors.base import (
    AuthRevoked,
    Connector,
    DeliveryItem,
    DeliveryResult,
    ItemKind,
    Outcome,
    TokenExpired,
)
from jobs.contexts import make_connector
from jobs.history import RunTally, recorded
from jobs.ratelimit import Buckets
from jobs.runtime import Runtime
from jobs.tokens import RefreshFailed, TokenSource
from tracking.db import is_postgres, utcnow
from tracking.models import Connection, ConnectionStatus, Delivery, DeliveryStatus, SyncRun

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

    @classmethod
    def from_runtime(cls, rt: Runtime) -> DeliverSettings:
        return cls(
            batch_size=int(rt.setting("DELIVERY_BATCH_SIZE", cls.batch_size)),
            max_attempts=int(rt.setting("DELIVERY_MAX_ATTEMPTS", cls.max_attempts)),
            backoff_base=float(rt.setting("DELIVERY_BACKOFF_BASE", cls.backoff_base)),
            backoff_cap=float(rt.setting("DELIVERY_BACKOFF_CAP", cls.backoff_cap)),
            stale_after=dt.timedelta(seconds=float(rt.setting("DELIVERY_STALE_AFTER", 600))),
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
    db: Session, condition: object, claim_id: str, limit: int, *, count_attempt: bool
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
    ids = select(Delivery.id).where(condition).order_by(Delivery.id).limit(limit)  # type: ignore[arg-type]
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
        .where(target, condition)  # type: ignore[arg-type]
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


def _active_groups(db: Session, condition: object) -> list[tuple[int, str]]:
    rows = db.execute(
        select(Delivery.connection_id, Delivery.connector)
        .join(Connection, Connection.id == Delivery.connection_id)
        .where(condition, Connection.status == ConnectionStatus.ACTIVE)  # type: ignore[arg-type]
        .group_by(Delivery.connection_id, Delivery.connector)
        .order_by(Delivery.connection_id, Delivery.connector)
    ).all()
    return [(r[0], r[1]) for r in rows]


def _due(now: dt.datetime) -> object:
    return and_(Delivery.status.in_(DUE), Delivery.next_attempt_at <= now)


def _in_doubt(now: dt.datetime, settings: DeliverSettings) -> object:
    return and_(
        Delivery.status == DeliveryStatus.IN_FLIGHT,
        Delivery.next_attempt_at <= now,
        or_(Delivery.claimed_by.is_(None), Delivery.claimed_at < now - settings.stale_after),
    )


def drop_claims(rt: Runtime) -> int:
    """At start-up of the only scheduler: every in-flight item belongs to a process that is gone."""
    with rt.sessions() as db:
        n = db.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.IN_FLIGHT, Delivery.claimed_by.is_not(None))
            .values(claimed_by=None, next_attempt_at=utcnow())
        ).rowcount
        db.commit()
    return int(n or 0)


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
        return bool(res.rowcount)

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
                if r.outcome == Outcome.DONE:
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
                elif r.outcome == Outcome.SKIPPED:
                    stats.skipped += self._write(
                        db,
                        r.id,
                        status=DeliveryStatus.SKIPPED,
                        last_error=error,
                        done_at=now,
                        claimed_by=None,
                    )
                elif r.outcome == Outcome.DEAD or row.attempts >= self.settings.max_attempts:
                    if r.outcome != Outcome.DEAD:
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


def with_token_retry(call, ctx_token: object):  # type: ignore[no-untyped-def]
    """Run ``call``; on TokenExpired refresh the connection once and run it again."""
    try:
        return call()
    except TokenExpired:
        if not isinstance(ctx_token, TokenSource):
            raise
        ctx_token.refresh_after_rejection()
        return call()


class Worker:
    def __init__(
        self,
        rt: Runtime,
        name: str = "worker",
        settings: DeliverSettings | None = None,
        buckets: Buckets | None = None,
    ) -> None:
        self.rt = rt
        self.name = name
        self.settings = settings or DeliverSettings.from_runtime(rt)
        self.buckets = buckets or Buckets()

    def _connector(self, connection_id: int, connector: str) -> tuple[Connector, object]:
        with self.rt.sessions() as db:
            conn = db.get(Connection, connection_id)
            if conn is None:
                raise LookupError(f"connection {connection_id} is gone")
            impl, ctx = make_connector(self.rt, db, conn, connector)
        return impl, ctx.access_token

    def _fail_due(self, connection_id: int, connector: str, error: str, stats: DeliverStats) -> None:
        claim_id = _claim_id(self.name)
        cond = and_(_due(utcnow()), Delivery.connection_id == connection_id, Delivery.connector == connector)
        with self.rt.sessions() as db:
            rows = _claim(db, cond, claim_id, self.settings.batch_size, count_attempt=True)
        if not rows:
            return
        with recorded(self.rt, "deliver", connector=connector, connection_id=connection_id) as tally:
            batch = _Batch(self.rt, self.settings, claim_id, rows)
            batch.record([DeliveryResult(r.id, Outcome.RETRY, error=error) for r in rows], stats, tally)
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

    def _take_token(self, impl: Connector, connection_id: int, connector: str) -> None:
        self.buckets.get(connection_id, connector, impl.rate_limit()).take()

    def run_once(self) -> DeliverStats:
        """Resolve items in doubt, then send every due item, destination by destination."""
        stats = DeliverStats()
        now = utcnow()
        with self.rt.sessions() as db:
            doubt_groups = _active_groups(db, _in_doubt(now, self.settings))
        for connection_id, connector in doubt_groups:
            self._resolve(connection_id, connector, stats)
        with self.rt.sessions() as db:
            groups = _active_groups(db, _due(utcnow()))
        for connection_id, connector in groups:
            self._send(connection_id, connector, stats)
        return stats

    def _resolve(self, connection_id: int, connector: str, stats: DeliverStats) -> None:
        claim_id = _claim_id(self.name)
        cond = and_(
            _in_doubt(utcnow(), self.settings),
            Delivery.connection_id == connection_id,
            Delivery.connector == connector,
        )
        with self.rt.sessions() as db:
            rows = _claim(db, cond, claim_id, self.settings.batch_size, count_attempt=False)
        if not rows:
            return
        batch = _Batch(self.rt, self.settings, claim_id, rows)
        with recorded(self.rt, "resolve", connector=connector, connection_id=connection_id) as tally:
            try:
                impl, token = self._connector(connection_id, connector)
                self._take_token(impl, connection_id, connector)
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

    def _send(self, connection_id: int, connector: str, stats: DeliverStats) -> None:
        try:
            impl, token = self._connector(connection_id, connector)
        except Exception as exc:
            # The connector cannot be built here (not installed, misconfigured): the due items fail
            # visibly with the reason, back off, and end up dead for a person to retry once it is fixed.
            self._fail_due(
                connection_id, connector, f"connector unavailable: {type(exc).__name__}: {exc}", stats
            )
            return
        limit = impl.rate_limit()
        for _ in range(self.settings.max_batches_per_run):
            if limit.daily is not None and self._requests_today(connection_id, connector) >= limit.daily:
                # The platform's daily quota is spent: the items wait for tomorrow without losing attempts.
                stats.errors.append(f"{connector}@{connection_id}: daily limit of {limit.daily} reached")
                return
            claim_id = _claim_id(self.name)
            cond = and_(
                _due(utcnow()), Delivery.connection_id == connection_id, Delivery.connector == connector
            )
            with self.rt.sessions() as db:
                conn = db.get(Connection, connection_id)
                if conn is None or conn.status != ConnectionStatus.ACTIVE:
                    return
                rows = _claim(db, cond, claim_id, self._batch_size(impl), count_attempt=True)
            if not rows:
                return
            stats.claimed += len(rows)
            batch = _Batch(self.rt, self.settings, claim_id, rows)
            with recorded(self.rt, "deliver", connector=connector, connection_id=connection_id) as tally:
                items = [_item(r) for r in rows]
                try:
                    self._take_token(impl, connection_id, connector)
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
