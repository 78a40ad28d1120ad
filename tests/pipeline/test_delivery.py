"""The outbox and the delivery worker against a fake destination over real HTTP."""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time

import requests
from sqlalchemy import func, select, update

from jobs.deliver import DeliverSettings, Worker
from jobs.outbox import retry_now
from tests.factories import make_tenant
from tests.pipeline.support import BOX, call_payload, make_connection
from tracking import hooks
from tracking.db import utcnow
from tracking.models import (
    Connection,
    ConnectionStatus,
    Delivery,
    DeliveryDestination,
    DeliveryStatus,
    SyncRun,
)


def fire_call(db, client_id: int, call_id: int) -> None:
    payload = call_payload(call_id, client_id)
    hooks.call_finalised.fire(db, hooks.CallFinalised(client_id, call_id, payload["key"], payload))


def queue_calls(db, tenant, n: int, start: int = 1) -> list[str]:
    keys = []
    for call_id in range(start, start + n):
        fire_call(db, tenant.client.id, call_id)
        keys.append(f"otkuda-call-{call_id}")
    db.commit()
    return keys


def statuses(db) -> collections.Counter[str]:
    db.expire_all()
    return collections.Counter(d.status.value for d in db.scalars(select(Delivery)))


def make_due_now(db) -> None:
    db.execute(update(Delivery).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))
    db.commit()


