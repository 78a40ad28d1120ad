"""One source must not hold a whole pool: the excess gets the fallback number and is counted with a reason."""

from __future__ import annotations

import datetime as dt
import json
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobs.pool_stats import compute_pool_stats
from jobs.runtime import Runtime
from tests.factories import make_pool, make_tenant
from tracking import abuse
from tracking.models import FallbackEvent, PoolStat, TrackingNumber, VisitSession


def _visit(client, site, ip: str, visitor_id: str | None = None) -> dict:
    resp = client.post(
        f"/t/v1/{site.site_key}/visit",
        data=json.dumps({"visitor_id": visitor_id or secrets.token_hex(16)}),
        headers={"Origin": f"https://{site.domains[0]}"},
        content_type="text/plain",
        environ_base={"REMOTE_ADDR": ip},
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _held(db: Session, pool) -> int:
    db.rollback()
    now = dt.datetime.now(dt.UTC)
    return db.scalar(
        select(func.count()).where(TrackingNumber.pool_id == pool.id, TrackingNumber.held_until >= now)
    )


def test_a_bot_with_fresh_visitor_ids_gets_only_its_share_of_the_pool(make_hub, db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 10)
    app = make_hub(POOL_HOLDS_PER_SOURCE=3)
    client = app.test_client()
    shown = [_visit(client, t.site, "203.0.113.7")["number"]["e164"] for _ in range(8)]
    fallback = db.get(TrackingNumber, pool.fallback_number_id).e164
    assert len(set(shown[:3])) == 3 and fallback not in shown[:3]
    assert shown[3:] == [fallback] * 5
    assert _held(db, pool) == 3
    reasons = db.scalars(select(FallbackEvent.reason).where(FallbackEvent.pool_id == pool.id)).all()
    assert reasons == [abuse.SOURCE_CAP] * 5
    # Real visitors from other addresses still get pool numbers.
    real = [_visit(client, t.site, f"198.51.100.{i}")["number"]["e164"] for i in range(7)]
    assert fallback not in real and _held(db, pool) == 10
    # The source's refusals do not make the pool look too small: only exhaustion is counted as such.
    nxt = _visit(client, t.site, "198.51.100.50")["number"]["e164"]
    assert nxt == fallback
    compute_pool_stats(Runtime.from_config(app.config, engine=db.get_bind()), dt.datetime.now(dt.UTC))
    db.rollback()
    stats = db.scalars(select(PoolStat).where(PoolStat.pool_id == pool.id)).all()
    assert sum(s.fallbacks for s in stats) == 1


def test_stored_source_is_a_keyed_hash_not_the_address(make_hub, db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 2)
    client = make_hub().test_client()
    _visit(client, t.site, "203.0.113.7")
    db.rollback()
    key = db.scalar(select(VisitSession.source_key))
    assert key and "203.0.113.7" not in key and len(key) == 32


def test_one_visitor_holds_one_number_per_pool(make_hub, db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 5)
    client = make_hub(POOL_HOLDS_PER_SOURCE=0).test_client()
    # A visitor id too short to be a bearer never continues its session; each view would take a number.
    weak = "visitor-0001"
    first = _visit(client, t.site, "203.0.113.7", weak)
    again = _visit(client, t.site, "203.0.113.8", weak)
    fallback = db.get(TrackingNumber, pool.fallback_number_id).e164
    assert again["session_id"] != first["session_id"]
    assert first["number"]["e164"] != fallback and again["number"]["e164"] == fallback
    assert _held(db, pool) == 1
    db.rollback()
    assert db.scalars(select(FallbackEvent.reason)).all() == [abuse.VISITOR_CAP]


def test_no_cap_when_configured_off(make_hub, db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 4)
    client = make_hub(POOL_HOLDS_PER_SOURCE=0).test_client()
    for _ in range(4):
        _visit(client, t.site, "203.0.113.7")
    assert _held(db, pool) == 4


def _heartbeat(client, site, ip: str, visit: dict, visitor_id: str) -> dict:
    resp = client.post(
        f"/t/v1/{site.site_key}/heartbeat",
        data=json.dumps({"session_id": visit["session_id"], "visitor_id": visitor_id}),
        headers={"Origin": f"https://{site.domains[0]}"},
        content_type="text/plain",
        environ_base={"REMOTE_ADDR": ip},
    )
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_heartbeats_do_not_lift_a_capped_source_off_the_fallback_number(make_hub, db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 10)
    client = make_hub(POOL_HOLDS_PER_SOURCE=3).test_client()
    ids = [secrets.token_hex(16) for _ in range(6)]
    bot = [_visit(client, t.site, "203.0.113.7", v) for v in ids]
    fallback = db.get(TrackingNumber, pool.fallback_number_id).e164
    assert [v["number"]["e164"] == fallback for v in bot] == [False] * 3 + [True] * 3
    # Seven numbers are free, but the source already holds its three: its refused sessions stay where they
    # are, from its own address or any other.
    for i, (v, visitor_id) in enumerate(zip(bot[3:], ids[3:], strict=True)):
        beat = _heartbeat(client, t.site, "203.0.113.7" if i else "192.0.2.1", v, visitor_id)
        assert beat["live"] and "number" not in beat
    assert _held(db, pool) == 3


def test_a_fallback_session_within_the_caps_moves_to_a_freed_number(make_hub, db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 1)
    client = make_hub(POOL_HOLDS_PER_SOURCE=3).test_client()
    first_id, second_id = secrets.token_hex(16), secrets.token_hex(16)
    first = _visit(client, t.site, "198.51.100.1", first_id)
    second = _visit(client, t.site, "198.51.100.2", second_id)
    fallback = db.get(TrackingNumber, pool.fallback_number_id).e164
    assert first["number"]["e164"] != fallback and second["number"]["e164"] == fallback
    db.rollback()
    # The first visitor's hold ends (another session of it superseded it, say): its number is free.
    number = db.scalar(select(TrackingNumber).where(TrackingNumber.e164 == first["number"]["e164"]))
    number.held_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.commit()
    beat = _heartbeat(client, t.site, "198.51.100.2", second, second_id)
    assert beat["number"]["e164"] == first["number"]["e164"]
