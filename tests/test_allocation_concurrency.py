"""Many processes allocating from one pool at once: no number is ever held by two live sessions.

Each worker is a separate OS process with its own engine, as gunicorn workers are.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import traceback
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from tests.factories import ALLOCATION_T0 as T0
from tests.factories import make_pool, make_tenant
from tracking.db import make_engine, make_session_factory, utcnow
from tracking.models import FallbackEvent, NumberAssignment, TrackingNumber, VisitSession

pytestmark = pytest.mark.slow

WORKERS = 6


def _worker(url: str, site_key: str, wid: int, visits_each: int, synthetic: bool, barrier, errors) -> None:
    from tracking import visits

    engine = make_engine(url)
    db = make_session_factory(engine)()
    try:
        barrier.wait(timeout=60)
        previous = None
        for i in range(visits_each):
            # The synthetic clock moves one second per visit so short holds expire and are reclaimed
            # while other workers are still allocating.
            now = T0 + dt.timedelta(seconds=i, microseconds=wid) if synthetic else utcnow()
            r = visits.visit(db, site_key, {"visitor_id": f"w{wid}-visitor-{i:05d}"}, now=now)
            if synthetic and previous is not None:
                if i % 3 == 0:
                    visits.release(db, site_key, {"session_id": previous}, now=now)
                else:
                    visits.heartbeat(db, site_key, {"session_id": previous}, now=now)
            previous = r.session.public_id
    except Exception:
        errors.put(traceback.format_exc())
    finally:
        db.close()
        engine.dispose()


def _run(url: str, site_key: str, visits_each: int, synthetic: bool) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    errors = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(url, site_key, w, visits_each, synthetic, barrier, errors))
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, "\n".join(problems)
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]


def _assert_no_overlapping_holds(db) -> int:
    db.expire_all()
    by_number: dict[int, list[NumberAssignment]] = defaultdict(list)
    for a in db.scalars(select(NumberAssignment).order_by(NumberAssignment.started_at, NumberAssignment.id)):
        by_number[a.number_id].append(a)
    for number_id, rows in by_number.items():
        for before, after in zip(rows, rows[1:], strict=False):
            end = before.ended_at or before.hold_until
            assert before.ended_at is not None, f"number {number_id}: an earlier hold was never closed"
            assert end <= after.started_at, f"number {number_id}: holds of two sessions overlap"
        assert sum(1 for r in rows if r.ended_at is None) <= 1
        live = db.get(TrackingNumber, number_id)
        assert live.held_by_session_id == rows[-1].session_id
    return sum(len(r) for r in by_number.values())


def test_parallel_new_visitors_never_share_a_number_and_all_numbers_are_used(db, database_url) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 30, hold_seconds=3600)
    visits_each = 25
    _run(database_url, t.site.site_key, visits_each, synthetic=False)
    total = WORKERS * visits_each
    assert db.scalar(select(func.count()).select_from(VisitSession)) == total
    # Every pool number was taken exactly once (holds are long) and everyone else got the fallback.
    assert _assert_no_overlapping_holds(db) == 30
    held = db.scalars(select(NumberAssignment.number_id)).all()
    assert len(set(held)) == 30
    assert db.scalar(select(func.count()).select_from(FallbackEvent)) == total - 30
    fallback_sessions = db.scalar(
        select(func.count())
        .select_from(VisitSession)
        .where(VisitSession.number_id == pool.fallback_number_id)
    )
    assert fallback_sessions == total - 30


def test_parallel_visitors_never_fall_back_while_a_number_is_free(db, database_url) -> None:
    """As many numbers as visitors: any fallback would have been handed out while a number was free."""
    t = make_tenant(db)
    visits_each = 15
    make_pool(db, t.site, WORKERS * visits_each, hold_seconds=3600)
    _run(database_url, t.site.site_key, visits_each, synthetic=False)
    assert db.scalar(select(func.count()).select_from(FallbackEvent)) == 0
    assert _assert_no_overlapping_holds(db) == WORKERS * visits_each
    assert len(set(db.scalars(select(NumberAssignment.number_id)).all())) == WORKERS * visits_each


def test_parallel_allocation_with_expiry_release_and_heartbeats(db, database_url) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 8, hold_seconds=3, grace_seconds=1, max_hold_seconds=5)
    _run(database_url, t.site.site_key, 60, synthetic=True)
    assignments = _assert_no_overlapping_holds(db)
    fallbacks = db.scalar(select(func.count()).select_from(FallbackEvent))
    # Every visit got either a pool number or the fallback at its start (a fallback session may take a pool
    # number later, on a heartbeat); holds really were reclaimed and reused.
    started_held = db.scalar(
        select(func.count(func.distinct(NumberAssignment.session_id)))
        .join(VisitSession, VisitSession.id == NumberAssignment.session_id)
        .where(NumberAssignment.started_at == VisitSession.started_at)
    )
    assert started_held + fallbacks == WORKERS * 60
    assert assignments >= started_held > 8


def test_a_number_being_taken_is_skipped_not_waited_for(db, engine, database_url) -> None:
    """Two open transactions: the second takes another free number at once instead of blocking."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with one database lock; there is no row to skip")
    from sqlalchemy import text

    from tracking import allocation
    from tracking.models import Pool

    t = make_tenant(db)
    pool = make_pool(db, t.site, 2)
    factory = make_session_factory(engine)
    first, second = factory(), factory()
    try:
        sessions = []
        for s in (first, second):
            vs = VisitSession(
                public_id=f"p{len(sessions)}",
                client_id=t.client.id,
                site_id=t.site.id,
                visitor_id="visitor-x",
            )
            s.add(vs)
            s.commit()
            sessions.append(vs)
        a = allocation.take_number(first, first.get(Pool, pool.id), sessions[0], T0)
        # A blocked second transaction would hit this timeout and fail instead of hanging the test.
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        b = allocation.take_number(second, second.get(Pool, pool.id), sessions[1], T0)
        assert a is not None and b is not None and a.id != b.id
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()


def test_parallel_promo_codes_stay_unique(db, database_url) -> None:
    t = make_tenant(db)
    t.site.promo_codes_enabled = True
    db.commit()
    make_pool(db, t.site, 10, hold_seconds=3600)
    _run(database_url, t.site.site_key, 15, synthetic=False)
    codes = db.scalars(select(VisitSession.promo_code)).all()
    assert len(codes) == WORKERS * 15 and all(c and c.isdigit() for c in codes)
    assert len(set(codes)) == len(codes)
