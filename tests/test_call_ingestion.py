"""Ingestion converges on one correct record whatever the order and number of deliveries."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_tenant
from tracking import hooks
from tracking.calls import ingest
from tracking.db import make_session_factory
from tracking.models import AttributionMethod, Call, CallStatus, StoredCallEvent
from tracking.telephony.base import CallOutcome, EventKind
from tracking.telephony.base import ProviderEvent as Event

T0 = h.T0


def _lifecycle(call_id: str = "c1", caller: str | None = "+79001234567") -> list[Event]:
    common = {"provider": "generic", "provider_call_id": call_id}
    return [
        Event(
            **common,
            kind=EventKind.START,
            occurred_at=T0,
            started_at=T0,
            caller=caller,
            called="+74951110000",
        ),
        Event(
            **common,
            kind=EventKind.ANSWER,
            occurred_at=T0 + dt.timedelta(seconds=8),
            answered_at=T0 + dt.timedelta(seconds=8),
            forwarded_to="+74950000001",
        ),
        Event(
            **common,
            kind=EventKind.END,
            occurred_at=T0 + dt.timedelta(seconds=68),
            ended_at=T0 + dt.timedelta(seconds=68),
            outcome=CallOutcome.ANSWERED,
        ),
        Event(
            **common,
            kind=EventKind.RECORD,
            occurred_at=T0 + dt.timedelta(seconds=70),
            recording_url="https://r/1",
        ),
    ]


@pytest.fixture
def finalised_events():
    seen: list[hooks.CallFinalised] = []

    def listener(db: Session, event: hooks.CallFinalised) -> None:
        # Inside the ingesting transaction: the call row is visible to the listener's session.
        assert db.get(Call, event.call_id) is not None
        seen.append(event)

    hooks.call_finalised.connect(listener)
    yield seen
    hooks.call_finalised.disconnect(listener)


def _snapshot(call: Call) -> tuple:
    return (
        call.caller,
        call.called_number,
        call.called_at,
        call.answered_at,
        call.ended_at,
        call.wait_seconds,
        call.talk_seconds,
        call.status,
        call.abandoned,
        call.forwarded_to,
        call.recording_url,
        call.channel_id,
        call.attribution_method,
    )


def test_every_order_and_duplicate_converges_to_one_record(db: Session, finalised_events) -> None:
    t = make_tenant(db)
    ch = h.make_channel(db, t.site, "Billboard")
    h.make_static(db, ch, e164="+74951110000")
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    events = _lifecycle()
    results = set()
    # Every order of the four events, each delivered twice: one record, finalised exactly once per call id.
    for n, order in enumerate(itertools.permutations(events)):
        call_id = f"perm{n}"
        for ev in [*order, *order]:
            ev = Event(**{**ev.__dict__, "provider_call_id": call_id})
            ingest(db, integ, ev)
            db.commit()
        call = db.scalars(select(Call).where(Call.provider_call_id == call_id)).one()
        results.add(_snapshot(call))
        assert (
            db.scalar(
                select(func.count()).select_from(StoredCallEvent).where(StoredCallEvent.call_id == call.id)
            )
            == 4
        )
    assert len(results) == 1
    (snap,) = results
    assert snap == (
        "+79001234567",
        "+74951110000",
        T0,
        T0 + dt.timedelta(seconds=8),
        T0 + dt.timedelta(seconds=68),
        8,
        60,
        CallStatus.ANSWERED,
        False,
        "+74950000001",
        "https://r/1",
        ch.id,
        AttributionMethod.STATIC,
    )
    assert len(finalised_events) == 24
    assert len({e.call_id for e in finalised_events}) == 24
    payload = finalised_events[0].payload
    assert payload["key"] == f"otkuda-call-{finalised_events[0].call_id}"
    assert payload["call_path"] == f"/clients/{t.client.id}/calls/{finalised_events[0].call_id}"
    assert payload["channel"] == "Billboard" and payload["static"] is True and payload["status"] == "answered"


def test_the_call_returned_is_the_row_written(db: Session, engine: Engine) -> None:
    """Ingestion sets what it computes on the entity and writes it itself (one UPDATE of what changed, or
    one flush when attribution changed the call too): read back through another session, column for
    column, the row is the entity, whichever order the events come in."""
    t = make_tenant(db)
    ch = h.make_channel(db, t.site, "Billboard")
    h.make_static(db, ch, e164="+74951110000")
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    columns = [c.key for c in Call.__table__.columns]
    other = make_session_factory(engine)
    start, answer, end, rec = _lifecycle("written")
    for ev in (end, rec, start, answer, end):
        result = ingest(db, integ, ev)
        db.commit()
        with other() as fresh:
            row = fresh.get(Call, result.call.id)
            assert row is not None
            assert {k: getattr(row, k) for k in columns} == {k: getattr(result.call, k) for k in columns}
    assert result.duplicate
    assert (row.status, row.recording_url, row.channel_id) == (CallStatus.ANSWERED, "https://r/1", ch.id)
    assert row.finalised_at is not None and row.tracking_number_id is not None


def test_finalised_hook_fires_once_and_rolls_back_with_the_transaction(db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    start, _answer, end, _rec = _lifecycle("boom")

    def failing(db: Session, event: hooks.CallFinalised) -> None:
        raise RuntimeError("outbox unavailable")

    hooks.call_finalised.connect(failing)
    try:
        ingest(db, integ, start)
        db.commit()
        with pytest.raises(RuntimeError):
            ingest(db, integ, end)
        db.rollback()
    finally:
        hooks.call_finalised.disconnect(failing)
    call = db.scalars(select(Call)).one()
    db.refresh(call)
    # The end event was rolled back with the failed delivery: the call is not final and can be retried.
    assert call.finalised_at is None and call.status == CallStatus.IN_PROGRESS
    seen: list[hooks.CallFinalised] = []

    def listener(_db: Session, event: hooks.CallFinalised) -> None:
        seen.append(event)

    hooks.call_finalised.connect(listener)
    try:
        ingest(db, integ, end)
        db.commit()
        ingest(db, integ, end)
        db.commit()
    finally:
        hooks.call_finalised.disconnect(listener)
    assert len(seen) == 1 and seen[0].payload["status"] == "answered"


def test_statuses_wait_and_abandoned(db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "s"})

    def run(call_id: str, ring: int, outcome: CallOutcome) -> Call:
        start = Event(
            provider="generic",
            provider_call_id=call_id,
            kind=EventKind.START,
            occurred_at=T0,
            caller="+79001234567",
            called="+74950009999",
        )
        end = Event(
            provider="generic",
            provider_call_id=call_id,
            kind=EventKind.END,
            occurred_at=T0 + dt.timedelta(seconds=ring),
            ended_at=T0 + dt.timedelta(seconds=ring),
            outcome=outcome,
        )
        ingest(db, integ, end)
        ingest(db, integ, start)
        db.commit()
        return db.scalars(select(Call).where(Call.provider_call_id == call_id)).one()

    short = run("short", 9, CallOutcome.MISSED)
    assert (short.status, short.wait_seconds, short.abandoned) == (CallStatus.MISSED, 9, True)
    long = run("long", 40, CallOutcome.MISSED)
    assert (long.status, long.abandoned) == (CallStatus.MISSED, False)
    busy = run("busy", 3, CallOutcome.BUSY)
    assert (busy.status, busy.abandoned) == (CallStatus.BUSY, False)
    failed = run("failed", 1, CallOutcome.FAILED)
    assert failed.status == CallStatus.FAILED
    # Unknown number: kept as an unmatched call, not dropped.
    assert short.tracking_number_id is None and short.attribution_method == AttributionMethod.UNMATCHED


def test_first_time_caller_window_and_withheld(db: Session) -> None:
    t = make_tenant(db)
    t.client.first_call_window_days = 30
    db.commit()
    integ = h.make_integration(db, t, "generic", {"secret": "s"})

    def call_at(call_id: str, at: dt.datetime, caller: str | None) -> Call:
        ingest(
            db,
            integ,
            Event(
                provider="generic",
                provider_call_id=call_id,
                kind=EventKind.START,
                occurred_at=at,
                caller=caller,
                called="+74951110000",
            ),
        )
        db.commit()
        return db.scalars(select(Call).where(Call.provider_call_id == call_id)).one()

    assert call_at("a", T0, "+79001234567").first_time is True
    assert call_at("b", T0 + dt.timedelta(days=10), "+79001234567").first_time is False
    assert call_at("c", T0 + dt.timedelta(days=50), "+79001234567").first_time is True
    assert call_at("d", T0, "+79007654321").first_time is True
    assert call_at("e", T0, None).first_time is False
    other = make_tenant(db, "Other")
    other_integ = h.make_integration(db, other, "generic", {"secret": "s"})
    ingest(
        db,
        other_integ,
        Event(
            provider="generic",
            provider_call_id="f",
            kind=EventKind.START,
            occurred_at=T0 + dt.timedelta(days=1),
            caller="+79001234567",
            called="+74951110000",
        ),
    )
    db.commit()
    assert db.scalars(select(Call).where(Call.provider_call_id == "f")).one().first_time is True


def test_same_call_id_in_two_integrations_makes_two_calls(db: Session) -> None:
    a, b = make_tenant(db, "A"), make_tenant(db, "B")
    ia, ib = (
        h.make_integration(db, a, "generic", {"secret": "s"}),
        h.make_integration(db, b, "generic", {"secret": "s"}),
    )
    ingest(db, ia, _lifecycle("shared")[0])
    db.commit()
    ingest(db, ib, _lifecycle("shared")[2])
    db.commit()
    calls = db.scalars(select(Call).where(Call.provider_call_id == "shared").order_by(Call.id)).all()
    assert [(c.client_id, c.integration_id) for c in calls] == [(a.client.id, ia.id), (b.client.id, ib.id)]


def test_concurrent_deliveries_of_one_call_make_one_row(db: Session, engine: Engine) -> None:
    t = make_tenant(db)
    h.make_static(db, h.make_channel(db, t.site, "Radio"), e164="+74951110000")
    integ = h.make_integration(db, t, "generic", {"secret": "s"})
    factory = make_session_factory(engine)
    seen: list[int] = []
    hooks.call_finalised.connect(counter := lambda _db, e: seen.append(e.call_id))
    errors: list[BaseException] = []
    rounds = 8

    def deliver(ev: Event, barrier: threading.Barrier) -> None:
        session = factory()
        try:
            integration = session.merge(integ, load=False)
            barrier.wait()
            for attempt in range(5):
                try:
                    ingest(session, integration, ev)
                    session.commit()
                    return
                except Exception as exc:  # SQLite may report "database is locked" under contention
                    session.rollback()
                    if attempt == 4 or "locked" not in str(exc):
                        raise
        except BaseException as exc:
            errors.append(exc)
        finally:
            session.close()

    try:
        for r in range(rounds):
            events = [Event(**{**e.__dict__, "provider_call_id": f"race{r}"}) for e in _lifecycle()]
            # Each event twice, all at once.
            batch = events + events
            barrier = threading.Barrier(len(batch))
            threads = [threading.Thread(target=deliver, args=(ev, barrier)) for ev in batch]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
    finally:
        hooks.call_finalised.disconnect(counter)
    assert errors == []
    assert db.scalar(select(func.count()).select_from(Call)) == rounds
    assert db.scalar(select(func.count()).select_from(StoredCallEvent)) == rounds * 4
    assert sorted(seen) == sorted(set(seen)) and len(seen) == rounds
    for call in db.scalars(select(Call)):
        assert call.status == CallStatus.ANSWERED and call.talk_seconds == 60 and call.recording_url
