"""The roll-up answers what the row-level engine answers, and follows every change that moves a figure."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.orm import Session

from tests.romi_world import NOV_1, NOV_30, Shop, utc
from tests.test_romi_matching import kitchens  # noqa: F401  (the second world)
from tracking import romi, romi_rollup
from tracking.db import make_engine, make_session_factory
from tracking.migrate import upgrade
from tracking.models import (
    AttributionMethod,
    Call,
    CallStatus,
    Channel,
    Deal,
    DealStatus,
    RomiDaily,
    RomiDirty,
    VisitSession,
)

PERIODS = [
    (NOV_1, NOV_30),
    (dt.date(2026, 10, 1), dt.date(2026, 12, 31)),  # whole months only
    (dt.date(2026, 10, 20), dt.date(2026, 12, 2)),  # a whole month between two edges of days
    (dt.date(2026, 11, 1), dt.date(2026, 11, 29)),  # from a month's first day, not to its last
    (dt.date(2026, 10, 31), dt.date(2026, 11, 30)),  # to a month's last day, from the day before it
    (dt.date(2026, 11, 5), dt.date(2026, 11, 6)),
    (dt.date(2026, 11, 10), dt.date(2026, 11, 10)),
    (dt.date(2026, 12, 1), dt.date(2026, 12, 1)),
]


def tree(rep: romi.Report) -> list[tuple[object, ...]]:
    """Every row at every grouping level, in the report's order, with all its figures."""
    return [(n.level, n.path, n.label, n.metrics.as_dict()) for n in rep.rows(len(romi.LEVELS))] + [
        ((), "total", rep.total.metrics.as_dict())
    ]


def assert_same(db: Session, world: Shop) -> None:
    for start, end in PERIODS:
        for model in romi.Model:
            rolled = romi.report(db, world.t.client, start, end, model=model)
            rows = romi.report_from_rows(db, world.t.client, start, end, model=model)
            assert tree(rolled) == tree(rows), (start, end, model)
            for level in romi.LEVELS[1:]:
                assert [n.path for n in rolled.top(level)] == [n.path for n in rows.top(level)]


def test_the_roll_up_equals_the_row_engine_on_the_shop(db, shop) -> None:
    assert_same(db, shop)
    stored = db.scalar(
        select(func.count()).select_from(RomiDaily).where(RomiDaily.client_id == shop.t.client.id)
    )
    assert stored > 0  # the answer came from stored days, not from a fallback


def test_the_roll_up_equals_the_row_engine_on_the_kitchens(db, kitchens) -> None:  # noqa: F811
    assert_same(db, kitchens)


def test_changes_are_taken_in_on_the_next_report(db, shop) -> None:
    client = shop.t.client
    assert_same(db, shop)  # every day built
    assert db.scalar(select(func.count()).select_from(RomiDirty)) == 0
    # A visitor's earlier non-direct session, added after the fact, takes the credit of a later call.
    s4 = db.scalars(select(VisitSession).where(VisitSession.visitor_id == "D")).first()
    shop.session(shop.google, "D", utc(9), utm_campaign="9001", gclid="g2")
    db.commit()
    rep = romi.report(db, client, NOV_1, NOV_30)
    google = rep.total.children[f"ch{shop.google.id}"].metrics
    assert google.calls == 2 and google.visits == 2  # was 1 and 1
    assert_same(db, shop)
    # A call's status, a deal won, a call deleted, a session's channel changed.
    call = db.scalars(select(Call).where(Call.caller == "+79000000002")).one()
    call.status = CallStatus.ANSWERED
    shop.deal(call, DealStatus.WON, "1234")
    db.execute(update(Deal).where(Deal.status == DealStatus.OPEN).values(status=DealStatus.LOST))
    db.commit()
    assert romi.report(db, client, NOV_1, NOV_30).total.metrics.revenue == Decimal("78234")
    assert_same(db, shop)
    db.execute(delete(Call).where(Call.caller == "+79000000006"))
    assert s4 is not None
    db.execute(update(VisitSession).where(VisitSession.id == s4.id).values(channel_id=shop.billboard.id))
    db.commit()
    assert_same(db, shop)
    manual = db.scalars(select(Call).where(Call.caller == "+79000000007")).one()
    manual.attribution_method = AttributionMethod.MANUAL
    manual.channel_id = shop.billboard.id
    db.commit()
    assert_same(db, shop)


