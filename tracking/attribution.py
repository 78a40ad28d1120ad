"""Which advertising brought a call: static numbers, scored pool candidates, promo codes, manual choice.

A call to a pool number is explained by one of several hypotheses: a session that held the number before
the call (on the page, just gone, or gone for hours with the number written down), a session behind the
caller's earlier call (a redial), or an outsider (a misdial, the number passed on). Each has a rate from
``tracking.attribution_model``; normalising gives probabilities. The channel with the most probability is
the call's channel (its sum is the channel confidence, so several plausible sessions of one channel still
make the channel certain); its likeliest session is named only when that is likely enough, otherwise the
call is "channel known, visit uncertain" or unknown. See docs/architecture.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracking import hooks
from tracking.allocation import heartbeat_seconds
from tracking.attribution_model import (
    MODEL_VERSION,
    PARAMS,
    Params,
    calibrated,
    outsider_rate,
    session_rate,
)
from tracking.models import (
    AttributionChange,
    AttributionMethod,
    Call,
    CallCandidate,
    Channel,
    FallbackEvent,
    NumberAssignment,
    Pool,
    PoolChannel,
    TrackingNumber,
    User,
    VisitSession,
)

# Provider and hub clocks differ a little: fallback showings and promo codes this long after the call still
# count. Pool holds do not: a hold that began after the call cannot have shown the number to the caller,
# except within the rounding of providers' whole-second times.
CLOCK_SKEW = dt.timedelta(seconds=30)
HOLD_START_ROUNDING = dt.timedelta(seconds=2)
# How far back holders of the number and the caller's earlier calls are hypotheses.
HOLDER_LOOKBACK = dt.timedelta(hours=48)
MAX_HOLDERS = 300
EARLIER_CALLS_LOOKBACK = dt.timedelta(hours=48)
MAX_EARLIER_CALLS = 5
# Candidates kept per call (the most likely ones); the rest only add to the normaliser.
STORED_CANDIDATES = 25


@dataclass
class Candidate:
    """One hypothesis "this session's visitor made the call", with the features its rate is built from."""

    session_id: int
    channel_id: int | None
    visitor_id: str
    features: dict[str, Any] = field(default_factory=dict)
    likelihood: float = 0.0
    probability: float = 0.0  # the model's posterior
    confidence: float = 0.0  # the same, calibrated: what is stored and shown

    @property
    def reasons(self) -> dict[str, Any]:
        return {**self.features, "rate": self.likelihood}


@dataclass(frozen=True)
class Verdict:
    session_id: int | None
    channel_id: int | None
    session_confidence: float | None
    channel_confidence: float | None
    outsider: float = 0.0


def hold_features(
    *,
    call_at: dt.datetime,
    started_at: dt.datetime,
    hold_until: dt.datetime,
    ended_at: dt.datetime | None,
    last_seen_at: dt.datetime,
    left_at: dt.datetime | None,
    device: str | None,
    heartbeat_seconds: int,
) -> dict[str, Any]:
    """What a hold of the called number tells about its session at the call time."""
    # A session seen again after the call was alive at it; otherwise its last sign of life before the call.
    last_sign = min(max(last_seen_at, started_at), call_at)
    gap = max(0.0, (call_at - last_sign).total_seconds())
    left = left_at is not None and left_at <= call_at
    hold_end = ended_at or hold_until
    return {
        "held": True,
        "seconds_since_activity": round(gap),
        # Heard from within a heartbeat period and not gone: the page was open and visible at the call.
        "page_alive": not left and gap <= heartbeat_seconds + 30,
        "within_hold": started_at <= call_at <= hold_end,
        "device": device,
    }


def score(candidates: list[Candidate], params: Params = PARAMS, holds: int | None = None) -> Verdict:
    """Each candidate's probability (its rate over all rates, the outsider included) and the verdict.

    The call's channel is the one with the most probability (the sum over its candidates): the likeliest
    channel, even when the single likeliest session belongs to another. Its likeliest session is named when
    that is at least ``session_threshold`` likely (calibrated), the channel's confidence being at least the
    session's. Below that the call is "channel known, visit uncertain" (the channel, no session) when the
    channel reaches ``channel_threshold``, else unknown. ``holds`` is how often the number was held in the
    look-back (by default the candidates that held it): the outsider's rate grows with it, and the
    calibration reads it (a crowded number's history hides more callers than the rates account for).
    """
    if holds is None:
        holds = sum(1 for c in candidates if c.features.get("held"))
    for c in candidates:
        c.likelihood = session_rate(c.features, params)
    others = outsider_rate(holds, params)
    total = sum(c.likelihood for c in candidates) + others
    for c in candidates:
        c.probability = c.likelihood / total
        c.confidence = calibrated(c.probability, params.session_calibration, holds)
    outsider = others / total
    if not candidates:
        return Verdict(None, None, None, None, outsider)
    channel, best = pick(candidates)
    channel_p = calibrated(
        sum(c.probability for c in candidates if c.channel_id == channel), params.channel_calibration, holds
    )
    session_p = calibrated(best.probability, params.session_calibration, holds)
    if session_p >= params.session_threshold:
        return Verdict(
            best.session_id,
            channel,
            round(session_p, 4),
            round(max(channel_p, session_p), 4) if channel is not None else None,
            outsider,
        )
    if channel is None or channel_p < params.channel_threshold:
        return Verdict(None, None, None, None, outsider)
    return Verdict(None, channel, None, round(channel_p, 4), outsider)


def pick(candidates: list[Candidate]) -> tuple[int | None, Candidate]:
    """The channel with the most probability (a known channel before none) and its likeliest candidate;
    ties go to the higher channel id, then the latest-started hold, then the latest session."""
    mass: dict[int | None, float] = {}
    for c in candidates:
        mass[c.channel_id] = mass.get(c.channel_id, 0.0) + c.probability
    channel = max(mass, key=lambda ch: (ch is not None, mass[ch], ch or 0))
    best = max(
        (c for c in candidates if c.channel_id == channel),
        key=lambda c: (c.probability, c.features.get("started", ""), c.session_id),
    )
    return channel, best


def _hypotheses(db: Session, call: Call, number: TrackingNumber, pool: Pool) -> tuple[list[Candidate], int]:
    """The called number's holders (those who held it before the call, up to two days back) and the
    sessions behind the caller's earlier calls, one candidate per session."""
    assert call.called_at is not None
    call_at = call.called_at
    hold_end = func.coalesce(NumberAssignment.ended_at, NumberAssignment.hold_until)
    rows = db.execute(
        select(NumberAssignment, VisitSession)
        .join(VisitSession, VisitSession.id == NumberAssignment.session_id)
        .where(
            NumberAssignment.number_id == number.id,
            NumberAssignment.started_at <= call_at + HOLD_START_ROUNDING,
            hold_end >= call_at - HOLDER_LOOKBACK,
        )
        .order_by(NumberAssignment.started_at.desc())
        .limit(MAX_HOLDERS)
    ).all()
    heartbeat = heartbeat_seconds(pool.hold_seconds)
    found: dict[int, Candidate] = {}
    for assignment, session in rows:
        if session.id in found:
            continue  # rows come latest first: a session that held the number twice counts its last hold
        features = hold_features(
            call_at=call_at,
            started_at=assignment.started_at,
            hold_until=assignment.hold_until,
            ended_at=assignment.ended_at,
            last_seen_at=session.last_seen_at,
            left_at=session.left_at,
            device=session.device,
            heartbeat_seconds=heartbeat,
        )
        features["started"] = assignment.started_at.isoformat()
        features["number_holds"] = len(rows)
        found[session.id] = Candidate(session.id, session.channel_id, session.visitor_id, features)
    if call.caller is None:
        return list(found.values()), len(rows)
    known = _known_visitors(db, call)
    for c in found.values():
        c.features["caller_link"] = ("same" if c.visitor_id in known else "other") if known else "none"
    for session, seconds, weight, same_number in _earlier_calls(db, call):
        cand = found.get(session.id)
        if cand is None:
            cand = found[session.id] = Candidate(
                session.id, session.channel_id, session.visitor_id, {"held": False}
            )
        entry = [round(seconds), round(weight, 4), same_number]
        cand.features.setdefault("earlier_calls", []).append(entry)
        cand.features["number_holds"] = len(rows)
    return list(found.values()), len(rows)


def _earlier_calls(db: Session, call: Call) -> list[tuple[VisitSession, float, float, bool]]:
    """Sessions behind this caller's recent earlier calls to the client: (session, seconds since that
    call, how likely that session made it — its stored probability, or 1 for a session set by hand —, and
    whether that call was to the same number)."""
    assert call.called_at is not None
    earlier = db.execute(
        select(Call.id, Call.called_at, Call.session_id, Call.tracking_number_id)
        .where(
            Call.client_id == call.client_id,
            Call.caller == call.caller,
            Call.id != call.id,
            Call.called_at < call.called_at,
            Call.called_at >= call.called_at - EARLIER_CALLS_LOOKBACK,
        )
        .order_by(Call.called_at.desc())
        .limit(MAX_EARLIER_CALLS)
    ).all()
    if not earlier:
        return []
    when = {row.id: (call.called_at - row.called_at).total_seconds() for row in earlier}
    same = {row.id: row.tracking_number_id == call.tracking_number_id for row in earlier}
    out: list[tuple[VisitSession, float, float, bool]] = []
    scored = db.execute(
        select(CallCandidate.call_id, CallCandidate.score, VisitSession)
        .join(VisitSession, VisitSession.id == CallCandidate.session_id)
        .where(CallCandidate.call_id.in_(list(when)))
    ).all()
    with_candidates = set()
    for call_id, weight, session in scored:
        with_candidates.add(call_id)
        out.append((session, when[call_id], float(weight), same[call_id]))
    fixed = [r for r in earlier if r.id not in with_candidates and r.session_id is not None]
    if fixed:
        ids = [r.session_id for r in fixed]
        sessions = {s.id: s for s in db.scalars(select(VisitSession).where(VisitSession.id.in_(ids)))}
        for r in fixed:
            out.append((sessions[r.session_id], when[r.id], 1.0, same[r.id]))
    return out


def _known_visitors(db: Session, call: Call) -> dict[str, int]:
    if call.caller is None:
        return {}
    rows = db.execute(
        select(VisitSession.visitor_id, func.count())
        .join(Call, Call.session_id == VisitSession.id)
        .where(
            Call.client_id == call.client_id,
            Call.caller == call.caller,
            Call.id != call.id,
            Call.called_at < call.called_at,
        )
        .group_by(VisitSession.visitor_id)
    ).all()
    return {visitor: count for visitor, count in rows}


def _pool_channel(db: Session, pool: Pool) -> int | None:
    """The pool's channel when it serves exactly one; otherwise the channel is unknown."""
    channels = db.scalars(select(PoolChannel.channel_id).where(PoolChannel.pool_id == pool.id)).all()
    return channels[0] if len(channels) == 1 else None


@dataclass
class _Result:
    method: AttributionMethod
    session_id: int | None = None
    channel_id: int | None = None
    session_confidence: float | None = None
    channel_confidence: float | None = None
    candidates: list[Candidate] = field(default_factory=list)


def _decide(db: Session, call: Call) -> _Result:
    if call.tracking_number_id is None or call.called_at is None:
        return _Result(AttributionMethod.UNMATCHED)
    number = db.get(TrackingNumber, call.tracking_number_id)
    assert number is not None
    overflow_pool = db.scalar(select(Pool).where(Pool.fallback_number_id == number.id))
    if overflow_pool is not None:
        return _overflow(db, overflow_pool, call.called_at)
    if number.pool_id is None:
        return _Result(
            AttributionMethod.STATIC,
            channel_id=number.channel_id,
            channel_confidence=1.0 if number.channel_id else None,
        )
    pool = db.get(Pool, number.pool_id)
    assert pool is not None
    candidates, holds = _hypotheses(db, call, number, pool)
    if not candidates:
        # Nobody held the number for two days: a misdial or a number found elsewhere. A pool serving one
        # channel still says that channel.
        channel = _pool_channel(db, pool)
        return _Result(
            AttributionMethod.DYNAMIC_UNIDENTIFIED,
            channel_id=channel,
            channel_confidence=1.0 if channel else None,
        )
    verdict = score(candidates, holds=holds)
    candidates.sort(key=lambda c: -c.probability)
    named = verdict.session_id is not None
    return _Result(
        AttributionMethod.DYNAMIC if named else AttributionMethod.DYNAMIC_UNIDENTIFIED,
        verdict.session_id,
        verdict.channel_id,
        verdict.session_confidence,
        verdict.channel_confidence,
        candidates[:STORED_CANDIDATES],
    )


def _overflow(db: Session, pool: Pool, call_at: dt.datetime) -> _Result:
    """The fallback number is shared by everyone the pool could not serve: no session can be told apart,
    but the channels of the sessions shown it recently say where the caller most likely came from."""
    window = dt.timedelta(seconds=pool.hold_seconds + pool.grace_seconds)
    rows = db.execute(
        select(VisitSession.channel_id, func.count())
        .join(FallbackEvent, FallbackEvent.session_id == VisitSession.id)
        .where(
            FallbackEvent.pool_id == pool.id, FallbackEvent.at.between(call_at - window, call_at + CLOCK_SKEW)
        )
        .group_by(VisitSession.channel_id)
    ).all()
    if rows:
        total = sum(count for _, count in rows)
        channel, count = max(rows, key=lambda r: (r[1], r[0] or 0))
        return _Result(
            AttributionMethod.OVERFLOW, channel_id=channel, channel_confidence=round(count / total, 4)
        )
    channel = _pool_channel(db, pool)
    return _Result(
        AttributionMethod.OVERFLOW, channel_id=channel, channel_confidence=1.0 if channel else None
    )


def _apply(db: Session, call: Call, result: _Result, *, actor: str, user_id: int | None, reason: str) -> bool:
    old = (call.attribution_method, call.session_id, call.channel_id)
    call.attribution_method = result.method
    call.session_id = result.session_id
    call.channel_id = result.channel_id
    call.session_confidence = result.session_confidence
    call.channel_confidence = result.channel_confidence
    call.candidates_count = len(result.candidates)
    new = (call.attribution_method, call.session_id, call.channel_id)
    if old == new:
        return False
    change = AttributionChange(
        call_id=call.id,
        user_id=user_id,
        actor=actor,
        reason=reason,
        old_method=old[0].value if old[0] else None,
        new_method=new[0].value,
        old_channel_id=old[2],
        new_channel_id=new[2],
        old_session_id=old[1],
        new_session_id=new[1],
    )
    db.add(change)
    if call.finalised_at is not None:
        _announce(db, call, change, previous_method=old[0], previous_channel_id=old[2])
    return True


def _announce(
    db: Session,
    call: Call,
    change: AttributionChange,
    *,
    previous_method: AttributionMethod | None,
    previous_channel_id: int | None,
) -> None:
    """A finalised call's source changed: tell listeners (outgoing webhooks) once per change."""
    from tracking.calls import call_payload  # calls imports this module

    db.flush()
    previous = db.get(Channel, previous_channel_id) if previous_channel_id else None
    payload = call_payload(db, call)
    payload["previous"] = {
        "method": previous_method.value if previous_method else None,
        "channel": previous.name if previous else None,
    }
    payload["reason"] = change.reason
    hooks.call_attributed.fire(
        db,
        hooks.CallAttributed(
            client_id=call.client_id, call_id=call.id, key=f"otkuda-attribution-{change.id}", payload=payload
        ),
    )


def attribute(db: Session, call: Call) -> None:
    """Attribute a call automatically from its number and time; candidates are replaced."""
    result = _decide(db, call)
    call.attribution_model = MODEL_VERSION
    if call.candidates_count:
        db.flush()
        db.execute(delete(CallCandidate).where(CallCandidate.call_id == call.id))
    for c in result.candidates:
        db.add(
            CallCandidate(
                call_id=call.id, session_id=c.session_id, score=round(c.confidence, 4), reasons=c.reasons
            )
        )
    # The first attribution is history too: it shows what the automatic method decided before any edit.
    _apply(db, call, result, actor="system", user_id=None, reason="automatic")
    db.expire(call, ["candidates"])


class UnknownPromoCode(Exception):
    pass


def normalise_promo(code: str) -> str:
    return "".join(code.split()).upper()


def set_promo_code(db: Session, call: Call, code: str, user: User | None) -> VisitSession:
    """Tie the call to the session that was shown ``code`` (the latest such session of this client)."""
    wanted = normalise_promo(code)
    if not wanted:
        raise UnknownPromoCode("empty promo code")
    query = select(VisitSession).where(
        VisitSession.client_id == call.client_id, func.upper(VisitSession.promo_code) == wanted
    )
    if call.called_at is not None:
        # A session that started after the call cannot have shown its code to this caller.
        query = query.where(VisitSession.started_at <= call.called_at + CLOCK_SKEW)
    session = db.scalars(query.order_by(VisitSession.started_at.desc()).limit(1)).first()
    if session is None:
        raise UnknownPromoCode(f"no session showed promo code {wanted}")
    call.promo_code = wanted
    _apply(
        db,
        call,
        _Result(
            AttributionMethod.PROMO, session.id, session.channel_id, 1.0, 1.0 if session.channel_id else None
        ),
        actor=user.email if user else "system",
        user_id=user.id if user else None,
        reason=f"promo code {wanted}",
    )
    call.candidates_count = len(call.candidates)
    return session


def set_manual_channel(
    db: Session, call: Call, channel_id: int | None, user: User | None, reason: str = ""
) -> None:
    """The operator's answer to "how did you hear about us?". The session is kept only if it agrees."""
    session_id = call.session_id
    if session_id is not None:
        session = db.get(VisitSession, session_id)
        if session is None or session.channel_id != channel_id:
            session_id = None
    _apply(
        db,
        call,
        _Result(
            AttributionMethod.MANUAL,
            session_id,
            channel_id,
            call.session_confidence if session_id else None,
            1.0 if channel_id else None,
        ),
        actor=user.email if user else "system",
        user_id=user.id if user else None,
        reason=reason or "manual",
    )
    call.candidates_count = len(call.candidates)
