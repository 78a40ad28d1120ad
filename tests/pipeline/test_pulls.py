"""Pulls: spend replaces the days it covers, won deals link to their call and queue deliveries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from click.testing import CliRunner
from sqlalchemy import select

from hub.cli import main
from jobs.pool_stats import compute_pool_stats
from jobs.pulls import pull_deals, pull_spend
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tests.pipeline.support import make_connection
from tracking import calls, hooks
from tracking.models import (
    Call,
    CallStatus,
    Deal,
    DealStatus,
    Delivery,
    PlatformSpend,
    Pool,
    PoolStat,
    SyncRun,
    TrackingNumber,
)
from tracking.models.sessions import FallbackEvent, NumberAssignment, VisitSession


def spend(day: str, campaign: str, cost: str) -> dict:
    return {
        "day": day,
        "campaign_id": campaign,
        "campaign_name": f"C{campaign}",
        "cost": cost,
        "currency": "RUB",
        "clicks": 3,
        "impressions": 100,
    }


def test_spend_pull_replaces_the_days_it_covers(db, rt, fakes) -> None:
    t = make_tenant(db)
    conn = make_connection(db, t, fakes)
    fakes.dest.spend_rows = [
        spend("2026-11-20", "1", "100.50"),
        spend("2026-11-21", "1", "10"),
        spend("2026-11-21", "2", "5"),
    ]
    pull_spend(rt, dt.date(2026, 11, 20), dt.date(2026, 11, 21))
    # The platform revises the 21st: campaign 2 disappears, campaign 1 costs more.
    fakes.dest.spend_rows = [spend("2026-11-21", "1", "12.25")]
    pull_spend(rt, dt.date(2026, 11, 21), dt.date(2026, 11, 21))
    rows = db.scalars(select(PlatformSpend).order_by(PlatformSpend.day, PlatformSpend.campaign_id)).all()
    assert [(r.day.isoformat(), r.campaign_id, r.cost) for r in rows] == [
        ("2026-11-20", "1", Decimal("100.50")),
        ("2026-11-21", "1", Decimal("12.25")),
    ]
    assert {(r.client_id, r.connection_id, r.platform) for r in rows} == {(t.client.id, conn.id, "fakedest")}
    runs = db.scalars(select(SyncRun).where(SyncRun.job == "spend")).all()
    assert [(r.items, r.errors) for r in runs] == [(3, 0), (1, 0)]


def _call(db, t, caller: str, session: VisitSession | None = None, hour: int = 10) -> Call:
    call = Call(
        client_id=t.client.id,
        provider="generic",
        provider_call_id=f"{caller}@{hour}",
        caller=caller,
        called_at=dt.datetime(2026, 11, 21, hour, tzinfo=dt.UTC),
        status=CallStatus.ANSWERED,
        session_id=session.id if session else None,
    )
    db.add(call)
    db.flush()
    p = calls.call_payload(db, call)
    hooks.call_finalised.fire(db, hooks.CallFinalised(t.client.id, call.id, p["key"], p))
    return call


def test_won_deal_links_to_its_call_and_queues_deliveries_once(db, rt, fakes) -> None:
    t = make_tenant(db)
    rival = make_tenant(db, "Rival")
    make_connection(db, t, fakes)
    visit = VisitSession(
        public_id="s-8", client_id=t.client.id, site_id=t.site.id, visitor_id="v8", utm_source="yandex"
    )
    db.add(visit)
    db.flush()
    first = _call(db, t, "+79990000007")
    second = _call(db, t, "+79990000008", visit)
    _call(db, t, "+79990000008", hour=15)  # a later call from the same phone did not bring the deal
    foreign = _call(db, rival, "+79990000009")
    db.commit()
    base = {"currency": "RUB", "name": "Kitchen", "updated_at": "2026-11-22T09:00:00+00:00"}
    fakes.dest.deals = [
        {**base, "id": "501", "status": "open", "amount": "0", "call_keys": [f"otkuda-call-{first.id}"]},
        {
            **base,
            "id": "502",
            "status": "won",
            "amount": "12500",
            "phones": ["+79990000008"],
            "closed_at": "2026-11-22T08:00:00+00:00",
        },
        # A key naming another client's call is ignored, not trusted.
        {**base, "id": "503", "status": "open", "amount": "0", "call_keys": [f"otkuda-call-{foreign.id}"]},
    ]
    pull_deals(rt, since=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    deals = {d.external_id: d for d in db.scalars(select(Deal))}
    assert deals["501"].status == DealStatus.OPEN and deals["501"].call_id == first.id
    assert deals["502"].status == DealStatus.WON and deals["502"].call_id == second.id  # linked by phone
    assert deals["502"].session_id == visit.id
    assert deals["503"].call_id is None
    assert deals["502"].won_at == dt.datetime(2026, 11, 22, 8, tzinfo=dt.UTC)
    won = db.scalars(select(Delivery).where(Delivery.kind == "deal_won")).all()
    assert [(d.key, d.payload["amount"], d.payload["call"]["call_id"]) for d in won] == [
        (f"otkuda-deal-{deals['502'].id}", "12500.00", second.id)
    ]
    assert won[0].payload["call"]["session"]["utm_source"] == "yandex"
    # The first deal is won later; the second is pulled again unchanged: only one more delivery.
    fakes.dest.deals[0].update(status="won", amount="900", updated_at="2026-11-22T10:00:00+00:00")
    pull_deals(rt)
    db.expire_all()
    won = db.scalars(select(Delivery).where(Delivery.kind == "deal_won").order_by(Delivery.id)).all()
    assert len(won) == 2 and won[1].payload["call"]["call_id"] == first.id
    assert db.get(Deal, deals["501"].id).amount == Decimal("900.00")


def test_sync_command_backfills_with_progress(db, rt, fakes, database_url, tmp_path, monkeypatch) -> None:
    t = make_tenant(db)
    make_connection(db, t, fakes)
    fakes.dest.spend_rows = [spend(f"2026-11-{d:02d}", "1", "1") for d in range(1, 16)]
    for k, v in {
        **fakes.config(),
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "INSTANCE_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(k if k.startswith("OTKUDA_") else f"OTKUDA_{k}", v)
    result = CliRunner().invoke(main, ["sync", "fakedest", "--since", "2026-11-01", "--until", "2026-11-15"])
    assert result.exit_code == 0, result.output
    assert "fakedest spend" in result.output
    assert len(db.scalars(select(PlatformSpend)).all()) == 15
    assert len(db.scalars(select(SyncRun).where(SyncRun.job == "spend")).all()) == 3  # 7 + 7 + 1 days
    bad = CliRunner().invoke(main, ["sync", "nosuch", "--since", "2026-11-01"])
    assert bad.exit_code != 0 and "unknown" in bad.output


def test_pool_stats_snapshot(db, rt) -> None:
    t = make_tenant(db)
    pool = Pool(client_id=t.client.id, site_id=t.site.id, name="P")
    db.add(pool)
    db.flush()
    numbers = [
        TrackingNumber(client_id=t.client.id, e164=f"+7495000000{i}", pool_id=pool.id) for i in range(3)
    ]
    db.add_all(numbers)
    db.flush()
    now = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)
    sessions = []
    for i in range(3):
        s = VisitSession(public_id=f"s{i}", client_id=t.client.id, site_id=t.site.id, visitor_id=f"v{i}")
        db.add(s)
        sessions.append(s)
    db.flush()
    mins = dt.timedelta(minutes=1)
    db.add_all(
        [
            # Two holds overlap from 10:05 to 10:10; one is still held at 10:30.
            NumberAssignment(
                number_id=numbers[0].id,
                session_id=sessions[0].id,
                pool_id=pool.id,
                started_at=now - 25 * mins,
                hold_until=now - 20 * mins,
                ended_at=now - 20 * mins,
            ),
            NumberAssignment(
                number_id=numbers[1].id,
                session_id=sessions[1].id,
                pool_id=pool.id,
                started_at=now - 27 * mins,
                hold_until=now + 10 * mins,
            ),
            NumberAssignment(
                number_id=numbers[2].id,
                session_id=sessions[2].id,
                pool_id=pool.id,
                started_at=now - 90 * mins,
                hold_until=now - 70 * mins,
                ended_at=now - 70 * mins,
            ),
            FallbackEvent(pool_id=pool.id, at=now - 2 * mins),
        ]
    )
    db.commit()
    assert compute_pool_stats(rt, now) == 2
    rows = {r.hour.hour: r for r in db.scalars(select(PoolStat).where(PoolStat.pool_id == pool.id))}
    cur, prev = rows[10], rows[9]
    assert (cur.numbers, cur.held, cur.peak_held, cur.sessions, cur.fallbacks) == (3, 1, 2, 2, 1)
    assert (prev.sessions, prev.peak_held, prev.held) == (1, 1, 0)
