"""Ingestion: one provider event at a time, converging on one call record per (integration, call id).

Every event is stored (``call_events``) and the call is recomputed from *all* of its events, so the result
does not depend on the order or number of deliveries: an end before its start, a recording before the end,
or the same event three times give the same record. The call row is created with an insert that ignores a
conflict and then locked (``SELECT … FOR UPDATE`` on PostgreSQL), so concurrent deliveries of one call
serialise on that row and never make two.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tracking import attribution, hooks, targets
from tracking.db import iso, rowcount, utcnow
from tracking.models import (
    AttributionMethod,
    Call,
    CallStatus,
    Channel,
    Client,
    StoredCallEvent,
    TelephonyIntegration,
    TrackingNumber,
    VisitSession,
)
from tracking.telephony.base import CallOutcome, EventKind, ProviderEvent

log = logging.getLogger(__name__)

# Providers whose webhook signature covers only caller, called number and start time, not the call id: a
# captured request replayed with a new call id is recognised as the call it was captured from.
SAME_CALL_BY_START = frozenset({"zadarma", "novofon"})

# An unanswered call that rang this briefly is "abandoned": the caller hung up before anyone could answer.
ABANDON_SECONDS = 15


@dataclass(frozen=True)
class Ingested:
    call: Call
    duplicate: bool  # the event had been received before; nothing changed
    finalised: bool  # this event made the call final (and fired ``call_finalised``)


def _insert(db: Session):
    return postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert


def _locked_call(db: Session, integration: TelephonyIntegration, event: ProviderEvent) -> Call:
    now = utcnow()
    stmt = _insert(db)(Call).values(
        client_id=integration.client_id,
        integration_id=integration.id,
        provider=integration.provider,
        provider_call_id=event.provider_call_id,
        status=CallStatus.IN_PROGRESS,
        attribution_method=AttributionMethod.UNMATCHED,
        tags=[],
        notes="",
        first_time=True,
        candidates_count=0,
        wait_seconds=0,
        talk_seconds=0,
        abandoned=False,
        created_at=now,
        updated_at=now,
    )
    # "DO UPDATE" rather than "DO NOTHING": it returns the existing row too and, on PostgreSQL, locks it
    # until commit, so concurrent events of one call queue here — one round trip for create-or-lock.
    # Keyed per integration: a call id another tenant's PBX sent first (Asterisk ids are predictable) is
    # another call, never a conflict.
    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "provider_call_id"], set_={"updated_at": now}
    ).returning(Call)
    return db.scalars(stmt, execution_options={"populate_existing": True}).one()


def _same_signed_call(db: Session, integration: TelephonyIntegration, event: ProviderEvent) -> Call | None:
    """The integration's call with this event's caller, number and start under another call id, if any."""
    if integration.provider not in SAME_CALL_BY_START or event.started_at is None:
        return None
    query = select(Call).where(
        Call.integration_id == integration.id,
        Call.provider_call_id != event.provider_call_id,
        Call.called_at == event.started_at,
        Call.caller.is_(None) if event.caller is None else Call.caller == event.caller,
    )
    if event.called is not None:
        query = query.where(Call.called_number == event.called)
    return db.scalars(query.order_by(Call.id).limit(1)).first()


def ingest(db: Session, integration: TelephonyIntegration, event: ProviderEvent) -> Ingested:
    """Apply one event to its call inside the caller's transaction (the caller commits)."""
    known = _same_signed_call(db, integration, event)
    if known is not None:
        # Either a replay of a captured request with a made-up call id or the provider repeating itself:
        # the signed facts are those of a call we have, so nothing changes.
        log.info("event for call %s arrived under another call id; ignored as a repeat", known.id)
        return Ingested(known, duplicate=True, finalised=False)
    call = _locked_call(db, integration, event)
    prior = _append_event(db, call, event)
    if prior is None:
        return Ingested(call, duplicate=True, finalised=False)

    # The new event's id is above every stored one of this call (they committed before our lock), so it
    # goes last, as the ORDER BY id read used to put it.
    events = [*prior, event]
    is_new = len(events) == 1
    before = (call.called_number, call.called_at, call.caller)
    target_facts = _target_facts(call)
    before_status = call.status
    with db.no_autoflush:
        final = _fold(call, events)
        changed = is_new or before != (call.called_number, call.called_at, call.caller)
        number: TrackingNumber | None = None
        client: Client | None = None
        if changed or (final and call.finalised_at is None) or call.status != before_status:
            # Read once and held: the identity map keeps only weak references, and the first-time window,
            # the target rules' zone and the payload all want it.
            client = db.get(Client, call.client_id)
        if is_new or before[0] != call.called_number:
            # Held here so attribution and the delivery payload find it in the identity map (which keeps
            # only weak references).
            number = _match_number(db, call)
        if changed:
            call.first_time = is_first_time(db, call)
            # An operator's choice (promo code, manual channel) is never overridden by a late event.
            if call.attribution_method not in (AttributionMethod.PROMO, AttributionMethod.MANUAL):
                attribution.attribute(db, call)
        # Before the call is finalised below, so its payload and the delivery plan know if it is target.
        # Only when a fact a rule reads moved: a rule's own change recomputes every call of its client, and
        # a call in progress meets no rule, so a start, an answer or a recording usually reads nothing.
        can_meet = call.status != CallStatus.IN_PROGRESS or bool(call.target_rules)
        if can_meet and (is_new or _target_facts(call) != target_facts):
            zone = client.timezone if client else None
            targets.recompute(db, call, reason=f"call event: {event.kind.value}", timezone=zone)
    finalised = False
    call.updated_at = utcnow()
    if final and call.finalised_at is None:
        call.finalised_at = call.updated_at
        db.flush()
        hooks.call_finalised.fire(
            db,
            hooks.CallFinalised(
                client_id=call.client_id,
                call_id=call.id,
                key=delivery_key(call),
                payload=call_payload(db, call),
            ),
        )
        finalised = True
    db.flush()
    del number, client
    return Ingested(call, duplicate=False, finalised=finalised)


