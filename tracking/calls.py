"""Ingestion: one provider event at a time, converging on one call record per (integration, call id).

Every event is stored (``call_events``) and the call is recomputed from *all* of its events, so the result
does not depend on the order or number of deliveries: an end before its start, a recording before the end,
or the same event three times give the same record. The call row is created with an insert that ignores a
conflict and then locked (``SELECT … FOR UPDATE`` on PostgreSQL), so concurrent deliveries of one call
serialise on that row and never make two.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, delete, func, inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified, set_committed_value
from sqlalchemy.sql.elements import BindParameter

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


def _param(column: Any, name: str | None = None) -> BindParameter[Any]:
    """A named parameter of ``column``'s type (UTC datetimes and JSON are converted as the ORM does)."""
    return bindparam(name or column.key, type_=column.type)


_CALLS = cast(Table, Call.__table__)
_EVENTS = cast(Table, StoredCallEvent.__table__)


@functools.cache
def _statements(dialect: str) -> dict[str, Executable]:
    """The statements every event sends, built once per dialect with bound parameters.

    Built per event they cost more Python than running them: constructing the statement, coercing its
    values and walking it for the compiled-cache key. A statement object reused keeps its cache key.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = _param(_CALLS.c.created_at, "now")
    lock = (
        insert(_CALLS)
        .values(
            client_id=_param(_CALLS.c.client_id),
            integration_id=_param(_CALLS.c.integration_id),
            provider=_param(_CALLS.c.provider),
            provider_call_id=_param(_CALLS.c.provider_call_id),
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
        # Keyed per integration: a call id another tenant's PBX sent first (Asterisk ids are predictable)
        # is another call, never a conflict.
        .on_conflict_do_update(
            index_elements=["integration_id", "provider_call_id"], set_={"updated_at": now}
        )
        .returning(*_CALLS.c)
    )
    event_values = {
        "call_id": _param(_EVENTS.c.call_id),
        "kind": _param(_EVENTS.c.kind),
        "fingerprint": _param(_EVENTS.c.fingerprint),
        "occurred_at": _param(_EVENTS.c.occurred_at),
        "received_at": _param(_EVENTS.c.received_at),
        "data": _param(_EVENTS.c.data),
    }
    append = (
        insert(_EVENTS).values(event_values).on_conflict_do_nothing(index_elements=["call_id", "fingerprint"])
    )
    out: dict[str, Executable] = {"lock": select(Call).from_statement(lock)}
    if dialect == "postgresql":
        ins = append.returning(_EVENTS.c.id).cte("ins")
        stored = (
            select(func.json_agg(postgresql.aggregate_order_by(_EVENTS.c.data, _EVENTS.c.id)))
            .where(_EVENTS.c.call_id == _param(_EVENTS.c.call_id))
            .scalar_subquery()
        )
        out["append"] = select(select(func.count()).select_from(ins).scalar_subquery(), stored)
    else:
        out["append"] = append
        out["stored"] = (
            select(_EVENTS.c.data)
            .where(
                _EVENTS.c.call_id == _param(_EVENTS.c.call_id),
                _EVENTS.c.fingerprint != _param(_EVENTS.c.fingerprint),
            )
            .order_by(_EVENTS.c.id)
        )
    out["client_number"] = (
        select(Client, TrackingNumber)
        .select_from(Client)
        .outerjoin(
            TrackingNumber,
            (TrackingNumber.e164 == bindparam("e164")) & (TrackingNumber.client_id == Client.id),
        )
        .where(Client.id == bindparam("client_id"))
    )
    out["earlier"] = (
        select(func.count())
        .select_from(_CALLS)
        .where(
            _CALLS.c.client_id == _param(_CALLS.c.client_id),
            _CALLS.c.caller == _param(_CALLS.c.caller),
            _CALLS.c.id != _param(_CALLS.c.id),
            _CALLS.c.called_at >= _param(_CALLS.c.called_at, "since"),
            (_CALLS.c.called_at < _param(_CALLS.c.called_at))
            | ((_CALLS.c.called_at == _param(_CALLS.c.called_at)) & (_CALLS.c.id < _param(_CALLS.c.id))),
        )
    )
    rows = select(Client, TrackingNumber, Channel, VisitSession).select_from(Client)
    for model in (TrackingNumber, Channel, VisitSession):
        rows = rows.outerjoin(model, model.id == bindparam(model.__name__))
    out["payload_rows"] = rows.where(Client.id == bindparam(Client.__name__))
    return out


@functools.lru_cache(maxsize=64)
def _update(columns: tuple[str, ...]) -> Executable:
    """``UPDATE calls SET <columns>`` for one call, built once per set of columns."""
    return (
        update(_CALLS)
        .where(_CALLS.c.id == bindparam("call_id"))
        .values({name: _param(_CALLS.c[name], f"new_{name}") for name in columns})
    )


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def _locked_call(db: Session, integration: TelephonyIntegration, event: ProviderEvent) -> Call:
    params = {
        "client_id": integration.client_id,
        "integration_id": integration.id,
        "provider": integration.provider,
        "provider_call_id": event.provider_call_id,
        "now": utcnow(),
    }
    stmt = _statements(_dialect(db))["lock"]
    return db.scalars(stmt, params, execution_options={"populate_existing": True}).one()


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
    # What this function computes is written by ``_write_call``, not by the unit of work (see there).
    written: dict[str, Any] = {}
    with db.no_autoflush:
        facts, final = _fold(call, events)
        _assign(call, facts, written)
        changed = is_new or before != (call.called_number, call.called_at, call.caller)
        # Rows read once and held to the end: the identity map keeps only weak references, and the
        # first-time window, attribution, the target rules' zone and the payload all want them.
        held: tuple[object, ...] = ()
        client: Client | None = None
        if is_new or before[0] != call.called_number:
            # The client and the number called, in one read.
            client, number = _client_and_number(db, call)
            held = (number,)
            _assign(call, {"tracking_number_id": number.id if number else None}, written)
        elif final and call.finalised_at is None:
            # The payload's rows, read now in one statement: the target rules want the client's zone first.
            client, *rest = _payload_rows(db, call)
            held = tuple(rest)
        elif changed or call.status != before_status:
            client = db.get(Client, call.client_id)
        if changed:
            _assign(call, {"first_time": is_first_time(db, call)}, written)
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
    now = utcnow()
    finalising = final and call.finalised_at is None
    _assign(call, {"updated_at": now, "finalised_at": now} if finalising else {"updated_at": now}, written)
    _write_call(db, call, written)
    if finalising:
        hooks.call_finalised.fire(
            db,
            hooks.CallFinalised(
                client_id=call.client_id,
                call_id=call.id,
                key=delivery_key(call),
                payload=call_payload(db, call),
            ),
        )
    db.flush()
    del held, client
    return Ingested(call, duplicate=False, finalised=finalising)


def _assign(call: Call, values: dict[str, Any], written: dict[str, Any]) -> None:
    """Set the values that differ on ``call`` as if read from its row, and note them for ``_write_call``."""
    for name, value in values.items():
        if getattr(call, name) != value:
            set_committed_value(call, name, value)
            written[name] = value


def _write_call(db: Session, call: Call, written: dict[str, Any]) -> None:
    """One ``UPDATE calls`` with what the event changed.

    The folded facts, the number, first-time and the timestamps are set on the entity without history
    (``_assign``) and written here by a statement built once per set of columns: an answer, an end or a
    recording then costs no unit-of-work flush, which costs more Python than the update itself. When
    attribution or the target rules changed the call through the ORM, the flush writes theirs and ours in
    the same single statement.
    """
    if inspect(call).modified:
        for name in written:
            flag_modified(call, name)
        db.flush()
        return
    params = {f"new_{name}": value for name, value in written.items()}
    db.connection().execute(_update(tuple(written)), {"call_id": call.id, **params})


def _target_facts(call: Call) -> tuple[object, ...]:
    """What ``targets.facts`` reads from a call, in a form that compares without the client's zone."""
    return (call.status, call.talk_seconds, call.first_time, tuple(call.tags or ()), call.called_at)


