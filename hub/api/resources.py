"""Clients (first cut); further resources register beside it."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from hub.api import bp
from hub.api.openapi import register, schema
from hub.auth import api_auth_required, client_or_404, current_user
from hub.extensions import db
from tracking.accounts import visible_clients
from tracking.models import Client

CLIENT = schema(
    "Client",
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "timezone": {"type": "string"},
            "currency": {"type": "string"},
        },
    },
)


def client_json(client: Client) -> dict[str, Any]:
    return {"id": client.id, "name": client.name, "timezone": client.timezone, "currency": client.currency}


@bp.get("/clients")
@api_auth_required
def list_clients() -> Any:
    user = current_user()
    assert user is not None
    return jsonify(items=[client_json(c) for c in db().scalars(visible_clients(user))])


register(
    "/clients",
    "get",
    {
        "summary": "Clients the caller may see",
        "responses": {
            "200": {
                "description": "OK",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": CLIENT}},
                        }
                    }
                },
            }
        },
    },
)


@bp.get("/clients/<int:client_id>")
@api_auth_required
def get_client(client_id: int) -> Any:
    return jsonify(client_json(client_or_404(client_id)))


register(
    "/clients/{client_id}",
    "get",
    {
        "summary": "One client",
        "parameters": [{"name": "client_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": CLIENT}}},
            "404": {"$ref": "#/components/responses/NotFound"},
        },
    },
)
