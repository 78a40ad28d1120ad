"""A call and a visitor session as the hub shows them, to the API and to the journal page alike: the
schemas that serialise them, the look-ups they need and the flat rows of an export."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from hub.schemas import Out, UtcDateTime
from tracking import targets
from tracking.calls import SESSION_FIELDS
from tracking.models import (
    AttributionChange,
    AttributionMethod,
    Call,
    CallCandidate,
    CallStatus,
    Channel,
    Client,
    TrackingNumber,
    VisitSession,
)

CSV_LIMIT = 100_000


class ChannelRef(Out):
    id: int
    name: str


class SessionOut(Out):
    id: str
    site_id: int
    channel_id: int | None
    channel: ChannelRef | None
    visitor_id: str | None
    started_at: UtcDateTime
    last_seen_at: UtcDateTime | None
    left_at: UtcDateTime | None
    hold_until: UtcDateTime | None
    landing_url: str | None
    referrer: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_content: str | None
    utm_term: str | None
    gclid: str | None
    gbraid: str | None
    wbraid: str | None
    yclid: str | None
    ym_client_id: str | None
    ga_client_id: str | None
    device: str | None
    number: str | None
    promo_code: str | None


def session_json(session: VisitSession, channels: dict[int, Channel] | None = None) -> dict[str, Any]:
    """One visitor session; ``channels`` (by id) saves a look-up per session when many are shown."""
    channel = None
    if session.channel_id is not None:
        channel = (channels or {}).get(session.channel_id) or session.channel
    return SessionOut.build(
        id=session.public_id,
        site_id=session.site_id,
        channel_id=session.channel_id,
        channel=ChannelRef.of(channel) if channel else None,
        visitor_id=session.visitor_id,
        started_at=session.started_at,
        last_seen_at=session.last_seen_at,
        left_at=session.left_at,
        hold_until=session.hold_until,
        **{name: getattr(session, name) for name in SESSION_FIELDS},
        number=session.number.e164 if session.number else None,
        promo_code=session.promo_code,
    )


class AttributionOut(Out):
    method: AttributionMethod
    session_id: str | None
    session_confidence: float | None
    channel_confidence: float | None
    candidates_count: int
    promo_code: str | None


class TargetRuleRef(Out):
    id: int
    name: str


class CallOut(Out):
    id: int
    provider: str
    provider_call_id: str
    tracking_number: str | None
    called_number: str | None
    caller: str | None
    called_at: UtcDateTime | None
    answered_at: UtcDateTime | None
    ended_at: UtcDateTime | None
    wait_seconds: int
    talk_seconds: int
    status: CallStatus
    abandoned: bool
    first_time: bool
    is_target: bool = Field(description="meets at least one target-call rule")
    target_rules: list[TargetRuleRef] = Field(description="the client's target-call rules this call meets")
    forwarded_to: str | None
    recording_url: str | None
    recording_ref: str | None
    tags: list[str]
    notes: str
    channel: ChannelRef | None
    attribution: AttributionOut
    final: bool


class CandidateOut(Out):
    score: float
    reasons: Any
    session: SessionOut | None


class AttributionStep(Out):
    method: str | None
    channel_id: int | None
    session_id: str | None


class HistoryOut(Out):
    at: UtcDateTime
    by: str | None
    reason: str | None
    from_: AttributionStep = Field(serialization_alias="from")
    to: AttributionStep


class TargetHistoryOut(Out):
    at: UtcDateTime
    by: str | None
    reason: str | None
    from_: list[TargetRuleRef] = Field(serialization_alias="from")
    to: list[TargetRuleRef]


class CallDetailOut(CallOut):
    session: SessionOut | None
    candidates: list[CandidateOut]
    history: list[HistoryOut]
    target_history: list[TargetHistoryOut] = Field(
        description="every change of the target rules the call meets, with its cause"
    )


def client_call(db: Session, client: Client, call_id: int) -> Call | None:
    """A call of this client by id (None for another client's, like a missing one)."""
    return db.scalar(select(Call).where(Call.id == call_id, Call.client_id == client.id))


Lookups = tuple[dict[int, str], dict[int, Channel], dict[int, VisitSession]]


def lookups(db: Session, client: Client, calls: Iterable[Call], session_ids: Iterable[int] = ()) -> Lookups:
    """Tracking numbers, channels and sessions the given calls point at, each fetched once."""
    calls = list(calls)
    number_ids = {c.tracking_number_id for c in calls if c.tracking_number_id}
    wanted = {c.session_id for c in calls if c.session_id} | set(session_ids)
    numbers = dict(
        db.execute(
            select(TrackingNumber.id, TrackingNumber.e164).where(TrackingNumber.id.in_(number_ids))
        ).all()
    )
    sessions = {s.id: s for s in db.scalars(select(VisitSession).where(VisitSession.id.in_(wanted)))}
    channels = {c.id: c for c in db.scalars(select(Channel).where(Channel.client_id == client.id))}
    return numbers, channels, sessions


def call_json(call: Call, found: Lookups) -> dict[str, Any]:
    numbers, channels, sessions = found
    session = sessions.get(call.session_id) if call.session_id else None
    channel = channels.get(call.channel_id) if call.channel_id else None
    return CallOut.build(
        id=call.id,
        provider=call.provider,
        provider_call_id=call.provider_call_id,
        tracking_number=numbers.get(call.tracking_number_id) if call.tracking_number_id else None,
        called_number=call.called_number,
        caller=call.caller,
        called_at=call.called_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        wait_seconds=call.wait_seconds,
        talk_seconds=call.talk_seconds,
        status=call.status,
        abandoned=call.abandoned,
        first_time=call.first_time,
        is_target=bool(call.is_target),
        target_rules=[{"id": r["id"], "name": r["name"]} for r in call.target_rules or []],
        forwarded_to=call.forwarded_to,
        recording_url=call.recording_url,
        recording_ref=call.recording_ref,
        tags=list(call.tags or []),
        notes=call.notes,
        channel=ChannelRef.of(channel) if channel else None,
        attribution=AttributionOut(
            method=call.attribution_method,
            session_id=session.public_id if session else None,
            session_confidence=call.session_confidence,
            channel_confidence=call.channel_confidence,
            candidates_count=call.candidates_count,
            promo_code=call.promo_code,
        ),
        final=call.finalised_at is not None,
    )


def call_detail(db: Session, client: Client, call: Call) -> dict[str, Any]:
    """The call with its session, the candidate sessions it was weighed against and its re-attributions."""
    candidates = db.scalars(
        select(CallCandidate).where(CallCandidate.call_id == call.id).order_by(CallCandidate.score.desc())
    ).all()
    history = db.scalars(
        select(AttributionChange).where(AttributionChange.call_id == call.id).order_by(AttributionChange.id)
    ).all()
    session_ids = {c.session_id for c in candidates}
    session_ids |= {x for h in history for x in (h.old_session_id, h.new_session_id) if x}
    found = lookups(db, client, [call], session_ids)
    _, channels, sessions = found
    public = {s.id: s.public_id for s in sessions.values()}

    def session_of(session_id: int | None) -> dict[str, Any] | None:
        session = sessions.get(session_id) if session_id else None
        return session_json(session, channels) if session else None

    return CallDetailOut.build(
        **call_json(call, found),
        session=session_of(call.session_id),
        candidates=[
            {"score": c.score, "reasons": c.reasons, "session": session_of(c.session_id)} for c in candidates
        ],
        history=[
            {
                "at": h.changed_at,
                "by": h.actor,
                "reason": h.reason,
                "from_": {
                    "method": h.old_method,
                    "channel_id": h.old_channel_id,
                    "session_id": public.get(h.old_session_id) if h.old_session_id else None,
                },
                "to": {
                    "method": h.new_method,
                    "channel_id": h.new_channel_id,
                    "session_id": public.get(h.new_session_id) if h.new_session_id else None,
                },
            }
            for h in history
        ],
        target_history=[
            {
                "at": h.changed_at,
                "by": h.actor,
                "reason": h.reason,
                "from_": [{"id": r["id"], "name": r["name"]} for r in h.old_rules],
                "to": [{"id": r["id"], "name": r["name"]} for r in h.new_rules],
            }
            for h in targets.history(db, call.id)
        ],
    )


CSV_COLUMNS = [
    "id",
    "called_at",
    "caller",
    "tracking_number",
    "status",
    "abandoned",
    "first_time",
    "target",
    "target_rules",
    "wait_seconds",
    "talk_seconds",
    "channel",
    "method",
    "session_confidence",
    "channel_confidence",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "landing_url",
    "tags",
    "notes",
    "recording_url",
]


def export_rows(db: Session, client: Client, query: Select[Call]) -> Iterator[list[Any]]:
    """The calls of ``query`` as flat rows under ``CSV_COLUMNS`` (oldest first)."""
    calls = list(db.scalars(query.order_by(Call.called_at, Call.id).limit(CSV_LIMIT)))
    found = lookups(db, client, calls)
    sessions = found[2]
    for call in calls:
        data = call_json(call, found)
        session = sessions.get(call.session_id) if call.session_id else None
        yield [
            data["id"],
            data["called_at"],
            data["caller"],
            data["tracking_number"] or data["called_number"],
            data["status"],
            data["abandoned"],
            data["first_time"],
            data["is_target"],
            ";".join(r["name"] for r in data["target_rules"]),
            data["wait_seconds"],
            data["talk_seconds"],
            data["channel"]["name"] if data["channel"] else None,
            data["attribution"]["method"],
            data["attribution"]["session_confidence"],
            data["attribution"]["channel_confidence"],
            *(
                getattr(session, f) if session else None
                for f in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "landing_url")
            ),
            ";".join(data["tags"]),
            data["notes"],
            data["recording_url"],
        ]
