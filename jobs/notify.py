"""Notifications for people: planned as outbox rows, one per event and destination, sent by the worker.

Destinations are connections of the ``email`` (one person's address) and ``telegram`` (a chat linked to
the client) connectors; ``settings["events"]`` says which of ``EVENTS`` each one wants. Every event has a
stable key (``notify-missed-<call>``, ``notify-digest-<client>-<day>`` …), so the outbox's unique key keeps
it to one notification per destination however often it is planned — after a crash, a retry or a second
scan. Call events are planned in the call's own transaction; the rest by ``scan`` in the scheduler.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import ItemKind
from jobs import outbox
from jobs.runtime import Runtime
from tracking import hooks
from tracking.db import utcnow
from tracking.models import (
    Call,
    CallStatus,
    Client,
    Connection,
    ConnectionStatus,
    Delivery,
    DeliveryStatus,
    Pool,
    PoolStat,
)

EVENTS: dict[str, str] = {
    "missed_call": "A call was missed",
    "target_call": "A target call",
    "daily_digest": "The day's digest",
    "pool_exhausted": "A number pool is running out",
    "reauth_needed": "A connection needs re-authorisation",
    "deliveries_dead": "Deliveries gave up",
}
NOTIFY_CONNECTORS = ("email", "telegram")
DIGEST_LOCAL_HOUR = 8  # the previous day's digest goes out after this hour, client time


@dataclass(frozen=True)
class Notice:
    """One notification to plan: which event, its stable key, and what people read. ``path`` is a hub page;
    the sender prefixes the hub's base URL (``AccountContext.hub_base_url``)."""

    event: str
    key: str
    subject: str
    text: str
    path: str | None = None


def plan(
    db: Session, client_id: int, notice: Notice, only: Callable[[Connection], bool] | None = None
) -> list[Delivery]:
    """Queue the notice to every destination of the client subscribed to its event."""
    payload = {
        "event": notice.event,
        "client_id": client_id,
        "subject": notice.subject,
        "text": notice.text,
        "path": notice.path,
    }
    return outbox.enqueue(
        db, client_id=client_id, kind=ItemKind.NOTIFICATION, key=notice.key, payload=payload, only=only
    )


def _local_time(payload: dict[str, Any]) -> str:
    """The call's start as people read it: the client's time zone, named."""
    raw, zone = payload.get("called_at"), payload.get("timezone") or "UTC"
    if not raw:
        return "unknown"
    local = dt.datetime.fromisoformat(raw).astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} ({zone})"


def _call_text(payload: dict[str, Any]) -> str:
    session = payload.get("session") or {}
    source = payload.get("channel") or "unknown source"
    if session.get("utm_source"):
        campaign = f" / {session['utm_campaign']}" if session.get("utm_campaign") else ""
        source += f" ({session['utm_source']}{campaign})"
    lines = [
        f"Caller: {payload.get('caller') or 'withheld'}",
        f"Number: {payload.get('tracking_number') or 'unknown'}",
        f"Source: {source}",
        f"Time: {_local_time(payload)}",
    ]
    if payload.get("status") == "answered":
        lines.append(f"Talk time: {payload.get('talk_seconds', 0)} s")
    if payload.get("target_rules"):
        lines.append("Target rules met: " + ", ".join(r["name"] for r in payload["target_rules"]))
    return "\n".join(lines)


def _call_notice(what: str, call_id: int, payload: dict[str, Any]) -> Notice:
    """A call's notice: ``what`` is "missed" or "target" (events missed_call and target_call)."""
    return Notice(
        event=f"{what}_call",
        key=f"notify-{what}-{call_id}",
        subject=f"{what.title()} call from {payload.get('caller') or 'a withheld number'}",
        text=_call_text(payload),
        path=payload.get("call_path"),
    )


def _on_call_finalised(db: Session, event: hooks.CallFinalised) -> None:
    payload = event.payload
    if payload.get("status") in (CallStatus.MISSED.value, CallStatus.BUSY.value):
        plan(db, event.client_id, _call_notice("missed", event.call_id, payload))
    if payload.get("is_target"):
        plan(db, event.client_id, _call_notice("target", event.call_id, payload))


def _on_call_became_target(db: Session, event: hooks.CallBecameTarget) -> None:
    from tracking.calls import call_payload

    call = db.get(Call, event.call_id)
    if call is not None:
        plan(db, event.client_id, _call_notice("target", call.id, call_payload(db, call)))


def install() -> None:
    hooks.call_finalised.connect(_on_call_finalised)
    hooks.call_became_target.connect(_on_call_became_target)


def uninstall() -> None:
    hooks.call_finalised.disconnect(_on_call_finalised)
    hooks.call_became_target.disconnect(_on_call_became_target)


def send_test(db: Session, conn: Connection) -> Delivery | None:
    """A test message to this one destination, through the outbox like any other (the caller commits)."""
    client_id = conn.client_id
    if client_id is None:
        return None
    notice = Notice(
        event="test",
        key=f"notify-test-{uuid.uuid4().hex}",
        subject="Otkuda: test notification",
        text="This is a test. Notifications for this client will arrive here.",
        path=f"/clients/{client_id}/notifications",
    )
    created = plan(db, client_id, notice, only=lambda c: c.id == conn.id)
    return created[0] if created else None


# --- scheduled events -------------------------------------------------------------------------------------


