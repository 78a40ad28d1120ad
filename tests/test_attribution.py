"""Attribution of calls: static, scored dynamic candidates, unidentified, overflow, promo, manual, history."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_tenant
from tracking import attribution
from tracking.attribution_model import MODEL_VERSION, PARAMS, calibrated
from tracking.calls import ingest
from tracking.models import AttributionChange, AttributionMethod, Call, CallCandidate, FallbackEvent
from tracking.telephony.base import EventKind, ProviderEvent

T0 = h.T0
M = dt.timedelta(minutes=1)


def _call(
    db: Session, integ, number: str, at: dt.datetime, caller: str | None = "+79001234567", cid: str = ""
) -> Call:
    cid = cid or f"{number}-{at.isoformat()}-{caller}"
    ingest(
        db,
        integ,
        ProviderEvent(
            provider="generic",
            provider_call_id=cid,
            kind=EventKind.START,
            occurred_at=at,
            caller=caller,
            called=number,
        ),
    )
    db.commit()
    return db.scalars(select(Call).where(Call.provider_call_id == cid)).one()


@pytest.fixture
def setup(db: Session):
    t = make_tenant(db)
    direct, ads, seo = (
        h.make_channel(db, t.site, "Direct"),
        h.make_channel(db, t.site, "Yandex Ads"),
        h.make_channel(db, t.site, "SEO"),
    )
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    return t, integ, {"direct": direct, "ads": ads, "seo": seo}


def test_static_number_gives_its_channel(db: Session, setup) -> None:
    t, integ, ch = setup
    h.make_static(db, ch["seo"], e164="+74951110000")
    call = _call(db, integ, "+74951110000", T0)
    assert (call.attribution_method, call.channel_id, call.channel_confidence, call.session_id) == (
        AttributionMethod.STATIC,
        ch["seo"].id,
        1.0,
        None,
    )


def test_single_live_holder_wins_with_high_confidence(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 3)
    s = h.make_visit(db, t, ch["ads"], started=T0, last_seen=T0 + 3 * M, gclid="g1")
    h.make_hold(db, s, p.numbers[0], T0, T0 + 18 * M)
    call = _call(db, integ, p.numbers[0].e164, T0 + 4 * M)
    assert call.attribution_method == AttributionMethod.DYNAMIC
    assert call.session_id == s.id and call.channel_id == ch["ads"].id and call.candidates_count == 1
    assert call.session_confidence > 0.9 and call.channel_confidence >= call.session_confidence
    cands = db.scalars(select(CallCandidate).where(CallCandidate.call_id == call.id)).all()
    assert [c.session_id for c in cands] == [s.id] and cands[0].reasons["page_alive"] is True


def test_recent_active_session_beats_an_earlier_holder_in_grace(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 3)
    number = p.numbers[1]
    early = h.make_visit(db, t, ch["seo"], started=T0, last_seen=T0 + 2 * M, left=T0 + 3 * M)
    h.make_hold(db, early, number, T0, T0 + 17 * M, ended=T0 + 3 * M)
    late = h.make_visit(db, t, ch["ads"], started=T0 + 5 * M, last_seen=T0 + 7 * M)
    h.make_hold(db, late, number, T0 + 5 * M, T0 + 22 * M)
    call = _call(db, integ, number.e164, T0 + 7 * M)
    assert call.candidates_count == 2 and call.session_id == late.id and call.channel_id == ch["ads"].id
    assert 0.5 < call.session_confidence < 1.0
    # Different channels: channel confidence is the session's, up to the two calibrations.
    assert call.channel_confidence == pytest.approx(call.session_confidence, abs=0.01)


def test_uncertain_session_but_certain_channel(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 3)
    number = p.numbers[2]
    a = h.make_visit(db, t, ch["ads"], started=T0, last_seen=T0 + 4 * M, left=T0 + 5 * M)
    h.make_hold(db, a, number, T0, T0 + 19 * M, ended=T0 + 5 * M)
    b = h.make_visit(db, t, ch["ads"], started=T0 + 5 * M, last_seen=T0 + 5 * M)
    h.make_hold(db, b, number, T0 + 5 * M, T0 + 20 * M)
    call = _call(db, integ, number.e164, T0 + 6 * M)
    assert call.candidates_count == 2 and call.channel_id == ch["ads"].id
    assert call.session_confidence < 0.9
    assert call.channel_confidence > 0.95 and call.channel_confidence > call.session_confidence


def test_returning_caller_picks_the_known_visitor(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 2)
    first = h.make_visit(db, t, ch["seo"], started=T0, last_seen=T0 + M, visitor="v-known")
    h.make_hold(db, first, p.numbers[0], T0, T0 + 16 * M)
    earlier = _call(db, integ, p.numbers[0].e164, T0 + 2 * M, caller="+79005550000")
    assert earlier.session_id == first.id
    day2 = T0 + dt.timedelta(days=1)
    stranger = h.make_visit(db, t, ch["ads"], started=day2, last_seen=day2 + 2 * M)
    returning = h.make_visit(db, t, ch["seo"], started=day2, last_seen=day2 + M, visitor="v-known")
    h.make_hold(db, stranger, p.numbers[1], day2, day2 + 17 * M)
    h.make_hold(db, returning, p.numbers[1], day2, day2 + 16 * M)
    call = _call(db, integ, p.numbers[1].e164, day2 + 2 * M, caller="+79005550000")
    # The session behind the earlier call is a hypothesis too (a day later, an unlikely one).
    assert call.session_id == returning.id and call.candidates_count == 3
    cands = {
        c.session_id: c for c in db.scalars(select(CallCandidate).where(CallCandidate.call_id == call.id))
    }
    assert cands[returning.id].reasons["caller_link"] == "same"
    assert cands[stranger.id].reasons["caller_link"] == "other"
    assert cands[first.id].reasons["earlier_calls"] and not cands[first.id].reasons["held"]
    assert cands[returning.id].score > cands[stranger.id].score > 0
    assert cands[first.id].score < cands[stranger.id].score


def test_a_number_nobody_held_for_two_days_is_unidentified(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 2, channels=[ch["ads"]])
    old = h.make_visit(db, t, ch["ads"], started=T0, last_seen=T0)
    h.make_hold(db, old, p.numbers[0], T0, T0 + 15 * M, ended=T0 + 15 * M)
    call = _call(db, integ, p.numbers[0].e164, T0 + dt.timedelta(days=3))
    assert call.attribution_method == AttributionMethod.DYNAMIC_UNIDENTIFIED
    assert call.session_id is None and call.candidates_count == 0
    # The pool serves one channel, so the channel is known even though the session is not.
    assert call.channel_id == ch["ads"].id
    # A pool serving several channels gives no channel rather than pretending "direct".
    p2 = h.make_pool_setup(db, t.site, "+749533300", 1, channels=[ch["ads"], ch["seo"]])
    call2 = _call(db, integ, p2.numbers[0].e164, T0)
    assert call2.attribution_method == AttributionMethod.DYNAMIC_UNIDENTIFIED and call2.channel_id is None


def test_a_hold_within_grace_still_counts(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    s = h.make_visit(db, t, ch["seo"], started=T0, last_seen=T0 + M, left=T0 + 2 * M)
    h.make_hold(db, s, p.numbers[0], T0, T0 + 16 * M, ended=T0 + 2 * M)
    call = _call(db, integ, p.numbers[0].e164, T0 + 6 * M)
    assert call.session_id == s.id and call.attribution_method == AttributionMethod.DYNAMIC
    cand = db.scalars(select(CallCandidate).where(CallCandidate.call_id == call.id)).one()
    assert cand.reasons["page_alive"] is False and cand.reasons["within_hold"] is False


def test_fallback_number_is_overflow_with_the_channels_it_was_shown_to(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    for i in range(3):
        s = h.make_visit(db, t, ch["ads"] if i else ch["seo"], started=T0 + i * M)
        db.add(FallbackEvent(pool_id=p.pool.id, session_id=s.id, at=T0 + i * M))
    db.commit()
    call = _call(db, integ, p.fallback.e164, T0 + 5 * M)
    assert call.attribution_method == AttributionMethod.OVERFLOW and call.session_id is None
    assert call.channel_id == ch["ads"].id and call.channel_confidence == pytest.approx(2 / 3, abs=1e-3)


def test_promo_code_and_manual_channel_keep_history(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    shown = h.make_visit(db, t, ch["ads"], started=T0 - 30 * M, promo="K7Q2")
    h.make_visit(db, t, ch["seo"], started=T0 + 30 * M, promo="K7Q2")  # after the call: cannot be the caller
    call = _call(db, integ, p.numbers[0].e164, T0)
    assert call.attribution_method == AttributionMethod.DYNAMIC_UNIDENTIFIED
    with pytest.raises(attribution.UnknownPromoCode):
        attribution.set_promo_code(db, call, "NOPE", t.admin)
    attribution.set_promo_code(db, call, " k7q2 ", t.admin)
    db.commit()
    assert (call.attribution_method, call.session_id, call.channel_id) == (
        AttributionMethod.PROMO,
        shown.id,
        ch["ads"].id,
    )
    assert call.session_confidence == 1.0 and call.promo_code == "K7Q2"
    # A later event does not undo the operator's choice.
    ingest(
        db,
        integ,
        ProviderEvent(
            provider="generic",
            provider_call_id=call.provider_call_id,
            kind=EventKind.END,
            occurred_at=T0 + M,
            ended_at=T0 + M,
            started_at=T0 - M,
        ),
    )
    db.commit()
    assert call.attribution_method == AttributionMethod.PROMO
    attribution.set_manual_channel(db, call, ch["direct"].id, t.admin, "caller said: a friend told me")
    db.commit()
    assert (call.attribution_method, call.channel_id, call.session_id) == (
        AttributionMethod.MANUAL,
        ch["direct"].id,
        None,
    )
    history = db.scalars(
        select(AttributionChange).where(AttributionChange.call_id == call.id).order_by(AttributionChange.id)
    ).all()
    assert [(c.old_method, c.new_method, c.actor) for c in history] == [
        ("unmatched", "dynamic_unidentified", "system"),
        ("dynamic_unidentified", "promo", t.admin.email),
        ("promo", "manual", t.admin.email),
    ]
    assert history[2].old_channel_id == ch["ads"].id and history[2].new_channel_id == ch["direct"].id
    assert history[2].reason == "caller said: a friend told me" and history[2].user_id == t.admin.id


def test_score_is_a_probability_over_candidates_and_outsiders() -> None:
    at = T0 + 10 * M

    def mk(sid: int, ch: int, seen: dt.datetime, left: dt.datetime | None = None) -> attribution.Candidate:
        features = attribution.hold_features(
            call_at=at,
            started_at=T0,
            hold_until=T0 + 30 * M,
            ended_at=None,
            last_seen_at=seen,
            left_at=left,
            device="desktop",
            heartbeat_seconds=120,
        )
        return attribution.Candidate(sid, ch, f"v{sid}", features)

    cands = [mk(1, 1, at), mk(2, 1, at - 20 * M, at - 20 * M), mk(3, 2, at - 5 * M, at - 5 * M)]
    verdict = attribution.score(cands)
    assert verdict.session_id == 1
    assert 0 < verdict.outsider < 0.5
    assert sum(c.probability for c in cands) + verdict.outsider == pytest.approx(1.0)
    # The channel's confidence is its share of the probability, calibrated (three holds of the number), and
    # never below the named session's.
    channel_share = cands[0].probability + cands[1].probability
    assert verdict.channel_confidence == pytest.approx(
        max(calibrated(channel_share, PARAMS.channel_calibration, 3), verdict.session_confidence), abs=1e-3
    )
    assert verdict.session_confidence <= verdict.channel_confidence
    # The ranking follows the features: alive on the page, then gone 5 minutes, then gone 20 minutes.
    assert cands[0].probability > cands[2].probability > cands[1].probability


def test_below_the_thresholds_the_visit_or_everything_is_uncertain() -> None:
    at = T0 + 10 * M

    def gone(sid: int, ch: int, minutes: float) -> attribution.Candidate:
        seen = at - dt.timedelta(minutes=minutes)
        features = attribution.hold_features(
            call_at=at,
            started_at=seen - M,
            hold_until=seen + 5 * M,
            ended_at=seen + 5 * M,
            last_seen_at=seen,
            left_at=seen,
            device=None,
            heartbeat_seconds=120,
        )
        return attribution.Candidate(sid, ch, f"v{sid}", features)

    # Four sessions of one channel gone for about as long: the channel is known, the visit is not.
    strict = PARAMS.with_values(session_threshold=0.35, channel_threshold=0.4)
    same = [gone(1, 7, 30), gone(2, 7, 31), gone(3, 7, 32), gone(4, 7, 33)]
    verdict = attribution.score(same, strict)
    assert verdict.session_id is None and verdict.session_confidence is None
    assert verdict.channel_id == 7 and verdict.channel_confidence >= 0.4
    # Four sessions of four channels: nothing is likely enough to be named.
    mixed = [gone(1, 1, 30), gone(2, 2, 31), gone(3, 3, 32), gone(4, 4, 33)]
    verdict = attribution.score(mixed, strict)
    assert verdict.session_id is None and verdict.channel_id is None


def test_each_automatic_attribution_stores_the_model_version(db: Session, setup) -> None:
    t, integ, ch = setup
    p = h.make_pool_setup(db, t.site, "+749522200", 1)
    s = h.make_visit(db, t, ch["ads"], started=T0, last_seen=T0 + M)
    h.make_hold(db, s, p.numbers[0], T0, T0 + 16 * M)
    call = _call(db, integ, p.numbers[0].e164, T0 + 2 * M)
    assert call.attribution_model == MODEL_VERSION and call.session_id == s.id
