"""The scheduler process (``otkuda scheduler``): APScheduler with its job store in the hub's database.

It plans the periodic jobs (pulls, token refresh, pool statistics, the ROMI roll-up); deliveries are the
workers' (``otkuda worker``, ``jobs/worker.py``). Only the holder of the scheduler lease runs jobs. A
second process waits for the lease and takes over when the first stops renewing it (it died, or lost the
database).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connectors.base import AuthRevoked
from jobs import lease
from jobs.history import recorded
from jobs.pool_stats import compute_pool_stats
from jobs.pulls import pull_deals, pull_spend
from jobs.runtime import Runtime
from jobs.tokens import RefreshFailed, expiring, refresh_connection
from tracking import romi_rollup
from tracking.db import utcnow

log = logging.getLogger(__name__)

# Set by the running scheduler; the job store pickles job references, so jobs are module-level functions.
_RUNTIME: Runtime | None = None


def _rt() -> Runtime:
    if _RUNTIME is None:
        raise RuntimeError("the scheduler runtime is not set")
    return _RUNTIME


def _today(rt: Runtime) -> dt.date:
    return utcnow().date()


def job_spend_today() -> None:
    rt = _rt()
    pull_spend(rt, _today(rt), _today(rt))


def job_spend_yesterday() -> None:
    # Platforms finish yesterday's figures during the night; the morning pull replaces the hourly ones.
    rt = _rt()
    day = _today(rt) - dt.timedelta(days=1)
    pull_spend(rt, day, day)


def job_deals() -> None:
    pull_deals(_rt())


def job_tokens() -> None:
    rt = _rt()
    ahead = dt.timedelta(minutes=float(rt.setting("TOKENS_REFRESH_AHEAD_MINUTES")))
    # One history row per connection, so each client sees its own token refreshes and failures.
    for cid in expiring(rt, ahead):
        with recorded(rt, "tokens", connection_id=cid) as tally:
            try:
                refresh_connection(rt, cid, min_valid=ahead)
                tally.items = 1
            except (AuthRevoked, RefreshFailed, LookupError) as exc:
                tally.error(f"{type(exc).__name__}: {exc}")


def job_pool_stats() -> None:
    rt = _rt()
    with recorded(rt, "pool_stats") as tally:
        tally.items = compute_pool_stats(rt)


def job_romi_rollup() -> None:
    # Reports rebuild stale days themselves; doing it here first keeps that off the person waiting.
    rt = _rt()
    with recorded(rt, "romi_rollup") as tally, rt.sessions() as db:
        tally.items = romi_rollup.refresh_all(db)


JOBS: dict[str, tuple[Callable[[], None], str]] = {
    # id: (function, setting in tracking.settings) — a setting of 0 (a cron of "off") turns the job off.
    "spend_today": (job_spend_today, "SCHEDULE_SPEND_TODAY_MINUTES"),
    "spend_yesterday": (job_spend_yesterday, "SCHEDULE_SPEND_YESTERDAY_CRON"),
    "deals": (job_deals, "SCHEDULE_DEALS_MINUTES"),
    "tokens": (job_tokens, "SCHEDULE_TOKENS_MINUTES"),
    "pool_stats": (job_pool_stats, "SCHEDULE_POOL_STATS_MINUTES"),
    "romi_rollup": (job_romi_rollup, "SCHEDULE_ROMI_ROLLUP_MINUTES"),
}


RUN_AT_START = {"tokens", "romi_rollup"}  # the rest keep to their schedule across restarts


def triggers(rt: Runtime) -> dict[str, Any]:
    """The trigger of every enabled job, from configuration."""
    out: dict[str, Any] = {}
    for job_id, (_fn, name) in JOBS.items():
        value = rt.setting(name)
        if name.endswith("_CRON"):
            if str(value).strip().lower() not in ("off", "0"):
                out[job_id] = CronTrigger.from_crontab(str(value), timezone=dt.UTC)
            continue
        amount = float(value)
        if amount <= 0:
            continue
        unit = "seconds" if name.endswith("_SECONDS") else "minutes"
        out[job_id] = IntervalTrigger(**{unit: amount}, timezone=dt.UTC)
    return out


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    sched = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=rt.engine, tablename="scheduler_jobs")},
        executors={"default": ThreadPoolExecutor(int(rt.setting("SCHEDULER_THREADS")))},
        # One instance per job at a time; runs missed while the process was down collapse into one.
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone=dt.UTC,
    )
    wanted = triggers(rt)
    for job_id, trigger in wanted.items():
        fn = JOBS[job_id][0]
        extra = {"next_run_time": utcnow()} if job_id in RUN_AT_START else {}
        sched.add_job(fn, trigger, id=job_id, name=job_id, replace_existing=True, **extra)
    return sched


class SchedulerProcess:
    def __init__(
        self, rt: Runtime, holder: str | None = None, echo: Callable[[str], None] = log.info
    ) -> None:
        self.rt = rt
        self.holder = holder or lease.holder_id()
        self.ttl = dt.timedelta(seconds=float(rt.setting("SCHEDULER_LEASE_SECONDS")))
        self.stop_event = threading.Event()
        self.echo = echo

    def wait_for_lease(self) -> bool:
        waiting_said = False
        while not self.stop_event.is_set():
            if lease.try_acquire(self.rt, self.holder, self.ttl):
                return True
            if not waiting_said:
                self.echo(f"waiting for the scheduler lease ({self.holder})")
                waiting_said = True
            self.stop_event.wait(self.ttl.total_seconds() / 3)
        return False

    def run(self) -> None:
        global _RUNTIME
        while self.wait_for_lease():
            self.echo(f"scheduler lease taken by {self.holder}")
            _RUNTIME = self.rt
            sched = build_scheduler(self.rt)
            sched.start()
            # Jobs switched off in configuration must not linger in the shared job store.
            enabled = triggers(self.rt)
            for job in sched.get_jobs():
                if job.id not in enabled:
                    job.remove()
            try:
                while not self.stop_event.wait(self.ttl.total_seconds() / 3):
                    if not lease.renew(self.rt, self.holder, self.ttl):
                        self.echo("scheduler lease lost; stopping jobs and waiting again")
                        break
            finally:
                sched.shutdown(wait=True)
            if self.stop_event.is_set():
                lease.release(self.rt, self.holder)
                return

    def stop(self) -> None:
        self.stop_event.set()
