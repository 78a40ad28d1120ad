"""Pool allocation and the visit service, on both backends, with an explicit clock."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.factories import ALLOCATION_T0 as T0
from tests.factories import make_channel, make_pool, make_static, make_tenant, pool_numbers
from tracking import visits
from tracking.models import FallbackEvent, NumberAssignment, TrackingNumber, VisitSession
from tracking.models.numbers import NumberStatus


def sec(n: float) -> dt.timedelta:
    return dt.timedelta(seconds=n)


def v(db, site, visitor: str, now: dt.datetime, **extra) -> visits.VisitResult:
    return visits.visit(db, site.site_key, {"visitor_id": visitor, **extra}, now=now)


def assignments(db, number_id: int | None = None) -> list[NumberAssignment]:
    db.expire_all()
    q = select(NumberAssignment).order_by(NumberAssignment.id)
    if number_id is not None:
        q = q.where(NumberAssignment.number_id == number_id)
    return list(db.scalars(q))


def count(db, model) -> int:
    return db.scalar(select(func.count()).select_from(model))


def test_new_visitor_holds_a_pool_number(db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 3, hold_seconds=600)
    r = v(db, t.site, "visitor-0001", T0)
    assert r.number is not None and r.number.pool_id == pool.id
    assert r.hold_until == T0 + sec(600)
    n = db.get(TrackingNumber, r.number.id, populate_existing=True)
    assert n.held_by_session_id == r.session.id and n.held_until == T0 + sec(600)
    (a,) = assignments(db)
    assert (a.number_id, a.session_id, a.started_at, a.hold_until, a.ended_at) == (
        n.id,
        r.session.id,
        T0,
        T0 + sec(600),
        None,
    )


def test_same_visitor_within_hold_keeps_session_and_number_and_extends(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 3, hold_seconds=600)
    first = v(db, t.site, "visitor-0001", T0)
    again = v(db, t.site, "visitor-0001", T0 + sec(300))
    assert again.session.id == first.session.id and again.number.id == first.number.id
    assert again.hold_until == T0 + sec(900)
    other = v(db, t.site, "visitor-0002", T0 + sec(301))
    assert other.session.id != first.session.id and other.number.id != first.number.id
    assert count(db, VisitSession) == 2 and len(assignments(db)) == 2


def test_heartbeat_extends_but_never_past_max_hold(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1, hold_seconds=600, max_hold_seconds=1000)
    r = v(db, t.site, "visitor-0001", T0)
    sid = {"session_id": r.session.public_id}
    hb = visits.heartbeat(db, t.site.site_key, sid, now=T0 + sec(300))
    assert hb.live and hb.hold_until == T0 + sec(900)
    hb = visits.heartbeat(db, t.site.site_key, sid, now=T0 + sec(800))
    assert hb.live and hb.hold_until == T0 + sec(1000)  # capped
    (a,) = assignments(db)
    assert a.hold_until == T0 + sec(1000)
    # Past the cap the hold is over: a heartbeat does not revive it and the number is free again.
    hb = visits.heartbeat(db, t.site.site_key, sid, now=T0 + sec(1001))
    assert not hb.live
    newcomer = v(db, t.site, "visitor-0002", T0 + sec(1002))
    assert newcomer.number.id == r.number.id
    assert assignments(db)[0].ended_at == T0 + sec(1000)


def test_release_keeps_number_for_grace_then_it_is_reclaimed(db) -> None:
    t = make_tenant(db)
    # Not channel-coherent: a coherent pool hands a leaver's number on to its own channel within grace
    # rather than show the fallback number (see test_attribution_defects).
    make_pool(db, t.site, 1, hold_seconds=900, grace_seconds=120, channel_coherent=False)
    r = v(db, t.site, "visitor-0001", T0)
    rel = visits.release(db, t.site.site_key, {"session_id": r.session.public_id}, now=T0 + sec(60))
    assert rel.hold_until == T0 + sec(180)
    db.expire_all()
    assert db.get(VisitSession, r.session.id).left_at == T0 + sec(60)
    # Within grace the number is still held: a newcomer falls back.
    during = v(db, t.site, "visitor-0002", T0 + sec(179))
    assert during.number.pool_id is None and count(db, FallbackEvent) == 1
    after = v(db, t.site, "visitor-0003", T0 + sec(181))
    assert after.number.id == r.number.id
    old, new = assignments(db, r.number.id)
    assert old.session_id == r.session.id and old.ended_at == T0 + sec(180)
    assert new.session_id == after.session.id and new.ended_at is None


def test_coming_back_to_the_page_during_grace_extends_again(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1, hold_seconds=900, grace_seconds=120)
    r = v(db, t.site, "visitor-0001", T0)
    visits.release(db, t.site.site_key, {"session_id": r.session.public_id}, now=T0 + sec(60))
    back = v(db, t.site, "visitor-0001", T0 + sec(100))
    assert back.session.id == r.session.id and back.hold_until == T0 + sec(1000)
    assert back.session.left_at is None


def test_expired_hold_starts_a_new_session_and_closes_the_old_assignment(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1, hold_seconds=600)
    r = v(db, t.site, "visitor-0001", T0)
    later = v(db, t.site, "visitor-0001", T0 + sec(601))
    assert later.session.id != r.session.id and later.number.id == r.number.id
    old, new = assignments(db)
    assert old.ended_at == T0 + sec(600) and new.started_at == T0 + sec(601)
    hb = visits.heartbeat(db, t.site.site_key, {"session_id": r.session.public_id}, now=T0 + sec(602))
    assert not hb.live
    n = db.get(TrackingNumber, r.number.id, populate_existing=True)
    assert n.held_by_session_id == later.session.id  # the stale heartbeat took nothing back


def test_least_recently_released_number_first(db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 3, hold_seconds=100)
    a = v(db, t.site, "visitor-000a", T0)
    b = v(db, t.site, "visitor-000b", T0 + sec(10))
    c = v(db, t.site, "visitor-000c", T0 + sec(20))
    assert len({a.number.id, b.number.id, c.number.id}) == 3
    # b leaves early: its hold ends first, then a's, then c's.
    visits.release(db, t.site.site_key, {"session_id": b.session.public_id}, now=T0 + sec(30))
    pool.grace_seconds = 5
    db.commit()
    visits.release(db, t.site.site_key, {"session_id": b.session.public_id}, now=T0 + sec(31))
    order = [v(db, t.site, f"visitor-100{i}", T0 + sec(500 + i)).number.id for i in range(3)]
    assert order == [b.number.id, a.number.id, c.number.id]
    n = db.get(TrackingNumber, b.number.id, populate_existing=True)
    assert n.released_at == T0 + sec(36)


def test_never_used_numbers_go_before_rested_ones(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 2, hold_seconds=100)
    first = v(db, t.site, "visitor-000a", T0)
    # a's hold expired, but the other number has never been used: it goes first.
    second = v(db, t.site, "visitor-000b", T0 + sec(500))
    assert second.number.id != first.number.id


def test_all_held_gives_fallback_and_records_it(db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 2)
    held = {v(db, t.site, f"visitor-000{i}", T0).number.id for i in range(2)}
    r = v(db, t.site, "visitor-0009", T0 + sec(1))
    assert r.number.id == pool.fallback_number_id and r.number.id not in held
    ev = db.scalars(select(FallbackEvent)).one()
    assert (ev.pool_id, ev.session_id, ev.at) == (pool.id, r.session.id, T0 + sec(1))
    assert r.session.number_id == pool.fallback_number_id
    # The fallback number is never taken as a pool number, and no assignment is written for it.
    assert len(assignments(db)) == 2


def test_fallback_number_not_active_means_no_swap(db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 1)
    db.get(TrackingNumber, pool.fallback_number_id).status = NumberStatus.RETIRED
    db.commit()
    v(db, t.site, "visitor-0001", T0)
    r = v(db, t.site, "visitor-0002", T0)
    assert r.number is None and count(db, FallbackEvent) == 1


def test_quarantined_and_retired_numbers_are_never_handed_out(db) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 3)
    nums = pool_numbers(db, pool)
    nums[0].status = NumberStatus.QUARANTINED
    nums[1].status = NumberStatus.RETIRED
    db.commit()
    got = [v(db, t.site, f"visitor-000{i}", T0 + sec(i)).number.id for i in range(3)]
    assert got[0] == nums[2].id and got[1:] == [pool.fallback_number_id] * 2


def test_static_number_for_the_channel_wins(db) -> None:
    t = make_tenant(db)
    ch = make_channel(db, t.site, "Yandex", [{"utm_source": "yandex"}])
    static = make_static(db, ch)
    make_pool(db, t.site, 2)
    r = v(db, t.site, "visitor-0001", T0, url="https://acme.example/?utm_source=yandex")
    assert r.number.id == static.id and r.session.channel_id == ch.id
    assert assignments(db) == []  # static numbers are not held
    # A quarantined static number is skipped: the visit gets a pool number.
    db.get(TrackingNumber, static.id).status = NumberStatus.QUARANTINED
    db.commit()
    r2 = v(db, t.site, "visitor-0002", T0, utm_source="yandex")
    assert r2.number.pool_id is not None


def test_pool_serves_only_its_channels_and_combined_mode(db) -> None:
    t = make_tenant(db)
    ads = make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    seo = make_channel(db, t.site, "SEO", [{"referrer_domain": "google.com"}], position=2)
    billboard = make_channel(db, t.site, "Billboard", [], offline=True)
    bill_number = make_static(db, billboard)
    ads_pool = make_pool(db, t.site, 2, name="Ads", channels=[ads])
    rest_pool = make_pool(db, t.site, 2, name="Everything else")
    r_ads = v(db, t.site, "visitor-0001", T0, gclid="Cj0")
    r_seo = v(db, t.site, "visitor-0002", T0, referrer="https://www.google.com/")
    r_direct = v(db, t.site, "visitor-0003", T0)
    assert r_ads.number.pool_id == ads_pool.id
    assert r_seo.number.pool_id == rest_pool.id and r_seo.session.channel_id == seo.id
    assert r_direct.number.pool_id == rest_pool.id
    # rest_pool's 2 numbers are now held: the next direct visitor gets its fallback, not a free ads number.
    r_more = v(db, t.site, "visitor-0004", T0)
    assert r_more.number.id == rest_pool.fallback_number_id
    # The offline channel's static number is untouched by web traffic.
    assert db.get(TrackingNumber, bill_number.id, populate_existing=True).held_by_session_id is None


def test_pool_restricted_to_other_channels_leaves_page_alone(db) -> None:
    t = make_tenant(db)
    ads = make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    make_pool(db, t.site, 2, channels=[ads])
    r = v(db, t.site, "visitor-0001", T0)
    assert r.number is None and r.session.hold_until is not None


def test_new_ad_click_starts_a_new_session_and_frees_the_old_number(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 2)
    first = v(db, t.site, "visitor-0001", T0, utm_source="yandex")
    second = v(db, t.site, "visitor-0001", T0 + sec(60), gclid="abc")
    assert second.session.id != first.session.id
    old = assignments(db, first.number.id)[0]
    assert old.ended_at == T0 + sec(60)
    n = db.get(TrackingNumber, first.number.id, populate_existing=True)
    assert n.held_by_session_id in (None, second.session.id)


def test_promo_codes_unique_among_live_sessions(db) -> None:
    t = make_tenant(db)
    t.site.promo_codes_enabled = True
    db.commit()
    make_pool(db, t.site, 2)
    codes = [v(db, t.site, f"visitor-{i:04d}", T0 + sec(i)).session.promo_code for i in range(40)]
    assert all(c and c.isdigit() and len(c) == 5 for c in codes)
    assert len(set(codes)) == 40
    again = v(db, t.site, "visitor-0000", T0 + sec(50))
    assert again.session.promo_code == codes[0]


def test_visit_records_attribution_and_device(db) -> None:
    t = make_tenant(db)
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
    r = visits.visit(
        db,
        t.site.site_key,
        {
            "visitor_id": "visitor-0001",
            "url": "https://acme.example/p?utm_source=yandex&utm_medium=cpc&utm_term=okna&yclid=777",
            "utm_campaign": "spring",
            "referrer": "https://yandex.ru/",
            "ym_uid": "1700000000123",
            "ga": "GA1.1.1234567.1700000000",
            "screen": "390x844",
            "extra_unknown_key": 1,
        },
        now=T0,
        user_agent=ua,
    )
    s = db.get(VisitSession, r.session.id, populate_existing=True)
    assert (s.utm_source, s.utm_medium, s.utm_campaign, s.utm_term, s.yclid) == (
        "yandex",
        "cpc",
        "spring",
        "okna",
        "777",
    )
    assert (s.ym_client_id, s.ga_client_id, s.device, s.screen) == (
        "1700000000123",
        "1234567.1700000000",
        "mobile",
        "390x844",
    )
    assert s.referrer == "https://yandex.ru/" and s.user_agent == ua and s.started_at == T0


@pytest.mark.parametrize(
    ("ua", "device"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0", "desktop"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) Chrome/120 Safari/537.36", "tablet"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)", "tablet"),
        ("", "desktop"),
        (None, "desktop"),
    ],
)
def test_device_from_user_agent(ua, device) -> None:
    assert visits.device_from_user_agent(ua) == device


@pytest.mark.parametrize(
    "body",
    [
        [],
        "visitor",
        {},
        {"visitor_id": "short"},
        {"visitor_id": "has spaces in it"},
        {"visitor_id": "visitor-0001", "url": 5},
        {"visitor_id": "visitor-0001", "utm_source": "x" * 256},
        {"visitor_id": "visitor-0001", "ym_uid": "abc"},
    ],
)
def test_invalid_visits_change_nothing(db, body) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1)
    with pytest.raises(visits.InvalidVisit):
        visits.visit(db, t.site.site_key, body, now=T0)
    assert count(db, VisitSession) == 0 and count(db, NumberAssignment) == 0


def test_unknown_site_and_session(db) -> None:
    t = make_tenant(db)
    with pytest.raises(visits.UnknownSite):
        visits.visit(db, "nope", {"visitor_id": "visitor-0001"}, now=T0)
    with pytest.raises(visits.UnknownSession):
        visits.heartbeat(db, t.site.site_key, {"session_id": "nope"}, now=T0)
    other = make_tenant(db, "Other")
    r = v(db, other.site, "visitor-0001", T0)
    # A session id of another site is unknown here.
    with pytest.raises(visits.UnknownSession):
        visits.release(db, t.site.site_key, {"session_id": r.session.public_id}, now=T0)
    assert count(db, VisitSession) == 1


def test_number_quarantined_while_held_is_not_extended(db) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 2)
    r = v(db, t.site, "visitor-0001", T0)
    db.get(TrackingNumber, r.number.id).status = NumberStatus.QUARANTINED
    db.commit()
    hb = visits.heartbeat(db, t.site.site_key, {"session_id": r.session.public_id}, now=T0 + sec(10))
    assert not hb.live
    again = v(db, t.site, "visitor-0001", T0 + sec(20))
    assert again.session.id != r.session.id and again.number.id != r.number.id


def test_static_number_retired_mid_session_moves_the_visitor_on(db) -> None:
    t = make_tenant(db)
    ch = make_channel(db, t.site, "Yandex", [{"utm_source": "yandex"}])
    first, second = make_static(db, ch), make_static(db, ch)
    r = v(db, t.site, "visitor-0001", T0, utm_source="yandex")
    assert r.number.id == first.id
    db.get(TrackingNumber, first.id).status = NumberStatus.RETIRED
    db.commit()
    again = v(db, t.site, "visitor-0001", T0 + sec(5), utm_source="yandex")
    assert again.session.id != r.session.id and again.number.id == second.id
