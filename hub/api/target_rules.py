"""Target-call rules of a client: named conditions that make a call count as a lead.

Every change recomputes the client's calls (``tracking.targets``) in the same transaction, so the calls
API, the journal, ROMI and the uploads limited to target calls agree with the rules as soon as they commit.
"""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify
from sqlalchemy import select

from hub.api import bp
from hub.api.common import INVALID, NOT_FOUND, Invalid, body, field, id_param, ok, owned
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404, current_user
from hub.extensions import db
from tracking import targets
from tracking.models import Client, TargetRule

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MAX_TALK_SECONDS = 24 * 3600

TARGET_RULE = schema(
    "TargetRule",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "client_id": {"type": "integer", "readOnly": True},
            "name": {"type": "string", "maxLength": 200},
            "enabled": {"type": "boolean", "default": True},
            "min_talk_seconds": {
                "type": "integer",
                "minimum": 0,
                "default": targets.DEFAULT_MIN_TALK_SECONDS,
                "description": "an answered call must have talked at least this long",
            },
            "answered": {"type": "string", "enum": list(targets.ANSWERED_CHOICES), "default": "answered"},
            "first_time_only": {"type": "boolean", "default": False},
            "tags_included": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the call carries at least one of these tags (any, when empty)",
            },
            "tags_excluded": {
                "type": "array",
                "items": {"type": "string"},
                "description": "the call carries none of these tags",
            },
            "working_hours": {
                "type": ["object", "null"],
                "description": "in the client's time zone; an end before the start spans midnight",
                "properties": {
                    "days": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": 7},
                        "description": "ISO weekdays, Monday = 1",
                    },
                    "start": {"type": "string", "pattern": HHMM.pattern},
                    "end": {"type": "string", "pattern": HHMM.pattern},
                },
                "required": ["days", "start", "end"],
            },
            "recomputed_calls": {
                "type": "integer",
                "readOnly": True,
                "description": "calls whose target status changed with this request",
            },
        },
        "required": ["name"],
    },
)


def rule_json(rule: TargetRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "client_id": rule.client_id,
        "name": rule.name,
        "enabled": rule.enabled,
        "min_talk_seconds": rule.min_talk_seconds,
        "answered": rule.answered,
        "first_time_only": rule.first_time_only,
        "tags_included": list(rule.tags_included or []),
        "tags_excluded": list(rule.tags_excluded or []),
        "working_hours": rule.working_hours,
    }


def _tags(data: dict[str, Any], name: str) -> list[str] | None:
    value = field(data, name, list)
    if value is None:
        return None
    if not all(isinstance(t, str) and 0 < len(t.strip()) <= 50 for t in value):
        raise Invalid(name, "must be a list of tags of 1 to 50 characters")
    return list(dict.fromkeys(t.strip() for t in value))


def _hours(data: dict[str, Any]) -> dict[str, Any] | None:
    value = data["working_hours"]
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"days", "start", "end"}:
        raise Invalid("working_hours", "must be null or an object of days, start and end")
    days = value.get("days", list(range(1, 8)))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 7 for d in days)
    ):
        raise Invalid("working_hours", "days must be a non-empty list of weekdays 1 (Monday) to 7")
    start, end = value.get("start"), value.get("end")
    for name, hhmm in (("start", start), ("end", end)):
        if not isinstance(hhmm, str) or not HHMM.match(hhmm):
            raise Invalid("working_hours", f"{name} must be a time HH:MM")
    if start == end:
        raise Invalid("working_hours", "start and end must differ")
    return {"days": sorted(set(days)), "start": start, "end": end}


