"""Clients: the businesses an agency tracks calls for."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from hub import resources
from hub.api import bp
from hub.api.common import (
    INVALID,
    NOT_FOUND,
    PAGE_PARAMS,
    bool_arg,
    commit,
    id_param,
    ok,
    page_of,
    paginate,
    parse,
    request_body,
    require_editor,
)
from hub.api.openapi import register
from hub.auth import api_auth_required, client_or_404, current_user
from hub.resources import ClientChange, ClientCreate, apply_client
from hub.schemas import Out
from tracking.accounts import visible_clients
from tracking.models import Client


class ClientOut(Out):
    id: int
    name: str
    timezone: str
    currency: str
    archived: bool


def client_json(client: Client) -> dict[str, Any]:
    return ClientOut.build(
        id=client.id,
        name=client.name,
        timezone=client.timezone,
        currency=client.currency,
        archived=client.archived_at is not None,
    )


@bp.get("/clients")
@api_auth_required
def list_clients() -> Any:
    user = current_user()
    assert user is not None
    return paginate(visible_clients(user, archived=bool(bool_arg("include_archived"))), client_json)


@bp.get("/clients/<int:client_id>")
@api_auth_required
def get_client(client_id: int) -> Any:
    return jsonify(client_json(client_or_404(client_id)))


@bp.post("/clients")
@api_auth_required
def create_client() -> Any:
    require_editor()
    change = parse(ClientCreate)
    user = current_user()
    assert user is not None
    client = resources.create_client(user.agency_id, change)
    return jsonify(client_json(client)), 201


@bp.patch("/clients/<int:client_id>")
@api_auth_required
def update_client(client_id: int) -> Any:
    client = client_or_404(client_id, edit=True)
    apply_client(client, parse(ClientChange))
    commit()
    return jsonify(client_json(client))


register(
    "/clients",
    "get",
    {
        "summary": "Clients the caller may see (archived ones only with include_archived=true)",
        "parameters": [
            *PAGE_PARAMS,
            {"name": "include_archived", "in": "query", "schema": {"type": "boolean", "default": False}},
        ],
        "responses": {"200": page_of(ClientOut)},
    },
)
register(
    "/clients",
    "post",
    {
        "summary": "Create a client",
        "requestBody": request_body(ClientCreate),
        "responses": {"201": ok(ClientOut, "Created"), "400": INVALID},
    },
)
register(
    "/clients/{client_id}",
    "get",
    {
        "summary": "One client",
        "parameters": [id_param("client_id")],
        "responses": {"200": ok(ClientOut), "404": NOT_FOUND},
    },
)
register(
    "/clients/{client_id}",
    "patch",
    {
        "summary": "Change a client; archived=true archives it, false brings it back",
        "parameters": [id_param("client_id")],
        "requestBody": request_body(ClientChange),
        "responses": {"200": ok(ClientOut), "400": INVALID, "404": NOT_FOUND},
    },
)