def _subscribed_clients(db: Session, event: str) -> list[int]:
    """Clients with at least one notification destination that wants ``event`` (the rest cost nothing)."""
    out: set[int] = set()
    for conn in db.scalars(
        select(Connection).where(
            Connection.status == ConnectionStatus.ACTIVE, Connection.client_id.is_not(None)
        )
    ):
        if set(conn.connectors or []) & set(NOTIFY_CONNECTORS) and event in (conn.settings or {}).get(
            "events", []
        ):
            out.add(conn.client_id)  # type: ignore[arg-type]
    return sorted(out)


def _digest(db: Session, client: Client, now: dt.datetime) -> list[Notice]:
    zone = ZoneInfo(client.timezone)
    local_now = now.astimezone(zone)
    if local_now.hour < DIGEST_LOCAL_HOUR:
        return []
    day = local_now.date() - dt.timedelta(days=1)
    start = dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)
    end = start + dt.timedelta(days=1)
    in_day = (Call.client_id == client.id, Call.called_at >= start, Call.called_at < end)
    total = db.scalar(select(func.count(Call.id)).where(*in_day)) or 0
    missed = db.scalar(
        select(func.count(Call.id)).where(*in_day, Call.status.in_((CallStatus.MISSED, CallStatus.BUSY)))
    )
    target = db.scalar(select(func.count(Call.id)).where(*in_day, Call.is_target.is_(True)))
    first = db.scalar(select(func.count(Call.id)).where(*in_day, Call.first_time.is_(True)))
    text = "\n".join(
        [
            f"{client.name}, {day.isoformat()}",
            f"Calls: {total}",
            f"Target calls: {target}",
            f"First-time callers: {first}",
            f"Missed: {missed}",
        ]
    )
    return [
        Notice(
            event="daily_digest",
            key=f"notify-digest-{client.id}-{day.isoformat()}",
            subject=f"Calls on {day.isoformat()}: {total} ({target} target, {missed} missed)",
            text=text,
            path=f"/clients/{client.id}/calls",
        )
    ]


def _pools(db: Session, client: Client, now: dt.datetime, threshold: float) -> list[Notice]:
    hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    notices = []
    rows = db.execute(
        select(Pool, PoolStat)
        .join(PoolStat, PoolStat.pool_id == Pool.id)
        .where(Pool.client_id == client.id, PoolStat.hour == hour)
    ).all()
    for pool, stat in rows:
        shown = stat.sessions + stat.fallbacks
        share = stat.fallbacks / shown if shown else 0.0
        if shown == 0 or share <= threshold:
            continue
        notices.append(
            Notice(
                event="pool_exhausted",
                key=f"notify-pool-{pool.id}-{hour:%Y%m%dT%H}",
                subject=f"Pool {pool.name!r} is running out: {share:.0%} of visitors saw the fallback number",
                text=(
                    f"In the hour from {hour:%Y-%m-%d %H:00} UTC, {stat.fallbacks} of {shown} visitor "
                    f"sessions got the fallback number ({share:.0%}); the pool has {stat.numbers} numbers, "
                    f"at most {stat.peak_held} held at once. Calls to the fallback number cannot be tied "
                    "to a visit: add numbers or shorten the hold."
                ),
                path=f"/clients/{client.id}/pool-advice",
            )
        )
    return notices


def _reauth(db: Session, client: Client) -> list[Notice]:
    from jobs.contexts import connections_of_client

    notices = []
    for conn in connections_of_client(db, client.id, statuses=(ConnectionStatus.NEEDS_REAUTH,)):
        since = conn.updated_at or utcnow()
        notices.append(
            Notice(
                event="reauth_needed",
                key=f"notify-reauth-{conn.id}-{int(since.timestamp())}",
                subject=f"Connection {conn.name or conn.provider!r} needs re-authorisation",
                text=(
                    f"{conn.name or conn.provider}: {conn.status_reason or 'the grant was revoked'}.\n"
                    "Deliveries to it wait until someone reconnects it on the Connections page."
                ),
                path=f"/clients/{client.id}/connections",
            )
        )
    return notices


def _dead(db: Session, client: Client, now: dt.datetime) -> list[Notice]:
    day = now.date()
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    count = db.scalar(
        select(func.count(Delivery.id)).where(
            Delivery.client_id == client.id,
            Delivery.status == DeliveryStatus.DEAD,
            Delivery.updated_at >= midnight,
            Delivery.kind != ItemKind.NOTIFICATION.value,  # a dead notification must not breed more
        )
    )
    if not count:
        return []
    return [
        Notice(
            event="deliveries_dead",
            key=f"notify-dead-{client.id}-{day.isoformat()}",
            subject=f"{count} deliveries gave up today",
            text=f"{count} deliveries of {client.name} are dead today; they are listed with their errors.",
            path=f"/clients/{client.id}/deliveries",
        )
    ]


def scan(rt: Runtime, now: dt.datetime | None = None) -> int:
    """Plan the scheduled notifications that are due; returns how many outbox rows were added."""
    now = now or utcnow()
    threshold = float(rt.setting("NOTIFY_POOL_FALLBACK_SHARE"))
    planned = 0
    with rt.sessions() as db:
        # Each check says what is due for one client; only clients someone subscribed for are checked.
        checks: dict[str, Callable[[Client], list[Notice]]] = {
            "daily_digest": lambda c: _digest(db, c, now),
            "pool_exhausted": lambda c: _pools(db, c, now, threshold),
            "reauth_needed": lambda c: _reauth(db, c),
            "deliveries_dead": lambda c: _dead(db, c, now),
        }
        for event, check in checks.items():
            for client_id in _subscribed_clients(db, event):
                client = db.get(Client, client_id)
                if client is not None:
                    for notice in check(client):
                        planned += len(plan(db, client.id, notice))
        db.commit()
    return planned