def _append_event(db: Session, call: Call, event: ProviderEvent) -> list[ProviderEvent] | None:
    """Store ``event`` on the locked ``call``; its earlier events in order, or None for a redelivery.

    On PostgreSQL the insert and the read share one round trip: the read runs on the statement's snapshot,
    taken after ``_locked_call`` got the row lock, so it sees every earlier event of the call and not the
    one this statement inserts.
    """
    params = {
        "call_id": call.id,
        "kind": event.kind.value,
        "fingerprint": event.fingerprint(),
        "occurred_at": event.occurred_at,
        "received_at": utcnow(),
        "data": event.data(),
    }
    statements = _statements(_dialect(db))
    conn = db.connection()
    if "stored" not in statements:
        row = conn.execute(statements["append"], params).one()
        if not row[0]:
            return None
        return [ProviderEvent.from_data(data) for data in row[1] or []]
    if rowcount(conn.execute(statements["append"], params)) == 0:
        return None
    return [ProviderEvent.from_data(data) for data in conn.execute(statements["stored"], params).scalars()]


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


def _fold(call: Call, events: list[ProviderEvent]) -> tuple[dict[str, Any], bool]:
    """The call's facts recomputed from all its events, and True when the call is over."""
    ordered = sorted(events, key=lambda e: (e.occurred_at, list(EventKind).index(e.kind)))
    starts = [e for e in ordered if e.kind == EventKind.START]
    answers = [e for e in ordered if e.kind == EventKind.ANSWER]
    ends = [e for e in ordered if e.kind == EventKind.END]

    facts: dict[str, Any] = {
        "caller": _first([e.caller for e in starts] + [e.caller for e in ordered]),
        "called_number": _first([e.called for e in starts] + [e.called for e in ordered]),
    }
    start_times = [e.started_at for e in ordered if e.started_at] + [e.occurred_at for e in starts]
    called_at = min(start_times) if start_times else min(e.occurred_at for e in ordered)
    facts["called_at"] = called_at

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
    if answered_at is not None and answered_at < called_at:
        answered_at = called_at
    if ended_at is not None and answered_at is not None and ended_at < answered_at:
        ended_at = answered_at + dt.timedelta(seconds=talk or 0)
    facts["answered_at"], facts["ended_at"] = answered_at, ended_at

    final = bool(ends)
    if not final:
        status = CallStatus.IN_PROGRESS
    elif answered:
        status = CallStatus.ANSWERED
    elif CallOutcome.BUSY in outcomes:
        status = CallStatus.BUSY
    elif CallOutcome.FAILED in outcomes and CallOutcome.MISSED not in outcomes:
        status = CallStatus.FAILED
    else:
        status = CallStatus.MISSED
    facts["status"] = status

    wait_until = answered_at or ended_at
    wait = max(0, round((wait_until - called_at).total_seconds())) if wait_until else 0
    if talk is None and answered_at and ended_at:
        talk = round((ended_at - answered_at).total_seconds())
    facts["wait_seconds"] = wait
    facts["talk_seconds"] = max(0, talk or 0) if answered else 0
    facts["abandoned"] = status == CallStatus.MISSED and wait < ABANDON_SECONDS

    forwarded = [e.forwarded_to for e in answers if e.forwarded_to] + [e.forwarded_to for e in ordered]
    facts["forwarded_to"] = _first(forwarded)
    facts["recording_url"] = _first([e.recording_url for e in reversed(ordered)]) or call.recording_url
    facts["recording_ref"] = _first([e.recording_ref for e in reversed(ordered)]) or call.recording_ref
    return facts, final


