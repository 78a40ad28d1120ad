"""Which advertising brought a call: static numbers, scored pool candidates, promo codes, manual choice.

Dynamic scoring treats each candidate session as a hypothesis "this visitor made the call" with a
likelihood built from independent factors, plus one more hypothesis: "someone who is not a current
candidate called" (a visitor from earlier who wrote the number down, a misdial). Normalising gives each
candidate a probability; the best one's is the session confidence, and the sum over every candidate that
shares the winner's channel is the channel confidence — so when several sessions are plausible but all
came from one channel, the channel is still certain. The factors are documented in docs/architecture.md.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracking import hooks
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

# Callers mostly dial within minutes of looking at the number; the likelihood halves every ~10 minutes
# without a sign of life from the page.
RECENCY_TAU_SECONDS = 900.0
# The page was still open at the call time (no leave beacon yet, hold not ended).
ALIVE_FACTOR = 1.0
GONE_FACTOR = 0.4
# The call came after the hold ran out, during the grace period kept for late callers.
GRACE_FACTOR = 0.5
# This caller called before and that call was tied to a session of the same visitor (cookie).
RETURNING_CALLER_FACTOR = 6.0
# This caller called before from a *different* known visitor: a little less likely to be this one.
OTHER_VISITOR_FACTOR = 0.5
# Mobile visitors tap the number to call; desktop visitors must pick up another device.
MOBILE_FACTOR = 1.3
# Weight of "none of the candidates called" (number remembered from an earlier visit, misdial).
OUTSIDER_LIKELIHOOD = 0.03
# Assignments starting this long after the call still count: provider and hub clocks differ a little.
CLOCK_SKEW = dt.timedelta(seconds=30)


@dataclass
class Candidate:
    session_id: int
    channel_id: int | None
    visitor_id: str
    started_at: dt.datetime  # of the hold
    hold_until: dt.datetime
    ended_at: dt.datetime | None
    last_seen_at: dt.datetime
    left_at: dt.datetime | None
    device: str | None = None
    likelihood: float = 0.0
    probability: float = 0.0
    reasons: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    session_id: int | None
    channel_id: int | None
    session_confidence: float | None
    channel_confidence: float | None


def score(candidates: list[Candidate], call_at: dt.datetime, known_visitors: dict[str, int]) -> Verdict:
    """Fill each candidate's likelihood/probability and pick the winner.

    ``known_visitors`` maps visitor ids that this caller's earlier calls were tied to → how many times.
    """
    if not candidates:
        return Verdict(None, None, None, None)
    for c in candidates:
        last_sign = min(max(c.last_seen_at, c.started_at), call_at)
        gap = max(0.0, (call_at - last_sign).total_seconds())
        recency = math.exp(-gap / RECENCY_TAU_SECONDS)
        hold_end = c.ended_at or c.hold_until
        alive = (c.left_at is None or c.left_at >= call_at) and hold_end >= call_at
        in_hold = c.hold_until >= call_at and (c.ended_at is None or c.ended_at >= call_at)
        likelihood = recency * (ALIVE_FACTOR if alive else GONE_FACTOR) * (1.0 if in_hold else GRACE_FACTOR)
        if known_visitors:
            likelihood *= RETURNING_CALLER_FACTOR if c.visitor_id in known_visitors else OTHER_VISITOR_FACTOR
        if c.device == "mobile":
            likelihood *= MOBILE_FACTOR
        c.likelihood = likelihood
        c.reasons = {
            "seconds_since_activity": round(gap),
            "page_alive": alive,
            "within_hold": in_hold,
            "returning_caller": c.visitor_id in known_visitors,
            "device": c.device,
        }
    total = sum(c.likelihood for c in candidates) + OUTSIDER_LIKELIHOOD
    for c in candidates:
        c.probability = c.likelihood / total
    # Ties go to the session that was seen last (then the later hold), which is deterministic.
    best = max(candidates, key=lambda c: (c.probability, c.last_seen_at, c.started_at, c.session_id))
    same_channel = sum(c.probability for c in candidates if c.channel_id == best.channel_id)
    return Verdict(best.session_id, best.channel_id, round(best.probability, 4), round(same_channel, 4))


def _candidates(db: Session, number_id: int, pool: Pool, call_at: dt.datetime) -> list[Candidate]:
    grace = dt.timedelta(seconds=pool.grace_seconds)
    hold_end = func.coalesce(NumberAssignment.ended_at, NumberAssignment.hold_until)
    rows = db.execute(
        select(NumberAssignment, VisitSession)
        .join(VisitSession, VisitSession.id == NumberAssignment.session_id)
        .where(
            NumberAssignment.number_id == number_id,
            NumberAssignment.started_at <= call_at + CLOCK_SKEW,
            hold_end >= call_at - grace,
        )
    ).all()
    best: dict[int, Candidate] = {}
    for assignment, session in rows:
        cand = Candidate(
            session_id=session.id,
            channel_id=session.channel_id,
            visitor_id=session.visitor_id,
            started_at=assignment.started_at,
            hold_until=assignment.hold_until,
            ended_at=assignment.ended_at,
            last_seen_at=session.last_seen_at,
            left_at=session.left_at,
            device=session.device,
        )
        # A session that held the number twice counts once, with its latest hold.
        if session.id not in best or best[session.id].started_at < cand.started_at:
            best[session.id] = cand
    return list(best.values())


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
    candidates = _candidates(db, number.id, pool, call.called_at)
    if not candidates:
        channel = _pool_channel(db, pool)
        return _Result(
            AttributionMethod.DYNAMIC_UNIDENTIFIED,
            channel_id=channel,
            channel_confidence=1.0 if channel else None,
        )
    verdict = score(candidates, call.called_at, _known_visitors(db, call))
    return _Result(
        AttributionMethod.DYNAMIC,
        verdict.session_id,
        verdict.channel_id,
        verdict.session_confidence,
        verdict.channel_confidence,
        candidates,
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
    if call.candidates_count:
        db.flush()
        db.execute(delete(CallCandidate).where(CallCandidate.call_id == call.id))
    for c in result.candidates:
        db.add(
            CallCandidate(
                call_id=call.id, session_id=c.session_id, score=round(c.probability, 4), reasons=c.reasons
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