def _apply(rule: TargetRule, data: dict[str, Any]) -> None:
    """Validate every field first, then change the rule: a bad field changes nothing."""
    unknown = set(data) - (set(rule_json(rule)) - {"id", "client_id"})
    if unknown:
        raise Invalid(sorted(unknown)[0], "is not a field of a target rule")
    changes: dict[str, Any] = {}
    if (name := field(data, "name", str)) is not None:
        if not name or len(name) > 200:
            raise Invalid("name", "must be 1 to 200 characters")
        changes["name"] = name
    if (enabled := field(data, "enabled", bool)) is not None:
        changes["enabled"] = enabled
    if (talk := field(data, "min_talk_seconds", int)) is not None:
        if not 0 <= talk <= MAX_TALK_SECONDS:
            raise Invalid("min_talk_seconds", f"must be from 0 to {MAX_TALK_SECONDS}")
        changes["min_talk_seconds"] = talk
    if (answered := field(data, "answered", str)) is not None:
        if answered not in targets.ANSWERED_CHOICES:
            raise Invalid("answered", "must be one of " + ", ".join(targets.ANSWERED_CHOICES))
        changes["answered"] = answered
    if (first := field(data, "first_time_only", bool)) is not None:
        changes["first_time_only"] = first
    for name in ("tags_included", "tags_excluded"):
        if (tags := _tags(data, name)) is not None:
            changes[name] = tags
    if "working_hours" in data:
        changes["working_hours"] = _hours(data)
    for key, value in changes.items():
        setattr(rule, key, value)


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
    rows = db().scalars(select(TargetRule).where(TargetRule.client_id == client.id).order_by(TargetRule.id))
    return jsonify(items=[rule_json(r) for r in rows])


@bp.post("/clients/<int:client_id>/target-rules")
@api_auth_required
def create_target_rule(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    data = body()
    field(data, "name", str, required=True)
    rule = TargetRule(
        client_id=client.id,
        name="",
        enabled=True,
        min_talk_seconds=targets.DEFAULT_MIN_TALK_SECONDS,
        answered="answered",
        first_time_only=False,
        tags_included=[],
        tags_excluded=[],
        working_hours=None,
    )
    _apply(rule, data)
    db().add(rule)
    changed = _recompute(client, rule, "added")
    db().commit()
    return jsonify({**rule_json(rule), "recomputed_calls": changed}), 201


@bp.patch("/target-rules/<int:rule_id>")
@api_auth_required
def update_target_rule(rule_id: int) -> Any:
    rule, client = owned(TargetRule, rule_id, edit=True)
    _apply(rule, body())
    changed = _recompute(client, rule, "changed")
    db().commit()
    return jsonify({**rule_json(rule), "recomputed_calls": changed})


@bp.delete("/target-rules/<int:rule_id>")
@api_auth_required
def delete_target_rule(rule_id: int) -> Any:
    rule, client = owned(TargetRule, rule_id, edit=True)
    db().delete(rule)
    _recompute(client, rule, "removed")
    db().commit()
    return "", 204


_RULE_ID = [id_param("rule_id")]
register(
    "/clients/{client_id}/target-rules",
    "get",
    {
        "summary": "The client's target-call rules",
        "parameters": [id_param("client_id")],
        "responses": {
            "200": ok({"type": "object", "properties": {"items": {"type": "array", "items": TARGET_RULE}}}),
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/target-rules",
    "post",
    {
        "summary": "Add a target-call rule (the client's calls are recomputed)",
        "parameters": [id_param("client_id")],
        "requestBody": {"content": {"application/json": {"schema": TARGET_RULE}}},
        "responses": {"201": ok(TARGET_RULE), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/target-rules/{rule_id}",
    "patch",
    {
        "summary": "Change a target-call rule (the client's calls are recomputed)",
        "parameters": _RULE_ID,
        "requestBody": {"content": {"application/json": {"schema": TARGET_RULE}}},
        "responses": {"200": ok(TARGET_RULE), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/target-rules/{rule_id}",
    "delete",
    {
        "summary": "Remove a target-call rule (the client's calls are recomputed)",
        "parameters": _RULE_ID,
        "responses": {"204": {"description": "Removed"}, "404": NOT_FOUND},
    },
)