def _target_facts(call: Call) -> tuple[object, ...]:
    """What ``targets.facts`` reads from a call, in a form that compares without the client's zone."""
    return (call.status, call.talk_seconds, call.first_time, tuple(call.tags or ()), call.called_at)


def _append_event(db: Session, call: Call, event: ProviderEvent) -> list[ProviderEvent] | None:
    """Store ``event`` on the locked ``call``; its earlier events in order, or None for a redelivery.

    On PostgreSQL the insert and the read share one round trip: the read runs on the statement's snapshot,
    taken after ``_locked_call`` got the row lock, so it sees every earlier event of the call and not the
    one this statement inserts.
    """
    values = {
        "call_id": call.id,
        "kind": event.kind.value,
        "fingerprint": event.fingerprint(),
        "occurred_at": event.occurred_at,
        "received_at": utcnow(),
        "data": event.data(),
    }
    if db.get_bind().dialect.name == "postgresql":
        ins = (
            postgresql.insert(StoredCallEvent)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["call_id", "fingerprint"])
            .returning(StoredCallEvent.id)
            .cte("ins")
        )
        stored = (
            select(func.json_agg(postgresql.aggregate_order_by(StoredCallEvent.data, StoredCallEvent.id)))
            .where(StoredCallEvent.call_id == call.id)
            .scalar_subquery()
        )
        row = db.execute(select(select(func.count()).select_from(ins).scalar_subquery(), stored)).one()
        if not row[0]:
            return None
        return [ProviderEvent.from_data(data) for data in row[1] or []]
    inserted = db.execute(
        sqlite.insert(StoredCallEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["call_id", "fingerprint"])
    )
    if rowcount(inserted) == 0:
        return None
    return [
        ProviderEvent.from_data(data)
        for data in db.execute(
            select(StoredCallEvent.data)
            .where(StoredCallEvent.call_id == call.id, StoredCallEvent.fingerprint != values["fingerprint"])
            .order_by(StoredCallEvent.id)
        ).scalars()
    ]


