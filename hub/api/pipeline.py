"""Connections, deliveries (with a retry action) and sync history of a client."""

from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request
from sqlalchemy import select

from hub.api import bp
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404
from hub.extensions import db
from hub.pipeline_queries import (
    DELIVERY_FILTERS,
    client_connections,
    client_deliveries,
    client_sync_runs,
    connection_json,
    delivery_json,
    sync_run_json,
)
from jobs.outbox import retry_now
from tracking.models import Client, Connection, ConnectionClient, ConnectionStatus, Delivery

CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": {"type": "integer"}}
NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
BAD_REQUEST = {
    "description": "Invalid input",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

CONNECTION = schema(
    "Connection",
    {
        "type": "object",
        "description": "An authorised external account. Tokens are never returned.",
        "properties": {
            "id": {"type": "integer"},
            "provider": {"type": "string"},
            "name": {"type": "string"},
            "connectors": {"type": "array", "items": {"type": "string"}},
            "account": {"type": "object", "additionalProperties": {"type": "string"}},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "shared": {"type": "boolean", "description": "Owned by the agency and shared with this client"},
            "status": {"type": "string", "enum": ["active", "needs_reauth", "disabled"]},
            "status_reason": {"type": ["string", "null"]},
            "needs_reauth": {"type": "boolean"},
            "has_token": {"type": "boolean"},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "last_sync_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)
DELIVERY = schema(
    "Delivery",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "connection_id": {"type": "integer"},
            "connector": {"type": "string"},
            "kind": {"type": "string", "enum": ["call", "deal_won"]},
            "key": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["pending", "in_flight", "done", "retry", "dead", "skipped"],
            },
            "in_doubt": {
                "type": "boolean",
                "description": "Sent, outcome unknown: looked up at the destination, never re-sent blindly",
            },
            "attempts": {"type": "integer"},
            "next_attempt_at": {"type": "string", "format": "date-time"},
            "external_id": {"type": ["string", "null"]},
            "last_error": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "done_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
)
SYNC_RUN = schema(
    "SyncRun",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "job": {"type": "string"},
            "connector": {"type": ["string", "null"]},
            "connection_id": {"type": ["integer", "null"]},
            "started_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "items": {"type": "integer"},
            "errors": {"type": "integer"},
            "error_text": {"type": ["string", "null"]},
        },
    },
)


def _list_of(ref: dict[str, str]) -> dict[str, Any]:
    return {
        "description": "OK",
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"items": {"type": "array", "items": ref}}}
            }
        },
    }


def _limit() -> int:
    raw = request.args.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 1000:
        abort(400, description="limit must be an integer from 1 to 1000")
    return int(raw)


@bp.get("/clients/<int:client_id>/connections")
@api_auth_required
def list_connections(client_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(items=[connection_json(c) for c in db().scalars(client_connections(client.id))])


register(
    "/clients/{client_id}/connections",
    "get",
    {
        "summary": "The client's connections (own and agency-shared) with status and last sync",
        "parameters": [CLIENT_ID],
        "responses": {"200": _list_of(CONNECTION), "404": NOT_FOUND},
    },
)


@bp.get("/clients/<int:client_id>/deliveries")
@api_auth_required
def list_deliveries(client_id: int) -> Any:
    client = client_or_404(client_id)
    status = request.args.get("status") or None
    if status is not None and status not in DELIVERY_FILTERS:
        abort(400, description=f"status must be one of {', '.join(sorted(DELIVERY_FILTERS))}")
    rows = db().scalars(client_deliveries(client.id, status, _limit()))
    return jsonify(items=[delivery_json(d) for d in rows])


register(
    "/clients/{client_id}/deliveries",
    "get",
    {
        "summary": "Deliveries of the client, newest first",
        "parameters": [
            CLIENT_ID,
            {
                "name": "status",
                "in": "query",
                "required": False,
                "description": "failing (retry or in doubt), dead, problems (both), or any delivery status",
                "schema": {"type": "string", "enum": sorted(DELIVERY_FILTERS)},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "maximum": 1000},
            },
        ],
        "responses": {"200": _list_of(DELIVERY), "400": BAD_REQUEST, "404": NOT_FOUND},
    },
)


