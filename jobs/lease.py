"""The scheduler lease: one row in the database says which process runs the schedule, and until when.

The holder renews it well before it lapses; anyone else may take it only once it has lapsed, so a second
scheduler waits, and takes over within one lease period after the first dies.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from jobs.runtime import Runtime
from tracking.db import rowcount, utcnow
from tracking.models import SchedulerLease

NAME = "scheduler"


def holder_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(rt: Runtime, holder: str, ttl: dt.timedelta, name: str = NAME) -> bool:
    """Take (or keep) the lease if it is free, lapsed or already ours."""
    now = utcnow()
    with rt.sessions() as db:
        taken = rowcount(
            db.execute(
                update(SchedulerLease)
                .where(
                    SchedulerLease.name == name,
                    or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now),
                )
                .values(holder=holder, acquired_at=now, expires_at=now + ttl)
            )
        )
        if taken:
            db.commit()
            return True
        if db.get(SchedulerLease, name) is not None:
            db.rollback()
            return False
        db.add(SchedulerLease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
        try:
            db.commit()
        except IntegrityError:  # another process created it first
            db.rollback()
            return False
        return True


def renew(rt: Runtime, holder: str, ttl: dt.timedelta, name: str = NAME) -> bool:
    """Extend our lease; False means it is no longer ours and we must stop scheduling."""
    with rt.sessions() as db:
        n = rowcount(
            db.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                .values(expires_at=utcnow() + ttl)
            )
        )
        db.commit()
    return bool(n)


def release(rt: Runtime, holder: str, name: str = NAME) -> None:
    with rt.sessions() as db:
        db.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        db.commit()
