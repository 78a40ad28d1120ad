"""GA4 connections of a client: a measurement id and a Measurement Protocol API secret (stored sealed)."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify

from connectors.ga4 import mapping
from hub.api import bp
from hub.api.common import INVALID, NOT_FOUND, Invalid, body, field, id_param, ok
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404
from hub.destinations import box, destination_or_404, new, of_client
from hub.extensions import db
from tracking.models import Connection, ConnectionStatus

CONNECTOR = "ga4"
MEASUREMENT_ID = re.compile(r"^G-[A-Z0-9]{4,20}$")
FIELDS = {
    "name",
    "measurement_id",
    "api_secret",
    "call_event",
    "deal_event",
    "validate",
    "target_calls_only",
    "enabled",
}

GA4 = schema(
    "Ga4Connection",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "readOnly": True},
            "client_id": {"type": "integer", "readOnly": True},
            "name": {"type": "string"},
            "measurement_id": {"type": "string", "pattern": MEASUREMENT_ID.pattern},
            "api_secret": {
                "type": "string",
                "writeOnly": True,
                "description": "stored encrypted, never returned",
            },
            "call_event": {"type": "string", "default": mapping.DEFAULT_CALL_EVENT},
            "deal_event": {"type": "string", "default": mapping.DEFAULT_DEAL_EVENT},
            "validate": {"type": "boolean", "default": True, "description": "check each event first"},
            "target_calls_only": {"type": "boolean", "default": False},
            "enabled": {"type": "boolean"},
        },
    },
)


def ga4_json(conn: Connection) -> dict[str, Any]:
    settings = conn.settings or {}
    return {
        "id": conn.id,
        "client_id": conn.client_id,
        "name": conn.name,
        "measurement_id": (conn.account or {}).get("measurement_id"),
        "call_event": settings.get("call_event", mapping.DEFAULT_CALL_EVENT),
        "deal_event": settings.get("deal_event", mapping.DEFAULT_DEAL_EVENT),
        "validate": settings.get("validate", True),
        "target_calls_only": bool(settings.get("target_calls_only")),
        "enabled": conn.status != ConnectionStatus.DISABLED,
    }


def _read(data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data) - FIELDS
    if unknown:
        raise Invalid(sorted(unknown)[0], "is not a field of a GA4 connection")
    out: dict[str, Any] = {}
    if (mid := field(data, "measurement_id", str)) is not None:
        if not MEASUREMENT_ID.match(mid):
            raise Invalid("measurement_id", "must be a web stream's measurement id such as G-ABC123XYZ")
        out["measurement_id"] = mid
    if (secret := field(data, "api_secret", str)) is not None:
        if not 0 < len(secret) <= 200:
            raise Invalid("api_secret", "must be 1 to 200 characters")
        out["api_secret"] = secret
    for name in ("call_event", "deal_event"):
        if (event := field(data, name, str)) is not None:
            if problem := mapping.check_name(event, "event name"):
                raise Invalid(name, problem)
            out[name] = event
    for name in ("validate", "target_calls_only", "enabled"):
        if (flag := field(data, name, bool)) is not None:
            out[name] = flag
    if (name := field(data, "name", str)) is not None:
        out["name"] = name[:200]
    return out


def _apply(conn: Connection, values: dict[str, Any]) -> None:
    if "measurement_id" in values:
        conn.account = {**(conn.account or {}), "measurement_id": values["measurement_id"]}
    if "api_secret" in values:
        conn.access_token_enc = box().seal(values["api_secret"])
    settings = dict(conn.settings or {})
    for name in ("call_event", "deal_event", "validate", "target_calls_only"):
        if name in values:
            settings[name] = values[name]
    conn.settings = settings
    if "name" in values:
        conn.name = values["name"]
    if "enabled" in values:
        conn.status = ConnectionStatus.ACTIVE if values["enabled"] else ConnectionStatus.DISABLED


@bp.get("/clients/<int:client_id>/ga4-connections")
@api_auth_required
def list_ga4(client_id: int) -> Any:
    client = client_or_404(client_id)
    return jsonify(items=[ga4_json(c) for c in of_client(client, CONNECTOR)])


@bp.post("/clients/<int:client_id>/ga4-connections")
@api_auth_required
def create_ga4(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    values = _read(body())
    for required in ("measurement_id", "api_secret"):
        if required not in values:
            raise Invalid(required, "is required")
    conn = new(
        client,
        CONNECTOR,
        name=values.get("name") or values["measurement_id"],
        account={},
        settings={},
        secret=None,
    )
    _apply(conn, values)
    db().commit()
    return jsonify(ga4_json(conn)), 201


@bp.patch("/ga4-connections/<int:connection_id>")
@api_auth_required
def update_ga4(connection_id: int) -> Any:
    conn, _ = destination_or_404(connection_id, CONNECTOR, edit=True)
    _apply(conn, _read(body()))
    db().commit()
    return jsonify(ga4_json(conn))


@bp.delete("/ga4-connections/<int:connection_id>")
@api_auth_required
def delete_ga4(connection_id: int) -> Any:
    conn, _ = destination_or_404(connection_id, CONNECTOR, edit=True)
    db().delete(conn)
    db().commit()
    return "", 204


register(
    "/clients/{client_id}/ga4-connections",
    "get",
    {
        "summary": "The client's GA4 connections",
        "parameters": [id_param("client_id")],
        "responses": {
            "200": ok({"type": "object", "properties": {"items": {"type": "array", "items": GA4}}}),
            "404": NOT_FOUND,
        },
    },
)
register(
    "/clients/{client_id}/ga4-connections",
    "post",
    {
        "summary": "Connect a GA4 web stream (measurement id and API secret)",
        "parameters": [id_param("client_id")],
        "requestBody": {"content": {"application/json": {"schema": GA4}}},
        "responses": {"201": ok(GA4), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/ga4-connections/{connection_id}",
    "patch",
    {
        "summary": "Change a GA4 connection",
        "parameters": [id_param("connection_id")],
        "requestBody": {"content": {"application/json": {"schema": GA4}}},
        "responses": {"200": ok(GA4), "400": INVALID, "404": NOT_FOUND},
    },
)
register(
    "/ga4-connections/{connection_id}",
    "delete",
    {
        "summary": "Remove a GA4 connection",
        "parameters": [id_param("connection_id")],
        "responses": {"204": {"description": "Removed"}},
    },
)