def test_a_new_time_zone_or_direct_channel_rebuilds_the_client(db, shop) -> None:
    assert_same(db, shop)
    shop.t.client.timezone = "Asia/Kolkata"  # a half-hour offset: days move by 5 h 30 min
    db.commit()
    assert_same(db, shop)
    db.add(Channel(client_id=shop.t.client.id, name="Typed in", is_default=True, position=20_000))
    db.execute(update(Channel).where(Channel.id == shop.google.id).values(is_default=True))
    db.commit()
    assert_same(db, shop)


def test_heartbeats_leave_no_note(db, shop) -> None:
    romi.report(db, shop.t.client, NOV_1, NOV_30)
    db.execute(update(VisitSession).values(last_seen_at=utc(29)))
    db.commit()
    assert db.scalar(select(func.count()).select_from(RomiDirty)) == 0


def test_the_scheduler_job_refreshes_ahead_of_reports(db, shop) -> None:
    assert romi_rollup.refresh_all(db) > 0
    assert romi_rollup.refresh_all(db) == 0  # nothing changed since
    shop.call(utc(20), session=None, caller="+79000000099", method=AttributionMethod.UNMATCHED)
    db.commit()
    assert romi_rollup.refresh_all(db) == 1  # the one day of the new call
    assert_same(db, shop)


def test_a_large_rebuild_leaves_the_planner_fresh_statistics(db, shop) -> None:
    """After a rebuild of more than a month, PostgreSQL knows how many rows the roll-up holds (its plans for
    a year's callers hinge on it), without waiting for autovacuum."""
    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's planner reads no row estimates of this kind")
    shop.session(shop.google, "early", utc(1, month=8))  # spread the client over more than a month of days
    db.commit()
    assert romi_rollup.refresh(db, shop.t.client) > romi_rollup.FRESH_STATISTICS_AFTER
    for table in ("romi_daily", "romi_daily_callers"):
        stored = db.scalar(text(f"SELECT COUNT(*) FROM {table}"))
        estimate = db.scalar(text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table})
        assert stored and estimate == stored, table


@pytest.mark.parametrize("model", list(romi.Model))
def test_bad_requests_are_refused_before_any_work(db, shop, model) -> None:
    with pytest.raises(romi.InvalidReport):
        romi.report(db, shop.t.client, NOV_30, NOV_1, model=model)


def _counting(url: str) -> tuple[Session, list[str]]:
    engine = make_engine(url)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    return make_session_factory(engine)(), seen


def test_a_replica_that_has_caught_up_answers_the_report(db, shop, database_url) -> None:
    replica, seen = _counting(database_url)  # the same data, as a replica that has replayed everything
    try:
        for model in romi.Model:
            rep = romi.report(db, shop.t.client, NOV_1, NOV_30, model=model, replica=replica)
            assert tree(rep) == tree(romi.report_from_rows(db, shop.t.client, NOV_1, NOV_30, model=model))
        assert any("romi_monthly" in sql for sql in seen) and any("spend_rows" in sql for sql in seen)
    finally:
        replica.close()
        replica.get_bind().dispose()


def test_a_replica_behind_the_primary_is_not_read(db, shop, tmp_path) -> None:
    behind = f"sqlite:///{tmp_path / 'replica.db'}"
    upgrade(behind)  # the schema, but none of the roll-up the primary has just built
    replica, seen = _counting(behind)
    try:
        rep = romi.report(db, shop.t.client, NOV_1, NOV_30, replica=replica)
        assert tree(rep) == tree(romi.report_from_rows(db, shop.t.client, NOV_1, NOV_30))
        assert seen and not any("romi_monthly" in sql or "romi_daily" in sql for sql in seen)
    finally:
        replica.close()
        replica.get_bind().dispose()


def test_every_roll_up_trigger_survives_the_later_migrations(engine) -> None:
    # SQLite rebuilds a table to alter it and drops its triggers with the old copy; migrations/env.py puts
    # them back. Without them the roll-up would stop noting changes and reports would go stale silently.
    expected = {
        f"romi_dirty_{t}_{op}" for t in ("visit_sessions", "calls", "deals") for op in ("ins", "del", "upd")
    }
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            rows = conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        found = {name for (name,) in rows}
    assert expected <= found
