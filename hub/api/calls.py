"""Calls: the filtered, paged list, one call with its session and candidates, CSV/XLSX, operator edits."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from pydantic import ConfigDict, Field

from hub import exports
from hub.api import bp
from hub.api.common import NOT_FOUND, PAGE_PARAMS, id_param, ok, page, page_of, parse, refused, request_body
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404, current_user
from hub.call_views import (
    CSV_COLUMNS,
    CallDetailOut,
    CallOut,
    call_detail,
    call_json,
    client_call,
    export_rows,
    lookups,
)
from hub.extensions import db
from hub.schemas import In, StrictInt
from tracking import call_journal
from tracking.call_journal import CallFilter
from tracking.models import Call, CallStatus, Client


class CallChange(In):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] | None = Field(None, description=f"Up to {call_journal.MAX_TAG} characters each")
    notes: str | None = Field(None, max_length=call_journal.MAX_NOTES)


class PromoCodeIn(In):
    code: str = Field(min_length=1, max_length=call_journal.MAX_PROMO)


class ManualChannelIn(In):
    channel_id: StrictInt
    reason: str = Field("", max_length=call_journal.MAX_REASON)


def call_filter(client: Client) -> CallFilter:
    return CallFilter.from_args(request.args, client.timezone or "UTC")


def call_or_404(client: Client, call_id: int) -> Call:
    call = client_call(db(), client, call_id)
    if call is None:
        abort(404)
    return call


@bp.get("/clients/<int:client_id>/calls")
@api_auth_required
def list_calls(client_id: int) -> Any:
    client = client_or_404(client_id)
    query = call_filter(client).query(client.id).order_by(Call.called_at.desc(), Call.id.desc())
    calls, meta = page(query)
    found = lookups(db(), client, calls)
    return jsonify(items=[call_json(c, found) for c in calls], **meta)


@bp.get("/clients/<int:client_id>/calls.csv", defaults={"fmt": "csv"})
@bp.get("/clients/<int:client_id>/calls.xlsx", defaults={"fmt": "xlsx"})
@api_auth_required
def export_calls(client_id: int, fmt: str) -> Any:
    client = client_or_404(client_id)
    rows = export_rows(db(), client, call_filter(client).query(client.id))
    return exports.download(f"calls-{client.id}", fmt, CSV_COLUMNS, rows, "Calls")


@bp.get("/clients/<int:client_id>/calls/<int:call_id>")
@api_auth_required
def get_call(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(call_detail(db(), client, call_or_404(client, call_id)))


@bp.patch("/clients/<int:client_id>/calls/<int:call_id>")
@api_auth_required
def update_call(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    change = parse(CallChange)
    call_journal.set_tags_notes(db(), call, current_user(), change.tags, change.notes)
    db().commit()
    return jsonify(call_detail(db(), client, call))


@bp.post("/clients/<int:client_id>/calls/<int:call_id>/promo-code")
@api_auth_required
def set_promo_code(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    call_journal.set_promo_code(db(), call, parse(PromoCodeIn).code, current_user())
    db().commit()
    return jsonify(call_detail(db(), client, call))


@bp.post("/clients/<int:client_id>/calls/<int:call_id>/channel")
@api_auth_required
def set_channel(client_id: int, call_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    call = call_or_404(client, call_id)
    given = parse(ManualChannelIn)
    call_journal.set_channel_by_hand(db(), call, given.channel_id, current_user(), given.reason)
    db().commit()
    return jsonify(call_detail(db(), client, call))


# --- OpenAPI ------------------------------------------------------------------------------------------

_IDS = [id_param("client_id"), id_param("call_id")]
_FILTERS = [
    id_param("client_id"),
    {
        "name": "from",
        "in": "query",
        "schema": {"type": "string"},
        "description": "date (client's zone) or time",
    },
    {
        "name": "to",
        "in": "query",
        "schema": {"type": "string"},
        "description": "inclusive date, or exclusive time",
    },
    {"name": "channel_id", "in": "query", "schema": {"type": "integer"}},
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": [s.value for s in CallStatus]}},
    {"name": "first_time", "in": "query", "schema": {"type": "boolean"}},
    {"name": "target", "in": "query", "schema": {"type": "boolean"}, "description": "meets a target rule"},
    {"name": "attributed", "in": "query", "schema": {"type": "boolean"}, "description": "has a channel"},
    {
        "name": "caller",
        "in": "query",
        "schema": {"type": "string"},
        "description": "digits of the caller's number",
    },
    {"name": "tag", "in": "query", "schema": {"type": "string"}, "description": "calls carrying this tag"},
]
BAD_FILTER = refused("A filter is not understood")
register(
    "/clients/{client_id}/calls",
    "get",
    {
        "summary": "Calls of a client, newest first, filtered and paginated",
        "parameters": [*_FILTERS, *PAGE_PARAMS],
        "responses": {"200": page_of(CallOut), "400": BAD_FILTER, "404": NOT_FOUND},
    },
)
for _fmt, _type in (("csv", "text/csv"), ("xlsx", exports.XLSX)):
    register(
        f"/clients/{{client_id}}/calls.{_fmt}",
        "get",
        {
            "summary": f"Calls as a flat {_fmt.upper()} (same filters as the list; CSV is UTF-8 with a BOM)",
            "parameters": _FILTERS,
            "responses": {
                "200": {"description": _fmt.upper(), "content": {_type: {}}},
                "400": BAD_FILTER,
                "404": NOT_FOUND,
            },
        },
    )
register(
    "/clients/{client_id}/calls/{call_id}",
    "get",
    {
        "summary": "One call with its session, candidate sessions and attribution history",
        "parameters": _IDS,
        "responses": {"200": ok(CallDetailOut), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/calls/{call_id}",
    "patch",
    {
        "summary": "Set a call's tags and operator notes",
        "parameters": _IDS,
        "requestBody": request_body(CallChange),
        "responses": {"200": ok(CallDetailOut), "400": refused("Bad input"), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}/calls/{call_id}/promo-code",
    "post",
    {
        "summary": "Re-attribute a call to the session that showed this promo code",
        "parameters": _IDS,
        "requestBody": request_body(PromoCodeIn),
        "responses": {
            "200": ok(CallDetailOut),
            "400": refused("Bad input"),
            "422": refused("No session showed this code"),
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/calls/{call_id}/channel",
    "post",
    {
        "summary": "Set the call's channel by hand (the caller's answer to 'how did you hear about us?')",
        "parameters": _IDS,
        "requestBody": request_body(ManualChannelIn),
        "responses": {
            "200": ok(CallDetailOut),
            "400": refused("Bad input"),
            "422": refused("Unknown channel"),
            "404": NOT_FOUND,
        },
    },
)
