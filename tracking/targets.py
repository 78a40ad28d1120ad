"""Target calls: which of a client's named rules a call meets, kept on the call with a history.

A call is recomputed when its facts change (each telephony event, the operator's tags) and when a rule of
its client is created, changed or removed. Only a change is written: ``calls.target_rules`` and
``is_target`` move together with a ``call_target_changes`` row saying what caused it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracking import hooks
from tracking.models import Call, CallStatus, Client, RomiDirty, TargetChange, TargetRule

ANSWERED_CHOICES = ("answered", "missed", "any")
DEFAULT_MIN_TALK_SECONDS = 30
RECOMPUTE_CHUNK = 500


@dataclass(frozen=True)
class Facts:
    """What a rule looks at, taken from a call (so a rule can be checked without the database)."""

    status: str
    talk_seconds: int
    first_time: bool
    tags: frozenset[str]
    local_time: dt.datetime | None  # the call's start in the client's time zone


def facts(call: Call, timezone: str) -> Facts:
    local = call.called_at.astimezone(ZoneInfo(timezone)) if call.called_at else None
    return Facts(
        status=call.status.value,
        talk_seconds=call.talk_seconds or 0,
        first_time=bool(call.first_time),
        tags=frozenset(t.lower() for t in call.tags or []),
        local_time=local,
    )


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def within_hours(hours: dict[str, Any] | None, local: dt.datetime | None) -> bool:
    """``hours`` = {"days": [1..7], "start": "HH:MM", "end": "HH:MM"}; an end before the start spans
    midnight (the night belongs to the day the shift started)."""
    if not hours:
        return True
    if local is None:
        return False
    start, end = _minutes(hours["start"]), _minutes(hours["end"])
    now = local.hour * 60 + local.minute
    days = set(hours.get("days") or range(1, 8))
    if start <= end:
        return local.isoweekday() in days and start <= now < end
    # Overnight shift: the part after midnight belongs to the day the shift started.
    if now >= start:
        return local.isoweekday() in days
    yesterday = (local - dt.timedelta(days=1)).isoweekday()
    return now < end and yesterday in days


def meets(rule: TargetRule, f: Facts) -> bool:
    if f.status == CallStatus.IN_PROGRESS.value:
        return False
    answered = f.status == CallStatus.ANSWERED.value
    if rule.answered == "answered" and not answered:
        return False
    if rule.answered == "missed" and answered:
        return False
    if answered and f.talk_seconds < (rule.min_talk_seconds or 0):
        return False
    if rule.first_time_only and not f.first_time:
        return False
    included = {t.lower() for t in rule.tags_included or []}
    if included and not included & f.tags:
        return False
    if {t.lower() for t in rule.tags_excluded or []} & f.tags:
        return False
    return within_hours(rule.working_hours, f.local_time)


def rules_of(db: Session, client_id: int) -> list[TargetRule]:
    return list(
        db.scalars(
            select(TargetRule)
            .where(TargetRule.client_id == client_id, TargetRule.enabled.is_(True))
            .order_by(TargetRule.id)
        )
    )


def evaluate(rules: Iterable[TargetRule], f: Facts) -> list[dict[str, Any]]:
    return [{"id": r.id, "name": r.name} for r in rules if meets(r, f)]


def recompute(
    db: Session,
    call: Call,
    *,
    reason: str,
    actor: str = "system",
    rules: Sequence[TargetRule] | None = None,
    timezone: str | None = None,
) -> bool:
    """Set the rules ``call`` meets now; True (and a history row) when that changed.

    A finalised call that becomes target fires ``hooks.call_became_target`` in the caller's transaction,
    so uploads limited to target calls and target-call notifications are planned with the change.
    """
    if timezone is None:
        client = db.get(Client, call.client_id)
        timezone = client.timezone if client else "UTC"
    if rules is None:
        rules = rules_of(db, call.client_id)
    new = evaluate(rules, facts(call, timezone))
    old = list(call.target_rules or [])
    if [r["id"] for r in new] == [r["id"] for r in old]:
        return False
    was_target = bool(call.is_target)
    call.target_rules = new
    call.is_target = bool(new)
    if call.id is None:
        db.flush()
    db.add(TargetChange(call_id=call.id, old_rules=old, new_rules=new, reason=reason[:500], actor=actor))
    if call.called_at is not None:
        # The roll-up's triggers watch the columns every figure had before target calls; this one is noted
        # here, in the same transaction, so the call's day is rebuilt before a report reads it.
        db.add(RomiDirty(client_id=call.client_id, at=call.called_at))
    if call.is_target and not was_target and call.finalised_at is not None:
        hooks.call_became_target.fire(db, hooks.CallBecameTarget(client_id=call.client_id, call_id=call.id))
    return True


def recompute_client(db: Session, client_id: int, *, reason: str, actor: str = "system") -> int:
    """After a rule change: every call of the client, in chunks; returns how many changed."""
    client = db.get(Client, client_id)
    timezone = client.timezone if client else "UTC"
    rules = rules_of(db, client_id)
    changed = 0
    last_id = 0
    while True:
        calls = list(
            db.scalars(
                select(Call)
                .where(Call.client_id == client_id, Call.id > last_id)
                .order_by(Call.id)
                .limit(RECOMPUTE_CHUNK)
            )
        )
        if not calls:
            return changed
        for call in calls:
            changed += recompute(db, call, reason=reason, actor=actor, rules=rules, timezone=timezone)
        last_id = calls[-1].id
        db.flush()


def history(db: Session, call_id: int) -> list[TargetChange]:
    return list(
        db.scalars(select(TargetChange).where(TargetChange.call_id == call_id).order_by(TargetChange.id))
    )