def test_enqueue_is_part_of_the_callers_transaction(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    disabled = make_connection(db, t, fakes)
    disabled.status = ConnectionStatus.DISABLED
    db.commit()
    fire_call(db, t.client.id, 1)
    db.rollback()  # the call's transaction fails: its delivery must vanish with it
    assert db.scalar(select(func.count(Delivery.id))) == 0

    fire_call(db, t.client.id, 2)
    fire_call(db, t.client.id, 2)  # the same event again: the key keeps it single
    db.commit()
    rows = db.scalars(select(Delivery)).all()
    assert [(d.key, d.connector, d.status) for d in rows] == [
        ("otkuda-call-2", "fakedest", DeliveryStatus.PENDING)
    ]
    assert rows[0].payload["caller"] == "+79990000001"
    assert rows[0].connection_id != disabled.id


def test_agency_shared_connection_feeds_the_clients_it_is_shared_with(db, rt, fakes) -> None:
    from tracking.models import ConnectionClient

    t = make_tenant(db)
    other = make_tenant(db, "Other")
    conn = make_connection(db, t, fakes, shared=True)
    db.add(ConnectionClient(connection_id=conn.id, client_id=t.client.id))
    db.commit()
    fire_call(db, t.client.id, 1)
    fire_call(db, other.client.id, 2)
    db.commit()
    assert [(d.client_id, d.connection_id) for d in db.scalars(select(Delivery))] == [(t.client.id, conn.id)]


def test_worker_delivers_each_item_once_and_records_the_run(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    keys = queue_calls(db, t, 3)
    stats = Worker(rt, "w1").run_once()
    assert stats.done == 3
    assert fakes.dest.arrivals == keys
    db.expire_all()
    rows = db.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [d.status for d in rows] == [DeliveryStatus.DONE] * 3
    assert [d.external_id for d in rows] == [fakes.dest.ids[k] for k in keys]
    assert all(d.done_at is not None and d.attempts == 1 for d in rows)
    run = db.scalars(select(SyncRun).where(SyncRun.job == "deliver")).one()
    assert (run.connector, run.connection_id, run.items, run.errors) == ("fakedest", conn.id, 3, 0)
    assert run.finished_at is not None
    db.refresh(conn)
    assert conn.last_sync_at is not None and conn.last_sync_at >= run.started_at
    # Nothing is due any more: a second run sends nothing.
    assert Worker(rt, "w1").run_once().claimed == 0
    assert len(fakes.dest.arrivals) == 3


def test_two_workers_never_send_the_same_item(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    keys = queue_calls(db, t, 60)
    settings = DeliverSettings(batch_size=4, max_batches_per_run=1)
    errors: list[BaseException] = []

    def open_items() -> int:
        with rt.sessions() as s:
            return s.scalar(select(func.count()).where(Delivery.status != DeliveryStatus.DONE)) or 0

    def work(name: str) -> None:
        # Each pass finds the one destination free or held by another worker; go on until all is sent.
        try:
            worker = Worker(rt, name, settings)
            deadline = time.monotonic() + 60
            while open_items() and time.monotonic() < deadline:
                worker.run_once()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    counts = fakes.dest.counts()
    assert set(counts) == set(keys)
    assert max(counts.values()) == 1
    assert statuses(db) == {"done": 60}
    runs = db.scalars(select(SyncRun).where(SyncRun.job == "deliver")).all()
    assert sum(r.items for r in runs) == 60
    assert max(r.items for r in runs) <= 4  # claims honour the batch size


def test_retry_after_is_honoured_and_backoff_grows(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    queue_calls(db, t, 1)
    fakes.dest.fail_next = [(429, {"Retry-After": "600"}), (503, {})]
    before = utcnow()
    Worker(rt).run_once()
    d = db.scalars(select(Delivery)).one()
    assert d.status == DeliveryStatus.RETRY and d.attempts == 1
    assert d.next_attempt_at >= before + dt.timedelta(seconds=600)
    assert "429" in d.last_error
    # Not due yet: nothing is sent.
    assert Worker(rt).run_once().claimed == 0

    make_due_now(db)
    before = utcnow()
    Worker(rt).run_once()
    db.refresh(d)
    # Second attempt, no Retry-After: base 30 s doubled, with jitter in [half, full].
    assert d.status == DeliveryStatus.RETRY and d.attempts == 2
    assert before + dt.timedelta(seconds=30) <= d.next_attempt_at <= utcnow() + dt.timedelta(seconds=60)

    make_due_now(db)
    Worker(rt).run_once()
    db.refresh(d)
    assert d.status == DeliveryStatus.DONE and d.attempts == 3 and d.last_error is None
    assert fakes.dest.counts()[d.key] == 1


def test_permanent_error_and_too_many_attempts_are_dead(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    bad, busy, good = queue_calls(db, t, 3)
    fakes.dest.invalid_uids.add(bad)
    fakes.dest.busy_uids.add(busy)
    settings = DeliverSettings(max_attempts=2)
    Worker(rt, settings=settings).run_once()
    make_due_now(db)
    Worker(rt, settings=settings).run_once()
    db.expire_all()
    by_key = {d.key: d for d in db.scalars(select(Delivery))}
    assert by_key[bad].status == DeliveryStatus.DEAD and by_key[bad].last_error == "bad phone"
    assert by_key[bad].attempts == 1
    assert by_key[busy].status == DeliveryStatus.DEAD
    assert by_key[busy].last_error.startswith("gave up after 2 attempts")
    assert by_key[good].status == DeliveryStatus.DONE

    # A person fixes the cause and retries: the item goes out again, once.
    fakes.dest.invalid_uids.clear()
    assert retry_now(db, by_key[bad])
    db.commit()
    assert not retry_now(db, by_key[good])  # done items are never re-queued
    Worker(rt, settings=settings).run_once()
    db.refresh(by_key[bad])
    assert by_key[bad].status == DeliveryStatus.DONE
    assert fakes.dest.counts() == {good: 1, bad: 1}


def test_in_doubt_items_are_looked_up_not_resent(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    arrived, lost = queue_calls(db, t, 2)
    # A worker claimed both, sent the first, and died before recording anything.
    token = next(iter(fakes.dest.valid_tokens))
    requests.post(
        fakes.dest.url + "/v1/events",
        json={"events": [{"uid": arrived, "kind": "call", "data": {}}]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).raise_for_status()
    db.execute(
        update(Delivery).values(
            status=DeliveryStatus.IN_FLIGHT,
            claimed_by="dead-worker:1",
            claimed_at=utcnow() - dt.timedelta(hours=1),
            attempts=1,
        )
    )
    db.commit()
    stats = Worker(rt).run_once()
    assert stats.found == 1
    assert fakes.dest.counts() == {arrived: 1, lost: 1}
    db.expire_all()
    by_key = {d.key: d for d in db.scalars(select(Delivery))}
    assert by_key[arrived].status == DeliveryStatus.DONE
    assert by_key[arrived].external_id == fakes.dest.ids[arrived]
    assert by_key[lost].status == DeliveryStatus.DONE
    assert {r.job for r in db.scalars(select(SyncRun))} == {"resolve", "deliver"}


def test_a_destination_held_by_a_live_worker_is_left_alone(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    queue_calls(db, t, 2)
    db.execute(
        update(Delivery)
        .where(Delivery.key == "otkuda-call-1")
        .values(status=DeliveryStatus.IN_FLIGHT, claimed_by="busy:1", claimed_at=utcnow())
    )
    hold = DeliveryDestination(
        connection_id=conn.id,
        connector="fakedest",
        held_by="busy:1",
        held_until=utcnow() + dt.timedelta(seconds=60),
    )
    db.add(hold)
    db.commit()
    Worker(rt).run_once()
    assert fakes.dest.arrivals == []  # neither its item in flight nor the one waiting behind it
    assert statuses(db) == {"in_flight": 1, "pending": 1}
    # The holder dies: once its hold lapses, the next worker resolves its item and sends the other.
    db.execute(update(DeliveryDestination).values(held_until=utcnow() - dt.timedelta(seconds=1)))
    db.commit()
    stats = Worker(rt).run_once()
    assert sorted(fakes.dest.arrivals) == ["otkuda-call-1", "otkuda-call-2"]
    assert statuses(db) == {"done": 2}
    assert stats.in_doubt == 0 and stats.found == 0  # call 1 never arrived: looked up, then sent


def test_failed_request_leaves_batch_in_doubt_then_resolves(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    queue_calls(db, t, 2)
    # The API host is unreachable for a moment: the worker cannot know whether anything arrived.
    rt.config = {**rt.config, "OTKUDA_FAKE_API_BASE": "http://127.0.0.1:9"}
    stats = Worker(rt).run_once()
    assert stats.in_doubt == 2
    assert statuses(db) == {"in_flight": 2}
    assert all(d.claimed_by is None for d in db.scalars(select(Delivery)))
    from hub.pipeline_queries import client_deliveries

    failing = db.scalars(client_deliveries(t.client.id, "failing")).all()
    assert len(failing) == 2 and all("ConnectionError" in d.last_error for d in failing)
    rt.config = {**rt.config, "OTKUDA_FAKE_API_BASE": fakes.dest.url}
    make_due_now(db)
    Worker(rt).run_once()
    assert statuses(db) == {"done": 2}
    assert max(fakes.dest.counts().values()) == 1
    assert conn.id is not None


def test_expired_token_is_refreshed_and_the_batch_sent(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    old = BOX.open(conn.access_token_enc)
    fakes.dest.valid_tokens.discard(old)  # the platform no longer accepts it, though it looks valid to us
    queue_calls(db, t, 2)
    Worker(rt).run_once()
    assert statuses(db) == {"done": 2}
    db.refresh(conn)
    assert BOX.open(conn.access_token_enc) != old
    assert sum(fakes.oauth.refresh_uses.values()) == 1


def test_revoked_grant_marks_connection_and_items_wait(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    fakes.dest.valid_tokens.clear()
    fakes.oauth.revoked = True
    queue_calls(db, t, 2)
    Worker(rt).run_once()
    db.expire_all()
    db.refresh(conn)
    assert conn.status == ConnectionStatus.NEEDS_REAUTH
    rows = db.scalars(select(Delivery)).all()
    assert {(d.status, d.attempts) for d in rows} == {(DeliveryStatus.PENDING, 0)}
    # While it waits, nothing is tried again.
    assert Worker(rt).run_once().claimed == 0
    # New calls still queue for it, so nothing is lost while a person reconnects.
    queue_calls(db, t, 1, start=10)
    assert db.scalar(select(func.count(Delivery.id))) == 3
    assert db.get(Connection, conn.id) is not None


def test_items_for_a_connector_that_cannot_load_fail_visibly(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes, connectors=("fakedest", "not_installed"))
    queue_calls(db, t, 1)
    assert {(d.connector, d.status) for d in db.scalars(select(Delivery))} == {
        ("fakedest", DeliveryStatus.PENDING),
        ("not_installed", DeliveryStatus.PENDING),
    }
    stats = Worker(rt, settings=DeliverSettings(max_attempts=1)).run_once()
    assert stats.done == 1 and stats.dead == 1
    broken = db.scalars(select(Delivery).where(Delivery.connector == "not_installed")).one()
    db.refresh(broken)
    assert broken.status == DeliveryStatus.DEAD and "connector unavailable" in broken.last_error


def test_rate_limit_paces_requests_to_the_declared_rate() -> None:
    from connectors.base import RateLimit
    from jobs.ratelimit import admit

    limit = RateLimit(per_second=2, burst=3)
    start = now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    ready = None
    sent = 0
    while sent < 7:
        wait, ready = admit(ready, now, limit)
        if wait:
            now += dt.timedelta(seconds=wait)
            continue
        sent += 1
    # Three go at once (the burst), the other four wait half a second each at 2 per second.
    assert (now - start).total_seconds() == 2.0
    assert admit(ready, now, limit)[0] == 0.5


def test_daily_request_limit_holds_items_without_using_attempts(db, rt, fakes) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes, settings={"daily": 2})
    queue_calls(db, t, 3)
    stats = Worker(rt, settings=DeliverSettings(batch_size=1)).run_once()
    assert stats.done == 2 and len(fakes.dest.arrivals) == 2
    assert any("daily limit of 2" in e for e in stats.errors)
    waiting = db.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.PENDING)).one()
    assert waiting.attempts == 0
    # No worker takes the destination up again before midnight UTC…
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    assert db.scalars(select(DeliveryDestination.ready_at)).one() == midnight
    assert Worker(rt, settings=DeliverSettings(batch_size=1)).run_once().claimed == 0
    # … and then yesterday's requests do not count against today.
    db.execute(update(SyncRun).values(started_at=utcnow() - dt.timedelta(days=1)))
    db.execute(update(DeliveryDestination).values(ready_at=utcnow()))
    db.commit()
    Worker(rt, settings=DeliverSettings(batch_size=1)).run_once()
    assert statuses(db) == {"done": 3}