def discard_unfinished(db: Session, integration: TelephonyIntegration, provider_call_id: str) -> bool:
    """Remove a call that is still in progress because the provider has since said it was never an
    incoming call (e.g. an employee's outgoing call seen leg by leg). A finalised call is kept."""
    deleted = db.execute(
        delete(Call).where(
            Call.provider == integration.provider,
            Call.provider_call_id == provider_call_id,
            Call.integration_id == integration.id,
            Call.finalised_at.is_(None),
        )
    )
    return bool(rowcount(deleted))


def _first(values: list) -> object:
    return next((v for v in values if v is not None), None)


def _fold(call: Call, events: list[ProviderEvent]) -> bool:
    """Recompute the call's facts from all its events; True when the call is over."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, list(EventKind).index(e.kind)))
    starts = [e for e in ordered if e.kind == EventKind.START]
    answers = [e for e in ordered if e.kind == EventKind.ANSWER]
    ends = [e for e in ordered if e.kind == EventKind.END]

    call.caller = _first([e.caller for e in starts] + [e.caller for e in ordered])  # type: ignore[assignment]
    called = _first([e.called for e in starts] + [e.called for e in ordered])
    call.called_number = called  # type: ignore[assignment]
    start_times = [e.started_at for e in ordered if e.started_at] + [e.occurred_at for e in starts]
    call.called_at = min(start_times) if start_times else min(e.occurred_at for e in ordered)

    answer_times = [e.answered_at for e in ordered if e.answered_at]
    answered_at = min(answer_times) if answer_times else None
    end_times = [e.ended_at for e in ends if e.ended_at]
    ended_at = min(end_times) if end_times else None
    talks = [e.talk_seconds for e in ordered if e.talk_seconds]
    talk = max(talks) if talks else None
    outcomes = {e.outcome for e in ends if e.outcome}
    answered = bool(answers) or CallOutcome.ANSWERED in outcomes
    if answered and answered_at is None and ended_at is not None and talk is not None:
        answered_at = ended_at - dt.timedelta(seconds=talk)
    if answered_at is not None and answered_at < call.called_at:
        answered_at = call.called_at
    if ended_at is not None and answered_at is not None and ended_at < answered_at:
        ended_at = answered_at + dt.timedelta(seconds=talk or 0)
    call.answered_at, call.ended_at = answered_at, ended_at

    final = bool(ends)
    if not final:
        call.status = CallStatus.IN_PROGRESS
    elif answered:
        call.status = CallStatus.ANSWERED
    elif CallOutcome.BUSY in outcomes:
        call.status = CallStatus.BUSY
    elif CallOutcome.FAILED in outcomes and CallOutcome.MISSED not in outcomes:
        call.status = CallStatus.FAILED
    else:
        call.status = CallStatus.MISSED

    wait_until = answered_at or ended_at
    call.wait_seconds = max(0, round((wait_until - call.called_at).total_seconds())) if wait_until else 0
    if talk is None and answered_at and ended_at:
        talk = round((ended_at - answered_at).total_seconds())
    call.talk_seconds = max(0, talk or 0) if answered else 0
    call.abandoned = call.status == CallStatus.MISSED and call.wait_seconds < ABANDON_SECONDS

    forwarded = [e.forwarded_to for e in answers if e.forwarded_to] + [e.forwarded_to for e in ordered]
    call.forwarded_to = _first(forwarded)  # type: ignore[assignment]
    recordings = [e.recording_url for e in reversed(ordered)]
    call.recording_url = _first(recordings) or call.recording_url  # type: ignore[assignment]
    call.recording_ref = _first([e.recording_ref for e in reversed(ordered)]) or call.recording_ref  # type: ignore[assignment]
    return final


def _match_number(db: Session, call: Call) -> TrackingNumber | None:
    if call.called_number is None:
        call.tracking_number_id = None
        return None
    # The entity, not just its id: attribution and the delivery payload then find it in the identity map.
    number = db.scalar(
        select(TrackingNumber).where(
            TrackingNumber.e164 == call.called_number, TrackingNumber.client_id == call.client_id
        )
    )
    call.tracking_number_id = number.id if number else None
    return number


def is_first_time(db: Session, call: Call) -> bool:
    """No earlier call from this caller to this client within the client's window.

    A withheld caller cannot be recognised, so it never counts as first-time.
    """
    if call.caller is None or call.called_at is None:
        return False
    client = db.get(Client, call.client_id)  # kept in the identity map for the delivery payload
    window = client.first_call_window_days if client else 180
    since = call.called_at - dt.timedelta(days=window)
    earlier = db.scalar(
        select(func.count())
        .select_from(Call)
        .where(
            Call.client_id == call.client_id,
            Call.caller == call.caller,
            Call.id != call.id,
            Call.called_at >= since,
            (Call.called_at < call.called_at) | ((Call.called_at == call.called_at) & (Call.id < call.id)),
        )
    )
    return not earlier


def delivery_key(call: Call) -> str:
    return f"otkuda-call-{call.id}"


def call_path(call: Call) -> str:
    return f"/clients/{call.client_id}/calls/{call.id}"


SESSION_FIELDS = (
    "landing_url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "gbraid",
    "wbraid",
    "yclid",
    "ym_client_id",
    "ga_client_id",
    "device",
)


def session_payload(session: VisitSession | None) -> dict[str, str | None] | None:
    if session is None:
        return None
    return {name: getattr(session, name) for name in SESSION_FIELDS}


def _payload_rows(
    db: Session, call: Call
) -> tuple[Client | None, TrackingNumber | None, Channel | None, VisitSession | None]:
    """The rows a payload names, from the identity map where they are, the rest in one round trip."""
    wanted: list[tuple[type, int | None]] = [
        (Client, call.client_id),
        (TrackingNumber, call.tracking_number_id),
        (Channel, call.channel_id),
        (VisitSession, call.session_id),
    ]
    missing = [
        (model, ident)
        for model, ident in wanted
        if ident is not None and db.identity_map.get(db.identity_key(model, ident)) is None
    ]
    found: Sequence[object] = ()
    if len(missing) > 1:
        # Outer joins on constants from one row of the client, which always exists: one statement whatever
        # the call lacks, and every row found lands in the identity map for the db.get calls below.
        query = select(Client, TrackingNumber, Channel, VisitSession).select_from(Client)
        for model, ident in wanted[1:]:
            query = query.outerjoin(model, model.id == ident)  # type: ignore[attr-defined]
        found = db.execute(query.where(Client.id == call.client_id)).all()  # holds the rows while read
    client, number, channel, session = (db.get(model, ident) if ident else None for model, ident in wanted)
    del found
    return client, number, channel, session


def call_payload(db: Session, call: Call) -> dict:
    """The CallPayload documented in ``connectors.base``: a JSON-able snapshot for deliveries."""
    client, number, channel, session = _payload_rows(db, call)
    return {
        "call_id": call.id,
        "client_id": call.client_id,
        "key": delivery_key(call),
        "caller": call.caller,
        "tracking_number": number.e164 if number else call.called_number,
        "static": bool(number is not None and number.pool_id is None),
        "called_at": iso(call.called_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "wait_seconds": call.wait_seconds,
        "talk_seconds": call.talk_seconds,
        "status": call.status.value if call.status != CallStatus.IN_PROGRESS else "missed",
        "abandoned": call.abandoned,
        "first_time": call.first_time,
        "recording_url": call.recording_url,
        "call_path": call_path(call),
        "channel": channel.name if channel else None,
        "tags": list(call.tags or []),
        "is_target": bool(call.is_target),
        "target_rules": [dict(r) for r in call.target_rules or []],
        "timezone": client.timezone if client else "UTC",
        "currency": client.currency if client else "RUB",
        "session": session_payload(session),
    }