def _client_and_number(db: Session, call: Call) -> tuple[Client | None, TrackingNumber | None]:
    """The call's client and the tracking number it called (None for a number we do not know)."""
    if call.called_number is None:
        return db.get(Client, call.client_id), None
    # Entities, not ids: attribution and the delivery payload then find them in the identity map.
    params = {"e164": call.called_number, "client_id": call.client_id}
    row = db.execute(_statements(_dialect(db))["client_number"], params).first()
    return (row[0], row[1]) if row else (None, None)


def is_first_time(db: Session, call: Call) -> bool:
    """No earlier call from this caller to this client within the client's window.

    A withheld caller cannot be recognised, so it never counts as first-time.
    """
    if call.caller is None or call.called_at is None:
        return False
    client = db.get(Client, call.client_id)  # kept in the identity map for the delivery payload
    window = client.first_call_window_days if client else 180
    params = {
        "client_id": call.client_id,
        "caller": call.caller,
        "id": call.id,
        "since": call.called_at - dt.timedelta(days=window),
        "called_at": call.called_at,
    }
    return not db.connection().execute(_statements(_dialect(db))["earlier"], params).scalar()


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
        # Outer joins on parameters from one row of the client, which always exists: one statement whatever
        # the call lacks, and every row found lands in the identity map for the db.get calls below. A row
        # already there is not asked for (its parameter is null and joins nothing).
        absent = {model for model, _ident in missing}
        params = {model.__name__: ident if model in absent else None for model, ident in wanted}
        params[Client.__name__] = call.client_id
        found = db.execute(_statements(_dialect(db))["payload_rows"], params).all()  # held while read
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
