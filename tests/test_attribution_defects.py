"""Regression tests for the attribution defects an end-to-end measurement found, on both databases."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_channel, make_pool, make_tenant
from tests.test_attribution import _call
from tracking import allocation, visits
from tracking.models import (
    AttributionMethod,
    CallCandidate,
    NumberAssignment,
    Pool,
    TrackingNumber,
    VisitSession,
)
from tracking.models.numbers import NumberStatus

T0 = h.T0
M = dt.timedelta(minutes=1)
S = dt.timedelta(seconds=1)


def _setup(db: Session):
    t = make_tenant(db)
    ads, seo = h.make_channel(db, t.site, "Ads"), h.make_channel(db, t.site, "SEO")
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    return t, integ, ads, seo


def test_a_hold_that_started_after_the_call_never_wins(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    number = p.numbers[0]
    left = h.make_visit(db, t, seo, started=T0, last_seen=T0 + 2 * M, left=T0 + 2 * M)
    h.make_hold(db, left, number, T0, T0 + 7 * M, ended=T0 + 7 * M)
    # The webhook arrives late: by then a newcomer took the number, 20 s after the call.
    newcomer = h.make_visit(db, t, ads, started=T0 + 8 * M + 20 * S, last_seen=T0 + 9 * M)
    h.make_hold(db, newcomer, number, T0 + 8 * M + 20 * S, T0 + 24 * M)
    call = _call(db, integ, number.e164, T0 + 8 * M)
    assert call.session_id == left.id and call.channel_id == seo.id
    ids = db.scalars(select(CallCandidate.session_id).where(CallCandidate.call_id == call.id)).all()
    assert newcomer.id not in ids


def test_latest_holder_after_the_window_with_confidence_decaying_with_time(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    number = p.numbers[0]
    s = h.make_visit(db, t, ads, started=T0, last_seen=T0 + 2 * M, left=T0 + 2 * M)
    # Left at +2 min, hold cut to the 5-minute grace: nobody held the number since.
    h.make_hold(db, s, number, T0, T0 + 7 * M, ended=T0 + 7 * M)
    soon = _call(db, integ, number.e164, T0 + 13 * M, caller="+79001110001")
    assert soon.attribution_method == AttributionMethod.DYNAMIC
    assert soon.session_id == s.id and soon.channel_id == ads.id
    later = _call(db, integ, number.e164, T0 + 3 * 60 * M, caller="+79001110002")
    much_later = _call(db, integ, number.e164, T0 + 30 * 60 * M, caller="+79001110003")
    confidences = [
        db.scalars(select(CallCandidate.score).where(CallCandidate.call_id == c.id)).one()
        for c in (soon, later, much_later)
    ]
    assert confidences[0] > confidences[1] > confidences[2] > 0
    assert soon.session_confidence == confidences[0]


def test_latest_holder_is_less_certain_on_a_busy_number(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    quiet, busy = p.numbers
    # The busy number had a holder every half hour before the last one; the quiet one only the last.
    for i in range(12):
        start = T0 - 6 * 60 * M + 30 * i * M
        old = h.make_visit(db, t, seo, started=start, last_seen=start + M, left=start + M)
        h.make_hold(db, old, busy, start, start + 6 * M, ended=start + 6 * M)
    last = {}
    for number in (quiet, busy):
        s = h.make_visit(db, t, ads, started=T0, last_seen=T0 + 2 * M, left=T0 + 2 * M)
        h.make_hold(db, s, number, T0, T0 + 7 * M, ended=T0 + 7 * M)
        last[number.id] = s
    c_quiet = _call(db, integ, quiet.e164, T0 + 40 * M, caller="+79001110001")
    c_busy = _call(db, integ, busy.e164, T0 + 40 * M, caller="+79001110002")
    p_quiet = db.scalar(
        select(CallCandidate.score).where(
            CallCandidate.call_id == c_quiet.id, CallCandidate.session_id == last[quiet.id].id
        )
    )
    p_busy = db.scalar(
        select(CallCandidate.score).where(
            CallCandidate.call_id == c_busy.id, CallCandidate.session_id == last[busy.id].id
        )
    )
    assert p_quiet > p_busy


def test_a_single_live_holder_is_not_certain_when_the_number_was_busy_before(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    quiet, busy = p.numbers
    for i in range(16):
        start = T0 - 8 * 60 * M + 30 * i * M
        old = h.make_visit(db, t, seo, started=start, last_seen=start + 3 * M, left=start + 3 * M)
        h.make_hold(db, old, busy, start, start + 8 * M, ended=start + 8 * M)
    live = {}
    for number in (quiet, busy):
        s = h.make_visit(db, t, ads, started=T0, last_seen=T0 + 3 * M)
        h.make_hold(db, s, number, T0, T0 + 18 * M)
        live[number.id] = s
    c_quiet = _call(db, integ, quiet.e164, T0 + 4 * M, caller="+79001110001")
    c_busy = _call(db, integ, busy.e164, T0 + 4 * M, caller="+79001110002")
    assert c_quiet.session_id == live[quiet.id].id and c_busy.session_id == live[busy.id].id
    # Late callers of the earlier holders are real alternatives: the live holder is less certain there.
    assert c_busy.session_confidence < c_quiet.session_confidence
    assert c_busy.channel_confidence < c_quiet.channel_confidence


def test_a_redial_goes_to_the_session_of_the_earlier_call_even_outside_the_window(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    number = p.numbers[0]
    first = h.make_visit(
        db, t, seo, started=T0, last_seen=T0 + 3 * M, left=T0 + 3 * M, visitor="visitor-first"
    )
    h.make_hold(db, first, number, T0, T0 + 8 * M, ended=T0 + 8 * M)
    missed = _call(db, integ, number.e164, T0 + 2 * M, caller="+79005550000")
    assert missed.session_id == first.id
    # 25 minutes later the number is on another visitor's page; the first caller tries again.
    other = h.make_visit(db, t, ads, started=T0 + 20 * M, last_seen=T0 + 24 * M + 30 * S)
    h.make_hold(db, other, number, T0 + 20 * M, T0 + 40 * M)
    redial = _call(db, integ, number.e164, T0 + 25 * M, caller="+79005550000")
    assert redial.session_id == first.id and redial.channel_id == seo.id
    cand = db.scalars(
        select(CallCandidate).where(CallCandidate.call_id == redial.id, CallCandidate.session_id == first.id)
    ).one()
    assert cand.reasons["earlier_calls"] and cand.reasons["caller_link"] == "same"
    # The same call from a stranger goes to the visitor on the page.
    stranger = _call(db, integ, number.e164, T0 + 25 * M, caller="+79005550001")
    assert stranger.session_id == other.id


def test_a_redial_names_the_earlier_session_even_when_it_never_held_this_number(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    first = h.make_visit(db, t, seo, started=T0, last_seen=T0 + 3 * M, left=T0 + 3 * M)
    h.make_hold(db, first, p.numbers[0], T0, T0 + 8 * M, ended=T0 + 8 * M)
    _call(db, integ, p.numbers[0].e164, T0 + 2 * M, caller="+79005550000")
    # A second call, to the other number that nobody has held: only the earlier call explains it.
    again = _call(db, integ, p.numbers[1].e164, T0 + 10 * M, caller="+79005550000")
    assert again.session_id == first.id and again.attribution_method == AttributionMethod.DYNAMIC


def test_a_fallback_session_takes_a_pool_number_once_one_is_free(db: Session) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 1, hold_seconds=600, grace_seconds=60)
    a = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-000a"}, now=T0)
    b = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-000b"}, now=T0 + S)
    assert b.number.id == pool.fallback_number_id
    visits.release(db, t.site.site_key, {"session_id": a.session.public_id}, now=T0 + M)
    # Within a's grace nothing is free: b keeps the fallback number.
    hb = visits.heartbeat(db, t.site.site_key, {"session_id": b.session.public_id}, now=T0 + M + 30 * S)
    assert hb.live and not hb.renumbered and hb.number.id == pool.fallback_number_id
    hb = visits.heartbeat(db, t.site.site_key, {"session_id": b.session.public_id}, now=T0 + 3 * M)
    assert hb.live and hb.renumbered and hb.session.id == b.session.id
    assert hb.number.id == a.number.id and hb.hold_until == T0 + 3 * M + 600 * S
    db.expire_all()
    number = db.get(TrackingNumber, a.number.id)
    assert number.held_by_session_id == b.session.id
    assert db.get(VisitSession, b.session.id).number_id == a.number.id
    # From then on it is an ordinary pool hold: the next heartbeat extends it.
    hb = visits.heartbeat(db, t.site.site_key, {"session_id": b.session.public_id}, now=T0 + 4 * M)
    assert hb.live and not hb.renumbered and hb.hold_until == T0 + 4 * M + 600 * S


def test_a_fallback_session_takes_a_pool_number_on_its_next_page(db: Session) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 1, hold_seconds=120)
    a = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-000a"}, now=T0)
    b = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-000b"}, now=T0 + S)
    assert b.number.id == pool.fallback_number_id
    visits.heartbeat(db, t.site.site_key, {"session_id": b.session.public_id}, now=T0 + M)
    page = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-000b"}, now=T0 + 3 * M)
    assert page.session.id == b.session.id and page.number.id == a.number.id


def test_the_fallback_upgrade_through_the_public_heartbeat(app, client, db: Session) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1, hold_seconds=60, grace_seconds=10)
    headers = {"Origin": "https://acme.example", "Content-Type": "text/plain"}
    first = client.post(
        f"/t/v1/{t.site.site_key}/visit", json={"visitor_id": "visitor-000a"}, headers=headers
    )
    second = client.post(
        f"/t/v1/{t.site.site_key}/visit", json={"visitor_id": "visitor-000b"}, headers=headers
    )
    assert second.get_json()["number"]["e164"] != first.get_json()["number"]["e164"]
    # Expire the first hold by hand (the endpoints use the real clock).
    number = db.scalars(select(TrackingNumber).where(TrackingNumber.pool_id.is_not(None))).one()
    number.held_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    db.commit()
    beat = client.post(
        f"/t/v1/{t.site.site_key}/heartbeat",
        json={"session_id": second.get_json()["session_id"], "visitor_id": "visitor-000b"},
        headers=headers,
    ).get_json()
    assert beat["live"] is True and beat["number"]["e164"] == first.get_json()["number"]["e164"]
    assert beat["replace"]


def test_a_session_id_alone_is_never_told_the_number_it_moved_to(app, client, db: Session) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 1, hold_seconds=60, grace_seconds=10)
    headers = {"Origin": "https://acme.example", "Content-Type": "text/plain"}
    client.post(f"/t/v1/{t.site.site_key}/visit", json={"visitor_id": "visitor-000a"}, headers=headers)
    second = client.post(
        f"/t/v1/{t.site.site_key}/visit", json={"visitor_id": "visitor-000b"}, headers=headers
    ).get_json()
    number = db.scalars(select(TrackingNumber).where(TrackingNumber.pool_id.is_not(None))).one()
    number.held_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    db.commit()
    beat = client.post(
        f"/t/v1/{t.site.site_key}/heartbeat", json={"session_id": second["session_id"]}, headers=headers
    ).get_json()
    db.expire_all()
    # The session did move to the pool number, but a request that knows only its id is not told which.
    assert (
        db.scalars(select(VisitSession).where(VisitSession.public_id == second["session_id"])).one().number_id
        == number.id
    )
    assert beat["live"] is True and "number" not in beat and "replace" not in beat


def test_a_session_restarted_from_an_inner_page_inherits_the_live_source(db: Session) -> None:
    t = make_tenant(db)
    ads = make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    seo = make_channel(db, t.site, "SEO", [{"referrer_domain": "google.com"}], position=2)
    make_pool(db, t.site, 3, hold_seconds=900)
    first = visits.visit(
        db,
        t.site.site_key,
        {"visitor_id": "visitor-0001", "url": "https://acme.example/?gclid=Cj0&utm_campaign=spring"},
        now=T0,
    )
    assert first.session.channel_id == ads.id
    # The tab slept for 40 minutes (no heartbeats, the hold ran out); it wakes on an inner page.
    woke = visits.visit(
        db,
        t.site.site_key,
        {
            "visitor_id": "visitor-0001",
            "url": "https://acme.example/catalog",
            "referrer": "https://acme.example/?gclid=Cj0",
        },
        now=T0 + 40 * M,
    )
    assert woke.session.id != first.session.id
    assert woke.session.channel_id == ads.id
    assert (woke.session.gclid, woke.session.utm_campaign) == ("Cj0", "spring")
    assert woke.session.landing_url == "https://acme.example/catalog"
    # A visit from elsewhere is resolved on its own.
    elsewhere = visits.visit(
        db,
        t.site.site_key,
        {"visitor_id": "visitor-0001", "url": "https://acme.example/", "referrer": "https://www.google.com/"},
        now=T0 + 90 * M,
    )
    assert elsewhere.session.channel_id == seo.id and elsewhere.session.gclid is None


def test_a_typed_in_return_long_after_is_its_own_session(db: Session) -> None:
    t = make_tenant(db)
    ads = make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    make_pool(db, t.site, 2, hold_seconds=300)
    visits.visit(
        db, t.site.site_key, {"visitor_id": "visitor-0001", "url": "https://acme.example/?gclid=C"}, now=T0
    )
    soon = visits.visit(
        db, t.site.site_key, {"visitor_id": "visitor-0001", "url": "https://acme.example/"}, now=T0 + 20 * M
    )
    assert soon.session.channel_id == ads.id
    later = visits.visit(
        db,
        t.site.site_key,
        {"visitor_id": "visitor-0001", "url": "https://acme.example/"},
        now=T0 + 5 * 60 * M,
    )
    assert later.session.channel_id != ads.id


def test_a_channel_coherent_pool_keeps_numbers_in_their_channel(db: Session) -> None:
    t = make_tenant(db)
    ads = make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    make_channel(db, t.site, "SEO", [{"referrer_domain": "google.com"}], position=2)
    make_pool(db, t.site, 3, hold_seconds=60, grace_seconds=10)
    seo_visit = {"referrer": "https://www.google.com/"}
    s1 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0001", **seo_visit}, now=T0)
    a1 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0002", "gclid": "g1"}, now=T0 + S)
    s2 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0003", **seo_visit}, now=T0 + 2 * S)
    assert a1.session.channel_id == ads.id
    # Later, every hold is over. The SEO numbers rested longer, yet an ads visitor gets the ads number...
    a2 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0004", "gclid": "g2"}, now=T0 + 10 * M)
    assert a2.number.id == a1.number.id
    # ...and a second ads visitor borrows the longest-rested SEO number, which stays an SEO number.
    a3 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0005", "gclid": "g3"}, now=T0 + 10 * M + S)
    assert a3.number.id == s1.number.id
    db.expire_all()
    assert db.get(TrackingNumber, s1.number.id).home_channel_id == s1.session.channel_id
    # An SEO visitor later gets an SEO number, not the ads ones that rested longer.
    s3 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0006", **seo_visit}, now=T0 + 30 * M)
    assert s3.number.id in (s1.number.id, s2.number.id)
    # A number its channel left idle for hours moves to the channel that borrows it.
    late = T0 + 30 * M + allocation.HOME_IDLE + 5 * M
    a4 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0007", "gclid": "g4"}, now=late)
    a5 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0008", "gclid": "g5"}, now=late + S)
    a6 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0009", "gclid": "g6"}, now=late + 2 * S)
    db.expire_all()
    homes = {db.get(TrackingNumber, r.number.id).home_channel_id for r in (a4, a5, a6)}
    assert homes == {ads.id}


def test_a_pool_can_opt_out_of_channel_coherence(db: Session) -> None:
    t = make_tenant(db)
    make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    make_channel(db, t.site, "SEO", [{"referrer_domain": "google.com"}], position=2)
    make_pool(db, t.site, 2, hold_seconds=60, grace_seconds=10, channel_coherent=False)
    s1 = visits.visit(
        db, t.site.site_key, {"visitor_id": "visitor-0001", "referrer": "https://google.com/"}, now=T0
    )
    a1 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0002", "gclid": "g1"}, now=T0 + S)
    assert s1.number.id != a1.number.id
    # Least recently used: the SEO number rested longer, so the next ads visitor gets it.
    a2 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0003", "gclid": "g2"}, now=T0 + 10 * M)
    assert a2.number.id == s1.number.id


def test_quarantined_numbers_stay_out_of_a_coherent_pool(db: Session) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 2)
    first = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0001"}, now=T0)
    db.get(TrackingNumber, first.number.id).status = NumberStatus.QUARANTINED
    db.commit()
    again = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0002"}, now=T0 + 30 * M)
    assert again.number.id not in (first.number.id, pool.fallback_number_id)


def test_channel_coherence_is_a_pool_setting_of_the_api(client, db: Session) -> None:
    t = make_tenant(db)
    pool = make_pool(db, t.site, 2)
    headers = {"Authorization": f"Bearer {t.token}"}
    got = client.get(f"/api/v1/pools/{pool.id}", headers=headers).get_json()
    assert got["channel_coherent"] is True
    off = client.patch(f"/api/v1/pools/{pool.id}", json={"channel_coherent": False}, headers=headers)
    assert off.status_code == 200 and off.get_json()["channel_coherent"] is False
    bad = client.patch(f"/api/v1/pools/{pool.id}", json={"channel_coherent": "no"}, headers=headers)
    assert bad.status_code == 400
    db.expire_all()
    assert db.get(Pool, pool.id).channel_coherent is False


def test_a_returning_caller_on_a_new_number_is_the_new_session(db: Session) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    old = h.make_visit(db, t, seo, started=T0, last_seen=T0 + 3 * M, left=T0 + 3 * M, visitor="visitor-same")
    h.make_hold(db, old, p.numbers[0], T0, T0 + 8 * M, ended=T0 + 8 * M)
    first = _call(db, integ, p.numbers[0].e164, T0 + 2 * M, caller="+79005550000")
    assert first.session_id == old.id
    # Minutes later the visitor is back through an ad, is shown the other number and calls it.
    new = h.make_visit(db, t, ads, started=T0 + 5 * M, last_seen=T0 + 6 * M, visitor="visitor-same")
    h.make_hold(db, new, p.numbers[1], T0 + 5 * M, T0 + 21 * M)
    again = _call(db, integ, p.numbers[1].e164, T0 + 6 * M, caller="+79005550000")
    assert again.session_id == new.id and again.channel_id == ads.id
    cand = db.scalars(
        select(CallCandidate).where(CallCandidate.call_id == again.id, CallCandidate.session_id == old.id)
    ).one()
    assert cand.reasons["earlier_calls"][0][2] is False


def _release(db: Session, site, r: visits.VisitResult, now: dt.datetime) -> None:
    visits.release(db, site.site_key, {"session_id": r.session.public_id}, now=now)


def _beat(db: Session, site, r: visits.VisitResult, now: dt.datetime) -> None:
    assert visits.heartbeat(db, site.site_key, {"session_id": r.session.public_id}, now=now).live


def test_a_full_channel_reclaims_its_own_leavers_number_before_borrowing(db: Session) -> None:
    t = make_tenant(db)
    make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    make_channel(db, t.site, "SEO", [{"referrer_domain": "google.com"}], position=2)
    make_pool(db, t.site, 2, hold_seconds=900, grace_seconds=300)
    seo = {"referrer": "https://www.google.com/"}
    s1 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0001", **seo}, now=T0)
    a1 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0002", "gclid": "g1"}, now=T0 + S)
    _release(db, t.site, a1, T0 + 2 * M)  # the ads number is free at T0 + 7 min
    _release(db, t.site, s1, T0 + 3 * M)  # the SEO visitor left: its grace runs to T0 + 8 min
    # An SEO visitor a minute later: the ads number is free, but borrowing it would put a second channel's
    # sessions on it; the SEO leaver's number is taken instead, and its hold ends now.
    s2 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0003", **seo}, now=T0 + 8 * M - S)
    assert s2.number.id == s1.number.id
    db.expire_all()
    old = db.scalars(select(NumberAssignment).where(NumberAssignment.session_id == s1.session.id)).one()
    assert old.ended_at == T0 + 8 * M - S
    assert not visits.heartbeat(
        db, t.site.site_key, {"session_id": s1.session.public_id}, now=T0 + 8 * M
    ).live
    # A holder still on its page is never reclaimed: the next SEO visitor borrows the free ads number.
    s3 = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0004", **seo}, now=T0 + 8 * M)
    assert s3.number.id == a1.number.id
    assert db.get(TrackingNumber, a1.number.id).home_channel_id == a1.session.channel_id


def test_an_exhausted_pool_reclaims_a_quiet_hold_before_falling_back(db: Session) -> None:
    t = make_tenant(db)
    make_channel(db, t.site, "Google Ads", [{"has_gclid": True}], position=1)
    pool = make_pool(db, t.site, 2, hold_seconds=900, grace_seconds=300)
    hidden = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0001"}, now=T0)
    reading = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0002"}, now=T0)
    for k in range(1, 6):
        _beat(db, t.site, reading, T0 + 2 * k * M)
    # Both holds run to T0 + 15 min at least; an ads visitor (nothing of its channel to reclaim) takes the
    # number of the tab that has been silent for 10 minutes, not the one still heartbeating.
    ads = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0003", "gclid": "g1"}, now=T0 + 10 * M)
    assert ads.number.id == hidden.number.id
    # The moved number keeps its home channel; with every holder alive, the next visitor falls back.
    assert db.get(TrackingNumber, hidden.number.id).home_channel_id == hidden.session.channel_id
    last = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0004"}, now=T0 + 10 * M + S)
    assert last.number.id == pool.fallback_number_id


def test_a_quiet_hold_is_not_reclaimed_while_numbers_are_free(db: Session) -> None:
    t = make_tenant(db)
    make_pool(db, t.site, 2, hold_seconds=900, grace_seconds=300)
    hidden = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0001"}, now=T0)
    other = visits.visit(db, t.site.site_key, {"visitor_id": "visitor-0002"}, now=T0 + 10 * M)
    assert other.number.id != hidden.number.id
    db.expire_all()
    assert db.get(TrackingNumber, hidden.number.id).held_by_session_id == hidden.session.id


def test_the_call_takes_the_likeliest_channel_even_when_its_likeliest_session_is_of_another(
    db: Session,
) -> None:
    t, integ, ads, seo = _setup(db)
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    number = p.numbers[0]
    # One ads visitor gone 5 minutes, three SEO visitors gone 6-7 minutes: the ads visitor is the likeliest
    # single caller, but the caller more likely came through SEO.
    call_at = T0 + 60 * M
    lone = h.make_visit(db, t, ads, started=call_at - 9 * M, last_seen=call_at - 5 * M, left=call_at - 5 * M)
    seos = [
        h.make_visit(db, t, seo, started=call_at - (20 - k) * M, last_seen=call_at - gap, left=call_at - gap)
        for k, gap in enumerate((7 * M, 6 * M + 30 * S, 6 * M))
    ]
    for k, s in enumerate([*seos, lone]):
        h.make_hold(db, s, number, call_at - (20 - 3 * k) * M, call_at - 3 * M, ended=call_at - 3 * M)
    call = _call(db, integ, number.e164, call_at)
    probs = {c.session_id: c.score for c in call.candidates}
    assert probs[lone.id] == max(probs.values())
    assert sum(probs[s.id] for s in seos) > probs[lone.id]
    assert call.channel_id == seo.id
    assert call.session_id in (None, seos[-1].id)
