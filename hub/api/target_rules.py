"""Target-call rules of a client: named conditions that make a call count as a lead.

Every change recomputes the client's calls (``tracking.targets``) in the same transaction, so the calls
API, the journal, ROMI and the uploads limited to target calls agree with the rules as soon as they commit.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from flask import jsonify
from pydantic import AfterValidator, Field, WithJsonSchema
from sqlalchemy import select

from hub.api import bp
from hub.api.common import commit, owned, paginate, parse
from hub.api.crud import describe
from hub.auth import api_auth_required, client_or_404, current_user
from hub.extensions import db
from hub.resources import Name
from hub.schemas import In, Out, StrictBool
from tracking import targets
from tracking.models import Client, TargetRule

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_TALK_SECONDS = 24 * 3600

_HOURS_SCHEMA = {
    "type": ["object", "null"],
    "description": "in the client's time zone; an end before the start spans midnight",
    "properties": {
        "days": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 7},
            "description": "ISO weekdays, Monday = 1 (every day when left out)",
        },
        "start": {"type": "string", "pattern": HHMM.pattern},
        "end": {"type": "string", "pattern": HHMM.pattern},
    },
    "required": ["start", "end"],
    "additionalProperties": False,
}


def _hours(value: Any) -> dict[str, Any] | None:
    # One refusal for the whole object, named ``working_hours``: its parts only make sense together.
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"days", "start", "end"}:
        raise ValueError("must be null or an object of days, start and end")
    days = value.get("days", list(range(1, 8)))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in days)
    ):
        raise ValueError("days must be a non-empty list of weekdays 1 (Monday) to 7")
    start, end = value.get("start"), value.get("end")
    for name, hhmm in (("start", start), ("end", end)):
        if not isinstance(hhmm, str) or not HHMM.match(hhmm):
            raise ValueError(f"{name} must be a time HH:MM")
    if start == end:
        raise ValueError("start and end must differ")
    return {"days": sorted(set(days)), "start": start, "end": end}


WorkingHours = Annotated[Any, AfterValidator(_hours), WithJsonSchema(_HOURS_SCHEMA)]
Tag = Annotated[str, Field(strict=True, min_length=1, max_length=50)]


class WorkingHoursOut(Out):
    days: list[int]
    start: str
    end: str


class TargetRuleOut(Out):
    id: int
    client_id: int
    name: str
    enabled: bool
    min_talk_seconds: int = Field(description="an answered call must have talked at least this long")
    answered: Literal["answered", "missed", "any"]
    first_time_only: bool
    tags_included: list[str] = Field(
        description="the call carries at least one of these tags (any, when empty)"
    )
    tags_excluded: list[str] = Field(description="the call carries none of these tags")
    working_hours: WorkingHoursOut | None = Field(
        description="in the client's time zone; an end before the start spans midnight"
    )
    recomputed_calls: int | None = Field(
        description="calls whose target status changed with this request (null when reading a rule)"
    )


class TargetRuleChange(In):
    name: Name | None = None
    enabled: StrictBool | None = None
    min_talk_seconds: Annotated[int, Field(strict=True, ge=0, le=MAX_TALK_SECONDS)] | None = None
    answered: Literal["answered", "missed", "any"] | None = None
    first_time_only: StrictBool | None = None
    tags_included: list[Tag] | None = None
    tags_excluded: list[Tag] | None = None
    working_hours: WorkingHours = None

    model_config = {"extra": "forbid", "str_strip_whitespace": True}


class TargetRuleCreate(TargetRuleChange):
    name: Name


def rule_json(rule: TargetRule, recomputed: int | None = None) -> dict[str, Any]:
    return TargetRuleOut.build(
        id=rule.id,
        client_id=rule.client_id,
        name=rule.name,
        enabled=rule.enabled,
        min_talk_seconds=rule.min_talk_seconds,
        answered=rule.answered,
        first_time_only=rule.first_time_only,
        tags_included=list(rule.tags_included or []),
        tags_excluded=list(rule.tags_excluded or []),
        working_hours=rule.working_hours,
        recomputed_calls=recomputed,
    )


def _apply(rule: TargetRule, change: TargetRuleChange) -> None:
    for name, value in change.given().items():
        if name in ("tags_included", "tags_excluded") and value is not None:
            value = list(dict.fromkeys(value))
        if value is None and name != "working_hours":
            continue
        setattr(rule, name, value)


def _recompute(client: Client, rule: TargetRule, what: str) -> int:
    user = current_user()
    db().flush()
    return targets.recompute_client(
        db(), client.id, reason=f"rule {rule.name!r} {what}", actor=user.email if user else "system"
    )


@bp.get("/clients/<int:client_id>/target-rules")
@api_auth_required
def list_target_rules(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = select(TargetRule).where(TargetRule.client_id == client.id).order_by(TargetRule.id)
    return paginate(query, rule_json)


@bp.post("/clients/<int:client_id>/target-rules")
@api_auth_required
def create_target_rule(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    change = parse(TargetRuleCreate)
    rule = TargetRule(
        client_id=client.id,
        name=change.name,
        enabled=True,
        min_talk_seconds=targets.DEFAULT_MIN_TALK_SECONDS,
        answered="answered",
        first_time_only=False,
        tags_included=[],
        tags_excluded=[],
        working_hours=None,
    )
    _apply(rule, change)
    db().add(rule)
    changed = _recompute(client, rule, "added")
    commit()
    return jsonify(rule_json(rule, changed)), 201


@bp.get("/target-rules/<int:rule_id>")
@api_auth_required
def get_target_rule(rule_id: int) -> Any:
    return jsonify(rule_json(owned(TargetRule, rule_id)[0]))


@bp.patch("/target-rules/<int:rule_id>")
@api_auth_required
def update_target_rule(rule_id: int) -> Any:
    rule, client = owned(TargetRule, rule_id, edit=True)
    _apply(rule, parse(TargetRuleChange))
    changed = _recompute(client, rule, "changed")
    commit()
    return jsonify(rule_json(rule, changed))


@bp.delete("/target-rules/<int:rule_id>")
@api_auth_required
def delete_target_rule(rule_id: int) -> Any:
    rule, client = owned(TargetRule, rule_id, edit=True)
    db().delete(rule)
    _recompute(client, rule, "removed")
    commit()
    return "", 204


describe("rule", TargetRuleOut, TargetRuleCreate, TargetRuleChange, delete=True, plural="target-rules")