@bp.post("/clients/<int:client_id>/deliveries/<int:delivery_id>/retry")
@api_auth_required
def retry_delivery(client_id: int, delivery_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    session = db()
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.client_id != client.id:
        abort(404)
    if not retry_now(session, delivery):
        abort(409, description=f"a {delivery.status.value} delivery cannot be retried")
    session.commit()
    return jsonify(delivery_json(delivery))


register(
    "/clients/{client_id}/deliveries/{delivery_id}/retry",
    "post",
    {
        "summary": "Queue a dead, failing or skipped delivery again now (attempts start over)",
        "parameters": [
            CLIENT_ID,
            {"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        ],
        "responses": {
            "200": {"description": "Queued", "content": {"application/json": {"schema": DELIVERY}}},
            "403": BAD_REQUEST | {"description": "The caller may not change this client"},
            "404": NOT_FOUND,
            "409": BAD_REQUEST | {"description": "Done or in-flight deliveries are never re-sent"},
        },
    },
)


@bp.get("/clients/<int:client_id>/sync-runs")
@api_auth_required
def list_sync_runs(client_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(items=[sync_run_json(r) for r in db().scalars(client_sync_runs(client.id, _limit()))])


register(
    "/clients/{client_id}/sync-runs",
    "get",
    {
        "summary": "Job runs for the client's connections (deliveries, pulls, look-ups), newest first",
        "parameters": [
            CLIENT_ID,
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "maximum": 1000},
            },
        ],
        "responses": {"200": _list_of(SYNC_RUN), "400": BAD_REQUEST, "404": NOT_FOUND},
    },
)


CONNECTION_PATCH = schema(
    "ConnectionPatch",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "connectors": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "account": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Typed ids only (counter_id, customer_id, login_customer_id, client_login, "
                "currency); facts learned when the account was connected cannot be changed",
            },
            "settings": {"type": "object"},
            "status": {"type": "string", "enum": ["active", "disabled"]},
            "shared_with": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "Clients of the agency that use an agency-shared connection",
            },
        },
    },
)


def _validate_patch(body: Any, conn: Connection, agency_id: int) -> dict[str, Any]:
    """Check every field before anything changes; a bad field answers 400 and changes nothing."""
    from connectors import registry

    if not isinstance(body, dict):
        abort(400, description="a JSON object is required")
    unknown = set(body) - set(CONNECTION_PATCH_FIELDS)
    if unknown:
        abort(400, description=f"unknown field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if "name" in body:
        if not isinstance(body["name"], str) or len(body["name"]) > 200:
            abort(400, description="name must be a string of at most 200 characters")
        out["name"] = body["name"].strip()
    if "connectors" in body:
        names = body["connectors"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            abort(400, description="connectors must be a non-empty list of connector names")
        bad = [n for n in names if n not in registry.CONNECTORS]
        if bad:
            abort(400, description=f"unknown connector(s): {', '.join(bad)}")
        out["connectors"] = list(dict.fromkeys(names))
    if "account" in body:
        try:
            out["account"] = registry.edited_account(
                out.get("connectors", conn.connectors or []), conn.account or {}, body["account"]
            )
        except registry.InvalidAccount as exc:
            abort(400, description=str(exc))
    if "settings" in body:
        if not isinstance(body["settings"], dict):
            abort(400, description="settings must be an object")
        out["settings"] = body["settings"]
    if "status" in body:
        if body["status"] not in ("active", "disabled"):
            abort(400, description="status must be active or disabled")
        if body["status"] == "active" and conn.status == ConnectionStatus.NEEDS_REAUTH:
            abort(409, description="this connection needs re-authorisation: reconnect it instead")
        out["status"] = ConnectionStatus(body["status"])
    if "shared_with" in body:
        ids = body["shared_with"]
        if conn.client_id is not None:
            abort(400, description="only an agency-shared connection can be shared with clients")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            abort(400, description="shared_with must be a list of client ids")
        found = set(db().scalars(select(Client.id).where(Client.id.in_(ids), Client.agency_id == agency_id)))
        if found != set(ids):
            abort(400, description="shared_with lists clients that are not in this agency")
        out["shared_with"] = sorted(found)
    return out


CONNECTION_PATCH_FIELDS = ("name", "connectors", "account", "settings", "status", "shared_with")


@bp.patch("/clients/<int:client_id>/connections/<int:connection_id>")
@api_auth_required
def patch_connection(client_id: int, connection_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    session = db()
    conn = session.scalar(client_connections(client.id).where(Connection.id == connection_id))
    if conn is None:
        abort(404)
    changes = _validate_patch(request.get_json(silent=True), conn, client.agency_id)
    shared_with = changes.pop("shared_with", None)
    for field, value in changes.items():
        setattr(conn, field, value)
    if shared_with is not None:
        keep = set(shared_with)
        for link in list(conn.shared_with):
            if link.client_id not in keep:
                conn.shared_with.remove(link)
        have = {link.client_id for link in conn.shared_with}
        conn.shared_with.extend(ConnectionClient(client_id=cid) for cid in shared_with if cid not in have)
    session.commit()
    return jsonify(connection_json(conn))


register(
    "/clients/{client_id}/connections/{connection_id}",
    "patch",
    {
        "summary": "Set a connection's account ids, settings, connectors, status or sharing",
        "parameters": [
            CLIENT_ID,
            {"name": "connection_id", "in": "path", "required": True, "schema": {"type": "integer"}},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": CONNECTION_PATCH}}},
        "responses": {
            "200": {"description": "Changed", "content": {"application/json": {"schema": CONNECTION}}},
            "400": BAD_REQUEST,
            "403": BAD_REQUEST | {"description": "The caller may not change this client"},
            "404": NOT_FOUND,
            "409": BAD_REQUEST | {"description": "Needs re-authorisation: reconnect instead"},
        },
    },
)
