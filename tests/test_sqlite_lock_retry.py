"""On SQLite a visit that cannot get the write lock in time is rolled back and run again."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import event, func, select

from tests.factories import ALLOCATION_T0 as T0
from tests.factories import make_pool, make_tenant
from tracking import visits
from tracking.db import make_engine, make_session_factory
from tracking.models import NumberAssignment, VisitSession


def test_locked_database_is_retried_until_the_visit_succeeds(db, engine, database_url) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL waits on row locks; only SQLite reports 'database is locked'")
    t = make_tenant(db)
    make_pool(db, t.site, 2)
    impatient = make_engine(database_url)

    @event.listens_for(impatient, "connect")
    def _short_wait(dbapi_conn, _record) -> None:
        # After the engine's own pragmas: give up on the lock almost at once so the retry path runs.
        dbapi_conn.execute("PRAGMA busy_timeout=20")

    lock_errors = []

    @event.listens_for(impatient, "handle_error")
    def _seen(ctx) -> None:
        if "locked" in str(ctx.original_exception):
            lock_errors.append(ctx.original_exception)

    path = database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    session = make_session_factory(impatient)()
    try:
        result = visits.visit(session, t.site.site_key, {"visitor_id": "visitor-0001"}, now=T0)
    finally:
        session.close()
        released.wait(5)
        holder.close()
        impatient.dispose()
    assert lock_errors, "the visit never met the lock, so the retry was not exercised"
    assert result.number is not None and result.number.pool_id is not None
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(VisitSession)) == 1
    assert db.scalar(select(func.count()).select_from(NumberAssignment)) == 1
