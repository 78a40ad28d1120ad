"""The scheduler: the lease that keeps it single, and the jobs it plans (deliveries are the workers')."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import update

from jobs import lease
from tracking.db import utcnow
from tracking.models import SchedulerLease


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


def test_schedules_come_from_configuration(rt) -> None:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    from jobs.scheduler import triggers

    default = triggers(rt)
    assert set(default) == {
        "spend_today",
        "spend_yesterday",
        "deals",
        "tokens",
        "pool_stats",
        "romi_rollup",
    }
    assert "deliver" not in default  # deliveries are the workers' (jobs/worker.py)
    assert isinstance(default["deals"], IntervalTrigger) and default["deals"].interval == dt.timedelta(
        minutes=5
    )
    assert isinstance(default["spend_yesterday"], CronTrigger)
    rt.config = {
        **rt.config,
        "SCHEDULE_ROMI_ROLLUP_MINUTES": "2",
        "SCHEDULE_DEALS_MINUTES": "0",
        "SCHEDULE_SPEND_YESTERDAY_CRON": "off",
        "SCHEDULE_POOL_STATS_MINUTES": "15",
    }
    custom = triggers(rt)
    assert "deals" not in custom and "spend_yesterday" not in custom
    assert custom["romi_rollup"].interval == dt.timedelta(minutes=2)
    assert custom["pool_stats"].interval == dt.timedelta(minutes=15)
