"""The scheduler: the lease that keeps it single, and the process surviving kill -9 mid-batch."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from jobs import lease
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tests.pipeline.support import call_payload, make_connection
from tracking import hooks
from tracking.db import utcnow
from tracking.models import Delivery, DeliveryStatus, SchedulerLease, SyncRun

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = (
    "import connectors.registry as r; r.CONNECTORS['fakedest'] = 'tests.fakes.connector'; "
    "from hub.cli import main; main(['scheduler'])"
)


def test_lease_is_exclusive_and_taken_over_when_it_lapses(rt, db) -> None:
    ttl = dt.timedelta(seconds=30)
    assert lease.try_acquire(rt, "a", ttl)
    assert not lease.try_acquire(rt, "b", ttl)
    assert lease.renew(rt, "a", ttl)
    assert not lease.renew(rt, "b", ttl)
    # "a" stops renewing (it died): once the lease lapses, "b" takes it and "a" can no longer renew.
    db.execute(update(SchedulerLease).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    db.commit()
    assert lease.try_acquire(rt, "b", ttl)
    assert not lease.renew(rt, "a", ttl)
    assert not lease.try_acquire(rt, "a", ttl)
    lease.release(rt, "b")
    assert lease.try_acquire(rt, "a", ttl)


def test_two_processes_racing_for_a_new_lease_get_one_holder(rt) -> None:
    won: list[str] = []
    barrier = threading.Barrier(4)

    def contend(name: str) -> None:
        barrier.wait()
        if lease.try_acquire(rt, name, dt.timedelta(seconds=30)):
            won.append(name)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(won) == 1


def _env(database_url: str, fakes, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OTKUDA_DATABASE_URL": database_url,
            "OTKUDA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "OTKUDA_INSTANCE_DIR": str(tmp_path / "instance"),
            "OTKUDA_SCHEDULE_DELIVER_SECONDS": "1",
            "OTKUDA_SCHEDULE_DEALS_MINUTES": "0",
            "OTKUDA_SCHEDULE_SPEND_TODAY_MINUTES": "0",
            "OTKUDA_SCHEDULE_SPEND_YESTERDAY_CRON": "off",
            "OTKUDA_SCHEDULE_POOL_STATS_MINUTES": "0",
            "OTKUDA_SCHEDULE_TOKENS_MINUTES": "0",
            "OTKUDA_SCHEDULER_LEASE_SECONDS": "3",
            "OTKUDA_DELIVERY_BATCH_SIZE": "10",
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in fakes.config().items()},
        }
    )
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def _wait_for(what: str, check, proc_list, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        for p in proc_list:
            if p.poll() not in (None, -9):
                raise AssertionError(f"scheduler exited with {p.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_scheduler_killed_mid_batch_delivers_every_item_exactly_once(
    db, rt, fakes, database_url, tmp_path
) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    keys = []
    for call_id in range(1, 31):
        payload = call_payload(call_id, t.client.id)
        hooks.call_finalised.fire(db, hooks.CallFinalised(t.client.id, call_id, payload["key"], payload))
        keys.append(payload["key"])
    db.commit()
    # The second batch stops after 5 of its 10 events have arrived, and hangs until the process is killed.
    fakes.dest.hang_on_request = 2
    fakes.dest.hang_after = 5
    env = _env(database_url, fakes, tmp_path)
    log = tmp_path / "scheduler.log"
    first = _start(env, log)
    second = None
    try:
        _wait_for("the hanging batch", fakes.dest.hanging.is_set, [first])
        assert len(fakes.dest.arrivals) == 15

        # A standby scheduler starts meanwhile: it must wait, not deliver.
        second = _start(env, log)
        _wait_for(
            "the standby to wait", lambda: "waiting for the scheduler lease" in log.read_text(), [second]
        )
        db.expire_all()
        holder = db.get(SchedulerLease, "scheduler").holder
        assert f":{first.pid}:" in holder
        assert len(fakes.dest.arrivals) == 15

        first.kill()  # SIGKILL: no cleanup, the batch's outcome is never recorded
        first.wait()
        db.expire_all()
        st = collections.Counter(d.status for d in db.scalars(select(Delivery)))
        assert st == {DeliveryStatus.DONE: 10, DeliveryStatus.IN_FLIGHT: 10, DeliveryStatus.PENDING: 10}
        fakes.dest.hang_on_request = None
        fakes.dest.release.set()

        def all_done() -> bool:
            db.expire_all()
            return all(d.status == DeliveryStatus.DONE for d in db.scalars(select(Delivery)))

        _wait_for("every delivery to be done", all_done, [second])
        counts = fakes.dest.counts()
        assert sorted(counts) == sorted(keys)
        assert set(counts.values()) == {1}, {k: n for k, n in counts.items() if n != 1}
        db.expire_all()
        assert f":{second.pid}:" in db.get(SchedulerLease, "scheduler").holder
        resolved = db.scalars(select(SyncRun).where(SyncRun.job == "resolve")).all()
        assert sum(r.items for r in resolved) == 5  # found at the destination, not sent again
        ext = {d.key: d.external_id for d in db.scalars(select(Delivery))}
        assert ext == {k: fakes.dest.ids[k] for k in keys}
    finally:
        fakes.dest.release.set()
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    assert second.returncode == 0  # SIGTERM stops it cleanly


def test_schedules_come_from_configuration(rt) -> None:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from jobs.scheduler import triggers

    default = triggers(rt)
    assert set(default) == {
        "deliver",
        "spend_today",
        "spend_yesterday",
        "deals",
        "tokens",
        "pool_stats",
        "notifications",
    }
    assert isinstance(default["deliver"], IntervalTrigger) and default["deliver"].interval == dt.timedelta(
        seconds=5
    )
    assert isinstance(default["spend_yesterday"], CronTrigger)
    rt.config = {
        **rt.config,
        "SCHEDULE_DELIVER_SECONDS": "2",
        "SCHEDULE_DEALS_MINUTES": "0",
        "SCHEDULE_SPEND_YESTERDAY_CRON": "off",
        "SCHEDULE_POOL_STATS_MINUTES": "15",
    }
    custom = triggers(rt)
    assert "deals" not in custom and "spend_yesterday" not in custom
    assert custom["deliver"].interval == dt.timedelta(seconds=2)
    assert custom["pool_stats"].interval == dt.timedelta(minutes=15)
